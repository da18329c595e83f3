//! `spawn_app`: the real server on port 0 over a fresh store, with typed client helpers for
//! GraphQL over HTTP and WebSocket, as an application would talk to it.

use std::sync::Arc;
use std::time::Duration;

use belfry::app::Application;
use belfry::auth::{ApiKeys, Scope, TokenVerifier};
use belfry::clock::{Clock, SystemClock};
use belfry::config::Settings;
use belfry::domain::UserId;
use futures_util::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Backend, TestStore};

pub const SECRET: &str = "test-secret-that-is-long-enough-0123456789";
/// How long a test waits for a message that should come; a failure, never a pause.
pub const WAIT: Duration = Duration::from_secs(15);

/// Settings for a server on `store`: port 0, a known secret, files in the store's temp dir.
pub fn test_settings(store: &TestStore) -> Settings {
    Settings {
        database_url: Some(SecretString::from(store.url.clone())),
        data_dir: store.dir().to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        jwt_secret: Some(SecretString::from(SECRET)),
        ..Settings::default()
    }
}

/// One running server.
pub struct Node {
    pub port: u16,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    pub async fn start(settings: &Settings) -> Node {
        Self::start_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// A node that reads time from `clock` (its sends and its delivery workers).
    pub async fn start_with_clock(settings: &Settings, clock: Arc<dyn Clock>) -> Node {
        let app = Application::build_clocked(settings, clock)
            .await
            .expect("build the app");
        let port = app.port();
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(stop.clone()));
        Node {
            port,
            stop,
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has shut down cleanly.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("clean shutdown");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A server on a fresh store, with a service key (send + admin) and a token minter.
pub struct TestApp {
    pub store: TestStore,
    pub node: Node,
    pub key: String,
    http: reqwest::Client,
    tokens: TokenVerifier,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tune: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    spawn_app_clocked(backend, tune, Arc::new(SystemClock)).await
}

/// [`spawn_app_with`], its delivery workers reading time from `clock`.
pub async fn spawn_app_clocked(
    backend: Backend,
    tune: impl FnOnce(&mut Settings),
    clock: Arc<dyn Clock>,
) -> Option<TestApp> {
    let store = TestStore::new(backend).await?;
    let mut settings = test_settings(&store);
    tune(&mut settings);
    let node = Node::start_with_clock(&settings, clock).await;
    let key = ApiKeys::new(store.db.clone())
        .create("tests", &[Scope::Send, Scope::Admin])
        .await
        .expect("create key")
        .0;
    Some(TestApp {
        store,
        node,
        key,
        http: http(),
        tokens: TokenVerifier::hs256(SECRET.as_bytes(), Duration::ZERO).expect("verifier"),
    })
}

impl TestApp {
    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// A valid token for `user`.
    pub fn token(&self, user: &str) -> String {
        self.token_for(user, Duration::from_secs(600))
    }

    /// A token for `user` that expires after `ttl`.
    pub fn token_for(&self, user: &str, ttl: Duration) -> String {
        self.tokens
            .mint(&UserId::parse(user).expect("user id"), ttl)
            .expect("mint")
    }

    pub async fn key_with(&self, scopes: &[Scope]) -> String {
        ApiKeys::new(self.store.db.clone())
            .create("scoped", scopes)
            .await
            .expect("create key")
            .0
    }

    /// POSTs a GraphQL request with `auth` as the bearer credential; returns status and body.
    pub async fn post(&self, auth: Option<&str>, body: Value) -> (u16, Value) {
        post(&self.http, self.port(), auth, body).await
    }

    /// A GraphQL request; returns the response body.
    pub async fn graphql(&self, auth: Option<&str>, query: &str, variables: Value) -> Value {
        self.post(auth, json!({ "query": query, "variables": variables }))
            .await
            .1
    }

    /// A GraphQL request that must succeed; returns `data`.
    pub async fn data(&self, auth: &str, query: &str, variables: Value) -> Value {
        let body = self.graphql(Some(auth), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Sends a notification through the API with the service key; returns its deliveries.
    pub async fn send(&self, to: &[&str], title: &str) -> Vec<Value> {
        send(&self.http, self.port(), &self.key, to, title).await
    }

    /// A WebSocket (graphql-transport-ws) signed in as `user`, acknowledged.
    pub async fn ws(&self, user: &str) -> Ws {
        let mut ws = Ws::connect(self.port(), "graphql-transport-ws").await;
        ws.init(json!({ "Authorization": format!("Bearer {}", self.token(user)) }))
            .await;
        ws
    }

    /// The number of events in the log.
    pub async fn log_len(&self) -> usize {
        self.store.all_events().await.len()
    }
}

pub async fn post(
    http: &reqwest::Client,
    port: u16,
    auth: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = http
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .json(&body);
    if let Some(auth) = auth {
        request = request.header("Authorization", format!("Bearer {auth}"));
    }
    let response = request.send().await.expect("POST /graphql");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

pub const SEND: &str = "mutation($input: SendNotificationInput!) {
    sendNotification(input: $input) { replayed deliveries { recipient notificationId suppressed cursor } }
}";

pub async fn send(
    http: &reqwest::Client,
    port: u16,
    key: &str,
    to: &[&str],
    title: &str,
) -> Vec<Value> {
    let (_, body) = post(
        http,
        port,
        Some(key),
        json!({ "query": SEND, "variables": { "input": { "recipients": to, "title": title } } }),
    )
    .await;
    assert!(body.get("errors").is_none(), "send failed: {body}");
    body["data"]["sendNotification"]["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

/// A raw GraphQL WebSocket client.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Ws {
    pub async fn connect(port: u16, protocol: &str) -> Ws {
        let mut request = format!("ws://127.0.0.1:{port}/graphql")
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connect");
        assert_eq!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server speaks the requested sub-protocol"
        );
        Ws { stream }
    }

    /// A socket whose receive buffer is `bytes` small, so a client that stops reading stalls
    /// the server's sends soon, whatever the system's buffer tuning.
    pub async fn connect_small(port: u16, bytes: u32) -> Ws {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(bytes).expect("receive buffer");
        let tcp = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        let mut request = format!("ws://127.0.0.1:{port}/graphql")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
            .await
            .expect("WebSocket handshake");
        Ws { stream }
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("send on the socket");
    }

    /// Sends `connection_init` and expects `connection_ack`.
    pub async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = self.next().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id, "type": "subscribe",
            "payload": { "query": query, "variables": variables }
        }))
        .await;
    }

    /// The next protocol message (pings answered and skipped). Panics if the socket closes.
    pub async fn next(&mut self) -> Value {
        match self.next_or_close().await {
            Ok(message) => message,
            Err(closed) => panic!("socket closed: {closed:?}"),
        }
    }

    /// The next message's payload for operation `id`, which must be a `next`.
    pub async fn next_payload(&mut self, id: &str) -> Value {
        let message = self.next().await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        message["payload"].clone()
    }

    /// The next protocol message as the server wrote it (pings answered and skipped).
    pub async fn next_text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a message within the wait");
            match frame {
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(Message::Close(frame))) => panic!("socket closed: {frame:?}"),
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    }

