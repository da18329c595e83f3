//! HTTP routes of the API: `POST /graphql`, the WebSocket upgrade on `GET /graphql` (the
//! playground, [`super::graphiql`], for a browser that opens it), the SDL at `/schema.graphql`,
//! and the probes an operator points at the server: `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use tracing::Instrument;

use super::error::ApiError;
use super::graphiql;
use super::graphql::Exchange;
use super::over_http::{self, MediaType};
use super::request_id::RequestId;
use super::ws::{self, Credentials, Protocol};
use super::ApiState;
use crate::auth::Principal;

/// The API's routes.
pub fn routes(max_body: usize) -> Router<ApiState> {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/schema.graphql", get(schema_sdl))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .merge(graphiql::routes())
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

/// `Accept` naming nothing this server answers with.
fn not_acceptable(state: &ApiState, id: &RequestId) -> Response {
    let error = ApiError::bad_input(
        "Accept",
        "the Accept header names no media type this server answers with: accept application/graphql-response+json or application/json",
    );
    state.metrics.error("invalid", error.code());
    over_http::refuse(MediaType::Json, StatusCode::NOT_ACCEPTABLE, &error, id)
}

async fn graphql_post(
    State(state): State<ApiState>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(media) = MediaType::negotiate(&headers) else {
        return not_acceptable(&state, &id);
    };
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
            return over_http::refuse(media, status, &error, &id);
        }
    };
    if let Err(error) = over_http::check_content_type(&headers) {
        state.metrics.error("invalid", error.code());
        return over_http::refuse(media, StatusCode::UNSUPPORTED_MEDIA_TYPE, &error, &id);
    }
    let request = serde_json::from_slice::<async_graphql::Request>(&body)
        .map_err(|e| ApiError::bad_input("body", format!("not a GraphQL request: {e}")))
        .and_then(|request| has_query(&request).map(|()| request));
    let request = match request {
        Ok(request) => request,
        Err(error) => {
            state.metrics.error("invalid", error.code());
            return over_http::refuse(media, StatusCode::BAD_REQUEST, &error, &id);
        }
    };
    execute(&state, &id, &headers, media, request, Exchange::default()).await
}

/// A request without a document is not a GraphQL request (this server keeps no persisted
/// queries to look one up by).
fn has_query(request: &async_graphql::Request) -> Result<(), ApiError> {
    if request.query.trim().is_empty() {
        return Err(ApiError::bad_input(
            "query",
            "the request has no query: send the GraphQL document in the query parameter",
        ));
    }
    Ok(())
}

/// Authenticates the caller and runs the request, answering as the spec has it for `media`.
async fn execute(
    state: &ApiState,
    id: &RequestId,
    headers: &HeaderMap,
    media: MediaType,
    request: async_graphql::Request,
    exchange: Exchange,
) -> Response {
    let principal = match principal(state, headers).await {
        Ok(principal) => principal,
        Err(error) => {
            state.metrics.error("unauthenticated", error.code());
            return over_http::refuse_credentials(media, &error, id);
        }
    };
    let anonymous = matches!(principal, Principal::Anonymous);
    let exchange = Arc::new(exchange);
    let response = state
        .schema
        .execute(
            request
                .data(principal)
                .data(exchange.clone())
                .data(id.clone()),
        )
        .await;
    if exchange.not_a_query() {
        let mut http = over_http::answer(media, &response, false, anonymous);
        *http.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        http.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return http;
    }
    over_http::answer(media, &response, exchange.executed(), anonymous)
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions, a query in the URL's parameters, or
/// GraphiQL for a browser that opens the URL.
async fn graphql_get(
    State(state): State<ApiState>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => subscribe(state, id, headers, upgrade).await,
        Err(_) if params.is_empty() && wants_html(&headers) => graphiql::page().await,
        Err(_) => query_in_url(&state, &id, &headers, params).await,
    }
}

/// A browser navigating to the URL, rather than a client asking for a result.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// A query sent with GET: `query`, `operationName`, and JSON-encoded `variables` and
/// `extensions` as URL parameters. Mutations are refused with 405.
async fn query_in_url(
    state: &ApiState,
    id: &RequestId,
    headers: &HeaderMap,
    params: Vec<(String, String)>,
) -> Response {
    let Some(media) = MediaType::negotiate(headers) else {
        return not_acceptable(state, id);
    };
    let request = match request_from_params(params) {
        Ok(request) => request,
        Err(error) => {
            state.metrics.error("invalid", error.code());
            return over_http::refuse(media, StatusCode::BAD_REQUEST, &error, id);
        }
    };
    execute(state, id, headers, media, request, Exchange::queries_only()).await
}

/// The request the URL's parameters describe, checked as a POSTed body would be.
fn request_from_params(params: Vec<(String, String)>) -> Result<async_graphql::Request, ApiError> {
    let mut fields = serde_json::Map::new();
    for (name, value) in params {
        let value = match name.as_str() {
            "query" | "operationName" => serde_json::Value::String(value),
            "variables" | "extensions" => serde_json::from_str(&value).map_err(|e| {
                ApiError::bad_input(&name, format!("the {name} parameter is not JSON: {e}"))
            })?,
            _ => continue,
        };
        if fields.insert(name.clone(), value).is_some() {
            return Err(ApiError::bad_input(
                &name,
                format!("the {name} parameter is given more than once"),
            ));
        }
    }
    let request = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| ApiError::bad_input("query", format!("not a GraphQL request: {e}")))?;
    has_query(&request)?;
    Ok(request)
}

/// The WebSocket upgrade for subscriptions.
async fn subscribe(
    state: ApiState,
    id: RequestId,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
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
        return over_http::refuse(MediaType::Json, StatusCode::BAD_REQUEST, &error, &id);
    }
    // Browsers cannot set headers on a WebSocket; other clients may authenticate here
    // instead of in `connection_init`.
    let credentials = match credentials(&state, &headers).await {
        Ok(credentials) => credentials,
        Err(error) => return over_http::refuse_credentials(MediaType::Json, &error, &id),
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
            // The socket outlives the upgrade request: its log lines carry the id in a span
            // of their own.
            let span = tracing::info_span!("socket", request_id = %id, protocol = ?protocol);
            tracker
                .track_future(ws::serve(socket, protocol, credentials, id, state).instrument(span))
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
