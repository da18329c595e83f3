//! The webhook channel: a signed HTTP POST per delivery (Standard Webhooks).
//!
//! # The request
//! One `POST` to the endpoint's URL per attempt, `content-type: application/json`, a
//! `user-agent` of `Belfry/<version> (webhooks)`, and the three headers of the
//! [Standard Webhooks](https://www.standardwebhooks.com/) spec:
//! - `webhook-id`: the delivery's id, the same on every attempt of one delivery, so a
//!   receiver drops a duplicate by it (delivery is at least once);
//! - `webhook-timestamp`: the attempt's time in unix seconds;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per
//!   configured secret (keyed by the bytes after `whsec_`, base64-decoded), space-separated,
//!   so during a rotation a receiver holding either the old or the new secret verifies it.
//!
//! The body (absent contact fields and links are left out, never `null`):
//! ```json
//! {"type": "notification.delivery",
//!  "timestamp": "2025-03-01T09:30:00.000Z",
//!  "data": {
//!    "deliveryId": "…", "notificationId": "…",
//!    "recipient": {"id": "…", "displayName": "…", "email": "…", "phone": "+49…",
//!                  "locale": "de-DE", "timeZone": "Europe/Berlin"},
//!    "notification": {"category": "billing", "priority": "high", "critical": false,
//!                     "title": "…", "body": "…", "data": {…}, "actionUrl": "…",
//!                     "icon": "…", "sentAt": "2025-03-01T09:29:58.120Z"},
//!    "preferencesUrl": "…"}}
//! ```
//!
//! Links (`actionUrl`, `icon`) are as the send gave them: an `http(s)` URL or an app path
//! starting with `/`. Every contact field the directory holds is sent: the endpoint is the
//! operator's own automation (a WhatsApp or SMS workflow needs the phone number).
//!
//! # The answer
//! 2xx is accepted, with the response's `x-request-id` as the provider id when it sent one;
//! 408, 429 and 5xx are transient, with the endpoint's `Retry-After` (seconds or an HTTP date,
//! at most [`MAX_RETRY_AFTER`]); 410 means the endpoint is gone; any other status, a redirect
//! included (redirects are not followed: the URL is misconfigured), is permanent. A timeout,
//! a refused connection and a failed TLS handshake are transient.
//!
//! Errors name the endpoint by its origin (scheme, host and port: a path can hold a token)
//! and quote the start of what it answered, with the person's contact details in it replaced
//! by `[recipient]`, since outcomes are recorded in the log.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Channel, Contact, Message, Outcome};
use crate::domain::{Body, Category, Link, NotificationId, Payload, Priority, Title, UserId};

/// The longest `Retry-After` taken from an endpoint; a longer wish is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

const USER_AGENT: &str = concat!("Belfry/", env!("CARGO_PKG_VERSION"), " (webhooks)");
const SECRET_PREFIX: &str = "whsec_";
/// The spec's range for a secret: "between 24 bytes (192 bits) and 64 bytes (512 bits)".
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Standard base64 with or without its `=` padding, as secrets are handed around both ways.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// How much of an error response's body is read, and how much of it an error quotes.
const BODY_READ_MAX: usize = 4_096;
const BODY_QUOTE_MAX: usize = 200;

/// One webhook endpoint, as configured in a `[[webhooks]]` table:
/// ```toml
/// [[webhooks]]
/// url = "https://hooks.example.com/belfry"
/// secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]  # two during a rotation
/// categories = ["billing", "stock"]                   # optional; empty or absent: all
/// timeout_ms = 10000                                  # optional
/// ```
/// Deserializing checks every field, so an endpoint that exists is usable.
#[derive(Clone, Deserialize)]
#[serde(try_from = "RawEndpoint")]
pub struct WebhookEndpoint {
    url: Url,
    secrets: Vec<WebhookSecret>,
    categories: Vec<Category>,
    timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    url: String,
    secrets: Vec<WebhookSecret>,
    #[serde(default)]
    categories: Vec<Category>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl TryFrom<RawEndpoint> for WebhookEndpoint {
    type Error = EndpointError;

    fn try_from(raw: RawEndpoint) -> Result<Self, EndpointError> {
        let url = Url::parse(&raw.url).map_err(|e| EndpointError::Url(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EndpointError::Url(format!(
                "the scheme must be http or https, not {:?}",
                url.scheme()
            )));
        }
        if raw.secrets.is_empty() {
            return Err(EndpointError::NoSecret);
        }
        if raw.timeout_ms == 0 {
            return Err(EndpointError::ZeroTimeout);
        }
        Ok(Self {
            url,
            secrets: raw.secrets,
            categories: raw.categories,
            timeout: Duration::from_millis(raw.timeout_ms),
        })
    }
}

impl WebhookEndpoint {
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether deliveries of this category go here (no categories configured: every one).
    pub fn accepts(&self, category: &Category) -> bool {
        self.categories.is_empty() || self.categories.contains(category)
    }

