//! Logs a log shipper can read, and a request id a support request can quote: `belfry serve`
//! with `log_format = json` writes one JSON object per line, and every HTTP request and
//! WebSocket connection has an id, in its response, its errors and its log lines.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::app::Ws;
use crate::helpers::{Backend, TestStore};

pub(crate) const SECRET: &str = "logs-test-secret-that-is-long-enough-0123";

/// `belfry serve` as a child process, with JSON logs at debug level; its port, and its stderr
/// once it is stopped.
pub(crate) struct Server {
    child: Child,
    pub port: u16,
    stderr: std::thread::JoinHandle<String>,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(store: &TestStore) -> Server {
        Self::start_with(store, &[])
    }

    /// A server with `env` added to its environment.
    pub(crate) fn start_with(store: &TestStore, env: &[(&str, &str)]) -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let mut command = crate::cli::command(&store.url, &["serve"]);
        command.envs(env.iter().copied());
        let mut child = command
            .env("BELFRY_LOG_FORMAT", "json")
            .env("BELFRY_LOG", "info,belfry=debug")
            .env("BELFRY_LISTEN", "127.0.0.1:0")
            .env("BELFRY_JWT_SECRET", SECRET)
            .env("BELFRY_DEMO", "false")
            .env("BELFRY_DATA_DIR", data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start belfry serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let port = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server prints where it listens");
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let port = rest.split(' ').next().expect("a port");
                break port.parse().expect("a port number");
            }
        };
        Server {
            child,
            port,
            stderr,
            _data: data,
        }
    }

    /// Stops the server (SIGTERM, as an orchestrator would) and returns what it logged.
    pub(crate) fn stop(self) -> String {
        self.signal(rustix::process::Signal::TERM)
    }

    /// Kills the server with SIGKILL: no shutdown, nothing flushed; returns what it logged.
    pub(crate) fn kill(self) -> String {
        self.signal(rustix::process::Signal::KILL)
    }

    fn signal(mut self, signal: rustix::process::Signal) -> String {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, signal).expect("signal the server");
        self.child.wait().expect("the server exits");
        self.stderr.join().expect("stderr reader")
    }
}

pub(crate) fn token(user: &str) -> String {
    belfry::auth::TokenVerifier::hs256(SECRET.as_bytes(), Duration::ZERO)
        .expect("verifier")
        .mint(&crate::helpers::user(user), Duration::from_secs(600))
        .expect("token")
}

async fn logs_are_json_lines_and_a_request_id_ties_errors_to_them(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let server = Server::start(&store);
    let url = format!("http://127.0.0.1:{}/graphql", server.port);
    let http = crate::app::http();

    // An id a proxy sent is kept; the error quotes it.
    let response = http
        .post(&url)
        .header("x-request-id", "support-case-7")
        .bearer_auth(token("ann"))
        .json(&json!({ "query": "{ noSuchField }" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.headers()["x-request-id"], "support-case-7");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"], "support-case-7",
        "{body}"
    );

    // Without one (or with one that could break a log line), the server makes one, and
    // refusals before execution carry it too.
    let response = http
        .post(&url)
        .header("x-request-id", "two words")
        .bearer_auth("not-a-token")
        .json(&json!({ "query": "{ viewerId }" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 401);
    let made = response.headers()["x-request-id"]
        .to_str()
        .expect("text")
        .to_owned();
    assert_eq!(made.len(), 32, "{made}");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["extensions"]["requestId"], made.as_str());

    // A socket's errors carry the id of its upgrade request.
    let mut ws = Ws::connect(server.port, "graphql-transport-ws").await;
    ws.init(json!({ "Authorization": format!("Bearer {}", token("ann")) }))
        .await;
    ws.subscribe("s", "subscription { noSuchField }", json!({}))
        .await;
    let error = ws.next().await;
    assert_eq!(error["type"], "error", "{error}");
    let socket_id = error["payload"][0]["extensions"]["requestId"]
        .as_str()
        .unwrap_or_else(|| panic!("a request id: {error}"))
        .to_owned();
    assert_eq!(socket_id.len(), 32, "{socket_id}");
    assert_ne!(socket_id, made);
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let logged = server.stop();
    let lines: Vec<Value> = logged
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line[field].is_string(), "no {field}: {line}");
        }
    }
    let of = |id: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    let answered = of("support-case-7");
    assert!(
        answered.iter().any(|l| l["message"] == "request answered"
            && l["status"] == 200
            && l["span"]["path"] == "/graphql"
            && l["level"] == "DEBUG"),
        "the request's own line: {answered:?}\n{logged}"
    );
    assert!(
        of(&made)
            .iter()
            .any(|l| l["message"] == "request answered" && l["status"] == 401),
        "{logged}"
    );
    let socket = of(&socket_id);
    for message in ["socket opened", "socket closed"] {
        assert!(
            socket.iter().any(|l| l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))),
            "{message}: {socket:?}\n{logged}"
        );
    }
}

crate::on_both_backends!(logs_are_json_lines_and_a_request_id_ties_errors_to_them);
