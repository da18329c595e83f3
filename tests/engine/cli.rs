//! The `belfry` command line, run as a child process against a test store.

use std::io::Read;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use belfry::eventlog::{Db, EventLog};
use belfry::projections::read;

use crate::helpers::{user, Backend, TestStore};

/// How long one CLI command may take before the test gives up on it (debug build).
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `belfry` child process, its output collected on background threads.
pub(crate) struct Running {
    what: String,
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// What a finished `belfry` command printed, and how it exited.
#[derive(Debug)]
pub(crate) struct Finished {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the output unless the command exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "`{}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics with the output unless the command failed.
    pub fn assert_failure(&self) -> &Self {
        assert!(
            !self.status.success(),
            "`{}` should have failed\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// A `belfry --database-url <url> <args>` command with short logging.
pub(crate) fn command(url: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_belfry"));
    cmd.arg("--database-url")
        .arg(url)
        .args(args)
        .env("BELFRY_LOG", "warn")
        .env_remove("RUST_LOG")
        .env_remove("BELFRY_CONFIG")
        .stdin(Stdio::null());
    cmd
}

/// Starts `belfry --database-url <url> <args>` without waiting for it.
pub(crate) fn spawn(url: &str, args: &[&str]) -> Running {
    Running::start(command(url, args), format!("belfry {}", args.join(" ")))
}

impl Running {
    /// Starts `cmd`, collecting its output; `what` names it in failures.
    pub(crate) fn start(mut cmd: std::process::Command, what: String) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Running {
            what,
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the process to exit, killing it (and failing) after `timeout`.
    pub async fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.join().unwrap_or_default();
                panic!(
                    "`{}` did not finish within {timeout:?}\nstderr:\n{stderr}",
                    self.what
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        Finished {
            what: self.what,
            status,
            stdout: self.stdout.join().expect("stdout reader"),
            stderr: self.stderr.join().expect("stderr reader"),
        }
    }
}

/// `belfry replay --verify` finds the live projections equal to a rebuild from the log.
pub(crate) async fn assert_replay_is_clean(url: &str) {
    let verified = belfry(url, &["replay", "--verify"]).await;
    verified.assert_success();
    assert!(
        verified.stdout.contains("no differences"),
        "{}",
        verified.stdout
    );
}

/// Runs `belfry --database-url <url> <args>` to completion.
pub(crate) async fn belfry(url: &str, args: &[&str]) -> Finished {
    spawn(url, args).finish(CLI_TIMEOUT).await
}

async fn head(db: &Db) -> i64 {
    EventLog::new(db.clone()).head().await.expect("head")
}

/// The `notifications` of a `belfry send` JSON answer as (id, recipient, position), and `replayed`.
fn sent(finished: &Finished) -> (Vec<(String, String, i64)>, bool) {
    let json: serde_json::Value =
        serde_json::from_str(finished.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON ({e}): {}",
                finished.what, finished.stdout
            )
        });
    let notifications = json["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications in {json}"))
        .iter()
        .map(|n| {
            assert_eq!(n["suppressed"], serde_json::json!(false), "{json}");
            (
                n["id"].as_str().expect("id").to_owned(),
                n["recipient"].as_str().expect("recipient").to_owned(),
                n["position"].as_i64().expect("position"),
            )
        })
        .collect();
    let replayed = json["replayed"]
        .as_bool()
        .unwrap_or_else(|| panic!("no replayed in {json}"));
    (notifications, replayed)
}

async fn migrate_send_replay_and_verify_work_from_the_command_line(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    // On SQLite the CLI creates a database file of its own; on Postgres it uses the test database.
    let db_file = store.dir().join("cli.db");
    let url = match store.backend {
        Backend::Sqlite => format!("sqlite://{}", db_file.display()),
        Backend::Postgres => store.url.clone(),
    };

    let migrated = belfry(&url, &["migrate"]).await;
    migrated.assert_success();
    assert!(
        migrated.stdout.contains("event log migrated"),
        "{}",
        migrated.stdout
    );
    assert!(
        !migrated.stdout.contains("needs `belfry replay`"),
        "{}",
        migrated.stdout
    );
    if backend == Backend::Sqlite {
        assert!(
            db_file.is_file(),
            "migrate did not create {}",
            db_file.display()
        );
    }
    let db = Db::connect(&url, &crate::helpers::db_options())
        .await
        .expect("connect");
    assert_eq!(head(&db).await, 0);

    let send = [
        "send",
        "--to",
        "ann",
        "--to",
        "bob",
        "--title",
        "Build failed",
        "--category",
        "builds",
        "--priority",
        "high",
    ];
    let first = belfry(&url, &send).await;
    first.assert_success();
    let (notifications, replayed) = sent(&first);
    assert!(!replayed);
    let who_where: Vec<(&str, i64)> = notifications
        .iter()
        .map(|(_, r, p)| (r.as_str(), *p))
        .collect();
    assert_eq!(who_where, [("ann", 1), ("bob", 2)]);
    let ann_1 = read::notification(
        &db,
        &user("ann"),
        belfry::domain::NotificationId::parse(&notifications[0].0).expect("uuid"),
    )
    .await
    .expect("query")
    .expect("ann has the notification the CLI reported");
    assert_eq!(
        (
            ann_1.title.as_str(),
            ann_1.category.as_str(),
            ann_1.priority.as_str()
        ),
        ("Build failed", "builds", "high")
    );

    let keyed: Vec<&str> = send
        .iter()
        .copied()
        .chain(["--idempotency-key", "k1"])
        .collect();
    let once = belfry(&url, &keyed).await;
    once.assert_success();
    let (once_notifications, once_replayed) = sent(&once);
    assert!(!once_replayed);
    let positions: Vec<i64> = once_notifications.iter().map(|n| n.2).collect();
    assert_eq!(positions, [3, 4]);
    let again = belfry(&url, &keyed).await;
    again.assert_success();
    let (again_notifications, again_replayed) = sent(&again);
    assert!(
        again_replayed,
        "the retry with key k1 was not reported as replayed: {}",
        again.stdout
    );
    assert_eq!(
        again_notifications, once_notifications,
        "a retry returns the first send's notifications"
    );
    assert_eq!(head(&db).await, 4, "the retry appended something");
    let conflicting: Vec<&str> = keyed
        .iter()
        .map(|a| {
            if *a == "Build failed" {
                "Build fixed"
            } else {
                a
            }
        })
        .collect();
    let conflict = belfry(&url, &conflicting).await;
    conflict.assert_failure();
    assert!(
        conflict.stderr.contains("idempotency key \"k1\""),
        "the error does not name the reused key: {}",
        conflict.stderr
    );
    assert_eq!(head(&db).await, 4, "a conflicting send appended something");

    let bad: Vec<&str> = send
        .iter()
        .map(|a| if *a == "builds" { "Bad Cat" } else { a })
        .collect();
    let refused = belfry(&url, &bad).await;
    refused.assert_failure();
    assert!(
        refused.stderr.contains("category"),
        "the error does not name the field: {}",
        refused.stderr
    );
    assert_eq!(head(&db).await, 4, "a refused send appended something");

    let counts = read::counts(&db, &user("ann")).await.expect("counts");
    assert_eq!((counts.unread, counts.unseen), (2, 2));

    let rebuilt = belfry(&url, &["replay"]).await;
    rebuilt.assert_success();
    assert!(rebuilt.stdout.contains("rebuilt"), "{}", rebuilt.stdout);
    assert!(
        rebuilt.stdout.contains("from 4 events"),
        "{}",
        rebuilt.stdout
    );
    assert_eq!(
        read::counts(&db, &user("ann")).await.expect("counts"),
        counts,
        "a rebuild changed ann's counts"
    );

    let one = belfry(&url, &["replay", "--projection", "inbox"]).await;
    one.assert_success();
    assert!(
        one.stdout.contains("rebuilt inbox from 4 events"),
        "{}",
        one.stdout
    );
    assert!(
        read::notification(&db, &user("ann"), ann_1.notification_id)
            .await
            .expect("query")
            .is_some(),
        "ann's notification is gone after rebuilding the inbox"
    );

    let unknown = belfry(&url, &["replay", "--projection", "nope"]).await;
    unknown.assert_failure();
    assert_eq!(
        unknown.code(),
        Some(2),
        "errors exit 2; 1 means verify found differences"
    );
    for name in [
        "nope",
        "inbox",
        "unread_counters",
        "preferences",
        "idempotency_keys",
    ] {
        assert!(
            unknown.stderr.contains(name),
            "the error does not name {name:?}: {}",
            unknown.stderr
        );
    }

    let verified = belfry(&url, &["replay", "--verify"]).await;
    verified.assert_success();
    assert!(
        verified.stdout.contains("no differences"),
        "{}",
        verified.stdout
    );
    assert_eq!(head(&db).await, 4);
}

async fn replay_verify_exits_1_and_names_the_row_when_the_read_model_was_tampered_with(
    backend: Backend,
) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let outcome = engine.send(&["ann"], "builds", "Build failed").await;
    engine.send(&["bob"], "builds", "Build failed").await;
    engine.stop().await;
    let id = outcome.deliveries[0].notification_id;

