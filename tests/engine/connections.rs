//! Connections that hold on: headers sent a byte at a time, idle keep-alives, more sockets
//! than the cap, stalled bodies, and WebSockets that misbehave or outlive their token. Each
//! ends the way the README says, and the server goes on serving others.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::app::{spawn_app_with, Ws, WAIT};
use crate::helpers::Backend;
use crate::live::COUNTS;

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection (or resets it); returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection within the wait");
    String::from_utf8_lossy(&out).into_owned()
}

const GET_HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Sends one keep-alive request and reads its whole response; the connection stays open.
async fn keep_alive(stream: &mut TcpStream) -> String {
    stream.write_all(GET_HEALTH).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("a response")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn headers_sent_a_byte_at_a_time_are_cut_off(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.http_header_timeout_secs = 1).await else {
        return;
    };
    let mut stream = connect(app.port()).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    // Four bytes a second, for up to twenty seconds: the server must close before the end.
    let mut closed = false;
    for _ in 0..80 {
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "a connection dribbling its headers stays open");
    let mut fresh = connect(app.port()).await;
    assert!(keep_alive(&mut fresh).await.starts_with("HTTP/1.1 200"));
}

async fn an_idle_keep_alive_connection_is_closed(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.http_header_timeout_secs = 1).await else {
        return;
    };
    let mut stream = connect(app.port()).await;
    assert!(keep_alive(&mut stream).await.starts_with("HTTP/1.1 200"));
    // No next request: the server closes the connection.
    read_to_close(&mut stream).await;
}

/// The value of one metric line of `/metrics`, read over a connection of its own.
async fn metric(port: u16, name: &str) -> String {
    let mut stream = connect(port).await;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    answer
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {answer}"))
        .trim()
        .to_owned()
}

async fn at_the_cap_a_new_connection_takes_the_place_of_the_oldest_idle_one(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.http_max_connections = 3).await else {
        return;
    };
    let mut oldest = connect(app.port()).await;
    assert!(keep_alive(&mut oldest).await.starts_with("HTTP/1.1 200"));
    // A WebSocket holds its place and is never taken for idle.
    let ws = app.ws("ann").await;
    let mut younger = connect(app.port()).await;

    let mut over = connect(app.port()).await;
    assert!(keep_alive(&mut over).await.starts_with("HTTP/1.1 200"));
    assert_eq!(
        read_to_close(&mut oldest).await,
        "",
        "the oldest idle one is closed"
    );
    assert!(keep_alive(&mut younger).await.starts_with("HTTP/1.1 200"));
    ws.close().await;
    drop((younger, over));
    let evicted: u64 = metric(app.port(), "belfry_http_connections_evicted_total")
        .await
        .parse()
        .expect("a count");
    assert!(evicted >= 1);
}

async fn connections_over_the_cap_are_refused_with_503_when_none_is_idle(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.http_max_connections = 2).await else {
        return;
    };
    let first = app.ws("ann").await;
    let second = app.ws("bob").await;

    let mut over = connect(app.port()).await;
    let answer = read_to_close(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("Retry-After: 1"), "{answer:?}");

    // Closing one frees its place.
    first.close().await;
    let refused = loop {
        let mut stream = connect(app.port()).await;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let answer = read_to_close(&mut stream).await;
        if answer.starts_with("HTTP/1.1 200") {
            assert!(answer.contains("belfry_http_connections 2"), "{answer}");
            break answer
                .lines()
                .find_map(|l| l.strip_prefix("belfry_http_connections_refused_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The one above, and any of the retries made before the closed socket's place was free.
    assert!(refused >= 1);
    second.close().await;
}

async fn a_request_whose_body_stalls_gets_408(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.http_request_timeout_secs = 1).await else {
        return;
    };
    let mut stream = connect(app.port()).await;
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("an answer within the wait")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// A token signed with no algorithm, its payload padded to make the decoder's complaint long.
fn unsigned_token() -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(
        json!({ "sub": "ann", "exp": 4_000_000_000u64, "pad": "x".repeat(300) }).to_string(),
    );
    format!("{header}.{payload}.")
}

async fn refused_credentials_get_a_close_frame_that_fits(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    for token in [unsigned_token(), format!("{}x", "e".repeat(300))] {
        let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
        ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let closed = ws.closed().await;
        assert_eq!(closed.code, 4403, "{closed:?}");
        // In the client's terms, not the decoder's (no base64 offsets, no JSON internals).
        assert_eq!(
            closed.reason,
            "Forbidden: the token is malformed: it is not a JWT this server can read"
        );
    }
}

async fn oversized_and_invalid_frames_get_their_close_codes(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.max_body_bytes = 64 * 1024).await else {
        return;
    };
    let mut ws = app.ws("ann").await;
    ws.send_text(&"x".repeat(100 * 1024)).await;
    assert_eq!(ws.closed().await.code, 1009, "a message over the limit");

    let mut request = format!("ws://127.0.0.1:{}/graphql", app.port())
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut raw, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let frame = Frame::message(vec![0xff, 0xfe, 0x7b], OpCode::Data(Data::Text), true);
    raw.send(Message::Frame(frame)).await.expect("send");
    let code = loop {
        match tokio::time::timeout(WAIT, raw.next())
            .await
            .expect("a close")
        {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => break 1005,
            Some(Err(e)) => panic!("no close frame: {e}"),
            Some(Ok(_)) => continue,
        }
    };
    assert_eq!(code, 1007, "a text frame that is not UTF-8");
}

async fn a_socket_closes_when_its_token_expires(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.jwt_leeway_secs = 0).await else {
        return;
    };
    let token = app.token_for("ann", Duration::from_secs(2));
    let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
    ws.init(json!({ "Authorization": format!("Bearer {token}") }))
        .await;
    ws.subscribe("c", COUNTS, json!({})).await;
    ws.next_payload("c").await;
    let closed = ws.closed().await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (4403, "Forbidden: the token has expired")
    );
}

