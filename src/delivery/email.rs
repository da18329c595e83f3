//! The email channel: SMTP through a pooled lettre transport. [`build_email`] turns one
//! attempt into a message without I/O; [`EmailChannel`] sends it and says how it went in the
//! operator's terms.
//!
//! Contact details are personal data and outcomes are recorded in the log, so nothing this
//! module returns or logs carries the recipient's address: a server reply that quotes it has
//! it replaced by `[recipient]`.

use std::error::Error as _;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use futures_util::future::BoxFuture;
use lettre::message::header::{HeaderName, HeaderValue, MessageId};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::{self, AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Channel, Message, Outcome};

/// The `[smtp]` settings: the server, how to reach it, and who the mail is from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// The SMTP server's host name (checked against its TLS certificate) or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Unset: 25 for `tls = "none"`, 587 for `"starttls"`, 465 for `"tls"`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// With `password`, the account to authenticate as (AUTH PLAIN or LOGIN).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// A PEM file with the certificate authority that signed the server's certificate, for a
    /// server with a private CA. When set, only this CA is trusted; unset, the public ones.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The mailbox mail is from, e.g. `Belfry <noreply@example.com>`; its domain also names
    /// the `Message-ID`s.
    pub from: String,
    /// A mailbox replies go to instead of `from`.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The app's public URL, e.g. `https://app.example.com`: relative action links
    /// (`/orders/42`) are made absolute against it. Without it such a link is left out of
    /// the email, where it could not work.
    #[serde(default)]
    pub app_url: Option<String>,
    /// Most connections to the server kept open at once.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Seconds one attempt may take, from connecting to the server's last answer.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// How the connection to the SMTP server is encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or a trusted network.
    None,
    /// Plain text upgraded with STARTTLS before anything is sent; refused without it.
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS).
    Tls,
}

fn default_host() -> String {
    "localhost".to_owned()
}

fn default_pool_size() -> u32 {
    4
}

fn default_timeout_secs() -> u64 {
    30
}

impl SmtpTls {
    fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// Who a message is from, and where the links it carries lead: the parts of
/// [`SmtpSettings`] that [`build_email`] needs.
#[derive(Debug, Clone)]
pub struct Originator {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Without a trailing slash.
    pub app_url: Option<String>,
}

/// Why a message could not be built: trying again would not help.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("the recipient has no email address")]
    NoAddress,
    #[error("the recipient's email address is not valid ({0})")]
    BadAddress(String),
    #[error("the unsubscribe URL cannot be a List-Unsubscribe header (it must be ASCII without spaces or angle brackets)")]
    BadUnsubscribeUrl,
    #[error("the message cannot be built: {0}")]
    Message(String),
}

