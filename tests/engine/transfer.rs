//! Export and import: moving a log between stores and backends.

use belfry::domain::inbox::{Mark, MarkAll};
use belfry::domain::notification::{Change, ChangeNotification};
use belfry::domain::preferences::SetPreferences;
use belfry::domain::SendInput;
use belfry::domain::{Category, Channel, Command};
use belfry::engine::Outcome;
use belfry::eventlog::{Db, EventLog, RecordedEvent};
use belfry::projections::read::{self, Counts, InboxEntry, InboxFilter};
use belfry::projections::{replay, Projection};

use crate::cli::belfry;
use crate::helpers::{parse_send, send_cmd, user, Backend, TestEngine, TestStore};

const USERS: [&str; 4] = ["ann", "bob", "carol", "dave"];

/// Every entry of one side of a person's inbox (`archived`: the archive), fetched in pages of 2.
async fn whole_inbox(db: &Db, who: &str, archived: bool) -> Vec<InboxEntry> {
    let filter = InboxFilter {
        archived,
        ..InboxFilter::default()
    };
    let mut all: Vec<InboxEntry> = Vec::new();
    loop {
        let before = all.last().map(|e| e.sent_position);
        let page = read::inbox(db, &user(who), &filter, before, 2)
            .await
            .expect("list the inbox");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// What each of `USERS` sees: inbox, archive, counts and preferences.
#[derive(Debug, PartialEq)]
struct ReadModel {
    inbox: Vec<Vec<InboxEntry>>,
    archive: Vec<Vec<InboxEntry>>,
    counts: Vec<Counts>,
    preferences: Vec<Vec<(Category, Channel, bool)>>,
}

async fn read_model(db: &Db) -> ReadModel {
    let mut model = ReadModel {
        inbox: Vec::new(),
        archive: Vec::new(),
        counts: Vec::new(),
        preferences: Vec::new(),
    };
    for who in USERS {
        model.inbox.push(whole_inbox(db, who, false).await);
        model.archive.push(whole_inbox(db, who, true).await);
        model
            .counts
            .push(read::counts(db, &user(who)).await.expect("counts"));
        model.preferences.push(
            read::preferences(db, &user(who))
                .await
                .expect("preferences"),
        );
    }
    model
}

async fn change(engine: &TestEngine, outcome: &Outcome, who: &str, change: Change) {
    let delivery = outcome
        .deliveries
        .iter()
        .find(|d| d.recipient.as_str() == who)
        .expect("a delivery to this person");
    let changed = engine
        .run(Command::Change(ChangeNotification {
            id: delivery.notification_id,
            actor: user(who),
            change,
            at: belfry::clock::now(),
        }))
        .await
        .expect("change accepted");
    assert_eq!(
        changed.events.len(),
        1,
        "{change:?} by {who} changed nothing"
    );
}

/// Drives a store through sends, a mute, flag changes, bulk marks and a keyed retry.
async fn realistic_history(engine: &TestEngine) {
    let muted = engine
        .run(Command::SetPreferences(SetPreferences {
            user: user("carol"),
            changes: vec![(
                Category::parse("marketing").expect("category"),
                Channel::InApp,
                false,
            )],
            at: belfry::clock::now(),
        }))
        .await
        .expect("preferences accepted");
    assert_eq!(muted.events.len(), 1);

    let builds = engine
        .send(&["ann", "bob", "carol"], "builds", "Build 41 failed")
        .await;
    let sale = engine
        .send(&["ann", "carol"], "marketing", "Spring sale")
        .await;
    assert_eq!(
        sale.deliveries
            .iter()
            .map(|d| (d.recipient.as_str(), d.suppressed))
            .collect::<Vec<_>>(),
        [("ann", false), ("carol", true)],
        "carol muted marketing"
    );
    let comment = engine
        .send(&["bob"], "comments", "New comment on #12")
        .await;
    let rich = SendInput {
        recipients: vec!["ann".into(), "dave".into()],
        category: Some("deploys".into()),
        priority: Some(belfry::domain::Priority::Urgent),
        critical: true,
        title: "Deploy finished".into(),
        body: Some("Build 42 is live — 🎉".into()),
        data: Some(
            serde_json::json!({"build": 42, "ratio": 0.5, "tags": ["prod", "eu"], "nested": {"ok": true}}),
        ),
        action_url: Some("https://ci.example.com/builds/42".into()),
        icon: Some("https://ci.example.com/icon.png".into()),
        // Planned deliveries travel with the log like every other fact.
        routes: Some(vec![
            belfry::domain::send_input::RouteInput {
                channel: belfry::domain::Channel::Email,
                delay_secs: 600,
                unless: Some(belfry::domain::Unless::Read),
            },
            belfry::domain::send_input::RouteInput {
                channel: belfry::domain::Channel::Webhook,
                delay_secs: 0,
                unless: None,
            },
        ]),
        throttle: None,
        idempotency_key: Some("deploy-42".into()),
        expires_at: None,
        // Expiring travels with the log too.
        ttl_seconds: Some(30 * 86_400),
    };
    let keyed = engine
        .run(Command::Send(parse_send(rich.clone())))
        .await
        .expect("send accepted");
    let retried = engine
        .run(Command::Send(parse_send(rich)))
        .await
        .expect("retry accepted");
    assert!(retried.replayed && retried.events.is_empty());
    assert_eq!(retried.deliveries, keyed.deliveries);
    let keyed_again = engine
        .run(Command::Send(send_cmd(
            &["bob"],
            "builds",
            "Build 43 failed",
            Some("build-43"),
        )))
        .await
        .expect("send accepted");
    assert!(!keyed_again.replayed);

    change(engine, &builds, "ann", Change::MarkSeen).await;
    change(engine, &builds, "ann", Change::MarkRead).await;
    change(engine, &builds, "bob", Change::Archive).await;
    change(engine, &keyed, "dave", Change::MarkRead).await;
    change(engine, &keyed, "dave", Change::MarkUnread).await;
    change(engine, &comment, "bob", Change::Archive).await;
    change(engine, &comment, "bob", Change::Unarchive).await;
    let all_read = engine
        .run(Command::MarkAll(MarkAll {
            user: user("carol"),
            mark: Mark::Read,
            category: None,
            up_to_position: None,
            at: belfry::clock::now(),
        }))
        .await
        .expect("mark all accepted");
    assert_eq!(all_read.events.len(), 1);
    let all_seen = engine
        .run(Command::MarkAll(MarkAll {
            user: user("ann"),
            mark: Mark::Seen,
            category: Some(Category::parse("marketing").expect("category")),
            up_to_position: None,
            at: belfry::clock::now(),
        }))
        .await
        .expect("mark all accepted");
    assert_eq!(all_seen.events.len(), 1);
}

async fn export_to_vec(db: &Db) -> Vec<u8> {
    let mut bytes = Vec::new();
    let count = belfry::transfer::export(db, &mut bytes)
        .await
        .expect("export");
    assert_eq!(count, EventLog::new(db.clone()).head().await.expect("head"));
    bytes
}

fn first_difference(a: &[RecordedEvent], b: &[RecordedEvent]) -> String {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => format!("first differing event:\n  sqlite:   {x:?}\n  postgres: {y:?}"),
        None => format!("{} events vs {}", a.len(), b.len()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_exported_from_sqlite_imports_into_postgres_with_an_identical_read_model() {
    let Some(pg) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let Some(sqlite) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let engine = sqlite.engine().await;
    realistic_history(&engine).await;
    engine.stop().await;

    let bytes = export_to_vec(&sqlite.db).await;
    let imported = belfry::transfer::import(&pg.db, &bytes[..], |_| {})
        .await
        .expect("import into postgres");

    let from = sqlite.all_events().await;
    let to = pg.all_events().await;
    assert_eq!(imported, from.len() as i64);
    assert!(
        from.iter()
            .any(|e| e.event_type == "notification.suppressed"),
        "the history has a suppressed send"
    );
    assert!(from.iter().any(|e| e.event_type == "inbox.all_read"));
    assert!(from.iter().any(|e| e.event_type == "preference.changed"));
    assert!(
        from == to,
        "the logs differ: {}",
        first_difference(&from, &to)
    );

    let expected = read_model(&sqlite.db).await;
    let actual = read_model(&pg.db).await;
    // The comparison is not between two empty models.
    let carol = 2;
    assert_eq!(
        expected.inbox[carol].len(),
        1,
        "carol's marketing notification was suppressed"
    );
    assert_eq!(
        expected.counts[carol].unread, 0,
        "carol marked everything read"
    );
    assert_eq!(
        expected.archive[1].len(),
        1,
        "bob archived one notification"
    );
    assert_eq!(expected.preferences[carol].len(), 1);
    assert_eq!(
        actual, expected,
        "the read model on Postgres differs from the one on SQLite"
    );

    assert!(replay::verify(&pg.db, &Projection::ALL, |_| {})
        .await
        .expect("verify")
        .differences
        .is_empty());

    let head = to.len() as i64;
    let engine = pg.engine().await;
    let next = engine.send(&["ann"], "builds", "First on Postgres").await;
    assert_eq!(next.deliveries[0].position, head + 1);
    // The idempotency keys moved too: a retry on Postgres answers with the SQLite send.
    let retried = engine
        .run(Command::Send(send_cmd(
            &["bob"],
            "builds",
            "Build 43 failed",
            Some("build-43"),
        )))
        .await
        .expect("retry accepted");
    assert!(
        retried.replayed,
        "the key used on SQLite was not known on Postgres"
    );
    engine.stop().await;
}

async fn import_refuses_a_store_that_already_has_events_and_a_file_with_a_gap(backend: Backend) {
    let Some(source) = TestStore::new(backend).await else {
        return;
    };
    let engine = source.engine().await;
    engine.send(&["ann", "bob"], "builds", "Build failed").await;
    engine.send(&["ann"], "comments", "New comment").await;
    engine.send(&["carol"], "builds", "Build fixed").await;
    engine.stop().await;
    let bytes = export_to_vec(&source.db).await;
    let before = source.all_events().await;
    let counts_before = read::counts(&source.db, &user("ann"))
        .await
        .expect("counts");
    assert_eq!(before.len(), 4);

    let err = belfry::transfer::import(&source.db, &bytes[..], |_| {})
        .await
        .expect_err("import into a store with events");
    let message = format!("{err:#}");
    assert!(
        message.contains("already holds 4 events") && message.contains("empty"),
        "{message}"
    );
    assert_eq!(
        source.all_events().await,
        before,
        "a refused import changed the log"
    );
    assert_eq!(
        read::counts(&source.db, &user("ann"))
            .await
            .expect("counts"),
        counts_before
    );

    let Some(target) = TestStore::new(backend).await else {
        return;
    };
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(2);
    let gapped = lines.join("\n") + "\n";
    let err = belfry::transfer::import(&target.db, gapped.as_bytes(), |_| {})
        .await
        .expect_err("import of a file with a gap");
    let message = format!("{err:#}");
    assert!(
        message.contains("line 3 has position 4 where 3 was expected"),
        "{message}"
    );
    assert!(
        target.all_events().await.is_empty(),
        "a refused import wrote events"
    );

    // A value the API would refuse is refused here too, before anything is written.
    let blank = text.replacen("\"recipient\":\"carol\"", "\"recipient\":\"\"", 1);
    assert_ne!(blank, text, "the export names carol as a recipient");
    let err = belfry::transfer::import(&target.db, blank.as_bytes(), |_| {})
        .await
        .expect_err("import of an invalid recipient");
    let message = format!("{err:#}");
    assert!(
        message.contains("line 4 holds an invalid event") && message.contains("user id"),
        "{message}"
    );
    assert!(
        target.all_events().await.is_empty(),
        "a refused import wrote events"
    );

    // The refusals left the target empty and usable: the whole file imports.
    let imported = belfry::transfer::import(&target.db, &bytes[..], |_| {})
        .await
        .expect("import");
    assert_eq!(imported, 4);
    assert_eq!(target.all_events().await, before);
    assert_eq!(
        read::counts(&target.db, &user("ann"))
            .await
            .expect("counts"),
        counts_before
    );
}

async fn export_writes_one_json_line_per_event_with_positions_and_ids(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let sent = engine.send(&["ann", "bob"], "builds", "Build failed").await;
    engine.send(&["ann"], "comments", "New comment").await;
    change(&engine, &sent, "ann", Change::MarkRead).await;
    engine.stop().await;
    let events = store.all_events().await;
    let head = EventLog::new(store.db.clone()).head().await.expect("head");
    assert_eq!(head, 4);

    let file = store.dir().join("log.ndjson");
    let exported = belfry(
        &store.url,
        &["export", "-o", file.to_str().expect("utf-8 path")],
    )
    .await;
    exported.assert_success();
    assert!(
        exported.stderr.contains("exported 4 events"),
        "{}",
        exported.stderr
    );

    let text = std::fs::read_to_string(&file).expect("read the export");
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as i64, head);
    let fields = [
        "data",
        "event_id",
        "event_type",
        "event_version",
        "metadata",
        "position",
        "recorded_at",
        "stream_id",
        "stream_version",
    ];
    for (i, (line, event)) in lines.iter().zip(&events).enumerate() {
        let json: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", i + 1));
        let object = json
            .as_object()
            .unwrap_or_else(|| panic!("line {} is not an object", i + 1));
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, fields, "line {}", i + 1);
        assert_eq!(json["position"], serde_json::json!(i + 1));
        assert_eq!(
            json["event_id"],
            serde_json::json!(event.event_id.to_string())
        );
        assert!(uuid::Uuid::parse_str(json["event_id"].as_str().expect("event id")).is_ok());
        assert_eq!(json["stream_id"], serde_json::json!(event.stream_id));
        assert_eq!(
            json["stream_version"],
            serde_json::json!(event.stream_version)
        );
        assert_eq!(json["event_type"], serde_json::json!(event.event_type));
        assert!(json["recorded_at"].is_string(), "line {}", i + 1);
        let parsed: RecordedEvent = serde_json::from_str(line).expect("a recorded event");
        assert_eq!(&parsed, event, "line {} is not the logged event", i + 1);
    }
    let fourth = serde_json::from_str::<serde_json::Value>(lines[3]).expect("json");
    assert_eq!(fourth["event_type"], "notification.read");
    assert_eq!(
        fourth["stream_id"],
        format!("notification-{}", sent.deliveries[0].notification_id)
    );
    assert_eq!(fourth["stream_version"], 2);
}

crate::on_both_backends!(
    import_refuses_a_store_that_already_has_events_and_a_file_with_a_gap,
    export_writes_one_json_line_per_event_with_positions_and_ids,
);
