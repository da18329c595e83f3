//! Builds and runs everything `belfry serve` needs, with one shutdown path: a cancellation
//! token reaches the HTTP server and every socket (closed with 1001); once in-flight requests
//! have finished, the appender drains its queue and the tailer stops. `run_until_stopped`
//! reports which task ended and why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::api::demo::{DemoCredentials, SharedDemo};
use crate::api::graphql::guard::DocumentLimits;
use crate::api::graphql::{self, ApiContext, Limits};
use crate::api::ws::WsConfig;
use crate::api::ApiState;
use crate::auth::secret::{link_secret, token_verifier, SecretSource};
use crate::auth::{ApiKeys, Authenticator};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::delivery::email::EmailChannel;
use crate::delivery::links::LinkSigner;
use crate::delivery::webhook::WebhookChannel;
use crate::delivery::worker::{Channels, Deliverer, RecipientDirectory, WorkerConfig};
use crate::domain::delivery::RetryPolicy;
use crate::domain::send_input::SendDefaults;
use crate::domain::{Category, Channel, Route, Routing, Unless};
use crate::engine::{Engine, EngineConfig};
use crate::eventlog::{doorbell, Db, DbOptions};
use crate::live::{tailer, LiveHub};
use crate::metrics::Metrics;
use crate::server::{self, ServerLimits};
use crate::timekeeper::Timekeeper;

/// The largest page of notifications one query returns.
pub const MAX_PAGE: usize = 100;

/// Connects to the configured database and applies the event-log migrations.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database_url(), &db_options(settings)).await?;
    db.migrate().await?;
    Ok(db)
}

/// How to connect to the database, as configured.
pub fn db_options(settings: &Settings) -> DbOptions {
    DbOptions {
        max_connections: settings.max_connections,
        acquire_timeout: Duration::from_millis(settings.db_acquire_timeout_ms.max(1)),
        sqlite_synchronous_full: settings.sqlite_synchronous == "full",
    }
}

/// The engine's batching, as configured, recording into `metrics`.
pub fn engine_config(settings: &Settings, metrics: Metrics) -> EngineConfig {
    EngineConfig {
        batch_max: settings.batch_max,
        queue_capacity: settings.queue_capacity,
        metrics,
    }
}

/// The HTTP routes, without a listener, so tests can call them in process.
pub fn router(state: ApiState) -> Router {
    let cors = cors_layer(&state.cors_origins);
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.request_timeout);
    crate::api::http::routes(state.max_body)
        .merge(crate::web::routes())
        .merge(crate::api::unsubscribe::routes())
        .layer(cors)
        .layer(timeout)
        .layer(axum::middleware::from_fn(crate::api::request_id::assign))
        .with_state(state)
}

/// Lets apps on other origins call the API from the browser. Credentials travel in the
/// `Authorization` header, never in cookies, so no origin gains anything a page of its own
/// could not do with the same token.
fn cors_layer(origins: &[HeaderValue]) -> CorsLayer {
    let allow = if origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().cloned())
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            crate::api::request_id::HEADER,
        ])
        .expose_headers([crate::api::request_id::HEADER])
        .max_age(Duration::from_secs(3600))
}

/// A built server: listener bound, engine running, not yet serving.
pub struct Application {
    listener: TcpListener,
    limits: ServerLimits,
    state: ApiState,
    appender: JoinHandle<()>,
    engine_stop: CancellationToken,
    poll: Duration,
    demo: SharedDemo,
    deliverer: Deliverer,
    retention: crate::projections::read::Retention,
}

/// What sends that leave them out get: the default routing and throttles `settings`
/// configure.
pub fn send_defaults(settings: &Settings) -> anyhow::Result<SendDefaults> {
    Ok(SendDefaults {
        routing: routing(settings)?,
        throttles: settings.throttles()?,
        quiet: settings.quiet_hours.policy(),
    })
}

