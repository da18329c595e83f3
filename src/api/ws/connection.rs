//! The per-socket state machine shared by both sub-protocols.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_graphql::futures_util::stream::{self, AbortHandle, Abortable, BoxStream, SelectAll};
use async_graphql::futures_util::StreamExt;
use async_graphql::Response;
use axum::extract::ws::{Message, WebSocket};
use serde_json::Value;

use super::ending::{close_with, read_error, too_slow, SLOW_GRACE};
use super::protocol::{self, close, ClientMessage, Protocol};
use crate::api::error::{error_object, ApiError};
use crate::api::request_id::RequestId;
use crate::api::ApiState;
use crate::auth::Principal;

/// Per-socket limits.
#[derive(Debug, Clone, Copy)]
pub struct WsConfig {
    pub init_timeout: Duration,
    pub keepalive: Duration,
    pub max_operations: usize,
    /// A socket that cannot take a message within this long is told it is too slow and
    /// closed.
    pub send_timeout: Duration,
    /// A socket signed in as nobody and running no operation is closed after this long.
    pub anonymous_idle: Duration,
}

/// Who a socket acts for, and until when its token is accepted.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub principal: Principal,
    /// `None` for anonymous callers and API keys, which do not expire.
    pub expires: Option<SystemTime>,
}

impl Credentials {
    pub fn anonymous() -> Self {
        Self {
            principal: Principal::Anonymous,
            expires: None,
        }
    }
}

type OpItem = (String, Option<Response>);

/// What the loop does after one event.
enum Step {
    Continue,
    Close(u16, String),
    /// The peer did not take a message in time: its operations end with `SLOW_SUBSCRIBER`.
    TooSlow,
    /// The peer is gone or closed: stop without a close frame of ours.
    End,
}

struct Conn {
    socket: WebSocket,
    protocol: Protocol,
    credentials: Credentials,
    /// The upgrade request's id, on every error the socket sends.
    request_id: RequestId,
    init_received: bool,
    ops: HashMap<String, AbortHandle>,
    streams: SelectAll<Abortable<BoxStream<'static, OpItem>>>,
    send_timeout: Duration,
}

impl Conn {
    async fn send(&mut self, text: String) -> Step {
        match tokio::time::timeout(self.send_timeout, self.socket.send(Message::text(text))).await {
            Ok(Ok(())) => Step::Continue,
            Ok(Err(_)) => Step::End,
            Err(_) => Step::TooSlow,
        }
    }

    /// Whether the socket is signed in as nobody and runs nothing: it may stay so only
    /// briefly.
    fn idle_anonymous(&self) -> bool {
        self.init_received
            && self.credentials.principal == Principal::Anonymous
            && self.ops.is_empty()
    }
}

/// The instant `at` (a wall-clock time) falls on the runtime's clock.
fn deadline(at: SystemTime) -> tokio::time::Instant {
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    tokio::time::Instant::now() + left
}

