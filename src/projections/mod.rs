//! Inline projections: the read model (inbox, unread counters, preferences, idempotency keys,
//! deliveries, quiet hours, scheduled sends, digests).
//!
//! Each projection is a pure function of the log: [`apply`] folds events into its table, the
//! same code inline (inside the append transaction) and in replay (into scratch tables). The
//! tables are also the decision state for commands, which gives read-your-writes.

mod counters;
pub mod deliveries;
mod digests;
mod idempotency;
pub mod inbox;
mod preferences;
mod quiet_hours;
pub mod read;
pub mod replay;
pub mod scheduled_sends;
pub mod state;
mod status;

use crate::domain::event::Event;
use crate::eventlog::{Backend, RecordedEvent, WriteTx};
pub use status::{check, ensure, record_position, ProjectionState, StatusProblem};

/// A projection: a name, a version and one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Projection {
    Inbox,
    UnreadCounters,
    Preferences,
    IdempotencyKeys,
    Deliveries,
    QuietHours,
    ScheduledSends,
    DigestSettings,
    Digests,
}

impl Projection {
    pub const ALL: [Projection; 9] = [
        Projection::Inbox,
        Projection::UnreadCounters,
        Projection::Preferences,
        Projection::IdempotencyKeys,
        Projection::Deliveries,
        Projection::QuietHours,
        Projection::ScheduledSends,
        Projection::DigestSettings,
        Projection::Digests,
    ];

    /// The name, which is also the live table's name.
    pub fn name(self) -> &'static str {
        match self {
            Projection::Inbox => "inbox",
            Projection::UnreadCounters => "unread_counters",
            Projection::Preferences => "preferences",
            Projection::IdempotencyKeys => "idempotency_keys",
            Projection::Deliveries => "deliveries",
            Projection::QuietHours => "quiet_hours",
            Projection::ScheduledSends => "scheduled_sends",
            Projection::DigestSettings => "digest_settings",
            Projection::Digests => "digests",
        }
    }

    /// Bumped whenever the table or the logic changes; a stored table of another version is
    /// rebuilt by `belfry replay` before `serve` will start.
    pub fn version(self) -> i32 {
        match self {
            Projection::Inbox => 4,
            Projection::UnreadCounters => 1,
            Projection::Preferences => 1,
            Projection::IdempotencyKeys => 2,
            Projection::Deliveries => 3,
            Projection::QuietHours => 1,
            Projection::ScheduledSends => 1,
            Projection::DigestSettings => 1,
            Projection::Digests => 1,
        }
    }

    pub fn parse(name: &str) -> Option<Projection> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn ddl(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (Projection::Inbox, Backend::Postgres) => {
                include_str!("../../projections/inbox/postgres.sql")
            }
            (Projection::Inbox, Backend::Sqlite) => {
                include_str!("../../projections/inbox/sqlite.sql")
            }
            (Projection::UnreadCounters, Backend::Postgres) => {
                include_str!("../../projections/unread_counters/postgres.sql")
            }
            (Projection::UnreadCounters, Backend::Sqlite) => {
                include_str!("../../projections/unread_counters/sqlite.sql")
            }
            (Projection::Preferences, Backend::Postgres) => {
                include_str!("../../projections/preferences/postgres.sql")
            }
            (Projection::Preferences, Backend::Sqlite) => {
                include_str!("../../projections/preferences/sqlite.sql")
            }
            (Projection::IdempotencyKeys, Backend::Postgres) => {
                include_str!("../../projections/idempotency_keys/postgres.sql")
            }
            (Projection::IdempotencyKeys, Backend::Sqlite) => {
                include_str!("../../projections/idempotency_keys/sqlite.sql")
            }
            (Projection::Deliveries, Backend::Postgres) => {
                include_str!("../../projections/deliveries/postgres.sql")
            }
            (Projection::Deliveries, Backend::Sqlite) => {
                include_str!("../../projections/deliveries/sqlite.sql")
            }
            (Projection::QuietHours, Backend::Postgres) => {
                include_str!("../../projections/quiet_hours/postgres.sql")
            }
            (Projection::QuietHours, Backend::Sqlite) => {
                include_str!("../../projections/quiet_hours/sqlite.sql")
            }
            (Projection::ScheduledSends, Backend::Postgres) => {
                include_str!("../../projections/scheduled_sends/postgres.sql")
            }
            (Projection::ScheduledSends, Backend::Sqlite) => {
                include_str!("../../projections/scheduled_sends/sqlite.sql")
            }
            (Projection::DigestSettings, Backend::Postgres) => {
                include_str!("../../projections/digest_settings/postgres.sql")
            }
            (Projection::DigestSettings, Backend::Sqlite) => {
                include_str!("../../projections/digest_settings/sqlite.sql")
            }
            (Projection::Digests, Backend::Postgres) => {
                include_str!("../../projections/digests/postgres.sql")
            }
            (Projection::Digests, Backend::Sqlite) => {
                include_str!("../../projections/digests/sqlite.sql")
            }
        }
    }

    /// `CREATE TABLE` (and indexes) for this projection under the table name `table`.
    pub fn create_sql(self, backend: Backend, table: &str) -> String {
        let tag = format!("{:x}", uuid::Uuid::now_v7().as_u128() & 0xffff_ffff_ffff);
        self.ddl(backend)
            .replace("{table}", table)
            .replace("{gen}", &tag)
    }

    /// [`Self::create_sql`] cut in two: the `CREATE TABLE` (with its primary key, which the
    /// fold's updates look rows up by) and the secondary indexes. Replay creates the indexes
    /// after the bulk of the rows, which sorts once instead of updating them row by row.
    pub fn create_sql_split(self, backend: Backend, table: &str) -> (String, String) {
        let (mut tables, mut indexes) = (String::new(), String::new());
        for statement in self.create_sql(backend, table).split_inclusive(';') {
            let trimmed = statement.trim_start();
            if trimmed.is_empty() {
                continue;
            }
            if trimmed.starts_with("CREATE INDEX") {
                indexes.push_str(trimmed);
                indexes.push('\n');
            } else {
                tables.push_str(trimmed);
                tables.push('\n');
            }
        }
        (tables, indexes)
    }

    /// An SQL expression naming a row of this projection, for reports of differing rows.
    fn row_key_sql(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (Projection::Inbox, Backend::Postgres) => "notification_id::text",
            (Projection::Inbox, Backend::Sqlite) => "lower(hex(notification_id))",
            (Projection::UnreadCounters, _) => "recipient || '/' || category",
            (Projection::Preferences, _) => "user_id || '/' || category || '/' || channel",
            (Projection::IdempotencyKeys, Backend::Postgres) => {
                "idempotency_key || '/' || notification_id::text"
            }
            (Projection::IdempotencyKeys, Backend::Sqlite) => {
                "idempotency_key || '/' || lower(hex(notification_id))"
            }
            (Projection::Deliveries, Backend::Postgres) => "delivery_id::text",
            (Projection::Deliveries, Backend::Sqlite) => "lower(hex(delivery_id))",
            (Projection::QuietHours, _) => "user_id",
            (Projection::ScheduledSends, Backend::Postgres) => "schedule_id::text",
            (Projection::ScheduledSends, Backend::Sqlite) => "lower(hex(schedule_id))",
            (Projection::DigestSettings, _) => "user_id || '/' || category || '/' || channel",
            (Projection::Digests, Backend::Postgres) => {
                "digest_id::text || '/' || notification_id::text"
            }
            (Projection::Digests, Backend::Sqlite) => {
                "lower(hex(digest_id)) || '/' || lower(hex(notification_id))"
            }
        }
    }
}

