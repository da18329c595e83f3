//! One append transaction: holds the log lock, hands out gap-free positions and stream
//! versions, and writes all of its events in multi-row inserts at the end.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{rows, Metadata, NewEvent, RecordedEvent, WriteTx};
use crate::domain::event::Event;

/// Events appended in one transaction. Positions continue from the head read under the lock,
/// so no other writer can take them; nothing is visible to readers before [`Batch::commit`].
pub struct Batch {
    tx: WriteTx,
    head: i64,
    /// Each event with its domain event, so the projections need not decode what the
    /// appender has just encoded.
    pending: Vec<(RecordedEvent, Event)>,
    /// How many of `pending` have been handed out by [`Batch::unprojected`].
    projected: usize,
    /// Stream versions as of `pending[..indexed]`, and of streams read from the log. Built
    /// only when a version is asked for, so a send that starts 100,000 new streams and
    /// looks none of them up hashes none of their ids.
    versions: HashMap<String, i64>,
    indexed: usize,
    recorded_at: DateTime<Utc>,
}

impl Batch {
    /// Starts a batch on a transaction that already holds the log lock.
    pub async fn open(mut tx: WriteTx) -> anyhow::Result<Self> {
        let head = rows::head_in(&mut tx).await?;
        Ok(Self {
            tx,
            head,
            pending: Vec::new(),
            projected: 0,
            versions: HashMap::new(),
            indexed: 0,
            // Microseconds: what Postgres keeps, so both backends store the same instant.
            recorded_at: crate::clock::now(),
        })
    }

    /// The transaction, for reading decision state and applying projections.
    pub fn tx(&mut self) -> &mut WriteTx {
        &mut self.tx
    }

    /// The position of the last event in this batch (or of the log before it).
    pub fn head(&self) -> i64 {
        self.head
    }

    /// The current version of a stream, counting events appended earlier in this batch.
    pub async fn stream_version(&mut self, stream_id: &str) -> anyhow::Result<i64> {
        for (e, _) in &self.pending[self.indexed..] {
            // In position order, so the last event of a stream leaves its version.
            self.versions.insert(e.stream_id.clone(), e.stream_version);
        }
        self.indexed = self.pending.len();
        if let Some(v) = self.versions.get(stream_id) {
            return Ok(*v);
        }
        let v = rows::stream_version_in(&mut self.tx, stream_id).await?;
        self.versions.insert(stream_id.to_owned(), v);
        Ok(v)
    }

    /// Every event of one stream decoded, those pushed earlier in this batch included: the
    /// state of a small stream that no projection keeps (a webhook endpoint's).
    pub async fn stream_events(&mut self, stream_id: &str) -> anyhow::Result<Vec<Event>> {
        let mut events = Vec::new();
        for recorded in rows::read_stream_in(&mut self.tx, stream_id).await? {
            events.extend(recorded.decode()?);
        }
        events.extend(
            self.pending
                .iter()
                .filter(|(r, _)| r.stream_id == stream_id)
                .map(|(_, e)| e.clone()),
        );
        Ok(events)
    }

    /// Makes room for `additional` more events, so a large send grows its buffers once instead
    /// of copying them at every doubling.
    pub fn reserve(&mut self, additional: usize) {
        self.pending.reserve(additional);
    }

    /// Appends one domain event to `stream_id` and returns its position. `known_version`:
    /// the caller started the stream itself (its id was just generated), so it knows the
    /// event's version and none is looked up; the unique (stream, version) key still refuses
    /// a clash.
    pub async fn push_event(
        &mut self,
        stream_id: String,
        event: Event,
        metadata: Metadata,
        known_version: Option<i64>,
    ) -> anyhow::Result<i64> {
        let version = match known_version {
            Some(version) => version,
            None => self.stream_version(&stream_id).await? + 1,
        };
        self.head += 1;
        let recorded = self.record(stream_id, version, NewEvent::from_domain(&event, metadata));
        self.pending.push((recorded, event));
        Ok(self.head)
    }

    fn record(&self, stream_id: String, stream_version: i64, e: NewEvent) -> RecordedEvent {
        RecordedEvent {
            position: self.head,
            stream_id,
            stream_version,
            event_id: e.event_id,
            event_type: e.event_type,
            event_version: e.event_version,
            data: e.data,
            metadata: e.metadata,
            recorded_at: self.recorded_at,
        }
    }

    /// The transaction and the events pushed since the last call, with their domain events,
    /// for the caller to fold into the projections in one go.
    pub fn unprojected(&mut self) -> (&mut WriteTx, &[(RecordedEvent, Event)]) {
        let from = self.projected;
        self.projected = self.pending.len();
        (&mut self.tx, &self.pending[from..])
    }

    /// How many events are waiting to be written.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes the pending events and commits: one insert per 1,000 events, one commit.
    /// Returns the new head and the events as written.
    pub async fn commit(mut self) -> anyhow::Result<(i64, Vec<RecordedEvent>)> {
        let recorded: Vec<RecordedEvent> = self.pending.into_iter().map(|(r, _)| r).collect();
        rows::insert_in(&mut self.tx, &recorded).await?;
        self.tx.commit().await?;
        Ok((self.head, recorded))
    }
}