async fn an_anonymous_socket_that_runs_nothing_is_closed(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.ws_anonymous_idle_secs = 1).await else {
        return;
    };
    let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
    ws.init(json!({})).await;
    // Pings do not keep it open.
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next().await["type"], "pong");
    assert_eq!(ws.closed().await.code, 1008);
    // A signed-in socket that runs nothing stays.
    let mut signed_in = app.ws("ann").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    signed_in.send(json!({ "type": "ping" })).await;
    assert_eq!(signed_in.next().await["type"], "pong");
}

async fn a_subscriber_too_slow_to_read_is_told_before_it_is_closed(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.ws_send_timeout_ms = 300).await else {
        return;
    };
    let mut ws = Ws::connect_small(app.port(), 4096).await;
    ws.init(json!({ "Authorization": format!("Bearer {}", app.token("ann")) }))
        .await;
    let page = app
        .data(
            &app.token("ann"),
            "{ notifications(first: 1) { liveCursor } }",
            json!({}),
        )
        .await;
    let query =
        "subscription($after: Cursor) { inbox(after: $after) { cursor added { id body } } }";
    ws.subscribe(
        "s",
        query,
        json!({ "after": page["notifications"]["liveCursor"] }),
    )
    .await;
    // Stop reading while about 20 KB notifications pile up past every buffer on the way
    // (socket buffers on loopback grow to several MiB).
    let input = json!({
        "recipients": ["ann"], "title": "large",
        "body": "b".repeat(4_900), "data": { "pad": "d".repeat(15_000) },
    });
    for _ in 0..1_200 {
        let (_, sent) = app
            .post(
                Some(&app.key),
                json!({ "query": crate::app::SEND, "variables": { "input": input } }),
            )
            .await;
        assert!(sent.get("errors").is_none(), "{sent}");
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut told = false;
    let closed = loop {
        match ws.next_or_close().await {
            Ok(message) if message["type"] == "error" => {
                assert_eq!(
                    message["payload"][0]["extensions"]["reason"], "SLOW_SUBSCRIBER",
                    "{message}"
                );
                told = true;
            }
            Ok(_) => {}
            Err(closed) => break closed,
        }
    };
    assert!(told, "the subscriber learns why before the close");
    assert_eq!(closed.code, 1013, "{closed:?}");
}

crate::on_both_backends!(
    headers_sent_a_byte_at_a_time_are_cut_off,
    an_idle_keep_alive_connection_is_closed,
    at_the_cap_a_new_connection_takes_the_place_of_the_oldest_idle_one,
    connections_over_the_cap_are_refused_with_503_when_none_is_idle,
    a_request_whose_body_stalls_gets_408,
    refused_credentials_get_a_close_frame_that_fits,
    oversized_and_invalid_frames_get_their_close_codes,
    a_socket_closes_when_its_token_expires,
    an_anonymous_socket_that_runs_nothing_is_closed,
    a_subscriber_too_slow_to_read_is_told_before_it_is_closed,
);
