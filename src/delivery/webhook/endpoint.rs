//! One webhook endpoint as configured, checked when it is read, and why one is refused.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use super::WebhookSecret;
use crate::domain::Category;

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
    pub(super) url: Url,
    pub(super) secrets: Vec<WebhookSecret>,
    categories: Vec<Category>,
    pub(super) timeout: Duration,
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