    /// Scheme, host and port: how errors and logs name the endpoint, since the URL's path and
    /// query can hold a token (Slack-style incoming hooks do).
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// How long one attempt may take, from connecting to the last byte of the answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Only the URL's origin prints (see [`WebhookEndpoint::origin`]).
impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("origin", &self.origin())
            .field("secrets", &self.secrets.len())
            .field("categories", &self.categories)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A `whsec_<base64>` signing secret, held as the HMAC keyed by it; never printed.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct WebhookSecret(Hmac<Sha256>);

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, EndpointError> {
        let encoded = raw
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(EndpointError::SecretPrefix)?;
        // A secret box, so the decoded key is wiped when this returns.
        let key: SecretSlice<u8> = SECRET_BASE64
            .decode(encoded)
            .map_err(|_| EndpointError::SecretBase64)?
            .into();
        let len = key.expose_secret().len();
        if !SECRET_BYTES.contains(&len) {
            return Err(EndpointError::SecretLength(len));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key.expose_secret())
            .map_err(|_| EndpointError::SecretLength(len))?;
        Ok(Self(mac))
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = EndpointError;

    fn try_from(raw: String) -> Result<Self, EndpointError> {
        Self::parse(&raw)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Why a webhook endpoint's settings were refused. No message quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("webhook url is not a usable URL: {0}")]
    Url(String),
    #[error("webhook secrets must hold at least one whsec_ secret")]
    NoSecret,
    #[error("a webhook secret must start with \"whsec_\" followed by its key in base64")]
    SecretPrefix,
    #[error("a webhook secret's key (after \"whsec_\") is not valid standard base64")]
    SecretBase64,
    #[error(
        "a webhook secret's key is {0} bytes; Standard Webhooks asks for 24 to 64 random \
         bytes (e.g. whsec_ and the base64 of 32 bytes from `openssl rand -base64 32`)"
    )]
    SecretLength(usize),
    #[error("webhook timeout_ms must be more than 0")]
    ZeroTimeout,
}

/// The `webhook-signature` header's value: `v1,<signature>` for each secret, space-separated.
/// The signature is the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed by the secret.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| {
            let mut mac = secret.0.clone();
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect();
    signatures.join(" ")
}

/// Sends deliveries to one endpoint.
pub struct WebhookChannel {
    endpoint: WebhookEndpoint,
    client: reqwest::Client,
}

impl WebhookChannel {
    pub fn new(endpoint: WebhookEndpoint) -> anyhow::Result<Self> {
        // reqwest is built without a crypto provider of its own and panics without the
        // process's: ring, as for sqlx and lettre (decision 0032). The binary, or another
        // channel, may have installed it first.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(endpoint.timeout)
            .user_agent(USER_AGENT)
            .build()
            .context("Failed to build the webhook HTTP client")?;
        Ok(Self { endpoint, client })
    }

    pub fn endpoint(&self) -> &WebhookEndpoint {
        &self.endpoint
    }

