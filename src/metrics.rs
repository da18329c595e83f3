//! Process metrics in Prometheus text format: GraphQL requests and errors by operation, append
//! batch sizes and latency, the log head, tailer lag, connected and dropped subscribers, and
//! deliveries by channel and outcome, their attempt latency and the due backlog.
//!
//! One [`Metrics`] is created per running server and handed to every part that records; it is
//! a cheap handle (an `Arc`), never a global.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    /// `query.notifications`, `mutation.sendNotification`, ... (the first root field, so the
    /// label set is bounded by the schema, not by what clients send).
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    operation: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    /// `succeeded`, `retrying`, `failed` or `skipped`.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

struct Inner {
    registry: Registry,
    requests: Family<OperationLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    batch_commands: Histogram,
    batch_events: Histogram,
    batch_seconds: Histogram,
    head: Gauge<i64, AtomicI64>,
    tailer_position: Gauge<i64, AtomicI64>,
    subscribers: Gauge<i64, AtomicI64>,
    sockets: Gauge<i64, AtomicI64>,
    dropped: Counter,
    http_connections: Gauge<i64, AtomicI64>,
    http_refused: Counter,
    http_evicted: Counter,
    deliveries: Family<DeliveryLabels, Counter>,
    delivery_seconds: Family<ChannelLabels, Histogram>,
    deliveries_due: Gauge<i64, AtomicI64>,
    oldest_due_seconds: Gauge<i64, AtomicI64>,
}

/// A handle to this process's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("belfry");
        let requests = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL operations executed, by operation",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "graphql_errors",
            "GraphQL errors returned, by operation and code",
            errors.clone(),
        );
        let sizes = || Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]);
        let batch_commands = sizes();
        registry.register(
            "append_batch_commands",
            "Commands per append transaction",
            batch_commands.clone(),
        );
        let batch_events = sizes();
        registry.register(
            "append_batch_events",
            "Events appended per transaction",
            batch_events.clone(),
        );
        let batch_seconds = Histogram::new([
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
        ]);
        registry.register(
            "append_batch_seconds",
            "Time from taking the log lock to commit, per batch",
            batch_seconds.clone(),
        );
        let head = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "log_head",
            "Newest log position this process has seen",
            head.clone(),
        );
        let tailer_position = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "tailer_position",
            "Log position the live tailer has delivered up to",
            tailer_position.clone(),
        );
        let subscribers = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "live_subscribers",
            "Active live subscriptions",
            subscribers.clone(),
        );
        let sockets = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "websocket_connections",
            "Open GraphQL WebSocket connections",
            sockets.clone(),
        );
        let dropped = Counter::default();
        registry.register(
            "live_dropped_slow_subscribers",
            "Subscriptions closed because they fell too far behind",
            dropped.clone(),
        );
        let http_connections = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "http_connections",
            "Open HTTP connections, WebSockets included",
            http_connections.clone(),
        );
        let http_refused = Counter::default();
        registry.register(
            "http_connections_refused",
            "Connections refused because http_max_connections were open",
            http_refused.clone(),
        );
        let http_evicted = Counter::default();
        registry.register(
            "http_connections_evicted",
            "Idle connections closed to make room for a new one at http_max_connections",
            http_evicted.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery steps settled, by channel and outcome (succeeded, retrying, failed, skipped)",
            deliveries.clone(),
        );
        let delivery_seconds = Family::<ChannelLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
        });
        registry.register(
            "delivery_attempt_seconds",
            "Time one delivery attempt took on its channel",
            delivery_seconds.clone(),
        );
        let deliveries_due = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "deliveries_due",
            "Deliveries due and not yet settled, as the workers last looked",
            deliveries_due.clone(),
        );
        let oldest_due_seconds = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "deliveries_oldest_due_seconds",
            "How long the oldest due delivery has waited, as the workers last looked",
            oldest_due_seconds.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            requests,
            errors,
            batch_commands,
            batch_events,
            batch_seconds,
            head,
            tailer_position,
            subscribers,
            sockets,
            dropped,
            http_connections,
            http_refused,
            http_evicted,
            deliveries,
            delivery_seconds,
            deliveries_due,
            oldest_due_seconds,
        }))
    }

    /// The Prometheus text exposition of every metric. Tailer lag is derived at scrape time.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        let lag = (self.0.head.get() - self.0.tailer_position.get()).max(0);
        let lag_block = format!(
            "# HELP belfry_tailer_lag Log positions committed but not yet delivered live.\n\
             # TYPE belfry_tailer_lag gauge\nbelfry_tailer_lag {lag}\n"
        );
        match out.rfind("# EOF") {
            Some(at) => out.insert_str(at, &lag_block),
            None => out.push_str(&lag_block),
        }
        out
    }

    pub fn request(&self, operation: &str) {
        self.0
            .requests
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    pub fn error(&self, operation: &str, code: &str) {
        self.0
            .errors
            .get_or_create(&ErrorLabels {
                operation: operation.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }

    pub fn batch(&self, commands: usize, events: usize, seconds: f64) {
        self.0.batch_commands.observe(commands as f64);
        self.0.batch_events.observe(events as f64);
        self.0.batch_seconds.observe(seconds);
    }

    pub fn head(&self, head: i64) {
        self.0.head.set(self.0.head.get().max(head));
    }

    pub fn tailer_position(&self, position: i64) {
        self.0.tailer_position.set(position);
        self.head(position);
    }

    pub fn subscribers(&self, delta: i64) {
        self.0.subscribers.inc_by(delta);
    }

    pub fn sockets(&self, delta: i64) {
        self.0.sockets.inc_by(delta);
    }

    pub fn dropped_subscriber(&self) {
        self.0.dropped.inc();
    }

    pub fn http_connections(&self, delta: i64) {
        self.0.http_connections.inc_by(delta);
    }

    pub fn http_connection_refused(&self) {
        self.0.http_refused.inc();
    }

    pub fn http_connection_evicted(&self) {
        self.0.http_evicted.inc();
    }

    /// One delivery step settled on `channel` with `outcome`.
    pub fn delivery(&self, channel: &str, outcome: &str) {
        self.0
            .deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// One attempt on `channel` took `seconds`.
    pub fn delivery_attempt(&self, channel: &str, seconds: f64) {
        self.0
            .delivery_seconds
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .observe(seconds);
    }

    /// The due backlog: how many are due, and how long the oldest has waited.
    pub fn delivery_backlog(&self, due: i64, oldest_seconds: i64) {
        self.0.deliveries_due.set(due);
        self.0.oldest_due_seconds.set(oldest_seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_and_the_lag() {
        let m = Metrics::new();
        m.request("query.counts");
        m.error("query.counts", "UNAUTHENTICATED");
        m.batch(3, 5, 0.002);
        m.head(10);
        m.tailer_position(7);
        let text = m.render();
        assert!(text.contains("belfry_graphql_requests_total{operation=\"query.counts\"} 1"));
        assert!(text.contains(
            "belfry_graphql_errors_total{operation=\"query.counts\",code=\"UNAUTHENTICATED\"} 1"
        ));
        assert!(text.contains("belfry_append_batch_commands_count 1"));
        assert!(text.contains("belfry_log_head 10"));
        assert!(text.contains("belfry_tailer_lag 3"));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
