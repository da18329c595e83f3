//! HTTP routes of the API: `POST /graphql`, the WebSocket upgrade on `GET /graphql`,
//! GraphiQL at `/graphiql`, the SDL at `/schema.graphql`, and the probes an operator points
//! at the server: `/healthz`, `/readyz` and `/metrics`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::error::{code, error_body, ApiError};
use super::ws::{self, Credentials, Protocol};
use super::ApiState;
use crate::auth::Principal;

/// The API's routes.
pub fn routes(max_body: usize) -> Router<ApiState> {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphiql", get(graphiql))
        .route("/schema.graphql", get(schema_sdl))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
}

fn refuse(status: StatusCode, error: &ApiError) -> Response {
    (status, Json(error_body(error))).into_response()
}

/// Seconds a client is asked to wait before retrying a request the server could not serve.
const RETRY_AFTER_SECS: &str = "1";

/// A credential that could not be checked is the server's failure, not the client's: 503
/// with `Retry-After`, never a 401 that tells a client its key is bad.
fn refuse_credentials(error: &ApiError) -> Response {
    match error {
        ApiError::Unavailable(_) => unavailable(Json(error_body(error)).into_response()),
        _ => refuse(StatusCode::UNAUTHORIZED, error),
    }
}

fn unavailable(mut response: Response) -> Response {
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}

/// The caller named by the `Authorization` header; no header is an anonymous caller.
async fn principal(state: &ApiState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    credentials(state, headers).await.map(|c| c.principal)
}

/// The caller named by the `Authorization` header, and until when its token holds.
async fn credentials(state: &ApiState, headers: &HeaderMap) -> Result<Credentials, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Credentials::anonymous());
    };
    let value = value.to_str().map_err(|_| {
        ApiError::Unauthenticated("the Authorization header is not valid text".to_owned())
    })?;
    let (principal, expires) = state.auth.authenticate_until(value).await?;
    Ok(Credentials { principal, expires })
}

async fn graphql_post(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::bad_input(
                    "body",
                    format!("the request body exceeds {} bytes", state.max_body),
                )
            } else {
                ApiError::bad_input("body", rejection.body_text())
            };
            state.metrics.error("invalid", error.code());
            return refuse(status, &error);
        }
    };
    let principal = match principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(error) => {
            state.metrics.error("unauthenticated", error.code());
            return refuse_credentials(&error);
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = ApiError::bad_input("body", format!("not a GraphQL request: {e}"));
            state.metrics.error("invalid", error.code());
            return refuse(StatusCode::BAD_REQUEST, &error);
        }
    };
    let response = state.schema.execute(request.data(principal)).await;
    let retry = response.errors.iter().any(|e| {
        e.extensions.as_ref().and_then(|x| x.get("code"))
            == Some(&async_graphql::Value::from(code::UNAVAILABLE))
    });
    let response = Json(response).into_response();
    if retry {
        unavailable(response)
    } else {
        response
    }
}

/// A WebSocket upgrade for subscriptions, or GraphiQL for a browser that opens the URL.
async fn graphql_get(
    State(state): State<ApiState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return graphiql().await.into_response();
    };
    // A client offering only sub-protocols we do not speak would get a socket with none
    // chosen, and abort on its own terms: tell it why instead.
    if !offers_ours(&headers) {
        let error = ApiError::BadInput {
            field: None,
            message: format!(
                "no WebSocket sub-protocol this server speaks was offered: use {} (or the legacy {})",
                Protocol::TRANSPORT_WS,
                Protocol::LEGACY
            ),
        };
        return refuse(StatusCode::BAD_REQUEST, &error);
    }
    // Browsers cannot set headers on a WebSocket; other clients may authenticate here
    // instead of in `connection_init`.
    let credentials = match credentials(&state, &headers).await {
        Ok(credentials) => credentials,
        Err(error) => return refuse_credentials(&error),
    };
    let limit = state.max_body;
    upgrade
        .protocols([Protocol::TRANSPORT_WS, Protocol::LEGACY])
        // Small buffers: an idle socket should cost a few KiB, not the 128 KiB defaults.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(limit.max(64 * 1024) * 4)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            let protocol = Protocol::from_header(socket.protocol().and_then(|p| p.to_str().ok()));
            let tracker = state.sockets.clone();
            tracker.track_future(ws::serve(socket, protocol, credentials, state))
        })
}

/// No `Sec-WebSocket-Protocol` (graphql-transport-ws is assumed), or one that lists ours.
fn offers_ours(headers: &HeaderMap) -> bool {
    let mut offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .peekable();
    offered.peek().is_none()
        || offered.any(|p| p == Protocol::TRANSPORT_WS || p == Protocol::LEGACY)
}

async fn graphiql() -> Html<String> {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("Belfry GraphiQL")
            .finish(),
    )
}

async fn schema_sdl(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.schema.sdl(),
    )
}

async fn healthz(State(state): State<ApiState>) -> Json<serde_json::Value> {
    let head = *state.engine.doorbell().borrow();
    Json(serde_json::json!({ "status": "ok", "head": head }))
}

const READY_TIMEOUT: Duration = Duration::from_millis(800);

async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<serde_json::Value>) {
    let unavailable = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "reason": reason })),
        )
    };
    // Answer within a second whatever the database does: a probe that waits for the pool's
    // acquire timeout tells the orchestrator nothing sooner.
    match tokio::time::timeout(READY_TIMEOUT, state.engine.db().ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(error = format!("{error:#}"), "readiness check failed");
            return unavailable("database unreachable");
        }
        Err(_) => {
            tracing::warn!("readiness check failed: the database did not answer in time");
            return unavailable("database unreachable");
        }
    }
    if !state.hub.is_running() {
        return unavailable("live tailer not running");
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({ "status": "ready" })),
    )
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
