//! The inline read model: read-your-writes, counters, bulk marks, preferences, isolation,
//! and a property test that random histories keep counters exact and equal to a replay.

use belfry::domain::inbox::{Mark, MarkAll};
use belfry::domain::notification::{Change, ChangeNotification};
use belfry::domain::preferences::SetPreferences;
use belfry::domain::SendInput;
use belfry::domain::{Category, Channel, Command, DomainError, NotificationId};
use belfry::engine::CommandError;
use belfry::eventlog::EventLog;
use belfry::projections::read::{self, InboxFilter};
use belfry::projections::{replay, Projection};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::helpers::{
    assert_replay_finds_no_differences, parse_send, send_cmd, user, Backend, TestEngine, TestStore,
};

fn change(id: NotificationId, who: &str, change: Change) -> Command {
    Command::Change(ChangeNotification {
        id,
        actor: user(who),
        change,
        at: belfry::clock::now(),
    })
}

fn mark_all(who: &str, mark: Mark, category: Option<&str>, up_to: Option<i64>) -> Command {
    Command::MarkAll(MarkAll {
        user: user(who),
        mark,
        category: category.map(|c| Category::parse(c).expect("category")),
        up_to_position: up_to,
        at: belfry::clock::now(),
    })
}

fn set_pref(who: &str, category: &str, channel: Channel, enabled: bool) -> Command {
    Command::SetPreferences(SetPreferences {
        user: user(who),
        changes: vec![(
            Category::parse(category).expect("category"),
            channel,
            enabled,
        )],
        at: belfry::clock::now(),
    })
}

async fn counts(store: &TestStore, who: &str) -> (i64, i64) {
    let c = read::counts(&store.db, &user(who)).await.expect("counts");
    (c.unread, c.unseen)
}

async fn every_change_is_visible_as_soon_as_its_command_returns(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let id = engine
        .send(&["ann"], "builds", "Build failed")
        .await
        .deliveries[0]
        .notification_id;
    let entry = read::notification(&store.db, &user("ann"), id)
        .await
        .expect("read")
        .expect("delivered");
    assert_eq!(entry.title, "Build failed");
    assert_eq!(entry.category, "builds");
    assert!(entry.read_at.is_none() && entry.seen_at.is_none());
    assert_eq!(counts(&store, "ann").await, (1, 1));

    engine
        .run(change(id, "ann", Change::MarkSeen))
        .await
        .expect("seen");
    assert_eq!(counts(&store, "ann").await, (1, 0));
    engine
        .run(change(id, "ann", Change::MarkRead))
        .await
        .expect("read");
    assert_eq!(counts(&store, "ann").await, (0, 0));
    let entry = read::notification(&store.db, &user("ann"), id)
        .await
        .expect("read")
        .expect("there");
    assert!(entry.read_at.is_some());
    engine
        .run(change(id, "ann", Change::MarkUnread))
        .await
        .expect("unread");
    assert_eq!(counts(&store, "ann").await, (1, 0));

    engine
        .run(change(id, "ann", Change::Archive))
        .await
        .expect("archive");
    assert_eq!(
        counts(&store, "ann").await,
        (0, 0),
        "archived notifications do not count"
    );
    let inbox = read::inbox(&store.db, &user("ann"), &InboxFilter::default(), None, 10)
        .await
        .expect("inbox");
    assert!(inbox.is_empty());
    let archive = InboxFilter {
        archived: true,
        ..Default::default()
    };
    let archived = read::inbox(&store.db, &user("ann"), &archive, None, 10)
        .await
        .expect("archive");
    assert_eq!(archived.len(), 1);
    engine
        .run(change(id, "ann", Change::Unarchive))
        .await
        .expect("unarchive");
    assert_eq!(counts(&store, "ann").await, (1, 0));
    engine.stop().await;
}

