//! Postgres over TLS (decision 0030): the TLS a database URL asks for, checked before the
//! first connection, and a refused connection explained in the operator's terms.
//!
//! sqlx reads `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from the URL itself; this
//! module adds what it leaves out: files that cannot be read are named before connecting,
//! `require` with a root certificate verifies it as libpq does, and a refusal says which
//! check failed in the operator's words rather than in rustls's.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use rustls::CertificateError;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// What a Postgres URL asks of TLS, kept to explain a failed connection.
#[derive(Debug, Clone)]
pub(super) struct Tls {
    /// The mode the URL (or `PGSSLMODE`) asks for.
    asked: PgSslMode,
    /// The mode connections use.
    mode: PgSslMode,
    /// The `sslrootcert` file, when one is given.
    root_cert: Option<String>,
    /// `host:port`, or the socket path.
    server: String,
    host: String,
}

/// The URL parameters sqlx reads as `sslrootcert`, `sslcert` and `sslkey` (the last given
/// wins), with the variables it falls back to when the URL names none.
const FILES: [(&str, &[&str], &str); 3] = [
    (
        "sslrootcert",
        &["sslrootcert", "ssl-root-cert", "ssl-ca"],
        "PGSSLROOTCERT",
    ),
    ("sslcert", &["sslcert", "ssl-cert"], "PGSSLCERT"),
    ("sslkey", &["sslkey", "ssl-key"], "PGSSLKEY"),
];

impl Tls {
    /// Parses a Postgres URL into the options to connect with, checking its TLS parameters
    /// and the files they name first.
    pub(super) fn connect_options(url: &str) -> anyhow::Result<(PgConnectOptions, Tls)> {
        let params = query_params(url);
        if let Some(mode) = last(&params, &["sslmode", "ssl-mode"]) {
            anyhow::ensure!(
                mode.parse::<PgSslMode>().is_ok(),
                "sslmode={mode} in the database URL is not a mode: use disable, prefer, \
                 require, verify-ca or verify-full"
            );
        }
        let mut options =
            PgConnectOptions::from_str(url).context("Failed to parse the Postgres database URL")?;
        let mut root_cert = None;
        for (name, keys, variable) in FILES {
            // sqlx reads libpq's variables itself when the URL names no file; look where it looks.
            let Some(file) = last(&params, keys).or_else(|| std::env::var(variable).ok()) else {
                continue;
            };
            // sqlx takes a value that is itself PEM text as the certificate.
            if file.trim_start().starts_with("-----BEGIN") {
                continue;
            }
            check_file(name, &file)?;
            if name == "sslrootcert" {
                root_cert = Some(file);
            }
        }

        // libpq verifies the CA under `require` when a root certificate is given; sqlx would
        // ignore it, so a URL written for libpq would silently check nothing.
        let asked = options.get_ssl_mode();
        if matches!(asked, PgSslMode::Require) && root_cert.is_some() {
            options = options.ssl_mode(PgSslMode::VerifyCa);
        }
        let server = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        let tls = Tls {
            asked,
            mode: options.get_ssl_mode(),
            root_cert,
            server,
            host: options.get_host().to_owned(),
        };
        Ok((options, tls))
    }

    /// The context for a failed first connection: where, and, when TLS is the reason, which
    /// check refused it.
    pub(super) fn explain(&self, error: &sqlx::Error) -> String {
        let server = &self.server;
        match self.reason(error) {
            Some(reason) => format!("Failed to connect to Postgres at {server}: {reason}"),
            None => format!("Failed to connect to Postgres at {server}"),
        }
    }

    fn reason(&self, error: &sqlx::Error) -> Option<String> {
        let mode = self.mode_label();
        if closed_before_tls_answer(error) {
            return Some(format!(
                "the connection was closed before the server answered the request for TLS \
                 ({mode}): is a Postgres server listening there?"
            ));
        }
        match error {
            // rustls's refusal arrives inside the I/O error that ended the handshake.
            sqlx::Error::Io(e) => match e.get_ref()?.downcast_ref::<rustls::Error>()? {
                rustls::Error::InvalidCertificate(problem) => Some(format!(
                    "the server's certificate was refused ({mode}): {}",
                    self.certificate_problem(problem)
                )),
                _ => None,
            },
            // 28000 is the refusal by pg_hba.conf; "no encryption" says a line for TLS
            // connections would have let it in.
            sqlx::Error::Database(e)
                if e.code().as_deref() == Some("28000")
                    && e.message().ends_with("no encryption") =>
            {
                Some(format!(
                    "the server accepts only TLS connections from here, and the URL's \
                     {mode} does not use TLS: use sslmode=verify-full (with \
                     sslrootcert=<file> when a private certificate authority signs the \
                     server's certificate)"
                ))
            }
            _ => None,
        }
    }

