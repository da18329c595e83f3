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

crate::on_both_backends!(
    each_protocol_violation_closes_with_its_code,
    a_socket_that_never_initialises_is_closed_with_4408,
    ping_complete_and_reuse_of_a_finished_id_follow_the_protocol,
    the_legacy_graphql_ws_protocol_delivers_too,
);