async fn the_inbox_lists_newest_first_in_pages_with_filters(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let category = if i % 2 == 0 { "builds" } else { "deploys" };
        ids.push(
            engine
                .send(&["ann"], category, &format!("n{i}"))
                .await
                .deliveries[0]
                .notification_id,
        );
    }
    engine.send(&["bob"], "builds", "not ann's").await;
    engine
        .run(change(ids[6], "ann", Change::MarkRead))
        .await
        .expect("read");

    let all = InboxFilter::default();
    let first = read::inbox(&store.db, &user("ann"), &all, None, 3)
        .await
        .expect("page");
    assert_eq!(
        first.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(),
        ["n6", "n5", "n4"]
    );
    let next = read::inbox(
        &store.db,
        &user("ann"),
        &all,
        Some(first[2].sent_position),
        10,
    )
    .await
    .expect("page");
    assert_eq!(
        next.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(),
        ["n3", "n2", "n1", "n0"]
    );

    let unread_builds = InboxFilter {
        unread_only: true,
        category: Some(Category::parse("builds").expect("c")),
        archived: false,
    };
    let listed = read::inbox(&store.db, &user("ann"), &unread_builds, None, 10)
        .await
        .expect("filtered");
    assert_eq!(
        listed.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(),
        ["n4", "n2", "n0"]
    );

    let c = read::counts(&store.db, &user("ann")).await.expect("counts");
    assert_eq!(c.unread, 6);
    assert_eq!(
        c.by_category,
        vec![("builds".to_owned(), 3, 3), ("deploys".to_owned(), 3, 3)]
    );
    engine.stop().await;
}

async fn mark_all_read_by_category_and_up_to_a_cursor_leaves_later_arrivals_unread(
    backend: Backend,
) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let a = engine.send(&["ann"], "builds", "a").await.deliveries[0].position;
    engine.send(&["ann"], "deploys", "b").await;
    engine.send(&["ann"], "builds", "c").await;

    engine
        .run(mark_all("ann", Mark::Read, Some("builds"), Some(a)))
        .await
        .expect("mark");
    let c = read::counts(&store.db, &user("ann")).await.expect("counts");
    assert_eq!(c.unread, 2, "only the first builds notification is read");
    assert_eq!(
        c.by_category,
        vec![("builds".to_owned(), 1, 1), ("deploys".to_owned(), 1, 1)]
    );

    engine
        .run(mark_all("ann", Mark::Seen, None, None))
        .await
        .expect("seen");
    assert_eq!(counts(&store, "ann").await, (2, 0), "seen, still unread");
    engine
        .run(mark_all("ann", Mark::Read, None, None))
        .await
        .expect("all read");
    assert_eq!(counts(&store, "ann").await, (0, 0));
    let before = store.all_events().await.len();
    engine
        .run(mark_all("ann", Mark::Read, None, None))
        .await
        .expect("again");
    assert_eq!(
        store.all_events().await.len(),
        before,
        "nothing left to mark appends nothing"
    );
    engine.stop().await;
}

