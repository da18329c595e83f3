//! A load generator in a process of its own, for the crash tests. It is this test binary
//! started again to run only [`child`], which appends sends as fast as it can and, when asked,
//! prints each acknowledged one as `acked <notification id> <position>`, flushed at once, so a
//! test that kills it knows exactly what was acknowledged. It is not part of the shipped binary.

use std::io::Write;
use std::process::{Command, Stdio};

use belfry::config::Settings;
use belfry::domain::Command as DomainCommand;
use belfry::domain::SendInput;
use belfry::engine::Engine;
use belfry::eventlog::Metadata;
use belfry::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use crate::cli::Running;

/// Where the child finds its load: `<database url> <count> <concurrency> <users> <print acks>`.
const LOAD: &str = "BELFRY_TEST_LOADGEN";

/// A load to run in a child process.
pub(crate) struct Load {
    pub count: u64,
    pub concurrency: u64,
    pub users: u64,
    pub print_acks: bool,
}

impl Load {
    /// The command that runs this load against `url` in a new process.
    pub(crate) fn command(&self, url: &str) -> Command {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut cmd = Command::new(exe);
        // Terse output, so the harness writes nothing on the lines the child prints.
        cmd.args(["loadgen::child", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1", "--quiet"])
            .env(
                LOAD,
                format!(
                    "{url} {} {} {} {}",
                    self.count, self.concurrency, self.users, self.print_acks
                ),
            )
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts the load against `url` without waiting for it.
    pub(crate) fn spawn(&self, url: &str) -> Running {
        Running::start(
            self.command(url),
            format!("loadgen of {} sends", self.count),
        )
    }
}

/// The `acked` line of one acknowledged send, or `None` for any other line the harness prints.
pub(crate) fn ack_line(line: &str) -> Option<&str> {
    line.strip_prefix("acked ")
}

#[test]
#[ignore = "the crash tests run it in a process of its own"]
fn child() {
    let Ok(load) = std::env::var(LOAD) else {
        eprintln!("loadgen::child runs only as the crash tests' child process");
        return;
    };
    let words: Vec<&str> = load.split(' ').collect();
    let [url, count, concurrency, users, print_acks] = words[..] else {
        panic!("{LOAD} must be `<url> <count> <concurrency> <users> <print acks>`: {load:?}");
    };
    let number = |w: &str| w.parse::<u64>().expect("a number");
    let load = Load {
        count: number(count),
        concurrency: number(concurrency).max(1),
        users: number(users).max(1),
        print_acks: print_acks == "true",
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run(url, load));
}

async fn run(url: &str, load: Load) {
    let settings = Settings {
        database_url: Some(url.to_owned().into()),
        ..Settings::default()
    };
    let db = belfry::app::open_db(&settings).await.expect("open the log");
    let stop = CancellationToken::new();
    let config = belfry::app::engine_config(&settings, Metrics::new());
    let (engine, appender) = Engine::start(db, config, stop.clone())
        .await
        .expect("start the engine");
    let (acks, mut acked) = tokio::sync::mpsc::channel::<String>(1_024);
    let per_task = load.count.div_ceil(load.concurrency);
    let mut tasks = Vec::new();
    for t in 0..load.concurrency {
        let engine = engine.clone();
        let acks = acks.clone();
        let n = per_task.min(load.count.saturating_sub(t * per_task));
        let (users, print_acks) = (load.users, load.print_acks);
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let input = SendInput {
                    recipients: vec![format!("user-{}", (t * per_task + i) % users)],
                    title: format!("Load {t}-{i}"),
                    ..SendInput::default()
                };
                let send = crate::helpers::parse_send(input);
                let outcome = engine
                    .execute(DomainCommand::Send(send), Metadata::default())
                    .await
                    .expect("the send is acknowledged");
                for d in outcome.deliveries.iter().filter(|_| print_acks) {
                    let line = format!("acked {} {}", d.notification_id, d.position);
                    if acks.send(line).await.is_err() {
                        return;
                    }
                }
            }
        }));
    }
    drop(acks);
    let printer = tokio::task::spawn_blocking(move || {
        let mut out = std::io::stdout().lock();
        // A fresh line first, whatever the harness printed before.
        let _ = writeln!(out).and_then(|()| out.flush());
        while let Some(line) = acked.blocking_recv() {
            // Each line flushed: the crash test reads what was acknowledged before the kill.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });
    for task in tasks {
        task.await.expect("a load task");
    }
    stop.cancel();
    appender.await.expect("the appender");
    printer.await.expect("the printer");
}
