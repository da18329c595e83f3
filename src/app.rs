//! Builds and runs everything `belfry serve` needs, with one shutdown path: a cancellation
//! token reaches the HTTP server and the appender, and `run_until_stopped` reports which
//! task ended and why.

use std::net::SocketAddr;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::engine::Engine;
use crate::eventlog::Db;

/// Connects to the configured database and applies the event-log migrations.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database_url(), &settings.db_options()).await?;
    db.migrate().await?;
    Ok(db)
}

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
}

/// The HTTP routes, without a listener, so tests can call them in process.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    let head = *state.engine.doorbell().borrow();
    Json(serde_json::json!({ "status": "ok", "head": head }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.engine.db().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({ "status": "unavailable", "reason": "database unreachable" }),
                ),
            )
        }
    }
}

/// A built server: listener bound, engine running, not yet serving.
pub struct Application {
    listener: TcpListener,
    engine: Engine,
    appender: JoinHandle<()>,
    cancel: CancellationToken,
}

impl Application {
    /// Opens the database, starts the engine and binds the listener (port 0 picks a free one).
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let db = open_db(settings).await?;
        let cancel = CancellationToken::new();
        let (engine, appender) =
            Engine::start(db, settings.engine_config(), cancel.clone()).await?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.listen))?;
        Ok(Application {
            listener,
            engine,
            appender,
            cancel,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("Failed to read the listening address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` fires (or a task fails), then stops everything: the server
    /// finishes in-flight requests, the appender finishes queued commands.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            engine,
            appender,
            cancel,
        } = self;
        let app = router(AppState {
            engine: engine.clone(),
        });
        let stop = cancel.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        let forward = cancel.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            forward.cancel();
        });
        let mut server = server;
        let mut appender = appender;
        let result = tokio::select! {
            r = &mut server => {
                cancel.cancel();
                let _ = appender.await;
                match r {
                    Ok(Ok(())) => { tracing::info!("HTTP server stopped"); Ok(()) }
                    Ok(Err(e)) => Err(anyhow::Error::from(e).context("HTTP server failed")),
                    Err(e) => Err(anyhow::Error::from(e).context("HTTP server task panicked")),
                }
            }
            r = &mut appender => {
                cancel.cancel();
                let _ = server.await;
                match r {
                    Ok(()) => { tracing::info!("appender stopped"); Ok(()) }
                    Err(e) => Err(anyhow::Error::from(e).context("appender task panicked")),
                }
            }
        };
        engine.db().close().await;
        result
    }
}