async fn a_muted_category_is_recorded_but_never_shown_unless_critical(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    engine
        .run(set_pref("ann", "marketing", Channel::InApp, false))
        .await
        .expect("mute");
    let prefs = read::preferences(&store.db, &user("ann"))
        .await
        .expect("prefs");
    assert_eq!(
        prefs,
        vec![(
            Category::parse("marketing").expect("c"),
            Channel::InApp,
            false
        )]
    );

    let sent = engine.send(&["ann", "bob"], "marketing", "Sale").await;
    let ann = sent
        .deliveries
        .iter()
        .find(|d| d.recipient.as_str() == "ann")
        .expect("ann");
    let bob = sent
        .deliveries
        .iter()
        .find(|d| d.recipient.as_str() == "bob")
        .expect("bob");
    assert!(ann.suppressed && !bob.suppressed);
    assert!(
        read::notification(&store.db, &user("ann"), ann.notification_id)
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(counts(&store, "ann").await, (0, 0));
    assert_eq!(counts(&store, "bob").await, (1, 1));
    let audit = engine
        .log()
        .read_stream(&format!("notification-{}", ann.notification_id))
        .await
        .expect("audit");
    assert_eq!(
        audit[0].event_type, "notification.suppressed",
        "kept for the audit trail"
    );
    assert!(matches!(
        engine
            .run(change(ann.notification_id, "ann", Change::MarkRead))
            .await,
        Err(CommandError::Rejected(DomainError::NotificationNotFound(_)))
    ));

    let critical = SendInput {
        recipients: vec!["ann".into()],
        category: Some("marketing".into()),
        critical: true,
        title: "Your account is locked".into(),
        ..Default::default()
    };
    let sent = engine
        .run(Command::Send(parse_send(critical)))
        .await
        .expect("sent");
    assert!(
        !sent.deliveries[0].suppressed,
        "critical notifications ignore mutes"
    );
    assert_eq!(counts(&store, "ann").await, (1, 1));

    engine
        .run(set_pref("ann", "marketing", Channel::InApp, true))
        .await
        .expect("unmute");
    assert!(
        !engine
            .send(&["ann"], "marketing", "Sale 2")
            .await
            .deliveries[0]
            .suppressed
    );
    engine.stop().await;
}

async fn a_user_cannot_see_or_change_another_users_notification(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let id = engine.send(&["ann"], "builds", "private").await.deliveries[0].notification_id;
    assert!(read::notification(&store.db, &user("mallory"), id)
        .await
        .expect("read")
        .is_none());
    for c in [
        Change::MarkSeen,
        Change::MarkRead,
        Change::MarkUnread,
        Change::Archive,
        Change::Unarchive,
    ] {
        assert!(matches!(
            engine.run(change(id, "mallory", c)).await,
            Err(CommandError::Rejected(DomainError::NotificationNotFound(_)))
        ));
    }
    engine
        .run(mark_all("mallory", Mark::Read, None, None))
        .await
        .expect("mallory's own inbox");
    assert_eq!(
        counts(&store, "ann").await,
        (1, 1),
        "ann's notification is untouched"
    );
    assert_eq!(store.all_events().await.len(), 1);
    engine.stop().await;
}

/// A send to more recipients than one insert statement takes (Postgres writes 1,000 rows a
/// statement): every event, inbox row and counter is there, gap-free, and equal to a replay.
async fn a_send_to_thousands_is_written_whole_across_statements(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    engine.send(&["ann"], "builds", "First").await;
    let names: Vec<String> = (0..2_345).map(|i| format!("user-{i}")).collect();
    let recipients: Vec<&str> = names.iter().map(String::as_str).collect();
    let outcome = engine.send(&recipients, "deploys", "Release 2.0").await;
    let positions: Vec<i64> = outcome.deliveries.iter().map(|d| d.position).collect();
    assert_eq!(positions, (2..=2_346).collect::<Vec<i64>>());
    engine.stop().await;

    let log: Vec<i64> = store
        .all_events()
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(
        log,
        (1..=2_346).collect::<Vec<i64>>(),
        "gap-free, none twice"
    );
    for i in [0, 998, 999, 1_000, 1_999, 2_000, 2_344] {
        let who = format!("user-{i}");
        assert_eq!(counts(&store, &who).await, (1, 1), "{who}");
        let inbox = read::inbox(&store.db, &user(&who), &InboxFilter::default(), None, 10)
            .await
            .expect("inbox");
        assert_eq!(inbox.len(), 1, "{who}");
        assert_eq!(inbox[0].title, "Release 2.0");
    }
    assert_eq!(counts(&store, "ann").await, (1, 1));
    let drift = store.counter_drift().await;
    assert!(drift.is_empty(), "counters drifted: {drift:?}");
    assert_replay_finds_no_differences(&store.db).await;
}

/// A send to more people than one array statement takes is copied in (`COPY` on Postgres),
/// as are replay's pages: every field must arrive as a send to one person stores it, with
/// the characters a text format would have to escape, absent optional fields as `NULL`, and
/// the same rows again after a rebuild.
async fn a_large_send_stores_every_field_as_a_small_one_does(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    // One instant for both sends, at the precision both backends keep.
    let expires = belfry::clock::now() + chrono::Duration::days(1);
    let content = |recipients: Vec<String>, full: bool| {
        parse_send(SendInput {
            recipients,
            category: Some("deploys".to_owned()),
            priority: Some(belfry::domain::Priority::Urgent),
            critical: full,
            title: "\\N, back\\slash, \"quoted\", 'single', ünïcødé 🔔".to_owned(),
            body: full.then(|| "tab\there,\r\nnew line, \\N, , comma".to_owned()),
            data: full
                .then(|| serde_json::json!({"run": 7, "tags": ["a", "\t"], "nested": {"x": null}})),
            action_url: full.then(|| "https://ci.example/runs/7?a=1&b=2".to_owned()),
            icon: full.then(|| "https://ci.example/icon.png".to_owned()),
            routes: None,
            throttle: None,
            idempotency_key: None,
            expires_at: full.then_some(expires),
            ttl_seconds: None,
        })
    };
    let crowd = |tag: &str| (0..1_500).map(|i| format!("{tag}-{i}")).collect::<Vec<_>>();
    for full in [true, false] {
        let tag = if full { "full" } else { "bare" };
        let one = engine
            .run(Command::Send(content(vec![format!("{tag}-one")], full)))
            .await
            .expect("send to one");
        let many = engine
            .run(Command::Send(content(crowd(tag), full)))
            .await
            .expect("send to many");
        let one = read::notification(
            &store.db,
            &user(&format!("{tag}-one")),
            one.deliveries[0].notification_id,
        )
        .await
        .expect("read")
        .expect("delivered");
        for i in [0, 999, 1_000, 1_499] {
            let who = format!("{tag}-{i}");
            let entry =
                read::notification(&store.db, &user(&who), many.deliveries[i].notification_id)
                    .await
                    .expect("read")
                    .expect("delivered");
            // Everything but what differs per recipient, as the send to one stored it.
            let expected = read::InboxEntry {
                notification_id: entry.notification_id,
                recipient: who.clone(),
                sent_at: entry.sent_at,
                sent_position: entry.sent_position,
                last_position: entry.sent_position,
                ..one.clone()
            };
            assert_eq!(entry, expected, "{who}");
            assert_eq!(entry.action_url.is_some(), full, "{who}");
        }
    }
    engine.stop().await;
    let drift = store.counter_drift().await;
    assert!(drift.is_empty(), "counters drifted: {drift:?}");
    assert_replay_finds_no_differences(&store.db).await;
    replay::rebuild(&store.db, &Projection::ALL, |_| {})
        .await
        .expect("rebuild");
    assert_eq!(counts(&store, "full-1499").await, (1, 1));
    assert_replay_finds_no_differences(&store.db).await;
}

/// Commands queued while the appender is busy are taken together in its next batch, so a
/// change there must see the send before it, though neither is in the log yet; and each
/// command's outcome lists its own events only.
async fn commands_queued_together_see_each_others_events(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let names: Vec<String> = (0..3_000).map(|i| format!("user-{i}")).collect();
    let crowd: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = send_cmd(&crowd, "deploys", "Release", None);
    let send = send_cmd(&["ann", "bob"], "builds", "Build failed", None);
    let (ann, bob) = (send.deliveries[0].0, send.deliveries[1].0);
    let (big, sent, read, archived, seen) = tokio::join!(
        engine.run(Command::Send(big)),
        engine.run(Command::Send(send)),
        engine.run(change(ann, "ann", Change::MarkRead)),
        engine.run(change(ann, "ann", Change::Archive)),
        engine.run(change(bob, "bob", Change::MarkSeen)),
    );
    let big = big.expect("big send");
    let sent = sent.expect("send");
    assert_eq!(big.events.len(), 3_000);
    assert!(big
        .events
        .iter()
        .all(|e| e.event_type == "notification.sent"));
    assert_eq!(
        sent.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        sent.deliveries
            .iter()
            .map(|d| d.position)
            .collect::<Vec<_>>()
    );
    let ann_stream = sent.events[0].stream_id.clone();
    for (outcome, stream, version, event_type) in [
        (read.expect("read"), &ann_stream, 2, "notification.read"),
        (
            archived.expect("archive"),
            &ann_stream,
            3,
            "notification.archived",
        ),
        (
            seen.expect("seen"),
            &sent.events[1].stream_id,
            2,
            "notification.seen",
        ),
    ] {
        assert_eq!(outcome.events.len(), 1, "{event_type}");
        let event = &outcome.events[0];
        assert_eq!(
            (
                &event.stream_id,
                event.stream_version,
                event.event_type.as_str()
            ),
            (stream, version, event_type)
        );
    }
    engine.stop().await;

    let versions = store.stream_versions(&ann_stream).await;
    assert_eq!(versions, [1, 2, 3]);
    let entry = read::notification(&store.db, &user("ann"), ann)
        .await
        .expect("read")
        .expect("delivered");
    assert!(entry.read_at.is_some() && entry.archived_at.is_some());
    assert_eq!(counts(&store, "ann").await, (0, 0));
    assert_eq!(counts(&store, "bob").await, (1, 0));
    let drift = store.counter_drift().await;
    assert!(drift.is_empty(), "counters drifted: {drift:?}");
}

/// Replay reads the log in pages of 10,000 events, and on Postgres writes a page's rows while
/// the page before's changes are written on another connection (decision 0025). Changes here
/// touch rows of their own page, of the page before and of two pages back; a rebuild must
/// still equal what the appender built, and report its progress page by page.
async fn a_replay_across_pages_rebuilds_what_the_appender_built(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let names: Vec<String> = (0..12_000).map(|i| format!("user-{i}")).collect();
    let crowd: Vec<&str> = names.iter().map(String::as_str).collect();
    // Positions 1-12,000: pages 1 and 2.
    let first = engine
        .run(Command::Send(send_cmd(
            &crowd,
            "deploys",
            "Release 1",
            None,
        )))
        .await
        .expect("first send");
    assert!(first
        .deliveries
        .iter()
        .zip(&names)
        .all(|(d, name)| d.recipient.as_str() == name));
    // In page 2: reads of rows from page 1 and page 2.
    for i in (0..12_000).step_by(400) {
        engine
            .run(change(
                first.deliveries[i].notification_id,
                &names[i],
                Change::MarkRead,
            ))
            .await
            .expect("read");
    }
    let second = engine
        .run(Command::Send(send_cmd(&crowd, "builds", "Build 2", None)))
        .await
        .expect("second send");
    // In page 3: changes to rows of pages 1, 2 and 3, and a bulk mark over both sends.
    for i in [1, 9_999, 10_001, 11_999] {
        engine
            .run(change(
                first.deliveries[i].notification_id,
                &names[i],
                Change::Archive,
            ))
            .await
            .expect("archive");
        engine
            .run(change(
                second.deliveries[i].notification_id,
                &names[i],
                Change::MarkSeen,
            ))
            .await
            .expect("seen");
    }
    engine
        .run(mark_all("user-10001", Mark::Read, None, None))
        .await
        .expect("mark all");
    engine.stop().await;
    let head = EventLog::new(store.db.clone()).head().await.expect("head");
    assert!(head > 20_000, "the log spans three pages: {head}");

    assert_replay_finds_no_differences(&store.db).await;
    let mut reports = Vec::new();
    let report = replay::rebuild(&store.db, &Projection::ALL, |p| reports.push(p))
        .await
        .expect("rebuild");
    assert_eq!(report.events, head);
    // The start, then each page folded, up to the head.
    let head = u64::try_from(head).expect("a positive head");
    let expected: Vec<replay::Progress> = [0, 10_000, 20_000, head]
        .into_iter()
        .map(|events| replay::Progress { events, head })
        .collect();
    assert_eq!(reports, expected);
    // user-0: the first send read, the second unread and unseen.
    assert_eq!(counts(&store, "user-0").await, (1, 1));
    // user-1: the first archived (no longer counted), the second seen but unread.
    assert_eq!(counts(&store, "user-1").await, (1, 0));
    // user-10001: everything read by the bulk mark.
    assert_eq!(counts(&store, "user-10001").await, (0, 0));
    let entry = read::notification(
        &store.db,
        &user("user-9999"),
        first.deliveries[9_999].notification_id,
    )
    .await
    .expect("read")
    .expect("delivered");
    assert!(entry.archived_at.is_some() && entry.read_at.is_none());
    let drift = store.counter_drift().await;
    assert!(drift.is_empty(), "counters drifted: {drift:?}");
    assert_replay_finds_no_differences(&store.db).await;

    // The rebuilt tables take the appender's writes: its counter upserts need their keys,
    // and add to the rebuilt counts.
    let engine = store.engine().await;
    engine
        .send(&["user-0", "user-1"], "deploys", "Release 3")
        .await;
    engine.stop().await;
    assert_eq!(counts(&store, "user-0").await, (2, 2));
    assert_eq!(counts(&store, "user-1").await, (2, 1));
    let drift = store.counter_drift().await;
    assert!(drift.is_empty(), "counters drifted: {drift:?}");
}

crate::on_both_backends!(
    a_replay_across_pages_rebuilds_what_the_appender_built,
    a_large_send_stores_every_field_as_a_small_one_does,
    commands_queued_together_see_each_others_events,
    every_change_is_visible_as_soon_as_its_command_returns,
    a_send_to_thousands_is_written_whole_across_statements,
    the_inbox_lists_newest_first_in_pages_with_filters,
    mark_all_read_by_category_and_up_to_a_cursor_leaves_later_arrivals_unread,
    a_muted_category_is_recorded_but_never_shown_unless_critical,
    a_user_cannot_see_or_change_another_users_notification,
);

const USERS: [&str; 3] = ["ann", "bob", "cy"];
const CATEGORIES: [&str; 3] = ["builds", "deploys", "billing"];

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    Send {
        to: Vec<usize>,
        category: usize,
        critical: bool,
    },
    Change {
        by: usize,
        pick: usize,
        change: usize,
    },
    MarkAll {
        by: usize,
        read: bool,
        category: Option<usize>,
        cursor: Option<usize>,
    },
    Mute {
        by: usize,
        category: usize,
        enabled: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (proptest::collection::vec(0..USERS.len(), 1..=3), 0..CATEGORIES.len(), any::<bool>())
            .prop_map(|(to, category, critical)| Op::Send { to, category, critical: critical && category == 2 }),
        5 => (0..USERS.len(), any::<usize>(), 0..5usize).prop_map(|(by, pick, change)| Op::Change { by, pick, change }),
        1 => (0..USERS.len(), any::<bool>(), proptest::option::of(0..CATEGORIES.len()), proptest::option::of(any::<usize>()))
            .prop_map(|(by, read, category, cursor)| Op::MarkAll { by, read, category, cursor }),
        1 => (0..USERS.len(), 0..CATEGORIES.len(), any::<bool>()).prop_map(|(by, category, enabled)| Op::Mute { by, category, enabled }),
    ]
}