    /// The mode as the URL gave it, and how it is checked when that differs.
    fn mode_label(&self) -> String {
        match (self.asked, self.mode) {
            (PgSslMode::Require, PgSslMode::VerifyCa) => {
                "sslmode=require with sslrootcert, checked as verify-ca".to_owned()
            }
            (_, mode) => format!("sslmode={}", mode_name(mode)),
        }
    }

    /// rustls's reason for refusing a certificate, in the operator's terms.
    fn certificate_problem(&self, problem: &CertificateError) -> String {
        let names = match problem {
            CertificateError::UnknownIssuer => return self.unknown_issuer(),
            CertificateError::NotValidForNameContext { presented, .. } => presented
                .iter()
                .map(|name| plain_name(name))
                .collect::<Vec<_>>()
                .join(", "),
            CertificateError::NotValidForName => "other names".to_owned(),
            // Expiry and the rest already read as sentences, or name a rare fault exactly.
            other => return other.to_string(),
        };
        let host = &self.host;
        // sqlx 0.8 lets only rustls's older form of this error through under verify-ca, so
        // it checks the name there too (sqlx issue 3793, fixed after 0.8.6).
        let also = if matches!(self.mode, PgSslMode::VerifyCa) {
            " (Belfry's Postgres driver, sqlx 0.8, checks the name under verify-ca too)"
        } else {
            ""
        };
        format!(
            "it is not valid for {host}, the host the database URL names (it is valid for \
             {names}); connect by a name the certificate holds{also}"
        )
    }

    fn unknown_issuer(&self) -> String {
        match &self.root_cert {
            Some(file) => format!(
                "it is not signed by the certificate authority in sslrootcert={file} (nor \
                     by a public one)"
            ),
            None => "it is not signed by a public certificate authority, and the URL \
                         names none of its own: add sslrootcert=<file> with the authority \
                         that signed it"
                .to_owned(),
        }
    }
}

/// Whether `error` is a connection that closed before the server answered the request for
/// TLS (sent under every mode but `disable`): the database host going down, or a proxy in
/// front of it with nothing behind. sqlx reports the zero byte left in its buffer as a
/// protocol error, but the connection is what failed.
pub(super) fn closed_before_tls_answer(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Protocol(m) if m.starts_with("unexpected response from SSLRequest: 0x00"))
}

/// `sslmode`'s value as a URL spells it.
fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// A name as webpki presents it, `DnsName("db.example.com")` or `IpAddress(10.0.0.1)`, as
/// `db.example.com` or `10.0.0.1`.
fn plain_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(name)
}

/// Fails, naming the parameter and the file, when `file` cannot be read, or when it is the
/// root certificate and holds no certificate (sqlx would then trust only the public
/// authorities, and the refusal would not say why).
fn check_file(name: &str, file: &str) -> anyhow::Result<()> {
    let hint = if name == "sslrootcert" && file == "system" {
        " (to trust the public certificate authorities, leave sslrootcert out)"
    } else {
        ""
    };
    let text = std::fs::read(Path::new(file))
        .with_context(|| format!("Failed to read {name}={file} from the database URL{hint}"))?;
    if name == "sslrootcert" {
        anyhow::ensure!(
            text.windows(27)
                .any(|w| w == b"-----BEGIN CERTIFICATE-----"),
            "{name}={file} from the database URL holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)"
        );
    }
    Ok(())
}

/// The last value of any of `keys` among `params`.
fn last(params: &[(String, String)], keys: &[&str]) -> Option<String> {
    params
        .iter()
        .rev()
        .find(|(k, _)| keys.contains(&k.as_str()))
        .map(|(_, v)| v.clone())
}

/// The URL's query as decoded key-value pairs, as sqlx reads them.
fn query_params(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_and_the_last_one_wins() {
        let params = query_params(
            "postgres://u@h/db?sslrootcert=%2Fetc%2Fa+b.pem&sslmode=require&ssl-ca=/c.pem#x",
        );
        assert_eq!(
            last(&params, &["sslrootcert", "ssl-root-cert", "ssl-ca"]).as_deref(),
            Some("/c.pem")
        );
        assert_eq!(
            decode("%2Fetc%2Fa+b.pem%zz%4"),
            "/etc/a b.pem%zz%4".to_owned()
        );
    }

    #[test]
    fn certificate_names_read_plainly() {
        assert_eq!(plain_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(plain_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }
}