/// The default routing `settings` configure, checked as a send's routes are; errors name the
/// category.
pub fn routing(settings: &Settings) -> anyhow::Result<Routing> {
    let mut table = Vec::new();
    for (category, routes) in &settings.routing {
        let parsed = Category::parse(category)
            .map_err(|e| anyhow::anyhow!("routing.{category}: {e}"))
            .and_then(|c| {
                let routes = routes
                    .iter()
                    .map(|r| {
                        let channel = Channel::parse(&r.channel)?;
                        let unless = r.unless.as_deref().map(Unless::parse).transpose()?;
                        Route::new(channel, r.after_seconds, unless)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("routing.{category}: {e}"))?;
                Ok((c, routes))
            })?;
        table.push(parsed);
    }
    Routing::new(table).map_err(|e| anyhow::anyhow!("routing: {e}"))
}

/// The channels `settings` configure, ready to deliver.
fn delivery_channels(settings: &Settings) -> anyhow::Result<Channels> {
    let email = match &settings.smtp {
        Some(smtp) => {
            smtp.validate()
                .context("The [smtp] settings are not usable")?;
            Some(Arc::new(EmailChannel::new(smtp)?))
        }
        None => None,
    };
    let mut names = std::collections::BTreeSet::new();
    for endpoint in &settings.webhooks {
        anyhow::ensure!(
            names.insert(endpoint.name()),
            "two [[webhooks]] endpoints are named {:?}: give each its own `name`",
            endpoint.name().as_str()
        );
    }
    let webhooks = settings
        .webhooks
        .iter()
        .map(|endpoint| WebhookChannel::new(endpoint.clone()).map(Arc::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Channels { email, webhooks })
}

impl Application {
    /// Opens the database, starts the engine and binds the listener (port 0 picks a free one).
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        Self::build_clocked(settings, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with every rule that reads the time reading it from `clock`:
    /// sends, the API's other changes, the unsubscribe links and the delivery workers (tests
    /// drive it instead of sleeping).
    pub async fn build_clocked(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let (tokens, source) = token_verifier(settings)?;
        let db = open_db(settings).await?;
        let metrics = Metrics::new();
        let engine_stop = CancellationToken::new();
        let (engine, appender) = Engine::start(
            db.clone(),
            engine_config(settings, metrics.clone()),
            engine_stop.clone(),
        )
        .await?;
        let head = *engine.doorbell().borrow();
        let hub = LiveHub::new(head, settings.subscriber_queue, metrics.clone());
        let keys = ApiKeys::cached(db, Duration::from_secs(settings.api_key_cache_secs));
        let demo = match (settings.demo, source) {
            (Some(false), _) | (None, SecretSource::Configured | SecretSource::PublicKey) => None,
            (Some(true), SecretSource::PublicKey) => anyhow::bail!(
                "demo = true needs jwt_secret: with jwt_public_key, Belfry cannot mint the demo user's token"
            ),
            (Some(true), _) | (None, SecretSource::Generated) => Some(Arc::new(
                DemoCredentials::load_or_create(&tokens, &keys, &settings.data_dir).await?,
            )),
        };
        let cors_origins = cors_origins(&settings.cors_origins)?;
        let links = match (&settings.public_url, link_secret(settings)?) {
            (Some(url), Some(secret)) => Some(LinkSigner::new(&secret, url)?),
            (Some(_), None) => {
                tracing::warn!("public_url is set but there is no jwt_secret to sign links with: emails carry no unsubscribe link");
                None
            }
            (None, _) => None,
        };
        let channels = delivery_channels(settings)?;
        let schema = graphql::build(
            ApiContext {
                engine: engine.clone(),
                hub: hub.clone(),
                max_page: MAX_PAGE,
                channels: std::iter::once(crate::domain::Channel::InApp)
                    .chain(channels.configured())
                    .collect(),
                defaults: Arc::new(send_defaults(settings)?),
                webhooks: settings.webhooks.clone().into(),
                clock: clock.clone(),
            },
            Limits {
                depth: settings.query_depth,
                complexity: settings.query_complexity,
                document: DocumentLimits {
                    // Deeper than this, the parser's recursion could exhaust a worker's stack.
                    nesting: settings.query_nesting.clamp(1, 256),
                    tokens: settings.query_tokens.max(1),
                    selections: settings.query_selections.max(1),
                    mutation_fields: settings.mutation_fields.max(1),
                },
            },
            metrics.clone(),
        );
        let state = ApiState {
            engine,
            hub,
            schema,
            auth: Authenticator::new(tokens, keys),
            metrics,
            max_body: settings.max_body_bytes,
            request_timeout: Duration::from_secs(settings.http_request_timeout_secs.max(1)),
            ws: WsConfig {
                init_timeout: Duration::from_millis(settings.ws_init_timeout_ms),
                keepalive: Duration::from_secs(settings.ws_keepalive_secs.max(1)),
                max_operations: settings.max_operations_per_socket.max(1),
                send_timeout: Duration::from_millis(settings.ws_send_timeout_ms.max(1)),
                anonymous_idle: Duration::from_secs(settings.ws_anonymous_idle_secs.max(1)),
            },
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            demo: demo.clone(),
            cors_origins,
            links: links.clone(),
            clock: clock.clone(),
        };
        let deliverer = Deliverer {
            engine: state.engine.clone(),
            metrics: state.metrics.clone(),
            channels,
            directory: Arc::new(RecipientDirectory(state.engine.db().clone())),
            links,
            preferences_url: settings.preferences_url.clone(),
            clock: clock.clone(),
            remote: Arc::new(Notify::new()),
            config: WorkerConfig {
                lease: Duration::from_secs(settings.delivery_lease_secs.max(1)),
                concurrency: settings.delivery_concurrency.max(1),
                retry: RetryPolicy {
                    max_attempts: settings.delivery_max_attempts.max(1),
                    ..RetryPolicy::default()
                },
                quiet: settings.quiet_hours.policy(),
                ..WorkerConfig::default()
            },
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.listen))?;
        let limits = ServerLimits {
            header_timeout: Duration::from_secs(settings.http_header_timeout_secs.max(1)),
            max_connections: server::connection_cap(
                settings.http_max_connections,
                settings.max_connections,
            ),
        };
        Ok(Application {
            listener,
            limits,
            state,
            appender,
            engine_stop,
            poll: Duration::from_millis(settings.live_poll_ms.max(10)),
            demo,
            deliverer,
            retention: settings.retention.policy(),
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
        &self.state.engine
    }

    /// Demo credentials: on the embedded default without a configured secret, or with `demo = true`.
    pub fn demo(&self) -> Option<&DemoCredentials> {
        self.demo.as_deref()
    }

    /// Serves until `stop` fires (or a task fails), then shuts down in order: sockets close
    /// with 1001 and in-flight requests finish, then the appender finishes queued commands,
    /// then the tailer stops.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            limits,
            state,
            appender,
            engine_stop,
            poll,
            demo: _,
            deliverer,
            retention,
        } = self;
        let timekeeper = Timekeeper {
            engine: state.engine.clone(),
            clock: state.clock.clone(),
            remote: Arc::new(Notify::new()),
            idle_check: deliverer.config.idle_check,
            node: deliverer.config.node.clone(),
            retention,
        };
        let shutdown = state.shutdown.clone();
        let sockets = state.sockets.clone();
        let engine = state.engine.clone();
        let tailer_stop = CancellationToken::new();
        // Other nodes' appends reach the tailer and the workers through one LISTEN.
        let tailer_remote = Arc::new(Notify::new());
        if let Db::Postgres(pool) = engine.db() {
            tokio::spawn(doorbell::listen(
                pool.clone(),
                vec![
                    tailer_remote.clone(),
                    deliverer.remote.clone(),
                    timekeeper.remote.clone(),
                ],
                poll,
                tailer_stop.child_token(),
            ));
        }
        let mut tailer = tokio::spawn(tailer::run(
            engine.db().clone(),
            state.hub.clone(),
            engine.doorbell(),
            engine.committed(),
            tailer_remote,
            poll,
            tailer_stop.clone(),
        ));
        let worker_stop = CancellationToken::new();
        let worker = tokio::spawn(deliverer.run(worker_stop.clone()));
        let timekeeper = tokio::spawn(timekeeper.run(worker_stop.clone()));
        let metrics = state.metrics.clone();
        let app = router(state);
        let mut server = tokio::spawn(server::serve(
            listener,
            app,
            limits,
            metrics,
            shutdown.clone(),
        ));
        let mut appender = appender;
        let result = tokio::select! {
            () = stop.cancelled() => {
                tracing::info!("shutting down");
                shutdown.cancel();
                match (&mut server).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(anyhow::Error::from(e).context("HTTP server task panicked")),
                }
            }
            r = &mut server => {
                shutdown.cancel();
                match r {
                    Ok(()) => Err(anyhow::anyhow!("HTTP server stopped unexpectedly")),
                    Err(e) => Err(anyhow::Error::from(e).context("HTTP server task panicked")),
                }
            }
            r = &mut appender => {
                shutdown.cancel();
                let _ = (&mut server).await;
                match r {
                    Ok(()) => Err(anyhow::anyhow!("appender stopped unexpectedly")),
                    Err(e) => Err(anyhow::Error::from(e).context("appender task panicked")),
                }
            }
            r = &mut tailer => {
                shutdown.cancel();
                let _ = (&mut server).await;
                match r {
                    Ok(()) => Err(anyhow::anyhow!("live tailer stopped unexpectedly")),
                    Err(e) => Err(anyhow::Error::from(e).context("live tailer task panicked")),
                }
            }
        };
        // Sockets send their 1001 close frames; give slow peers a moment, not forever.
        sockets.close();
        if tokio::time::timeout(Duration::from_secs(5), sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket connections did not close in time");
        }
        // Attempts in flight finish and record their outcome (each is bounded by its
        // channel's timeout); what is left is claimed again after a restart.
        worker_stop.cancel();
        if tokio::time::timeout(Duration::from_secs(35), worker)
            .await
            .is_err()
        {
            tracing::warn!("delivery attempts did not finish in time; their leases will expire");
        }
        let _ = timekeeper.await;
        engine_stop.cancel();
        if !appender.is_finished() {
            let _ = appender.await;
        }
        tailer_stop.cancel();
        if !tailer.is_finished() {
            let _ = tailer.await;
        }
        engine.db().close().await;
        tracing::info!("stopped");
        result
    }
}

/// The configured CORS origins as header values; `*` (the default) allows any origin.
fn cors_origins(configured: &[String]) -> anyhow::Result<Vec<HeaderValue>> {
    if configured.iter().any(|o| o == "*") {
        return Ok(Vec::new());
    }
    configured
        .iter()
        .map(|origin| {
            let trimmed = origin.trim_end_matches('/');
            anyhow::ensure!(
                trimmed.starts_with("http://") || trimmed.starts_with("https://"),
                "cors_origins: {origin:?} is not an origin like https://app.example.com (or \"*\")"
            );
            HeaderValue::from_str(trimmed)
                .with_context(|| format!("cors_origins: {origin:?} is not a valid origin"))
        })
        .collect()
}