/// Runs one socket until the peer leaves, a protocol rule closes it, or the server stops.
pub async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    credentials: Credentials,
    request_id: RequestId,
    state: ApiState,
) {
    state.metrics.sockets(1);
    tracing::debug!("socket opened");
    let config = state.ws;
    let mut conn = Conn {
        socket,
        protocol,
        credentials,
        request_id,
        init_received: false,
        ops: HashMap::new(),
        streams: SelectAll::new(),
        send_timeout: config.send_timeout,
    };
    let init_deadline = tokio::time::sleep(config.init_timeout);
    tokio::pin!(init_deadline);
    let start = tokio::time::Instant::now() + config.keepalive;
    let mut keepalive = tokio::time::interval_at(start, config.keepalive);
    let far = || tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let expiry = tokio::time::sleep_until(conn.credentials.expires.map_or_else(far, deadline));
    tokio::pin!(expiry);
    let idle = tokio::time::sleep(config.anonymous_idle);
    tokio::pin!(idle);
    let mut was_idle = false;
    let step = loop {
        let step = tokio::select! {
            () = state.shutdown.cancelled() => Step::Close(close::GOING_AWAY, "server shutting down".into()),
            () = &mut init_deadline, if !conn.init_received => {
                Step::Close(close::INIT_TIMEOUT, "Connection initialisation timeout".into())
            }
            () = &mut expiry, if conn.credentials.expires.is_some() => {
                Step::Close(close::FORBIDDEN, "Forbidden: the token has expired".into())
            }
            () = &mut idle, if conn.idle_anonymous() => Step::Close(
                close::POLICY,
                "No credentials and no operation: closed as idle".into(),
            ),
            message = conn.socket.recv() => match message {
                Some(Ok(message)) => on_message(&mut conn, &state, message).await,
                Some(Err(error)) => match read_error(error) {
                    Some((code, reason)) => Step::Close(code, reason.into()),
                    None => Step::End,
                },
                None => Step::End,
            },
            Some((id, item)) = conn.streams.next(), if !conn.streams.is_empty() => {
                on_result(&mut conn, id, item).await
            }
            _ = keepalive.tick() => {
                match conn.protocol {
                    Protocol::Legacy if conn.init_received => conn.send(protocol::keep_alive()).await,
                    _ => match conn.socket.send(Message::Ping(Default::default())).await {
                        Ok(()) => Step::Continue,
                        Err(_) => Step::End,
                    },
                }
            }
        };
        if let Some(expires) = conn.credentials.expires {
            // `connection_init` may have brought (new) credentials.
            expiry.as_mut().reset(deadline(expires));
        }
        let idle_now = conn.idle_anonymous();
        if idle_now && !was_idle {
            idle.as_mut()
                .reset(tokio::time::Instant::now() + config.anonymous_idle);
        }
        was_idle = idle_now;
        match step {
            Step::Continue => continue,
            other => break other,
        }
    };
    let ops: Vec<String> = conn
        .ops
        .drain()
        .map(|(id, handle)| {
            handle.abort();
            id
        })
        .collect();
    match &step {
        Step::Close(code, reason) => tracing::debug!(code, reason, "socket closed"),
        Step::TooSlow => tracing::debug!(operations = ops.len(), "socket closed: too slow"),
        Step::Continue | Step::End => tracing::debug!("socket closed by the peer"),
    }
    match step {
        Step::Close(code, reason) => {
            let grace = conn.send_timeout;
            close_with(&mut conn.socket, code, &reason, &[], grace).await
        }
        Step::TooSlow => {
            let errors: Vec<String> = ops
                .iter()
                .map(|id| too_slow(conn.protocol, id, &conn.request_id))
                .collect();
            let reason = "Too slow to take messages: resubscribe with your last cursor";
            // A slow reader may yet catch up with what it was sent: give it time to, so it
            // learns why the socket ends.
            let grace = conn.send_timeout.max(SLOW_GRACE);
            close_with(
                &mut conn.socket,
                close::TRY_AGAIN_LATER,
                reason,
                &errors,
                grace,
            )
            .await;
        }
        Step::Continue | Step::End => {}
    }
    state.metrics.sockets(-1);
}