impl SmtpSettings {
    /// Checks the settings as [`EmailChannel::new`] does (mailboxes, credentials, the CA
    /// file), without starting anything.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.prepare().map(drop)
    }

    fn port(&self) -> u16 {
        self.port.unwrap_or(self.tls.default_port())
    }

    fn prepare(&self) -> anyhow::Result<(Originator, AsyncSmtpTransportBuilder)> {
        let from: Mailbox = self.from.parse().with_context(|| {
            format!(
                "smtp.from = {:?} is not a mailbox such as `Belfry <noreply@example.com>`",
                self.from
            )
        })?;
        let reply_to = match &self.reply_to {
            Some(raw) => Some(raw.parse::<Mailbox>().with_context(|| {
                format!(
                    "smtp.reply_to = {raw:?} is not a mailbox such as `Support <help@example.com>`"
                )
            })?),
            None => None,
        };
        let app_url = match &self.app_url {
            Some(url) => {
                anyhow::ensure!(
                    (url.starts_with("https://") || url.starts_with("http://"))
                        && !url.chars().any(|c| c.is_whitespace() || c.is_control()),
                    "smtp.app_url = {url:?} is not an http(s) URL such as `https://app.example.com`"
                );
                Some(url.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        anyhow::ensure!(!self.host.is_empty(), "smtp.host is empty");
        anyhow::ensure!(self.pool_size >= 1, "smtp.pool_size must be at least 1");
        anyhow::ensure!(
            self.timeout_secs >= 1,
            "smtp.timeout_secs must be at least 1"
        );

        let timeout = Duration::from_secs(self.timeout_secs);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port())
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(self.pool_size))
            .tls(self.tls_parameters()?);
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => {
                anyhow::ensure!(
                    self.tls != SmtpTls::None,
                    "smtp.username and smtp.password are set with smtp.tls = \"none\": the \
                     password would cross the network in clear; use \"starttls\" or \"tls\""
                );
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            (None, Some(_)) => {
                anyhow::bail!("smtp.password is set without smtp.username")
            }
            (Some(_), None) => {
                anyhow::bail!("smtp.username is set without smtp.password")
            }
            (None, None) => {}
        }
        let originator = Originator {
            from,
            reply_to,
            app_url,
        };
        Ok((originator, builder))
    }

    fn tls_parameters(&self) -> anyhow::Result<Tls> {
        if self.tls == SmtpTls::None {
            anyhow::ensure!(
                self.ca_file.is_none(),
                "smtp.ca_file is set but smtp.tls = \"none\" never checks a certificate"
            );
            return Ok(Tls::None);
        }
        let mut params = TlsParameters::builder(self.host.clone());
        if let Some(file) = &self.ca_file {
            let pem = std::fs::read(file)
                .with_context(|| format!("Failed to read smtp.ca_file = {}", file.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("smtp.ca_file = {} is not valid PEM", file.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "smtp.ca_file = {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                file.display()
            );
            params = params.certificate_store(CertificateStore::None);
            for cert in certs {
                params = params.add_root_certificate(
                    Certificate::from_der(cert.to_vec())
                        .context("Failed to read a certificate of smtp.ca_file")?,
                );
            }
        }
        let params = params.build_rustls().with_context(|| match &self.ca_file {
            Some(file) => format!(
                "Failed to set up TLS with smtp.ca_file = {}",
                file.display()
            ),
            None => "Failed to set up TLS".to_owned(),
        })?;
        Ok(match self.tls {
            SmtpTls::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        })
    }
}

/// The SMTP channel: one pooled transport, shared by every worker.
pub struct EmailChannel {
    originator: Originator,
    /// Kept to start a fresh pool after an attempt was abandoned mid-conversation.
    builder: AsyncSmtpTransportBuilder,
    /// A std lock: held only to clone or replace the transport, never across `.await`.
    transport: RwLock<AsyncSmtpTransport<Tokio1Executor>>,
    /// `host:port`, for errors.
    server: String,
    timeout: Duration,
}

impl EmailChannel {
    /// Checks `settings` and sets up the connection pool; nothing connects until the first
    /// delivery. Must run inside a Tokio runtime (the pool's clean-up task starts here).
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<EmailChannel> {
        let (originator, builder) = settings.prepare()?;
        Ok(EmailChannel {
            originator,
            transport: RwLock::new(builder.clone().build()),
            builder,
            server: format!("{}:{}", settings.host, settings.port()),
            timeout: Duration::from_secs(settings.timeout_secs),
        })
    }

    async fn attempt(&self, message: &Message<'_>) -> Outcome {
        let email = match build_email(&self.originator, message) {
            Ok(email) => email,
            Err(error) => {
                return Outcome::Permanent {
                    error: error.to_string(),
                }
            }
        };
        let recipient = message.contact.email.as_deref().unwrap_or_default();
        let transport = match self.transport.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        // lettre bounds only the connect; a server that stops answering mid-conversation
        // would hold this attempt (and a worker) forever without this.
        match tokio::time::timeout(self.timeout, transport.send(email)).await {
            Ok(Ok(response)) => Outcome::Accepted {
                provider_id: provider_id(&response),
            },
            Ok(Err(error)) => self.classify(&error, recipient),
            Err(_) => {
                // The abandoned connection goes back to its pool in the middle of a
                // command; start a new pool so no later attempt reads its late replies.
                let fresh = self.builder.clone().build();
                match self.transport.write() {
                    Ok(mut guard) => *guard = fresh,
                    Err(poisoned) => *poisoned.into_inner() = fresh,
                }
                Outcome::Transient {
                    error: format!(
                        "the SMTP server {} did not finish answering within {} s (smtp.timeout_secs)",
                        self.server,
                        self.timeout.as_secs()
                    ),
                    retry_after: None,
                }
            }
        }
    }

    /// What a failed send means for the delivery, said in the operator's terms.
    fn classify(&self, error: &smtp::Error, recipient: &str) -> Outcome {
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

impl Channel for EmailChannel {
    fn deliver<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let started = Instant::now();
            let outcome = self.attempt(message).await;
            tracing::debug!(
                delivery_id = %message.delivery_id,
                notification_id = %message.notification_id,
                server = %self.server,
                outcome = outcome_name(&outcome),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "email attempt"
            );
            outcome
        })
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Accepted { .. } => "accepted",
        Outcome::Transient { .. } => "transient",
        Outcome::Permanent { .. } => "permanent",
        Outcome::Gone { .. } => "gone",
    }
}

/// The email for one attempt: the same `Message-ID` on every attempt of one delivery, a text
/// and an HTML part, and the one-click unsubscribe headers when there is a URL for them.
pub fn build_email(
    originator: &Originator,
    message: &Message<'_>,
) -> Result<lettre::Message, BuildError> {
    let raw = message
        .contact
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .ok_or(BuildError::NoAddress)?;
    let address: Address = raw
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| BuildError::BadAddress(e.to_string()))?;
    let name = message
        .contact
        .display_name
        .as_deref()
        .map(|n| n.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|n| !n.trim().is_empty());
    let to = Mailbox::new(name, address);

    let content = message.content;
    let action = content.action_url.as_ref().and_then(|link| {
        let link = link.as_str();
        if link.starts_with('/') {
            originator
                .app_url
                .as_ref()
                .map(|base| format!("{base}{link}"))
        } else {
            Some(link.to_owned())
        }
    });
    let parts = Parts {
        title: content.title.as_str(),
        body: content.body.as_str(),
        action: action.as_deref(),
        preferences: message.preferences_url,
        locale: message.contact.locale.as_deref(),
    };

    let mut builder = lettre::Message::builder()
        .from(originator.from.clone())
        .to(to)
        .subject(content.title.as_str())
        .date(SystemTime::from(message.attempt_at))
        .header(MessageId::from(format!(
            "<{}@{}>",
            message.delivery_id,
            originator.from.email.domain()
        )))
        .raw_header(header("Auto-Submitted", "auto-generated".to_owned()))
        .raw_header(header(
            "X-Belfry-Notification-Id",
            message.notification_id.to_string(),
        ))
        .raw_header(header(
            "X-Belfry-Delivery-Id",
            message.delivery_id.to_string(),
        ));
    if let Some(reply_to) = &originator.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(url) = message.unsubscribe_url {
        let plain = url.is_ascii()
            && !url
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || c == '<' || c == '>');
        if !plain {
            return Err(BuildError::BadUnsubscribeUrl);
        }
        builder = builder
            .raw_header(header("List-Unsubscribe", format!("<{url}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            parts.text(),
            parts.html(),
        ))
        .map_err(|e| BuildError::Message(e.to_string()))
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// What both parts show.
struct Parts<'a> {
    title: &'a str,
    body: &'a str,
    action: Option<&'a str>,
    preferences: Option<&'a str>,
    locale: Option<&'a str>,
}

impl Parts<'_> {
    fn text(&self) -> String {
        let mut text = format!("{}\n", self.title);
        if !self.body.trim().is_empty() {
            text.push('\n');
            text.push_str(self.body.trim_end());
            text.push('\n');
        }
        if let Some(url) = self.action {
            text.push_str(&format!("\nOpen: {url}\n"));
        }
        if let Some(url) = self.preferences {
            text.push_str(&format!(
                "\n-- \nManage your notification preferences: {url}\n"
            ));
        }
        text
    }

    fn html(&self) -> String {
        let lang = self
            .locale
            .map(|l| format!(" lang=\"{}\"", escape(l)))
            .unwrap_or_default();
        let title = escape(self.title);
        let mut html = format!(
            "<!DOCTYPE html>\n<html{lang}>\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width\">\n<title>{title}</title>\n\
             </head>\n<body style=\"font-family: sans-serif; line-height: 1.5; color: #1f2328;\">\n\
             <h1 style=\"font-size: 1.25em;\">{title}</h1>\n"
        );
        for paragraph in self
            .body
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let lines: Vec<String> = paragraph.lines().map(escape).collect();
            html.push_str(&format!("<p>{}</p>\n", lines.join("<br>\n")));
        }
        if let Some(url) = self.action {
            html.push_str(&format!(
                "<p><a href=\"{}\" style=\"display: inline-block; padding: 0.5em 1em; \
                 background: #0969da; color: #ffffff; text-decoration: none; border-radius: \
                 6px;\">Open</a></p>\n",
                escape(url)
            ));
        }
        if let Some(url) = self.preferences {
            html.push_str(&format!(
                "<hr style=\"border: none; border-top: 1px solid #d1d9e0;\">\n\
                 <p style=\"font-size: 0.875em; color: #59636e;\"><a href=\"{}\">Manage your \
                 notification preferences</a></p>\n",
                escape(url)
            ));
        }
        html.push_str("</body>\n</html>\n");
        html
    }
}

