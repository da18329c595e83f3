//! A real `belfry serve` in a child process on a fresh database: configured through `BELFRY_*`
//! variables, with a service key made by `belfry keys create` and user tokens signed with the
//! secret it was given. Its open-file limit is raised with `prlimit` for many sockets.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use std::process::{Child, Command};

use belfry::auth::TokenVerifier;
use belfry::domain::UserId;

use crate::store::Store;
use crate::BackendArg;

/// The open-file limit the tool and the server run with.
pub const NOFILE: u64 = 1_000_000;

pub struct Server {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub key: String,
    /// The open-file limit of the server and the tool.
    pub nofile: u64,
    tokens: TokenVerifier,
    store: Option<Store>,
    _data: tempfile::TempDir,
}

fn belfry() -> &'static str {
    env!("CARGO_BIN_EXE_belfry")
}

/// Raises the open-file limit of a process (this one or a child) as far as allowed: without
/// `CAP_SYS_RESOURCE` it stays at the hard limit. Returns the limit in force.
pub fn raise_nofile(pid: u32) -> anyhow::Result<u64> {
    let raised = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={NOFILE}:{NOFILE}"),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !raised {
        let hard = nofile(pid).1;
        std::process::Command::new("prlimit")
            .args([
                "--pid",
                &pid.to_string(),
                &format!("--nofile={hard}:{hard}"),
            ])
            .status()
            .context("Failed to run prlimit")?;
    }
    Ok(nofile(pid).0)
}

/// The soft and hard open-file limits of a process.
pub fn nofile(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (
        v.first().copied().unwrap_or(0),
        v.get(1).copied().unwrap_or(0),
    )
}

impl Server {
    /// Starts `belfry serve` on a fresh database; `extra` are more `BELFRY_*` settings.
    pub async fn start(
        backend: BackendArg,
        pg_admin: &str,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        let store = Store::create(backend, pg_admin).await?;
        let data = tempfile::Builder::new()
            .prefix("belfry-bench-data-")
            .tempdir()?;
        let secret = format!(
            "{:032x}{:032x}",
            uuid::Uuid::new_v4().as_u128(),
            uuid::Uuid::new_v4().as_u128()
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let env: Vec<(String, String)> = [
            ("BELFRY_DATABASE_URL", store.url.clone()),
            ("BELFRY_DATA_DIR", data.path().display().to_string()),
            ("BELFRY_JWT_SECRET", secret.clone()),
            ("BELFRY_LISTEN", format!("127.0.0.1:{port}")),
            ("BELFRY_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();

        let output = Command::new(belfry())
            .args([
                "keys", "create", "--name", "bench", "--scope", "send", "--scope", "admin",
            ])
            .envs(env.iter().cloned())
            .output()
            .context("Failed to run belfry keys create")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let key = stdout
            .split_whitespace()
            .find(|w| w.starts_with("bfk_"))
            .with_context(|| {
                format!(
                    "no key in the output of keys create: {stdout} {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })?
            .to_owned();

        let nofile = raise_nofile(std::process::id())?;
        let child = Command::new(belfry())
            .arg("serve")
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("Failed to start belfry serve")?;
        let pid = child.id();
        let nofile = nofile.min(raise_nofile(pid)?);
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "belfry serve did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let tokens = TokenVerifier::hs256(secret.as_bytes(), Duration::from_secs(30))?;
        Ok(Server {
            child,
            pid,
            url,
            key,
            nofile,
            tokens,
            store: Some(store),
            _data: data,
        })
    }

    /// A token that signs in as `user`.
    pub fn token(&self, user: &str) -> anyhow::Result<String> {
        let user = UserId::parse(user).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.tokens.mint(&user, Duration::from_secs(24 * 3600))
    }

    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.url.replacen("http", "ws", 1))
    }

    /// A gauge from `/metrics`, e.g. `belfry_live_subscribers`.
    pub async fn gauge(&self, name: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await?
            .text()
            .await?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /metrics"))
    }

    /// Runs SQL on the server's database through a connection of its own.
    pub async fn db(&self) -> anyhow::Result<belfry::eventlog::Db> {
        self.store.as_ref().context("no store")?.db().await
    }

    /// Stops the server (SIGTERM, then waits) and drops its database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let started = Instant::now();
        while self.child.try_wait()?.is_none() {
            if started.elapsed() > Duration::from_secs(20) {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(store) = self.store.take() {
            store.drop_db().await?;
        }
        Ok(())
    }
}