    let clean = belfry(&store.url, &["replay", "--verify"]).await;
    clean.assert_success();
    assert!(clean.stdout.contains("no differences"), "{}", clean.stdout);

    // Tamper with the read model behind the engine's back.
    let tamper = "UPDATE unread_counters SET unread = unread + 5 WHERE recipient = 'ann' AND category = 'builds'";
    let changed = store.execute_raw(tamper).await.expect("tamper");
    assert_eq!(changed, 1);
    assert_eq!(
        read::counts(&store.db, &user("ann"))
            .await
            .expect("counts")
            .unread,
        6,
        "the tampering did not show"
    );

    let caught = belfry(&store.url, &["replay", "--verify"]).await;
    assert_eq!(
        caught.code(),
        Some(1),
        "verify should exit 1\nstdout:\n{}\nstderr:\n{}",
        caught.stdout,
        caught.stderr
    );
    assert!(
        caught
            .stdout
            .contains("unread_counters ann/builds (only in live)"),
        "{}",
        caught.stdout
    );
    assert!(
        caught
            .stdout
            .contains("unread_counters ann/builds (only in rebuild)"),
        "{}",
        caught.stdout
    );
    assert!(
        caught.stdout.contains("2 rows differ"),
        "only ann's counter row differs: {}",
        caught.stdout
    );
    assert!(
        !caught.stdout.contains("bob"),
        "bob's rows were not touched: {}",
        caught.stdout
    );
    assert_eq!(
        read::counts(&store.db, &user("ann"))
            .await
            .expect("counts")
            .unread,
        6,
        "verify changed the read model"
    );

