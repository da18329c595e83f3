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
//! A digest's delivery (the person asked for one message per hour, day or week) has the type
//! `digest.delivery`; its `data` names no notification but the digest, with its
//! notifications newest first, each shaped as above with its `id`:
//! ```json
//! {"type": "digest.delivery", "timestamp": "…",
//!  "data": {"deliveryId": "…", "recipient": {…},
//!           "digest": {"id": "…", "category": "orders", "closesAt": "…", "count": 2,
//!                      "notifications": [{"id": "…", "title": "…", …}, …]},
//!           "preferencesUrl": "…"}}
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
//!
//! # Layout
//! - `endpoint`: a `[[webhooks]]` table, checked;
//! - `secret`: the signing secrets and the `webhook-signature` header;
//! - `payload`: the JSON body;
//! - `classify`: what the endpoint's answer, or its silence, means for the delivery.

mod classify;
mod endpoint;
mod payload;
mod secret;
#[cfg(test)]
mod tests;

use anyhow::Context;
use futures_util::future::BoxFuture;
use reqwest::header::CONTENT_TYPE;

pub use self::classify::MAX_RETRY_AFTER;
pub use self::endpoint::{EndpointError, WebhookEndpoint};
pub use self::secret::{signature_header, WebhookSecret};

use self::classify::{classify, quote};
use self::payload::Envelope;
use super::{Channel, Message, Outcome};

const USER_AGENT: &str = concat!("Belfry/", env!("CARGO_PKG_VERSION"), " (webhooks)");
/// How much of an error response's body is read.
const BODY_READ_MAX: usize = 4_096;

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
}

impl Channel for WebhookChannel {
    fn deliver<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(message))
    }
}
