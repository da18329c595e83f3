//! The database goes away under a running server: requests fail fast as "unavailable,
//! retry" (503, `Retry-After`, `UNAVAILABLE`), never as bad credentials, `/readyz` says so
//! at once, and everything works again when the database is back. Postgres only: an
//! embedded SQLite file cannot become unreachable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use belfry::auth::{ApiKeys, Scope};
use secrecy::SecretString;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::app::{code, Node, SEND, WAIT};
use crate::helpers::{Backend, TestStore};

/// A TCP forwarder between the server and Postgres that can be cut: open connections are
/// dropped and new ones closed at once, as when the database host goes down.
struct Proxy {
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    fn start(listener: TcpListener, target: String) -> Proxy {
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (is_cut, all) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                all.lock().expect("links").push(link.abort_handle());
            }
        });
        Proxy { cut, links }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The `host:port` a Postgres URL names, and the URL with them replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (credentials, rest) = match rest.rsplit_once('@') {
        Some((c, r)) => (format!("{c}@"), r),
        None => (String::new(), rest),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let target = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    (
        target,
        format!("{scheme}://{credentials}127.0.0.1:{port}/{path}"),
    )
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: serde_json::Value,
}

async fn post(port: u16, auth: &str, body: serde_json::Value) -> Answer {
    let response = crate::app::http()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .bearer_auth(auth)
        .json(&body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.expect("a JSON body");
    Answer {
        status,
        retry_after,
        body,
    }
}

fn send(title: &str) -> serde_json::Value {
    json!({ "query": SEND, "variables": { "input": { "recipients": ["ann"], "title": title } } })
}

fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {}", answer.body);
    assert_eq!(answer.retry_after.as_deref(), Some("1"), "{what}");
    assert_eq!(code(&answer.body), "UNAVAILABLE", "{what}: {}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_answered_as_unavailable_and_recovered_from() {
    let Some(store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let keys = ApiKeys::new(store.db.clone());
    let (used, _) = keys.create("used", &[Scope::Send]).await.expect("key");
    let (unused, _) = keys.create("unused", &[Scope::Send]).await.expect("key");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (target, url) = through(&store.url, listener.local_addr().expect("addr").port());
    let proxy = Proxy::start(listener, target);
    let mut settings = crate::app::test_settings(&store);
    settings.database_url = Some(SecretString::from(url));
    settings.api_key_cache_secs = 60;
    settings.db_acquire_timeout_ms = 500;
    let node = Node::start(&settings).await;
    let port = node.port;
    let token = belfry::auth::TokenVerifier::hs256(crate::app::SECRET.as_bytes(), Duration::ZERO)
        .expect("verifier")
        .mint(&crate::helpers::user("ann"), Duration::from_secs(600))
        .expect("token");

    let sent = post(port, &used, send("before")).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    proxy.cut();

    // The key is cached: the send reaches the appender, whose transaction cannot begin.
    assert_unavailable(&post(port, &used, send("during")).await, "a send");
    // A key not seen yet cannot be checked: unavailable, not "bad key".
    assert_unavailable(&post(port, &unused, send("during")).await, "a new key");
    let counts = json!({ "query": "{ counts { unread } }" });
    assert_unavailable(&post(port, &token, counts.clone()).await, "a query");
    let ready = crate::app::http_get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 503);
    let health = crate::app::http_get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);

    proxy.restore();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = post(port, &unused, send("after")).await;
        if answer.status == 200 {
            assert!(answer.body.get("errors").is_none(), "{}", answer.body);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recovery: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = post(port, &token, counts).await;
    assert_eq!(
        answer.body["data"]["counts"]["unread"], 2,
        "{}",
        answer.body
    );
    node.stop().await;
}