    pub async fn next_or_close(&mut self) -> Result<Value, Closed> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a message within the wait");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(text.as_str()).expect("JSON message"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                    ))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Err(Closed {
                        code: 1006,
                        reason: e.to_string(),
                    })
                }
                None => {
                    return Err(Closed {
                        code: 1006,
                        reason: "stream ended".to_owned(),
                    })
                }
            }
        }
    }

    /// Waits for the server to close the socket; returns its code and reason.
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.next_or_close().await {
                return closed;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// The `extensions.code` of a response's first error.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// An HTTP client for the tests. reqwest is built with rustls but no crypto provider of its
/// own (the server's crates use ring), so the first client installs ring for the process.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `GET url` with [`http`].
pub async fn http_get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// `base` with every field of the object `extra` set on it (a test's input with its changes).
pub fn merged(mut base: Value, extra: &Value) -> Value {
    for (k, v) in extra.as_object().expect("an object") {
        base[k] = v.clone();
    }
    base
}

/// Sends `input` with the test's service key; the first recipient's notification id.
pub async fn send_first(app: &TestApp, input: Value) -> String {
    let query = "mutation($input: SendNotificationInput!) { \
        sendNotification(input: $input) { deliveries { notificationId } } }";
    app.data(&app.key, query, json!({ "input": input })).await["sendNotification"]["deliveries"][0]
        ["notificationId"]
        .as_str()
        .expect("an id")
        .to_owned()
}