/// A projection and the table it writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub projection: Projection,
    pub table: String,
}

impl Target {
    /// Every projection, writing to its live table: what the appender maintains inline.
    pub fn live() -> Vec<Target> {
        Projection::ALL
            .into_iter()
            .map(|projection| Target {
                projection,
                table: projection.name().to_owned(),
            })
            .collect()
    }
}

/// Folds `events` into each target's table, in order, each with its domain event. The
/// appender has them at hand, so nothing is decoded again (see [`Fold::apply_decoded`]).
///
/// Set-based: the inbox gets one multi-row insert per run of sends, and the counters one
/// multi-row upsert of the summed changes for the whole slice, so a batch or a replay page
/// costs a few statements rather than a few per event. Each projection's table depends on
/// nothing but the log, so the projections are folded one after another.
pub async fn apply(
    tx: &mut WriteTx,
    targets: &[Target],
    events: &[(RecordedEvent, Event)],
) -> anyhow::Result<()> {
    let mut fold = Fold::new(targets);
    fold.apply_decoded(tx, events).await?;
    fold.flush(tx).await
}

/// A fold over consecutive slices of the log that may hold back the counter sums across
/// slices (replay does, and writes them once every [`Fold::pending`] grows large), so that a
/// person's counters are upserted once per flush instead of once per page.
pub(crate) struct Fold<'a> {
    targets: &'a [Target],
    sums: counters::Sums,
}

