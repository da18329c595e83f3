//! The event log: gap-free positions under concurrency, expected versions, idempotent
//! appends, batches, the doorbell, reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use belfry::domain::notification::{Change, ChangeNotification};
use belfry::domain::{Command, DomainError, NotificationId};
use belfry::engine::CommandError;
use belfry::eventlog::EventLog;
use belfry::projections::{replay, Projection};

use crate::helpers::{meta, send_cmd, user, Backend, TestStore};

const WRITERS: usize = 8;
const COMMANDS_PER_WRITER: usize = 1_000;

async fn positions_are_gap_free_and_stream_versions_contiguous_under_eight_concurrent_writers(
    backend: Backend,
) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    // Eight engines: eight appenders, eight connection pools, racing for the log lock.
    let mut engines = Vec::new();
    for _ in 0..WRITERS {
        engines.push(store.engine().await);
    }

    // A reader follows the log while it grows: it must never see a later position before an
    // earlier one (a gap that fills in later would mean lost events for a tailer).
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let log = EventLog::new(store.db.clone());
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = 0i64;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = log.read_after(seen, 10_000).await.expect("read");
                for e in &page {
                    assert_eq!(
                        e.position,
                        seen + 1,
                        "reader saw position {} right after {seen}",
                        e.position
                    );
                    seen = e.position;
                }
                if finished && page.is_empty() {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let mut writers = Vec::new();
    for (w, engine) in engines.iter().enumerate() {
        let engine = engine.engine.clone();
        writers.push(tokio::spawn(async move {
            let me = format!("writer-{w}");
            let mut mine: Vec<NotificationId> = Vec::new();
            for i in 0..COMMANDS_PER_WRITER {
                // Every fourth command changes an earlier notification, so streams grow past
                // version 1 while other writers append around them.
                let command = if i % 4 == 3 {
                    let id = mine[i % mine.len()];
                    let change = if i % 8 == 3 {
                        Change::MarkRead
                    } else {
                        Change::MarkUnread
                    };
                    Command::Change(ChangeNotification {
                        id,
                        actor: user(&me),
                        change,
                        at: belfry::clock::now(),
                    })
                } else {
                    Command::Send(send_cmd(&[&me], "load", &format!("n{i}"), None))
                };
                let outcome = engine.execute(command, meta()).await.expect("accepted");
                mine.extend(outcome.deliveries.iter().map(|d| d.notification_id));
            }
        }));
    }
    for w in writers {
        w.await.expect("writer finished");
    }
    done.store(true, Ordering::SeqCst);
    let followed = reader.await.expect("reader finished");

    let events = store.all_events().await;
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(positions, expected, "positions are exactly 1..N");
    assert_eq!(followed, events.len() as i64, "the reader saw every event");
    let sends = WRITERS * COMMANDS_PER_WRITER * 3 / 4;
    assert!(events.len() >= sends, "at least every send was appended");

    let mut versions: HashMap<&str, Vec<i64>> = HashMap::new();
    for e in &events {
        versions
            .entry(&e.stream_id)
            .or_default()
            .push(e.stream_version);
    }
    for (stream, v) in versions {
        let expected: Vec<i64> = (1..=v.len() as i64).collect();
        assert_eq!(
            v, expected,
            "stream {stream} has contiguous versions in log order"
        );
    }
    for engine in engines {
        engine.stop().await;
    }
}

async fn a_rejected_command_does_not_fail_the_others_in_its_batch(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    // Submitted together, these land in the same few batches.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let engine = engine.engine.clone();
        tasks.push(tokio::spawn(async move {
            let command = if i % 2 == 0 {
                Command::Send(send_cmd(&["ann"], "builds", &format!("n{i}"), None))
            } else {
                Command::Change(ChangeNotification {
                    id: NotificationId::from_uuid(belfry::clock::ordered_id()),
                    actor: user("ann"),
                    change: Change::MarkRead,
                    at: belfry::clock::now(),
                })
            };
            (i, engine.execute(command, meta()).await)
        }));
    }
    for task in tasks {
        let (i, result) = task.await.expect("task");
        if i % 2 == 0 {
            assert!(result.is_ok(), "send {i} went through: {result:?}");
        } else {
            assert!(
                matches!(
                    result,
                    Err(CommandError::Rejected(DomainError::NotificationNotFound(_)))
                ),
                "change {i} was rejected on its own: {result:?}"
            );
        }
    }
    assert_eq!(store.all_events().await.len(), 50);
    engine.stop().await;
}

async fn the_doorbell_rings_with_the_new_head_after_each_commit(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let mut bell = engine.doorbell();
    assert_eq!(*bell.borrow_and_update(), 0);
    engine.send(&["ann", "bob"], "builds", "hello").await;
    assert!(
        bell.has_changed().expect("open"),
        "a commit rang the doorbell"
    );
    assert_eq!(*bell.borrow_and_update(), 2);
    // A command that changes nothing appends nothing and does not ring.
    let id = engine.send(&["ann"], "builds", "x").await.deliveries[0].notification_id;
    bell.borrow_and_update();
    let read = |id| {
        Command::Change(ChangeNotification {
            id,
            actor: user("ann"),
            change: Change::MarkRead,
            at: belfry::clock::now(),
        })
    };
    engine.run(read(id)).await.expect("read");
    assert_eq!(*bell.borrow_and_update(), 4);
    engine.run(read(id)).await.expect("read again");
    assert!(!bell.has_changed().expect("open"));
    engine.stop().await;
}