    belfry(&store.url, &["replay"]).await.assert_success();
    let counts = read::counts(&store.db, &user("ann")).await.expect("counts");
    assert_eq!(
        (counts.unread, counts.unseen),
        (1, 1),
        "replay did not repair ann's counter"
    );
    assert!(read::notification(&store.db, &user("ann"), id)
        .await
        .expect("query")
        .is_some());

    let repaired = belfry(&store.url, &["replay", "--verify"]).await;
    repaired.assert_success();
    assert!(
        repaired.stdout.contains("no differences"),
        "{}",
        repaired.stdout
    );
}

async fn keys_list_lines_its_columns_up(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    belfry(&store.url, &["keys", "create", "--name", "billing"])
        .await
        .assert_success();
    belfry(&store.url, &["keys", "create", "--name", "deploys"])
        .await
        .assert_success();
    let listed = belfry(&store.url, &["keys", "list"]).await;
    listed.assert_success();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", listed.stdout);
    // Each column starts where its heading does.
    let starts = |line: &str| -> Vec<usize> {
        let mut starts = vec![0];
        let bytes = line.as_bytes();
        for i in 1..bytes.len() {
            if bytes[i] != b' ' && bytes[i - 1] == b' ' {
                starts.push(i);
            }
        }
        starts
    };
    let heading = starts(lines[0]);
    assert_eq!(heading.len(), 5, "{}", lines[0]);
    for row in &lines[1..] {
        assert_eq!(starts(row), heading, "\n{}\n{row}", lines[0]);
    }
}

crate::on_both_backends!(
    keys_list_lines_its_columns_up,
    migrate_send_replay_and_verify_work_from_the_command_line,
    replay_verify_exits_1_and_names_the_row_when_the_read_model_was_tampered_with,
);

/// A setting from the environment is checked like one from the file: a bad one stops every
/// command before it touches the database, and the error names it.
#[tokio::test]
async fn a_bad_setting_in_the_environment_stops_belfry_naming_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("belfry.db").display());
    let mut cmd = command(&url, &["migrate"]);
    cmd.env("BELFRY_PREFERENCES_URL", "/settings/notifications");
    let finished = Running::start(cmd, "belfry migrate".to_owned())
        .finish(CLI_TIMEOUT)
        .await;
    assert_eq!(finished.code(), Some(2), "{finished:?}");
    assert!(
        finished.stderr.contains(
            "preferences_url = \"/settings/notifications\" is not an absolute http(s) URL"
        ),
        "{}",
        finished.stderr
    );
    assert!(
        !dir.path().join("belfry.db").exists(),
        "the database was created"
    );

    let mut cmd = command(&url, &["migrate"]);
    cmd.env(
        "BELFRY_PREFERENCES_URL",
        "https://app.example.com/settings/notifications",
    );
    Running::start(cmd, "belfry migrate".to_owned())
        .finish(CLI_TIMEOUT)
        .await
        .assert_success();
}