/// `text` safe in HTML element content and in a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The server's id for an accepted message: the queue id of `250 2.0.0 Ok: queued as ID`,
/// else whatever the reply says beyond its status and "OK".
fn provider_id(response: &Response) -> Option<String> {
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
fn redact(text: &str, address: &str) -> String {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::{TimeZone, Utc};
    use figment::providers::{Format, Toml};
    use uuid::Uuid;

    use super::*;
    use crate::delivery::Contact;
    use crate::domain::{
        Body, Category, Content, Link, NotificationId, Payload, Priority, Title, UserId,
    };

    fn settings(toml: &str) -> Result<SmtpSettings, String> {
        figment::Figment::from(Toml::string(toml))
            .extract()
            .map_err(|e| e.to_string())
    }

    fn originator() -> Originator {
        let settings = settings(
            r#"from = "Belfry <noreply@example.com>"
               reply_to = "Support <help@example.com>"
               app_url = "https://app.example.com/""#,
        )
        .unwrap();
        settings.prepare().unwrap().0
    }

    fn content(action: Option<&str>) -> Content {
        Content {
            category: Category::parse("billing").unwrap(),
            priority: Priority::Normal,
            critical: false,
            title: Title::parse("Invoice <#42> & \"more\"").unwrap(),
            body: Body::parse("Line one\nline <two>\n\nSecond paragraph").unwrap(),
            data: Payload::default(),
            action_url: action.map(|a| Link::parse("action_url", a).unwrap()),
            icon: None,
        }
    }

    struct Fixture {
        user: UserId,
        content: Content,
        contact: Contact,
    }

    impl Fixture {
        fn new(action: Option<&str>) -> Fixture {
            Fixture {
                user: UserId::parse("u-1").unwrap(),
                content: content(action),
                contact: Contact {
                    display_name: Some("Ada Lovelace".to_owned()),
                    email: Some("ada@example.org".to_owned()),
                    ..Contact::default()
                },
            }
        }

        fn message(&self, attempt_minute: u32) -> Message<'_> {
            Message {
                delivery_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
                notification_id: NotificationId::from_uuid(Uuid::from_u128(7)),
                recipient: &self.user,
                content: &self.content,
                contact: &self.contact,
                sent_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
                attempt_at: Utc
                    .with_ymd_and_hms(2026, 3, 1, 12, attempt_minute, 0)
                    .unwrap(),
                preferences_url: Some("https://belfry.example.com/preferences?u=1&c=\"x\""),
                unsubscribe_url: Some("https://belfry.example.com/unsubscribe?t=abc"),
            }
        }
    }

    fn headers(email: &lettre::Message) -> String {
        let raw = String::from_utf8(email.formatted()).unwrap();
        raw.split("\r\n\r\n").next().unwrap().to_owned()
    }

    #[test]
    fn an_email_carries_its_headers_and_the_same_message_id_on_every_attempt() {
        let fixture = Fixture::new(None);
        let first = build_email(&originator(), &fixture.message(0)).unwrap();
        let second = build_email(&originator(), &fixture.message(5)).unwrap();
        let head = headers(&first);
        for expected in [
            "From: Belfry <noreply@example.com>",
            "Reply-To: Support <help@example.com>",
            "To: \"Ada Lovelace\" <ada@example.org>",
            "Message-ID: <01920000-0000-7000-8000-000000000001@example.com>",
            "Date: Sun, 01 Mar 2026 12:00:00 +0000",
            "List-Unsubscribe: <https://belfry.example.com/unsubscribe?t=abc>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "X-Belfry-Delivery-Id: 01920000-0000-7000-8000-000000000001",
            "X-Belfry-Notification-Id: 00000000-0000-0000-0000-000000000007",
            "Content-Type: multipart/alternative",
        ] {
            assert!(
                head.contains(expected),
                "{expected:?} missing from:\n{head}"
            );
        }
        let second = headers(&second);
        assert!(second.contains("Message-ID: <01920000-0000-7000-8000-000000000001@example.com>"));
        assert!(
            second.contains("Date: Sun, 01 Mar 2026 12:05:00 +0000"),
            "{second}"
        );
    }

    #[test]
    fn everything_from_the_notification_is_escaped_in_the_html_part() {
        let parts = Parts {
            title: "Invoice <#42> & \"more\"",
            body: "a <b>\nc\n\nd's",
            action: Some("https://app.example.com/x?a=1&b=\"2\""),
            preferences: Some("https://b.example.com/p?q=<1>"),
            locale: Some("de-DE\"><x"),
        };
        let html = parts.html();
        assert!(html.contains("<title>Invoice &lt;#42&gt; &amp; &quot;more&quot;</title>"));
        assert!(
            html.contains("<p>a &lt;b&gt;<br>\nc</p>\n<p>d&#39;s</p>"),
            "{html}"
        );
        assert!(html.contains("href=\"https://app.example.com/x?a=1&amp;b=&quot;2&quot;\""));
        assert!(html.contains("href=\"https://b.example.com/p?q=&lt;1&gt;\""));
        assert!(html.contains("<html lang=\"de-DE&quot;&gt;&lt;x\">"));
        assert!(!html.contains("<b>") && !html.contains("<x"));
        let text = parts.text();
        assert!(text.starts_with("Invoice <#42> & \"more\"\n\na <b>\nc\n\nd's\n"));
        assert!(text.contains("Open: https://app.example.com/x?a=1&b=\"2\"\n"));
        assert!(
            text.contains("Manage your notification preferences: https://b.example.com/p?q=<1>")
        );
    }

    #[test]
    fn a_relative_action_link_is_made_absolute_only_when_the_app_url_is_known() {
        let fixture = Fixture::new(Some("/orders/42"));
        let with = build_email(&originator(), &fixture.message(0)).unwrap();
        let with = String::from_utf8(with.formatted()).unwrap();
        assert!(with.contains("https://app.example.com/orders/42"), "{with}");

        let mut bare = originator();
        bare.app_url = None;
        let without = build_email(&bare, &fixture.message(0)).unwrap();
        let without = String::from_utf8(without.formatted()).unwrap();
        assert!(!without.contains("/orders/42"), "{without}");
        assert!(!without.contains("Open"), "{without}");
    }

    #[test]
    fn a_contact_without_a_usable_address_cannot_be_mailed() {
        let mut fixture = Fixture::new(None);
        fixture.contact.email = None;
        let missing = build_email(&originator(), &fixture.message(0)).unwrap_err();
        assert_eq!(missing, BuildError::NoAddress);
        fixture.contact.email = Some("not an address".to_owned());
        let bad = build_email(&originator(), &fixture.message(0)).unwrap_err();
        assert!(matches!(bad, BuildError::BadAddress(_)), "{bad:?}");
        assert!(!bad.to_string().contains("not an address"), "{bad}");
    }

    #[test]
    fn an_unsubscribe_url_that_cannot_be_a_header_is_refused() {
        let fixture = Fixture::new(None);
        let mut message = fixture.message(0);
        message.unsubscribe_url = Some("https://x.example/u?t=a>b");
        let error = build_email(&originator(), &message).unwrap_err();
        assert_eq!(error, BuildError::BadUnsubscribeUrl);
        message.unsubscribe_url = None;
        let head = headers(&build_email(&originator(), &message).unwrap());
        assert!(!head.contains("List-Unsubscribe"), "{head}");
    }

    #[test]
    fn the_port_follows_the_tls_mode_unless_set() {
        for (tls, port) in [("none", 25), ("starttls", 587), ("tls", 465)] {
            let s = settings(&format!("from = \"a@example.com\"\ntls = \"{tls}\"")).unwrap();
            assert_eq!(s.port(), port);
            s.validate().unwrap();
        }
        let s = settings("from = \"a@example.com\"\nport = 2525").unwrap();
        assert_eq!((s.tls, s.port()), (SmtpTls::Starttls, 2525));
        assert_eq!(
            (s.host.as_str(), s.pool_size, s.timeout_secs),
            ("localhost", 4, 30)
        );
    }

    #[test]
    fn settings_are_refused_with_a_reason() {
        let refused = |toml: &str| format!("{:#}", settings(toml).unwrap().validate().unwrap_err());
        let bad_from = refused("from = \"noreply at example\"");
        assert!(
            bad_from.contains("smtp.from = \"noreply at example\" is not a mailbox"),
            "{bad_from}"
        );
        let bad_reply = refused("from = \"a@example.com\"\nreply_to = \"<<\"");
        assert!(bad_reply.contains("smtp.reply_to"), "{bad_reply}");
        let no_user = refused("from = \"a@example.com\"\npassword = \"p\"");
        assert!(
            no_user.contains("smtp.password is set without smtp.username"),
            "{no_user}"
        );
        let clear =
            refused("from = \"a@example.com\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"");
        assert!(clear.contains("in clear"), "{clear}");
        let missing = refused("from = \"a@example.com\"\nca_file = \"/nonexistent/ca.pem\"");
        assert!(
            missing.contains("Failed to read smtp.ca_file = /nonexistent/ca.pem"),
            "{missing}"
        );

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let no_pem = refused(&format!("from = \"a@example.com\"\nca_file = {:?}", empty));
        assert!(no_pem.contains("holds no PEM certificate"), "{no_pem}");

        let unknown = settings("from = \"a@example.com\"\nstarttls = true").unwrap_err();
        assert!(unknown.contains("starttls"), "{unknown}");
        let no_from = settings("host = \"smtp.example.com\"").unwrap_err();
        assert!(no_from.contains("from"), "{no_from}");
    }

    #[test]
    fn the_provider_id_is_the_queue_id_or_what_the_reply_adds_to_ok() {
        use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
        let ok = |lines: &[&str]| {
            let code = Code::new(
                Severity::PositiveCompletion,
                Category::MailSystem,
                Detail::Zero,
            );
            provider_id(&Response::new(
                code,
                lines.iter().map(|l| l.to_string()).collect(),
            ))
        };
        assert_eq!(
            ok(&["2.0.0 Ok: queued as 4Xk2Lq1nZz"]).as_deref(),
            Some("4Xk2Lq1nZz")
        );
        assert_eq!(
            ok(&["Ok 0100018f-aaaa-bbbb"]).as_deref(),
            Some("0100018f-aaaa-bbbb")
        );
        assert_eq!(ok(&["2.0.0 OK"]), None);
        assert_eq!(ok(&["OK"]), None);
        assert_eq!(ok(&["2.0.0"]), None);
        assert_eq!(ok(&[]), None);
    }

    #[test]
    fn the_recipients_address_is_taken_out_of_server_replies() {
        assert_eq!(
            redact(
                "5.1.1 <Ada@Example.org>: Recipient address rejected (ada@example.org)",
                "ada@example.org"
            ),
            "5.1.1 <[recipient]>: Recipient address rejected ([recipient])"
        );
        assert_eq!(redact("4.3.0 busy", ""), "4.3.0 busy");
    }
}