impl<'a> Fold<'a> {
    pub(crate) fn new(targets: &'a [Target]) -> Self {
        Fold {
            targets,
            sums: counters::Sums::default(),
        }
    }

    /// A fold into tables that have no rows yet (replay's scratch tables), which lets it
    /// copy the first counter sums in rather than upsert them.
    pub(crate) fn into_empty(targets: &'a [Target]) -> Self {
        Fold {
            targets,
            sums: counters::Sums::for_empty_table(),
        }
    }

    /// Counter keys summed but not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.sums.len()
    }

    /// Folds `events` into every table but the counters, whose changes it adds up.
    pub(crate) async fn apply(
        &mut self,
        tx: &mut WriteTx,
        events: Vec<RecordedEvent>,
    ) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        self.apply_decoded(tx, &decoded).await
    }

    /// Like [`Fold::apply`] with each event's domain event already at hand, as the appender
    /// has them: nothing is decoded again.
    pub(crate) async fn apply_decoded(
        &mut self,
        tx: &mut WriteTx,
        events: &[(RecordedEvent, Event)],
    ) -> anyhow::Result<()> {
        self.apply_part(tx, events, inbox::Part::All).await
    }

    /// Like [`Fold::apply_decoded`] but for the inbox rows of sends, which [`insert_sends`]
    /// must have written and committed first: the second half of a page when replay writes
    /// the two halves on different connections (decision 0025).
    pub(crate) async fn apply_changes(
        &mut self,
        tx: &mut WriteTx,
        events: &[(RecordedEvent, Event)],
    ) -> anyhow::Result<()> {
        self.apply_part(tx, events, inbox::Part::Changes).await
    }

    async fn apply_part(
        &mut self,
        tx: &mut WriteTx,
        decoded: &[(RecordedEvent, Event)],
        part: inbox::Part,
    ) -> anyhow::Result<()> {
        for target in self.targets {
            let t = target.table.as_str();
            match target.projection {
                Projection::Inbox => inbox::apply(tx, t, decoded, part).await?,
                Projection::UnreadCounters => self.sums.add(decoded),
                Projection::Preferences => {
                    for (recorded, event) in decoded {
                        preferences::apply(tx, t, recorded, event).await?;
                    }
                }
                Projection::IdempotencyKeys => {
                    for (recorded, event) in decoded {
                        idempotency::apply(tx, t, recorded, event).await?;
                    }
                }
                Projection::Deliveries => {
                    for (recorded, event) in decoded {
                        deliveries::apply(tx, t, recorded, event).await?;
                    }
                }
                Projection::QuietHours => {
                    for (recorded, event) in decoded {
                        quiet_hours::apply(tx, t, recorded, event).await?;
                    }
                }
                Projection::ScheduledSends => {
                    for (recorded, event) in decoded {
                        scheduled_sends::apply(tx, t, recorded, event).await?;
                    }
                }
                Projection::DigestSettings => {
                    for (recorded, event) in decoded {
                        digests::apply_settings(tx, t, recorded, event).await?;
                    }
                }
                Projection::Digests => {
                    for (recorded, event) in decoded {
                        digests::apply_items(tx, t, recorded, event).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the counter sums held back.
    pub(crate) async fn flush(&mut self, tx: &mut WriteTx) -> anyhow::Result<()> {
        if let Some(target) = self
            .targets
            .iter()
            .find(|t| t.projection == Projection::UnreadCounters)
        {
            self.sums.write(tx, &target.table).await?;
        }
        Ok(())
    }
}

/// The inbox rows of the sends in `events`, when `targets` include the inbox: the first half
/// of a page when replay writes the two halves on different connections (decision 0025).
/// [`Fold::apply_changes`] of the same events writes the rest.
pub(crate) async fn insert_sends(
    tx: &mut WriteTx,
    targets: &[Target],
    decoded: &[(RecordedEvent, Event)],
) -> anyhow::Result<()> {
    for target in targets {
        if target.projection == Projection::Inbox {
            inbox::apply(tx, &target.table, decoded, inbox::Part::Sends).await?;
        }
    }
    Ok(())
}

/// Each event with its domain event; events of types the engine does not know are left out,
/// as no projection reads them.
pub(crate) fn decode(events: Vec<RecordedEvent>) -> anyhow::Result<Vec<(RecordedEvent, Event)>> {
    let mut decoded = Vec::with_capacity(events.len());
    for recorded in events {
        let event = recorded.decode().map_err(|e| {
            anyhow::anyhow!(
                "Failed to decode event at position {}: {e}",
                recorded.position
            )
        })?;
        if let Some(event) = event {
            decoded.push((recorded, event));
        }
    }
    Ok(decoded)
}
