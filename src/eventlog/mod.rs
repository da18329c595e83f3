//! The append-only event log: its types, reading, and the batch writer the appender uses.
//!
//! Positions are global, gap-free and strictly increasing in commit order: every write runs in
//! a [`db::WriteTx`] that holds the log lock and assigns positions from the current head.

pub mod batch;
pub(crate) mod copy;
pub mod db;
pub mod doorbell;
mod postgres_tls;
mod rows;

/// Row-level SQL inside a write transaction, for the appender, projections and replay.
pub mod rows_in {
    pub use super::rows::{
        head_in, insert_in, insert_values_in, read_after_in, stream_version_in, ARRAY_ROWS,
    };
}

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::domain::event::{DecodeError, Event};
pub use db::{Backend, Db, DbOptions, WriteTx};
pub use rows::RowPage;

/// Who and what caused an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The person or service that asked, e.g. `user:ann` or `service:cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Fingerprint of the request an idempotency key was first used with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
}

/// An event's data: the JSON text as the appender serialized it or the database returned it.
///
/// Kept as text rather than a `serde_json::Value` tree: the appender writes it as it was
/// serialized from the domain event, readers decode the domain event straight from it, and
/// a copy is one allocation (decision 0022). Two values are equal when they hold the same
/// JSON, whatever the spacing or key order a backend returns it with.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventData(Box<RawValue>);

impl EventData {
    /// Serializes `value` (a JSON object for every event the engine writes).
    pub fn new(value: &impl Serialize) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The data as a JSON tree, for callers that look inside it.
    pub fn to_value(&self) -> serde_json::Value {
        // The text was serialized by serde_json or returned by the database as JSON.
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl From<Box<RawValue>> for EventData {
    fn from(raw: Box<RawValue>) -> Self {
        Self(raw)
    }
}

impl From<serde_json::Value> for EventData {
    fn from(value: serde_json::Value) -> Self {
        // A `Value` always serializes; `null` stands in for the impossible failure.
        Self::new(&value).unwrap_or_else(|_| Self(RawValue::NULL.to_owned()))
    }
}

impl PartialEq for EventData {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_value() == other.to_value()
    }
}

impl std::fmt::Debug for EventData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: i32,
    pub data: EventData,
    pub metadata: Metadata,
}

impl NewEvent {
    /// Wraps a domain event with a fresh time-ordered id.
    pub fn from_domain(event: &Event, metadata: Metadata) -> Self {
        Self {
            event_id: crate::clock::ordered_id(),
            event_type: event.type_name().to_owned(),
            event_version: Event::VERSION,
            data: event.to_raw_json().into(),
            metadata,
        }
    }
}

/// An event as stored, with its place in the log. Also the NDJSON line of `belfry export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: i32,
    pub data: EventData,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The domain event, or `None` for event types this engine does not know.
    pub fn decode(&self) -> Result<Option<Event>, DecodeError> {
        Event::decode(&self.event_type, self.event_version, self.data.as_str())
    }
}

/// Read access to the log.
#[derive(Clone, Debug)]
pub struct EventLog {
    db: Db,
}

impl EventLog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The position of the last committed event (0 for an empty log).
    pub async fn head(&self) -> anyhow::Result<i64> {
        rows::head(&self.db).await
    }

    /// Up to `limit` events after `after`, in position order.
    pub async fn read_after(&self, after: i64, limit: i64) -> anyhow::Result<Vec<RecordedEvent>> {
        rows::read_after(&self.db, after, limit).await
    }

    /// Like [`EventLog::read_after`], the rows not yet decoded.
    pub async fn read_rows_after(&self, after: i64, limit: i64) -> anyhow::Result<RowPage> {
        rows::read_rows_after(&self.db, after, limit).await
    }

    /// Every event of one stream, in version order.
    pub async fn read_stream(&self, stream_id: &str) -> anyhow::Result<Vec<RecordedEvent>> {
        rows::read_stream(&self.db, stream_id).await
    }

    /// The first event of one stream, without reading the rest.
    pub async fn read_stream_first(
        &self,
        stream_id: &str,
    ) -> anyhow::Result<Option<RecordedEvent>> {
        rows::read_stream_first(&self.db, stream_id).await
    }
}
