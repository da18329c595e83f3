//! What a send's answer means for the delivery: an SMTP reply or a failure to get one, said
//! in the operator's terms with the recipient's address taken out, and the server's id for
//! an accepted message.

use std::error::Error as _;

use lettre::transport::smtp;
use lettre::transport::smtp::response::Response;

use super::EmailChannel;
use crate::delivery::Outcome;

impl EmailChannel {
    /// What a failed send means for the delivery, said in the operator's terms.
    pub(super) fn classify(&self, error: &smtp::Error, recipient: &str) -> Outcome {
        let server = &self.server;
        let transient = |error: String| Outcome::Transient {
            error,
            retry_after: None,
        };
        if let Some(code) = error.status() {
            let text = error.source().map(|s| s.to_string()).unwrap_or_default();
            let reply = redact(format!("{code} {text}").trim_end(), recipient);
            return if error.is_transient() {
                transient(format!(
                    "the SMTP server {server} refused the message for now: {reply}"
                ))
            } else {
                Outcome::Permanent {
                    error: format!("the SMTP server {server} rejected the message: {reply}"),
                }
            };
        }
        if error.is_timeout() {
            return transient(format!(
                "the SMTP server {server} did not answer within {} s (smtp.timeout_secs)",
                self.timeout.as_secs()
            ));
        }
        if let Some(tls) = find_tls_error(error) {
            return transient(format!(
                "TLS with the SMTP server {server} failed: {}",
                explain_tls(tls)
            ));
        }
        if error.is_tls() {
            return transient(format!("TLS with the SMTP server {server} failed: {error}"));
        }
        if let Some(io) = find_io_error(error) {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return transient(format!(
                    "could not connect to the SMTP server {server}: connection refused (is it running, on this port?)"
                ));
            }
        }
        let text = redact(&error.to_string(), recipient);
        // lettre refuses before sending when the address or the message needs an extension
        // (SMTPUTF8, 8BITMIME) this server lacks: the same server will refuse it again.
        if error.is_client() && text.contains("non-ascii") {
            return Outcome::Permanent {
                error: format!("the SMTP server {server} cannot take this message: {text}"),
            };
        }
        transient(format!(
            "sending to the SMTP server {server} failed: {text}"
        ))
    }
}

/// The server's id for an accepted message: the queue id of `250 2.0.0 Ok: queued as ID`,
/// else whatever the reply says beyond its status and "OK".
pub(super) fn provider_id(response: &Response) -> Option<String> {
    let text = response.message().collect::<Vec<_>>().join(" ");
    if let Some((_, id)) = text.split_once("queued as ") {
        return id.split_whitespace().next().map(str::to_owned);
    }
    let mut rest = text.trim();
    // An enhanced status code (RFC 3463), e.g. `2.0.0`.
    if let Some((first, after)) = rest.split_once(' ') {
        if first.split('.').count() == 3 && first.chars().all(|c| c.is_ascii_digit() || c == '.') {
            rest = after.trim_start();
        }
    } else if rest.split('.').count() == 3 && rest.chars().all(|c| c.is_ascii_digit() || c == '.') {
        rest = "";
    }
    let ok = rest.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("ok"));
    if ok {
        rest = rest[2..].trim_start_matches([':', ' ', ',']);
    }
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// `text` with every occurrence of `address` (any case) replaced by `[recipient]`.
pub(super) fn redact(text: &str, address: &str) -> String {
    if address.is_empty() {
        return text.to_owned();
    }
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` hold in `text`.
    let lower = text.to_ascii_lowercase();
    let needle = address.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(&needle) {
        out.push_str(&text[at..at + found]);
        out.push_str("[recipient]");
        at += found + needle.len();
    }
    out.push_str(&text[at..]);
    out
}

/// The errors behind `error`, `io::Error`'s wrapped one included (its `source` skips it).
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => current.source(),
        };
        Some(current)
    })
}

fn find_tls_error(error: &smtp::Error) -> Option<&rustls::Error> {
    causes(error).find_map(|e| e.downcast_ref::<rustls::Error>())
}

fn find_io_error(error: &smtp::Error) -> Option<&std::io::Error> {
    causes(error).find_map(|e| e.downcast_ref::<std::io::Error>())
}

fn explain_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError;
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a certificate authority Belfry trusts \
             (the one in smtp.ca_file when set, else the public ones)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for smtp.host; set smtp.host to a name \
              the certificate holds"
            .to_owned(),
        other => other.to_string(),
    }
}
