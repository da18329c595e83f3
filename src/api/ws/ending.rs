//! How a socket ends: the close code for a frame that could not be read, the error each
//! operation of a too-slow socket gets, and a close that lets the peer read what was queued
//! before it.

use std::time::Duration;

use async_graphql::futures_util::SinkExt;
use axum::extract::ws::{CloseFrame, Message, WebSocket};

use super::protocol::{self, close, Protocol};
use crate::api::error::{error_object, ApiError};
use crate::api::request_id::RequestId;

/// Why the peer's frame could not be read, as a close code; `None` when the peer is gone.
pub(super) fn read_error(error: axum::Error) -> Option<(u16, &'static str)> {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some((close::TOO_BIG, "Message too big")),
        tungstenite::Error::Utf8(_) => Some((close::INVALID_PAYLOAD, "Text frame is not UTF-8")),
        tungstenite::Error::Protocol(_) => {
            Some((close::PROTOCOL_ERROR, "WebSocket protocol error"))
        }
        _ => None,
    }
}

/// The error that ends operation `id` of a socket too slow to take its messages.
pub(super) fn too_slow(protocol: Protocol, id: &str, request: &RequestId) -> String {
    let error = ApiError::RateLimited {
        message: "this connection did not take its messages in time and was closed; \
                  subscribe again with `after` set to the last cursor you received"
            .to_owned(),
        reason: "SLOW_SUBSCRIBER",
    };
    protocol::error(
        protocol,
        id,
        serde_json::json!([error_object(&error, request)]),
    )
}

/// Queues `messages` and a close frame behind whatever the socket still holds, flushes them
/// within `grace`, then reads on briefly so the peer's close (or what is left of
/// a refused frame) is taken before the socket is dropped: closing with unread bytes would
/// reset the connection and lose the close frame on the way.
pub(super) async fn close_with(
    socket: &mut WebSocket,
    code: u16,
    reason: &str,
    messages: &[String],
    grace: Duration,
) {
    let frame = CloseFrame {
        code,
        reason: close::reason(reason).into(),
    };
    let queued = async {
        for message in messages {
            socket.feed(Message::text(message.clone())).await?;
        }
        socket.feed(Message::Close(Some(frame))).await?;
        socket.flush().await
    };
    if !matches!(tokio::time::timeout(grace, queued).await, Ok(Ok(()))) {
        return;
    }
    let linger = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
}

/// How long a closing socket waits for the peer's close frame.
const LINGER: Duration = Duration::from_secs(1);
/// How long a socket closed for being too slow has to take its last messages.
pub(super) const SLOW_GRACE: Duration = Duration::from_secs(10);
