//! Crashes and concurrent writers: what was acknowledged is in the log and the read model,
//! positions stay gap-free, and the read model equals a replay.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

use belfry::domain::NotificationId;
use belfry::eventlog::{Db, EventLog, RecordedEvent};
use belfry::projections::read;

use crate::helpers::{assert_replay_finds_no_differences, user, Backend, TestStore};
use crate::loadgen::{ack_line, Load};

/// Every event in the log, in position order.
async fn all_events(db: &Db) -> Vec<RecordedEvent> {
    let log = EventLog::new(db.clone());
    let mut all: Vec<RecordedEvent> = Vec::new();
    loop {
        let after = all.last().map_or(0, |e| e.position);
        let page = log.read_after(after, 1_000).await.expect("read the log");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Asserts the log holds exactly positions 1..=n, in order; returns n.
fn assert_gap_free(events: &[RecordedEvent]) -> i64 {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.position,
            i as i64 + 1,
            "the log has a gap or is out of order at index {i}"
        );
    }
    events.len() as i64
}

/// The `<notification id> <position>` of an `acked` line of the load generator.
fn parse_ack(line: &str) -> (NotificationId, i64) {
    let mut words = line.split(' ');
    let (Some(id), Some(position), None) = (words.next(), words.next(), words.next()) else {
        panic!("not an ack line: {line:?}");
    };
    (
        NotificationId::parse(id).unwrap_or_else(|e| panic!("bad id in {line:?}: {e}")),
        position
            .parse()
            .unwrap_or_else(|e| panic!("bad position in {line:?}: {e}")),
    )
}

async fn acknowledged_sends_survive_a_sigkill_and_the_read_model_equals_a_replay(backend: Backend) {
    const ACKS_BEFORE_KILL: usize = 300;
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let load = Load {
        count: 1_000_000,
        concurrency: 16,
        users: 50,
        print_acks: true,
    };
    let mut child = load
        .command(&store.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the load generator");

    // Complete lines only: a line cut short by the kill was never fully acknowledged.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let reader = std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut line = String::new();
        while matches!(stdout.read_line(&mut line), Ok(n) if n > 0) {
            let complete = line.ends_with('\n');
            if let Some(ack) = ack_line(line.trim_end()).filter(|_| complete) {
                if lines_tx.send(ack.to_owned()).is_err() {
                    break;
                }
            }
            line.clear();
        }
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });

    let mut acks = Vec::new();
    let waited = tokio::time::timeout(Duration::from_secs(120), async {
        while acks.len() < ACKS_BEFORE_KILL {
            match lines.recv().await {
                Some(line) => acks.push(parse_ack(&line)),
                None => return false,
            }
        }
        true
    })
    .await;
    child.kill().expect("SIGKILL loadgen");
    let status = child.wait().expect("reap loadgen");
    let stderr = stderr.join().unwrap_or_default();
    match waited {
        Ok(true) => {}
        Ok(false) => panic!(
            "loadgen exited ({status}) after {} acks\nstderr:\n{stderr}",
            acks.len()
        ),
        Err(_) => panic!(
            "loadgen printed only {} acks in 120 s\nstderr:\n{stderr}",
            acks.len()
        ),
    }
    assert!(
        !status.success(),
        "loadgen finished a million sends before it was killed?"
    );
    // What it printed before it died was acknowledged too.
    while let Some(line) = lines.recv().await {
        acks.push(parse_ack(&line));
    }
    reader.join().expect("stdout reader");

    // As after a restart: a new connection to what is on disk.
    let db = Db::connect(&store.url, &crate::helpers::db_options())
        .await
        .expect("reconnect");
    let events = all_events(&db).await;
    let head = assert_gap_free(&events);
    assert_eq!(EventLog::new(db.clone()).head().await.expect("head"), head);
    assert!(
        head >= acks.len() as i64,
        "{} acks but only {head} events",
        acks.len()
    );

    let log = EventLog::new(db.clone());
    let mut positions = HashSet::new();
    for (id, position) in &acks {
        assert!(
            positions.insert(*position),
            "two acks for position {position}"
        );
        let stream = log
            .read_stream(&format!("notification-{id}"))
            .await
            .expect("read stream");
        let [sent] = stream.as_slice() else {
            panic!(
                "acked notification {id} has {} events in its stream",
                stream.len()
            );
        };
        assert_eq!(sent.event_type, "notification.sent", "{sent:?}");
        assert_eq!(
            sent.position, *position,
            "notification {id} was acked at another position"
        );
        assert_eq!(
            sent.data.to_value()["notification_id"],
            serde_json::json!(id.to_string())
        );
        let data = sent.data.to_value();
        let recipient = data["recipient"].as_str().expect("recipient");
        let entry = read::notification(&db, &user(recipient), *id)
            .await
            .expect("query the inbox")
            .unwrap_or_else(|| panic!("acked notification {id} is not in {recipient}'s inbox"));
        assert_eq!(entry.sent_position, *position);
    }
    assert_replay_finds_no_differences(&db).await;

    // The store is usable after the crash: the next send continues the log.
    let engine = store.engine().await;
    let after = engine.send(&["ann"], "general", "After the crash").await;
    engine.stop().await;
    assert_eq!(after.deliveries.len(), 1);
    assert_eq!(after.deliveries[0].position, head + 1);
    let entry = read::notification(&db, &user("ann"), after.deliveries[0].notification_id)
        .await
        .expect("query the inbox")
        .expect("the send after the crash is in ann's inbox");
    assert_eq!(entry.title, "After the crash");
    db.close().await;
}

async fn two_processes_appending_at_once_get_gap_free_positions(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let load = Load {
        count: 1_500,
        concurrency: 8,
        users: 50,
        print_acks: false,
    };
    let first = load.spawn(&store.url);
    let second = load.spawn(&store.url);
    let first = first.finish(Duration::from_secs(300)).await;
    let second = second.finish(Duration::from_secs(300)).await;
    first.assert_success();
    second.assert_success();

    let events = all_events(&store.db).await;
    assert_eq!(assert_gap_free(&events), 3_000);
    let mut streams: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in &events {
        assert_eq!(e.event_type, "notification.sent", "{e:?}");
        streams
            .entry(&e.stream_id)
            .or_default()
            .push(e.stream_version);
    }
    assert_eq!(
        streams.len(),
        3_000,
        "every send starts a stream of its own"
    );
    for (stream, versions) in &streams {
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(
            versions, &expected,
            "stream {stream} has versions {versions:?}"
        );
    }
    // Both processes' sends are in (titles are `Load <task>-<i>`, the same set in each).
    let mut per_title: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *per_title
            .entry(
                e.data.to_value()["title"]
                    .as_str()
                    .expect("title")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert_eq!(per_title.len(), 1_500);
    assert!(
        per_title.values().all(|&n| n == 2),
        "each title should be sent once by each process"
    );

    let mut inbox_total = 0;
    for u in 0..50 {
        inbox_total += read::counts(&store.db, &user(&format!("user-{u}")))
            .await
            .expect("counts")
            .unread;
    }
    assert_eq!(
        inbox_total, 3_000,
        "every send is unread in someone's inbox"
    );
    assert_replay_finds_no_differences(&store.db).await;
}

crate::on_both_backends!(
    acknowledged_sends_survive_a_sigkill_and_the_read_model_equals_a_replay,
    two_processes_appending_at_once_get_gap_free_positions,
);
