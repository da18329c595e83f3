//! One webhook endpoint as configured, checked when it is read, and why one is refused.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use sha2::{Digest, Sha256};

use super::WebhookSecret;
use crate::domain::endpoint::EndpointName;
use crate::domain::Category;

/// One webhook endpoint, as configured in a `[[webhooks]]` table:
/// ```toml
/// [[webhooks]]
/// name = "ops-hooks"                                 # optional; see [`WebhookEndpoint::name`]
/// url = "https://hooks.example.com/belfry"
/// secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]  # two during a rotation
/// categories = ["billing", "stock"]                   # optional; empty or absent: all
/// timeout_ms = 10000                                  # optional
/// ```
/// Deserializing checks every field, so an endpoint that exists is usable.
#[derive(Clone, Deserialize)]
#[serde(try_from = "RawEndpoint")]
pub struct WebhookEndpoint {
    name: EndpointName,
    pub(super) url: Url,
    pub(super) secrets: Vec<WebhookSecret>,
    categories: Vec<Category>,
    pub(super) timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    #[serde(default)]
    name: Option<String>,
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
        let name = match raw.name {
            Some(name) => {
                EndpointName::parse(&name).map_err(|e| EndpointError::Name(e.to_string()))?
            }
            None => derived_name(&url),
        };
        Ok(Self {
            name,
            url,
            secrets: raw.secrets,
            categories: raw.categories,
            timeout: Duration::from_millis(raw.timeout_ms),
        })
    }
}

/// A name for an endpoint configured without one: its host and the first eight hex digits of
/// the SHA-256 of its whole URL (stable while the URL is, and naming no path or token).
fn derived_name(url: &Url) -> EndpointName {
    let digest = Sha256::digest(url.as_str().as_bytes());
    let host: String = url
        .host_str()
        .unwrap_or("endpoint")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(EndpointName::MAX - 9)
        .collect();
    let host = host.trim_start_matches(['.', '-']);
    let host = if host.is_empty() { "endpoint" } else { host };
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    EndpointName::parse(&format!("{host}-{hex}")).unwrap_or_else(|_| {
        // Unreachable for the characters kept above; a name the log can hold regardless.
        EndpointName::parse(&format!("endpoint-{hex}")).unwrap_or_else(|_| unreachable!())
    })
}

impl WebhookEndpoint {
    /// How the log, the API and the CLI name this endpoint: `name` from the configuration, or
    /// one derived from the URL. A disabled endpoint is disabled under this name, so renaming
    /// it (or changing the URL of an unnamed one) starts it afresh.
    pub fn name(&self) -> &EndpointName {
        &self.name
    }

    /// The categories it takes; empty: every one.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

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
            .field("name", &self.name)
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
    #[error("{0}")]
    Name(String),
}