async fn apply_history(engine: &TestEngine, ops: &[Op]) {
    // Every delivered notification, with the log position of its send.
    let mut sent: Vec<(NotificationId, i64)> = Vec::new();
    for op in ops {
        let command = match op {
            Op::Send {
                to,
                category,
                critical,
            } => {
                let to: Vec<&str> = to.iter().map(|u| USERS[*u]).collect();
                let mut cmd = send_cmd(&to, CATEGORIES[*category], "t", None);
                cmd.content.critical = *critical;
                Command::Send(cmd)
            }
            Op::Change {
                by,
                pick,
                change: c,
            } if !sent.is_empty() => {
                let changes = [
                    Change::MarkSeen,
                    Change::MarkRead,
                    Change::MarkUnread,
                    Change::Archive,
                    Change::Unarchive,
                ];
                // Often someone else's: the engine must refuse those without effect.
                change(sent[pick % sent.len()].0, USERS[*by], changes[*c])
            }
            Op::Change { .. } => continue,
            Op::MarkAll {
                by,
                read,
                category,
                cursor,
            } => {
                let up_to = cursor
                    .filter(|_| !sent.is_empty())
                    .map(|c| sent[c % sent.len()].1);
                let mark = if *read { Mark::Read } else { Mark::Seen };
                mark_all(USERS[*by], mark, category.map(|c| CATEGORIES[c]), up_to)
            }
            Op::Mute {
                by,
                category,
                enabled,
            } => set_pref(USERS[*by], CATEGORIES[*category], Channel::InApp, *enabled),
        };
        match engine.run(command).await {
            Ok(outcome) => sent.extend(
                outcome
                    .deliveries
                    .iter()
                    .filter(|d| !d.suppressed)
                    .map(|d| (d.notification_id, d.position)),
            ),
            Err(CommandError::Rejected(DomainError::NotificationNotFound(_))) => {}
            Err(other) => panic!("unexpected failure {other:?} for {op:?}"),
        }
    }
}

async fn check_history(backend: Backend, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let Some(store) = TestStore::new(backend).await else {
        return Ok(());
    };
    let engine = store.engine().await;
    apply_history(&engine, &ops).await;
    engine.stop().await;
    let drift = store.counter_drift().await;
    prop_assert!(
        drift.is_empty(),
        "counters drifted from a recount: {drift:?}"
    );
    let report = replay::verify(&store.db, &Projection::ALL, |_| {})
        .await
        .expect("verify");
    prop_assert!(
        report.differences.is_empty(),
        "read model differs from a replay: {:?}",
        report.differences
    );
    Ok(())
}

fn random_histories_keep_counters_exact_and_equal_to_a_replay(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..60), |ops| {
        rt.block_on(check_history(backend, ops))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_histories_keep_counters_exact_and_equal_to_a_replay_on_sqlite() {
    random_histories_keep_counters_exact_and_equal_to_a_replay(Backend::Sqlite);
}

#[test]
fn random_histories_keep_counters_exact_and_equal_to_a_replay_on_postgres() {
    random_histories_keep_counters_exact_and_equal_to_a_replay(Backend::Postgres);
}
