//! The graphql-transport-ws protocol, rule by rule, and the legacy graphql-ws sub-protocol.

use serde_json::json;

use crate::app::{spawn_app, spawn_app_with, Ws};
use crate::helpers::Backend;
use crate::live::COUNTS;

async fn each_protocol_violation_closes_with_its_code(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let port = app.port();
    let token = app.token("ann");
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });

    let mut ws = Ws::connect(port, "graphql-transport-ws").await;
    ws.send_text("{ this is not json").await;
    assert_eq!(ws.closed().await.code, 4400, "an invalid message");

    let mut ws = Ws::connect(port, "graphql-transport-ws").await;
    ws.send(json!({ "type": "shout" })).await;
    assert_eq!(ws.closed().await.code, 4400, "an unknown message type");

    let mut ws = Ws::connect(port, "graphql-transport-ws").await;
    ws.subscribe("1", COUNTS, json!({})).await;
    let closed = ws.closed().await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (4401, "Unauthorized"),
        "subscribe before ack"
    );

    let mut ws = Ws::connect(port, "graphql-transport-ws").await;
    ws.init(init["payload"].clone()).await;
    ws.subscribe("1", COUNTS, json!({})).await;
    ws.next_payload("1").await;
    ws.subscribe("1", COUNTS, json!({})).await;
    let closed = ws.closed().await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (4409, "Subscriber for 1 already exists"),
        "a duplicate operation id"
    );

    let mut ws = Ws::connect(port, "graphql-transport-ws").await;
    ws.init(init["payload"].clone()).await;
    ws.send(init.clone()).await;
    let closed = ws.closed().await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (4429, "Too many initialisation requests"),
        "a second connection_init"
    );
}

async fn a_socket_offering_only_unknown_sub_protocols_is_refused_with_400(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://127.0.0.1:{}/graphql", app.port())
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "mqtt, wamp".parse().expect("header"),
    );
    let refused = tokio_tungstenite::connect_async(request)
        .await
        .expect_err("the upgrade is refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("not an HTTP refusal: {refused:?}");
    };
    assert_eq!(response.status().as_u16(), 400);
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
    assert!(body.contains("graphql-transport-ws"), "{body}");
    // Ours is still accepted.
    let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
    ws.init(json!({ "Authorization": format!("Bearer {}", app.token("ann")) }))
        .await;
}

async fn a_socket_that_never_initialises_is_closed_with_4408(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.ws_init_timeout_ms = 300).await else {
        return;
    };
    let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
    let closed = ws.closed().await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (4408, "Connection initialisation timeout")
    );
}

async fn ping_complete_and_reuse_of_a_finished_id_follow_the_protocol(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut ws = app.ws("ann").await;
    ws.send(json!({ "type": "ping", "payload": { "n": 1 } }))
        .await;
    assert_eq!(
        ws.next().await,
        json!({ "type": "pong", "payload": { "n": 1 } })
    );

    // A query over the socket: one result, then complete; its id is free again afterwards.
    for _ in 0..2 {
        ws.subscribe("q", "{ viewerId }", json!({})).await;
        assert_eq!(ws.next_payload("q").await["data"]["viewerId"], "ann");
        assert_eq!(ws.next().await, json!({ "type": "complete", "id": "q" }));
    }
    // A client `complete` stops a subscription: nothing more arrives for it.
    ws.subscribe("s", COUNTS, json!({})).await;
    ws.next_payload("s").await;
    ws.send(json!({ "type": "complete", "id": "s" })).await;
    ws.subscribe("t", COUNTS, json!({})).await;
    ws.next_payload("t").await;
    app.send(&["ann"], "after complete").await;
    let next = ws.next().await;
    assert_eq!(
        next["id"], "t",
        "only the live subscription receives: {next}"
    );
    ws.close().await;
}

async fn the_legacy_graphql_ws_protocol_delivers_too(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut ws = Ws::connect(app.port(), "graphql-ws").await;
    ws.init(json!({ "authToken": app.token("ann") })).await;
    ws.send(json!({ "type": "start", "id": "7", "payload": { "query": COUNTS } }))
        .await;
    let first = ws.next().await;
    assert_eq!(first["type"], "data", "{first}");
    assert_eq!(first["payload"]["data"]["unreadCount"]["unread"], 0);
    app.send(&["ann"], "legacy").await;
    let next = loop {
        let message = ws.next().await;
        if message["type"] != "ka" {
            break message;
        }
    };
    assert_eq!(next["type"], "data");
    assert_eq!(next["payload"]["data"]["unreadCount"]["unread"], 1);
    ws.send(json!({ "type": "stop", "id": "7" })).await;
    ws.send(json!({ "type": "connection_terminate" })).await;
    assert_eq!(ws.closed().await.code, 1000);
}

/// Where each of `names` (as JSON keys) stands in `text`, in order of appearance.
fn key_order(text: &str, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|n| {
            text.find(&format!("\"{n}\":"))
                .unwrap_or_else(|| panic!("{n} not in {text}"))
        })
        .collect()
}

async fn a_result_keeps_the_selection_order_over_http_and_the_socket(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let query = "{ viewerId counts { unseen unread } }";
    let http = crate::app::http()
        .post(format!("http://127.0.0.1:{}/graphql", app.port()))
        .bearer_auth(app.token("ann"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("POST /graphql")
        .text()
        .await
        .expect("body");
    let mut ws = app.ws("ann").await;
    ws.subscribe("1", query, json!({})).await;
    let frame = ws.next_text().await;
    for text in [&http, &frame] {
        let at = key_order(text, &["viewerId", "counts", "unseen", "unread"]);
        assert!(
            at[0] < at[1] && at[2] < at[3],
            "not in selection order: {text}"
        );
    }
    let mut legacy = Ws::connect(app.port(), "graphql-ws").await;
    legacy
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", app.token("ann")) } }))
        .await;
    let _ack = legacy.next().await;
    legacy
        .send(json!({ "id": "1", "type": "start", "payload": { "query": query } }))
        .await;
    let frame = loop {
        let text = legacy.next_text().await;
        if !text.contains("\"ka\"") {
            break text;
        }
    };
    let at = key_order(&frame, &["viewerId", "counts", "unseen", "unread"]);
    assert!(
        at[0] < at[1] && at[2] < at[3],
        "not in selection order: {frame}"
    );
}

crate::on_both_backends!(
    a_socket_offering_only_unknown_sub_protocols_is_refused_with_400,
    a_result_keeps_the_selection_order_over_http_and_the_socket,
    each_protocol_violation_closes_with_its_code,
    a_socket_that_never_initialises_is_closed_with_4408,
    ping_complete_and_reuse_of_a_finished_id_follow_the_protocol,
    the_legacy_graphql_ws_protocol_delivers_too,
);