    async fn send(&self, message: &Message<'_>) -> Outcome {
        let endpoint = self.endpoint.origin();
        let category = &message.content.category;
        if !self.endpoint.accepts(category) {
            return Outcome::Permanent {
                error: format!("the webhook endpoint {endpoint} does not take category {category}"),
            };
        }
        let body = match serde_json::to_vec(&Envelope::of(message)) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Permanent {
                    error: format!("Failed to write the webhook body: {e}"),
                }
            }
        };
        let id = message.delivery_id.to_string();
        let timestamp = message.attempt_at.timestamp();
        let signature = signature_header(&self.endpoint.secrets, &id, timestamp, &body);
        let sent = self
            .client
            .post(self.endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return self.failed(&endpoint, e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let mut excerpt = Vec::new();
        if !status.is_success() {
            // What the endpoint said about the failure; a body that stops arriving is
            // quoted as far as it came.
            while excerpt.len() < BODY_READ_MAX {
                match response.chunk().await {
                    Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let said = quote(&excerpt, message.contact);
        classify(&endpoint, status, &headers, &said, message.attempt_at)
    }

    /// No answer: nothing the endpoint said decides, so it is worth another try.
    fn failed(&self, endpoint: &str, error: reqwest::Error) -> Outcome {
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

impl Channel for WebhookChannel {
    fn deliver<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(message))
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
fn classify(
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
fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
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
fn quote(body: &[u8], contact: &Contact) -> String {
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

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    delivery_id: uuid::Uuid,
    notification_id: NotificationId,
    recipient: Recipient<'a>,
    notification: Notification<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferences_url: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Recipient<'a> {
    id: &'a UserId,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification<'a> {
    category: &'a Category,
    priority: Priority,
    critical: bool,
    title: &'a Title,
    body: &'a Body,
    data: &'a Payload,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_url: Option<&'a Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a Link>,
    sent_at: String,
}

impl<'a> Envelope<'a> {
    fn of(m: &'a Message<'a>) -> Self {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let (content, contact) = (m.content, m.contact);
        Envelope {
            kind: "notification.delivery",
            timestamp: time(m.attempt_at),
            data: Data {
                delivery_id: m.delivery_id,
                notification_id: m.notification_id,
                recipient: Recipient {
                    id: m.recipient,
                    display_name: contact.display_name.as_deref(),
                    email: contact.email.as_deref(),
                    phone: contact.phone.as_deref(),
                    locale: contact.locale.as_deref(),
                    time_zone: contact.time_zone.as_deref(),
                },
                notification: Notification {
                    category: &content.category,
                    priority: content.priority,
                    critical: content.critical,
                    title: &content.title,
                    body: &content.body,
                    data: &content.data,
                    action_url: content.action_url.as_ref(),
                    icon: content.icon.as_ref(),
                    sent_at: time(m.sent_at),
                },
                preferences_url: m.preferences_url,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use figment::providers::{Format, Toml};
    use figment::Figment;
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::delivery::Contact;
    use crate::domain::Content;

    /// The Standard Webhooks spec's own example (and its reference libraries' test vector).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[derive(Debug, Deserialize)]
    struct Hooks {
        webhooks: Vec<WebhookEndpoint>,
    }

    fn hooks(toml: &str) -> Result<Vec<WebhookEndpoint>, String> {
        Figment::from(Toml::string(toml))
            .extract::<Hooks>()
            .map(|h| h.webhooks)
            .map_err(|e| e.to_string())
    }

    fn secret(raw: &str) -> WebhookSecret {
        WebhookSecret::parse(raw).unwrap()
    }

    #[test]
    fn the_signature_matches_the_specs_example() {
        let header = signature_header(
            &[secret(SPEC_SECRET)],
            SPEC_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY.as_bytes(),
        );
        assert_eq!(header, SPEC_SIGNATURE);
    }

    #[test]
    fn during_a_rotation_each_secret_signs_in_the_order_configured() {
        let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let both = signature_header(
            &[secret(&other), secret(SPEC_SECRET)],
            SPEC_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY.as_bytes(),
        );
        let alone = signature_header(
            &[secret(&other)],
            SPEC_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY.as_bytes(),
        );
        assert_eq!(both, format!("{alone} {SPEC_SIGNATURE}"));
        assert_ne!(alone, SPEC_SIGNATURE);
    }

    #[test]
    fn a_secret_is_read_with_or_without_base64_padding() {
        let key = STANDARD.encode([1u8; 25]);
        assert!(key.ends_with('='));
        let padded = signature_header(&[secret(&format!("whsec_{key}"))], "a", 1, b"b");
        let bare = format!("whsec_{}", key.trim_end_matches('='));
        assert_eq!(signature_header(&[secret(&bare)], "a", 1, b"b"), padded);
    }

    #[test]
    fn secrets_that_are_not_standard_webhooks_secrets_are_refused() {
        let err = |raw: &str| WebhookSecret::parse(raw).err();
        let short = format!("whsec_{}", STANDARD.encode([1u8; 16]));
        let long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
        assert_eq!(
            err("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Some(EndpointError::SecretPrefix)
        );
        assert_eq!(err("whsec_not base64!"), Some(EndpointError::SecretBase64));
        assert_eq!(err(&short), Some(EndpointError::SecretLength(16)));
        assert_eq!(err(&long), Some(EndpointError::SecretLength(65)));
        assert_eq!(err(SPEC_SECRET), None);
    }

    #[test]
    fn an_endpoint_reads_from_webhooks_tables_with_defaults() {
        let hooks = hooks(&format!(
            r#"
            [[webhooks]]
            url = "https://hooks.example.com/belfry"
            secrets = ["{SPEC_SECRET}"]

            [[webhooks]]
            url = "http://10.0.0.5:8080/in"
            secrets = ["{SPEC_SECRET}", "{SPEC_SECRET}"]
            categories = ["billing", "stock.low"]
            timeout_ms = 2500
            "#
        ))
        .unwrap();
        let billing = Category::parse("billing").unwrap();
        let comments = Category::parse("comments").unwrap();
        assert_eq!(hooks[0].url().as_str(), "https://hooks.example.com/belfry");
        assert_eq!(hooks[0].timeout(), Duration::from_secs(10));
        assert!(hooks[0].accepts(&comments));
        assert_eq!(hooks[1].secrets.len(), 2);
        assert_eq!(hooks[1].timeout(), Duration::from_millis(2500));
        assert!(hooks[1].accepts(&billing));
        assert!(!hooks[1].accepts(&comments));
    }

    #[test]
    fn a_bad_endpoint_is_refused_saying_what_is_wrong() {
        let table = |fields: &str| hooks(&format!("[[webhooks]]\n{fields}")).unwrap_err();
        let secrets = format!("secrets = [\"{SPEC_SECRET}\"]");
        let cases = [
            (
                format!("url = \"ftp://x.example/\"\n{secrets}"),
                "http or https",
            ),
            (
                format!("url = \"hooks.example.com\"\n{secrets}"),
                "not a usable URL",
            ),
            (
                "url = \"https://x.example/\"\nsecrets = []".to_owned(),
                "at least one",
            ),
            ("url = \"https://x.example/\"".to_owned(), "secrets"),
            (
                "url = \"https://x.example/\"\nsecrets = [\"whsec_AAAA\"]".to_owned(),
                "3 bytes",
            ),
            (
                format!("url = \"https://x.example/\"\n{secrets}\ntimeout_ms = 0"),
                "more than 0",
            ),
            (
                format!("url = \"https://x.example/\"\n{secrets}\nsecret = \"x\""),
                "unknown field",
            ),
            (
                format!("url = \"https://x.example/\"\n{secrets}\ncategories = [\"A B\"]"),
                "category",
            ),
        ];
        for (fields, said) in cases {
            let error = table(&fields);
            assert!(
                error.contains(said),
                "{fields:?} gave {error:?}, not {said:?}"
            );
        }
    }

    #[test]
    fn an_endpoint_prints_neither_its_secrets_nor_its_path() {
        let hook = &hooks(&format!(
            "[[webhooks]]\nurl = \"https://hooks.example.com/services/T0/B0/tok3n\"\n\
             secrets = [\"{SPEC_SECRET}\"]"
        ))
        .unwrap()[0];
        let printed = format!("{hook:?}");
        assert!(printed.contains("https://hooks.example.com"), "{printed}");
        assert!(
            !printed.contains("tok3n") && !printed.contains("MfKQ9r8G"),
            "{printed}"
        );
    }

    const HOST: &str = "https://hooks.example.com";

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Outcome {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let status = StatusCode::from_u16(status).unwrap();
        let said = quote(body.as_bytes(), &Contact::default());
        classify(HOST, status, &map, &said, at("2025-03-01T09:30:00Z"))
    }

    fn transient(error: &str, retry_after: Option<u64>) -> Outcome {
        Outcome::Transient {
            error: error.to_owned(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn answers_count_as_the_layer_needs_them() {
        let accepted = |id: Option<&str>| Outcome::Accepted {
            provider_id: id.map(str::to_owned),
        };
        let answered = |rest: &str| format!("the webhook endpoint {HOST} answered {rest}");
        assert_eq!(
            answer(200, &[("x-request-id", "rx-1")], "ok"),
            accepted(Some("rx-1"))
        );
        assert_eq!(answer(204, &[], ""), accepted(None));
        assert_eq!(
            answer(500, &[], "database\n   is down"),
            transient(
                &answered("500 Internal Server Error: database is down"),
                None
            )
        );
        assert_eq!(
            answer(408, &[], ""),
            transient(&answered("408 Request Timeout"), None)
        );
        assert_eq!(
            answer(429, &[("retry-after", "7")], ""),
            transient(&answered("429 Too Many Requests"), Some(7))
        );
        assert_eq!(
            answer(410, &[], "bye"),
            Outcome::Gone {
                error: answered("410 Gone: bye")
            }
        );
        assert_eq!(
            answer(400, &[("retry-after", "7")], "unknown field"),
            Outcome::Permanent {
                error: answered("400 Bad Request: unknown field")
            }
        );
        let Outcome::Permanent { error } = answer(308, &[("location", "https://new.example/")], "")
        else {
            panic!("a redirect is permanent");
        };
        assert!(error.contains("308 Permanent Redirect") && error.contains("https://new.example/"));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
        let now = at("2025-03-01T09:30:00Z");
        let wait = |v: &str| retry_after(v, now);
        assert_eq!(wait("0"), Some(Duration::ZERO));
        assert_eq!(wait(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            wait("Sat, 01 Mar 2025 09:31:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(wait("Sat, 01 Mar 2025 09:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("99999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("soon"), None);
        assert_eq!(wait("-5"), None);
        assert_eq!(wait(""), None);
    }

    #[test]
    fn an_error_quotes_only_the_start_of_a_long_body() {
        let Outcome::Transient { error, .. } = answer(502, &[], &"x".repeat(5_000)) else {
            panic!("502 is transient");
        };
        let quoted = error.rsplit(": ").next().unwrap();
        assert_eq!(quoted, format!("{}…", "x".repeat(BODY_QUOTE_MAX)));
    }

    #[test]
    fn an_error_does_not_quote_the_persons_contact_details() {
        let contact = Contact {
            display_name: Some("Ada Lovelace".to_owned()),
            email: Some("Ada@Example.com".to_owned()),
            phone: Some("+4915112345678".to_owned()),
            ..Contact::default()
        };
        let body = "rejected ada@example.COM (Ada Lovelace, +4915112345678): no such user";
        assert_eq!(
            quote(body.as_bytes(), &contact),
            "rejected [recipient] ([recipient], [recipient]): no such user"
        );
    }

    #[test]
    fn the_body_carries_the_notification_and_leaves_absent_fields_out() {
        let content = Content {
            category: Category::parse("billing").unwrap(),
            priority: Priority::High,
            critical: true,
            title: Title::parse("Payment failed").unwrap(),
            body: Body::parse("Card declined").unwrap(),
            data: Payload::parse(serde_json::json!({"invoice": 42})).unwrap(),
            action_url: Some(Link::parse("actionUrl", "https://app.example/i/42").unwrap()),
            icon: None,
        };
        let contact = Contact {
            email: Some("ada@example.com".to_owned()),
            ..Contact::default()
        };
        let recipient = UserId::parse("ada").unwrap();
        let delivery_id = uuid::Uuid::now_v7();
        let notification_id = NotificationId::from_uuid(uuid::Uuid::now_v7());
        let message = Message {
            delivery_id,
            notification_id,
            recipient: &recipient,
            content: &content,
            contact: &contact,
            sent_at: at("2025-03-01T09:29:58.120Z"),
            attempt_at: at("2025-03-01T09:30:00Z"),
            preferences_url: None,
            unsubscribe_url: Some("https://belfry.example/u/x"),
        };
        let body = serde_json::to_value(Envelope::of(&message)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "notification.delivery",
                "timestamp": "2025-03-01T09:30:00.000Z",
                "data": {
                    "deliveryId": delivery_id.to_string(),
                    "notificationId": notification_id.to_string(),
                    "recipient": {"id": "ada", "email": "ada@example.com"},
                    "notification": {
                        "category": "billing", "priority": "high", "critical": true,
                        "title": "Payment failed", "body": "Card declined",
                        "data": {"invoice": 42}, "actionUrl": "https://app.example/i/42",
                        "sentAt": "2025-03-01T09:29:58.120Z"
                    }
                }
            })
        );
    }
}
