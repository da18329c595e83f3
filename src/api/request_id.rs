//! A request id for every HTTP request and WebSocket connection, so a support request can be
//! matched to the server's log: taken from `X-Request-Id` when a proxy in front sent a sane
//! one, made here otherwise. It is returned in the same header, carried by every log line of
//! the request (the `request` span's `request_id` field), and set as `extensions.requestId`
//! on every error a client gets.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of one request or connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The longest id accepted from a client or proxy.
    const MAX_LEN: usize = 64;

    /// A new id: 32 hex digits, random.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string().into())
    }

    /// An id sent in `X-Request-Id`: 1 to 64 letters, digits, `-`, `_`, `.` or `:`, so it
    /// cannot break a log line or a header.
    fn from_header(value: &HeaderValue) -> Option<Self> {
        let value = value.to_str().ok()?;
        let sane = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        sane.then(|| Self(value.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Middleware: gives the request its id (a request extension handlers can take), runs it in a
/// `request` span, logs its outcome at debug level, and returns the id in `X-Request-Id`.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(RequestId::from_header)
        .unwrap_or_default();
    request.extensions_mut().insert(id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sane_id_is_taken_from_a_header() {
        let taken = |v: &str| RequestId::from_header(&HeaderValue::from_str(v).unwrap());
        assert_eq!(
            taken("req-42_a.b:c").map(|id| id.to_string()),
            Some("req-42_a.b:c".to_owned())
        );
        assert!(taken("").is_none());
        assert!(taken("has space").is_none());
        assert!(taken("quote\"").is_none());
        assert!(taken(&"x".repeat(65)).is_none());
        assert_eq!(RequestId::new().as_str().len(), 32);
        assert_ne!(RequestId::new(), RequestId::new());
    }
}