async fn on_message(conn: &mut Conn, state: &ApiState, message: Message) -> Step {
    let text = match message {
        Message::Text(text) => text,
        Message::Binary(_) => {
            return Step::Close(
                close::INVALID_MESSAGE,
                "Binary messages are not supported".into(),
            )
        }
        Message::Close(_) => return Step::End,
        Message::Ping(_) | Message::Pong(_) => return Step::Continue,
    };
    let message = match protocol::parse(conn.protocol, text.as_str()) {
        Ok(message) => message,
        Err(reason) => return Step::Close(close::INVALID_MESSAGE, reason),
    };
    match message {
        ClientMessage::Init(payload) => {
            if conn.init_received {
                return Step::Close(
                    close::TOO_MANY_INITS,
                    "Too many initialisation requests".into(),
                );
            }
            conn.init_received = true;
            if let Some(credential) = payload.as_ref().and_then(protocol::credential) {
                match state.auth.authenticate_until(credential).await {
                    Ok((principal, expires)) => {
                        conn.credentials = Credentials { principal, expires }
                    }
                    Err(error) => {
                        if conn.protocol == Protocol::Legacy {
                            let _ = conn
                                .send(protocol::connection_error(&error.to_string()))
                                .await;
                        }
                        if error == crate::auth::AuthError::Unavailable {
                            return Step::Close(
                                close::TRY_AGAIN_LATER,
                                "Credentials could not be checked: retry shortly".into(),
                            );
                        }
                        return Step::Close(close::FORBIDDEN, format!("Forbidden: {error}"));
                    }
                }
            }
            conn.send(protocol::ack()).await
        }
        ClientMessage::Ping(payload) => conn.send(protocol::pong(payload)).await,
        ClientMessage::Pong => Step::Continue,
        ClientMessage::Terminate => Step::Close(close::NORMAL, "Normal closure".into()),
        ClientMessage::Complete { id } => {
            if let Some(handle) = conn.ops.remove(&id) {
                handle.abort();
            }
            Step::Continue
        }
        ClientMessage::Subscribe { id, payload } => {
            if !conn.init_received {
                return Step::Close(close::UNAUTHORIZED, "Unauthorized".into());
            }
            if conn.ops.contains_key(&id) {
                return Step::Close(
                    close::DUPLICATE_ID,
                    format!("Subscriber for {id} already exists"),
                );
            }
            if conn.ops.len() >= state.ws.max_operations {
                let error = ApiError::RateLimited {
                    message: format!(
                        "at most {} operations may run on one connection",
                        state.ws.max_operations
                    ),
                    reason: "TOO_MANY_OPERATIONS",
                };
                let errors = serde_json::json!([error_object(&error, &conn.request_id)]);
                return conn.send(protocol::error(conn.protocol, &id, errors)).await;
            }
            subscribe(conn, state, id, payload)
        }
    }
}

fn subscribe(conn: &mut Conn, state: &ApiState, id: String, payload: Value) -> Step {
    let request: async_graphql::Request = match serde_json::from_value(payload) {
        Ok(request) => request,
        Err(e) => {
            return Step::Close(
                close::INVALID_MESSAGE,
                format!("Invalid subscribe payload: {e}"),
            )
        }
    };
    let request = request
        .data(conn.credentials.principal.clone())
        .data(conn.request_id.clone());
    let results = {
        let id = id.clone();
        state
            .schema
            .execute_stream(request)
            .map(move |response| (id.clone(), Some(response)))
    };
    let end = stream::once({
        let id = id.clone();
        async move { (id, None) }
    });
    let (handle, registration) = AbortHandle::new_pair();
    conn.streams
        .push(Abortable::new(results.chain(end).boxed(), registration));
    conn.ops.insert(id, handle);
    Step::Continue
}

async fn on_result(conn: &mut Conn, id: String, item: Option<Response>) -> Step {
    let Some(response) = item else {
        // The operation ran to its end: tell the client unless it already left or failed.
        if conn.ops.remove(&id).is_some() {
            return conn.send(protocol::complete(&id)).await;
        }
        return Step::Continue;
    };
    if !conn.ops.contains_key(&id) {
        return Step::Continue;
    }
    if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
        // No data at all: the operation failed (refused, invalid, or a subscriber dropped for
        // falling behind). graphql-transport-ws sends `error` and no `complete` after it.
        if let Some(handle) = conn.ops.remove(&id) {
            handle.abort();
        }
        let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
        return conn.send(protocol::error(conn.protocol, &id, errors)).await;
    }
    conn.send(protocol::next(conn.protocol, &id, &response))
        .await
}
