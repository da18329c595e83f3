//! The API: the GraphQL schema ([`graphql`], independent of HTTP) and its transports, HTTP
//! ([`http`]) and WebSocket ([`ws`]), which authenticate callers and pass them on.

pub mod demo;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod over_http;
pub mod request_id;
pub mod unsubscribe;
pub mod ws;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::ApiError;

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::live::LiveHub;
use crate::metrics::Metrics;

/// What the HTTP and WebSocket handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Engine,
    pub hub: LiveHub,
    pub schema: graphql::BelfrySchema,
    pub auth: Authenticator,
    pub metrics: Metrics,
    /// The largest request body (and WebSocket message) accepted.
    pub max_body: usize,
    /// A request not answered within this long gets 408.
    pub request_timeout: std::time::Duration,
    pub ws: ws::WsConfig,
    /// Fires when the server shuts down; every socket closes with 1001.
    pub shutdown: CancellationToken,
    /// Open sockets, so shutdown can wait for their close frames.
    pub sockets: TaskTracker,
    /// The demo page's credentials, when the demo is on.
    pub demo: demo::SharedDemo,
    /// Origins allowed to call the API from a browser; empty allows any.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// Signs and checks the one-click unsubscribe links of emails, when `public_url` is set.
    pub links: Option<crate::delivery::links::LinkSigner>,
    /// The time the changes made here are stamped with.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}
