//! The append-only event log: its types, reading, and the batch writer the appender uses.
//!
//! Positions are global, gap-free and strictly increasing in commit order: every write runs in
//! a [`db::WriteTx`] that holds the log lock and assigns positions from the current head.

pub mod batch;
pub mod db;
pub mod doorbell;
mod rows;

/// Row-level SQL inside a write transaction, for the appender, projections and replay.
pub mod rows_in {
    pub use super::rows::{
        existing_ids_in, head_in, insert_in, insert_values_in, read_after_in, stream_version_in,
        ARRAY_ROWS,
    };
}

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::event::{DecodeError, Event};
pub use db::{Backend, Db, DbOptions, WriteTx};

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

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: i32,
    pub data: serde_json::Value,
    pub metadata: Metadata,
}

impl NewEvent {
    /// Wraps a domain event with a fresh time-ordered id.
    pub fn from_domain(event: &Event, metadata: Metadata) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event.type_name().to_owned(),
            event_version: Event::VERSION,
            data: event.to_json(),
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
    pub data: serde_json::Value,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The domain event, or `None` for event types this engine does not know.
    pub fn decode(&self) -> Result<Option<Event>, DecodeError> {
        Event::decode(&self.event_type, self.event_version, &self.data)
    }
}

/// The version a stream must be at for an append to go ahead (EventStoreDB's cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version (versions start at 1).
    Exact(i64),
}

impl ExpectedVersion {
    pub fn admits(&self, current: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::StreamExists => current > 0,
            ExpectedVersion::Exact(v) => current == *v,
        }
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

    /// Every event of one stream, in version order.
    pub async fn read_stream(&self, stream_id: &str) -> anyhow::Result<Vec<RecordedEvent>> {
        rows::read_stream(&self.db, stream_id).await
    }
}