async fn the_log_reads_in_pages_by_stream_and_reports_its_head(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let log = engine.log();
    assert_eq!(log.head().await.expect("head"), 0);
    let users: Vec<String> = (0..25).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let sent = engine.send(&refs, "builds", "hello").await;
    assert_eq!(log.head().await.expect("head"), 25);
    let page = log.read_after(10, 5).await.expect("page");
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        [11, 12, 13, 14, 15]
    );
    let id = sent.deliveries[3].notification_id;
    let stream = log
        .read_stream(&format!("notification-{id}"))
        .await
        .expect("stream");
    assert_eq!(stream.len(), 1);
    assert_eq!(stream[0].event_type, "notification.sent");
    assert_eq!(stream[0].metadata.actor.as_deref(), Some("service:test"));
    assert_eq!(stream[0].data.to_value()["recipient"], "u3");
    assert!(log.read_after(25, 100).await.expect("tail").is_empty());
    engine.stop().await;
}

async fn the_events_table_refuses_updates_and_deletes(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    engine.send(&["ann"], "builds", "hello").await;
    engine.stop().await;
    for sql in ["UPDATE events SET event_type = 'x'", "DELETE FROM events"] {
        let result = store.execute_raw(sql).await;
        let err = result.expect_err("the log is append-only").to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.all_events().await.len(), 1);
}

/// The Postgres column type of `events.<column>` (`None` on SQLite).
async fn events_column_type(store: &TestStore, column: &str) -> Option<String> {
    if store.backend != Backend::Postgres {
        return None;
    }
    let sql = format!(
        "SELECT data_type FROM information_schema.columns \
         WHERE table_name = 'events' AND column_name = '{column}'"
    );
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&store.url)
        .await
        .expect("connect");
    Some(
        sqlx::query_scalar(&sql)
            .fetch_one(&mut c)
            .await
            .expect("column type"),
    )
}

async fn a_log_written_before_the_json_columns_reads_the_same_after_the_migration(
    backend: Backend,
) {
    // Events as the engine writes them: two deliveries of one send and a read.
    let Some(source) = TestStore::new(backend).await else {
        return;
    };
    let engine = source.engine().await;
    let sent = engine.send(&["ann", "bob"], "builds", "Build failed").await;
    engine
        .run(Command::Change(ChangeNotification {
            id: sent.deliveries[0].notification_id,
            actor: user("ann"),
            change: Change::MarkRead,
            at: belfry::clock::now(),
        }))
        .await
        .expect("read");
    engine.stop().await;
    let events = source.all_events().await;
    assert_eq!(events.len(), 3);

    // The same events in a log of the schema before migration 3, bound as the engine of
    // that schema bound them (`jsonb` on Postgres, text on SQLite).
    let Some(old) = TestStore::unmigrated(backend).await else {
        return;
    };
    old.migrate_before(3).await;
    assert_eq!(
        events_column_type(&old, "data").await.as_deref(),
        (backend == Backend::Postgres).then_some("jsonb")
    );
    for e in &events {
        let metadata = serde_json::to_string(&e.metadata).expect("metadata");
        let columns = "INSERT INTO events (position, stream_id, stream_version, event_id, \
                       event_type, event_version, data, metadata, recorded_at)";
        macro_rules! insert {
            ($conn:ty, $values:expr) => {{
                let mut c = <$conn as sqlx::Connection>::connect(&old.url)
                    .await
                    .expect("connect");
                sqlx::query(&format!("{columns} VALUES {}", $values))
                    .bind(e.position)
                    .bind(&e.stream_id)
                    .bind(e.stream_version)
                    .bind(e.event_id)
                    .bind(&e.event_type)
                    .bind(e.event_version)
                    .bind(e.data.as_str())
                    .bind(&metadata)
                    .bind(e.recorded_at)
                    .execute(&mut c)
                    .await
                    .expect("insert an event the old way");
            }};
        }
        match backend {
            Backend::Sqlite => insert!(sqlx::SqliteConnection, "(?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            Backend::Postgres => insert!(
                sqlx::PgConnection,
                "($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)"
            ),
        }
    }

    old.db
        .migrate()
        .await
        .expect("migrate to the latest schema");
    assert_eq!(
        events_column_type(&old, "data").await.as_deref(),
        (backend == Backend::Postgres).then_some("json")
    );
    assert_eq!(
        events_column_type(&old, "metadata").await.as_deref(),
        (backend == Backend::Postgres).then_some("json")
    );
    let upgraded = old.all_events().await;
    assert_eq!(
        upgraded, events,
        "the log reads the same after the migration"
    );
    for e in &upgraded {
        assert!(
            e.decode().expect("decodes").is_some(),
            "{} decodes",
            e.event_type
        );
    }

    // Replay builds the read model from those events; an engine then appends to the log.
    replay::rebuild(&old.db, &Projection::ALL, |_| {})
        .await
        .expect("replay");
    let engine = old.engine().await;
    engine.send(&["ann"], "builds", "Build fixed").await;
    let counts = belfry::projections::read::counts(&old.db, &user("ann"))
        .await
        .expect("counts");
    assert_eq!(
        counts.unread, 1,
        "the read one stays read, the new one is unread"
    );
    engine.stop().await;
    assert_eq!(old.all_events().await.len(), 4);
}

crate::on_both_backends!(
    positions_are_gap_free_and_stream_versions_contiguous_under_eight_concurrent_writers,
    a_rejected_command_does_not_fail_the_others_in_its_batch,
    the_doorbell_rings_with_the_new_head_after_each_commit,
    the_log_reads_in_pages_by_stream_and_reports_its_head,
    the_events_table_refuses_updates_and_deletes,
    a_log_written_before_the_json_columns_reads_the_same_after_the_migration,
);
