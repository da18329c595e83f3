//! What an attempt's answer means for the delivery: the HTTP status (with `Retry-After`), or
//! the failure to get one, said in the operator's terms without the person's contact details.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;

use super::WebhookChannel;
use crate::delivery::{Contact, Outcome};

/// The longest `Retry-After` taken from an endpoint; a longer wish is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// How much of an error response's body an error quotes.
pub(super) const BODY_QUOTE_MAX: usize = 200;

impl WebhookChannel {
    /// No answer: nothing the endpoint said decides, so it is worth another try.
    pub(super) fn failed(&self, endpoint: &str, error: reqwest::Error) -> Outcome {
        let error = if error.is_timeout() {
            format!(
                "the webhook endpoint {endpoint} did not answer within {} ms (timeout_ms)",
                self.endpoint.timeout.as_millis()
            )
        } else if error.is_connect() {
            format!(
                "could not connect to the webhook endpoint {endpoint}: {}",
                causes(&error)
            )
        } else {
            format!(
                "the request to the webhook endpoint {endpoint} failed: {}",
                causes(&error)
            )
        };
        Outcome::Transient {
            error,
            retry_after: None,
        }
    }
}

/// An error's chain without reqwest's own top line, which names the whole URL. A TLS
/// failure says so: rustls's own words ("invalid peer certificate: UnknownIssuer") do not.
fn causes(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(tls) = tls_error(cause) {
            parts.push(format!("TLS handshake failed: {tls}"));
            break;
        }
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push("no cause given".to_owned());
    }
    parts.join(": ")
}

/// The rustls error in `cause`, also when it arrives wrapped in I/O errors (as hyper-rustls
/// and tokio-rustls hand it on), whose `source` skips it.
fn tls_error<'e>(cause: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut cause = cause;
    loop {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cause = cause.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// How an answer counts. `endpoint` names the endpoint in errors, `said` is the start of what
/// it answered ([`quote`]), `now` the attempt's time, against which an HTTP-date
/// `Retry-After` is read.
pub(super) fn classify(
    endpoint: &str,
    status: StatusCode,
    headers: &HeaderMap,
    said: &str,
    now: DateTime<Utc>,
) -> Outcome {
    if status.is_success() {
        let provider_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .map(str::to_owned);
        return Outcome::Accepted { provider_id };
    }
    if status.is_redirection() {
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere");
        return Outcome::Permanent {
            error: format!(
                "the webhook endpoint {endpoint} redirects ({status}) to {location}; \
                 redirects are not followed: configure the URL it points to"
            ),
        };
    }
    let answered = if said.is_empty() {
        format!("the webhook endpoint {endpoint} answered {status}")
    } else {
        format!("the webhook endpoint {endpoint} answered {status}: {said}")
    };
    match status.as_u16() {
        408 | 429 | 500..=599 => Outcome::Transient {
            error: answered,
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, now)),
        },
        410 => Outcome::Gone { error: answered },
        _ => Outcome::Permanent { error: answered },
    }
}

/// `Retry-After` as delta-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]; a date in
/// the past is no wait. Anything else is ignored.
pub(super) fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits too many for a u64 are a very long wish: the cap.
        value.parse().map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The start of a response body as one line of text, for an error message. Outcomes are
/// recorded in the log, so where the endpoint quotes the person's contact details (an
/// address it refuses, say) they become `[recipient]`.
pub(super) fn quote(body: &[u8], contact: &Contact) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    let personal = [&contact.email, &contact.phone, &contact.display_name];
    for value in personal.into_iter().flatten() {
        text = replace_ignoring_ascii_case(&text, value.trim(), "[recipient]");
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let line: String = words
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.char_indices().nth(BODY_QUOTE_MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// `text` with every `needle` in it, in any ASCII case, replaced by `with`.
fn replace_ignoring_ascii_case(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_owned();
    }
    // ASCII lowercasing keeps every byte where it was, so positions carry over to `text`.
    let (hay, needle) = (text.to_ascii_lowercase(), needle.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in hay.match_indices(&needle) {
        out.push_str(&text[last..at]);
        out.push_str(with);
        last = at + needle.len();
    }
    out.push_str(&text[last..]);
    out
}
