//! Live delivery through the real server: subscriptions over WebSocket, resume with a cursor,
//! slow subscribers, two nodes on one Postgres, and shutdown.

use serde_json::{json, Value};

use crate::app::{spawn_app, spawn_app_with, test_settings, Node, TestApp, Ws};
use crate::helpers::Backend;

pub const INBOX: &str = "subscription($after: Cursor) {
    inbox(after: $after) {
        cursor
        added { id title read seen cursor }
        changed { id read seen archived }
        counts { unread unseen byCategory { category unread unseen } }
    }
}";
pub const COUNTS: &str = "subscription { unreadCount { unread unseen } }";

/// Subscribes to `user`'s inbox after the head of a fresh query: a change made after this
/// returns is delivered however late the server registers the subscription.
pub async fn subscribe_inbox(app: &TestApp, ws: &mut Ws, id: &str, user: &str) {
    subscribe_inbox_to(app, ws, id, user, INBOX).await;
}

/// [`subscribe_inbox`] with another selection of the `inbox` subscription, `query`.
pub async fn subscribe_inbox_to(app: &TestApp, ws: &mut Ws, id: &str, user: &str, query: &str) {
    let page = app
        .data(
            &app.token(user),
            "{ notifications(first: 1) { liveCursor } }",
            json!({}),
        )
        .await;
    let after = page["notifications"]["liveCursor"].clone();
    ws.subscribe(id, query, json!({ "after": after })).await;
}

fn change(payload: &Value) -> &Value {
    &payload["data"]["inbox"]
}

async fn a_send_reaches_a_live_subscriber_and_a_read_updates_another_connection(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut inbox = app.ws("ann").await;
    subscribe_inbox(&app, &mut inbox, "1", "ann").await;
    let mut counts = app.ws("ann").await;
    counts.subscribe("c", COUNTS, json!({})).await;
    let first = counts.next_payload("c").await;
    assert_eq!(
        first["data"]["unreadCount"],
        json!({ "unread": 0, "unseen": 0 })
    );

    let sent = app.send(&["ann"], "Build failed").await;
    let id = sent[0]["notificationId"].as_str().unwrap().to_owned();
    let payload = inbox.next_payload("1").await;
    let added = change(&payload);
    assert_eq!(added["added"][0]["id"], id.as_str());
    assert_eq!(added["added"][0]["title"], "Build failed");
    assert_eq!(added["cursor"], sent[0]["cursor"]);
    assert_eq!(added["counts"]["unread"], 1);
    assert_eq!(added["counts"]["unseen"], 1);
    assert_eq!(
        counts.next_payload("c").await["data"]["unreadCount"],
        json!({ "unread": 1, "unseen": 1 })
    );

    let token = app.token("ann");
    app.data(
        &token,
        "mutation($id: ID!) { markRead(id: $id) { read } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        counts.next_payload("c").await["data"]["unreadCount"],
        json!({ "unread": 0, "unseen": 0 }),
        "the second connection sees the read live"
    );
    let payload = inbox.next_payload("1").await;
    let changed = change(&payload);
    assert_eq!(changed["changed"][0]["id"], id.as_str());
    assert_eq!(changed["changed"][0]["read"], true);
    assert_eq!(changed["counts"]["unread"], 0);
    inbox.close().await;
    counts.close().await;
}

async fn resuming_with_the_last_cursor_delivers_exactly_what_was_missed_then_goes_live(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut ws = app.ws("ann").await;
    subscribe_inbox(&app, &mut ws, "1", "ann").await;
    app.send(&["ann"], "before").await;
    let last = change(&ws.next_payload("1").await)["cursor"].clone();
    ws.close().await;

    for i in 0..100 {
        app.send(&["ann", "bob"], &format!("missed {i}")).await;
    }
    let mut ws = app.ws("ann").await;
    ws.subscribe("1", INBOX, json!({ "after": last })).await;
    let mut cursors = Vec::new();
    for i in 0..100 {
        let payload = ws.next_payload("1").await;
        let c = change(&payload);
        assert_eq!(c["added"].as_array().unwrap().len(), 1, "{c}");
        assert_eq!(c["added"][0]["title"], format!("missed {i}"), "in order");
        cursors.push(c["cursor"].as_str().unwrap().to_owned());
    }
    cursors.dedup();
    assert_eq!(cursors.len(), 100, "every change has its own cursor");
    app.send(&["ann"], "live again").await;
    let payload = ws.next_payload("1").await;
    assert_eq!(
        change(&payload)["added"][0]["title"],
        "live again",
        "nothing twice, nothing extra: the next change is the live one"
    );
    assert_eq!(change(&payload)["counts"]["unread"], 102);
    ws.close().await;
}

async fn a_resume_replays_changes_to_older_notifications_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let token = app.token("ann");
    let old = app.send(&["ann"], "old").await;
    let page = app
        .data(&token, "{ notifications { liveCursor } }", json!({}))
        .await;
    let live_cursor = page["notifications"]["liveCursor"].clone();
    let fresh = app.send(&["ann"], "fresh").await;
    let marked = app
        .data(&token, "mutation { markAllRead { changed } }", json!({}))
        .await;
    assert_eq!(marked["markAllRead"]["changed"], 2);

    let mut ws = app.ws("ann").await;
    ws.subscribe("1", INBOX, json!({ "after": live_cursor }))
        .await;
    let payload = ws.next_payload("1").await;
    let c = change(&payload);
    // Both were last changed by the same "mark all": one change, one cursor.
    assert_eq!(c["added"][0]["id"], fresh[0]["notificationId"]);
    assert_eq!(c["added"][0]["read"], true);
    assert_eq!(c["changed"][0]["id"], old[0]["notificationId"]);
    assert_eq!(c["changed"][0]["read"], true);
    assert_eq!(c["counts"]["unread"], 0);
    app.send(&["ann"], "next").await;
    let payload = ws.next_payload("1").await;
    assert_eq!(change(&payload)["added"][0]["title"], "next");
    ws.close().await;
}

async fn a_subscriber_that_falls_behind_is_closed_and_loses_nothing_on_resume(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.subscriber_queue = 1).await else {
        return;
    };
    let mut ws = app.ws("ann").await;
    subscribe_inbox(&app, &mut ws, "1", "ann").await;
    let mut sent = 0;
    let mut received: Vec<String> = Vec::new();
    let mut last_cursor = Value::Null;
    // Sends committed in one batch reach the hub together; with room for one change, the
    // subscriber overflows. Keep sending bursts until it does.
    let app = &app;
    let error = 'outer: loop {
        assert!(sent < 2_000, "the subscriber never overflowed");
        let burst: Vec<_> = (0..20)
            .map(|i| {
                let title = format!("n{}", sent + i);
                async move { app.send(&["ann"], &title).await }
            })
            .collect();
        futures_util::future::join_all(burst).await;
        sent += 20;
        loop {
            let message = ws.next().await;
            match message["type"].as_str() {
                Some("next") => {
                    let c = change(&message["payload"]).clone();
                    received.push(c["added"][0]["title"].as_str().unwrap().to_owned());
                    last_cursor = c["cursor"].clone();
                    if received.len() == sent {
                        continue 'outer;
                    }
                }
                Some("error") => break 'outer message,
                other => panic!("unexpected {other:?}: {message}"),
            }
        }
    };
    assert_eq!(error["id"], "1");
    assert_eq!(error["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(
        error["payload"][0]["extensions"]["reason"],
        "SLOW_SUBSCRIBER"
    );
    // Resume from the last cursor received. A queue of one can overflow again while the
    // tailer is still publishing the last burst; a client then simply resumes again.
    let mut operation = 2;
    while received.len() < sent {
        let id = operation.to_string();
        let after = if last_cursor.is_null() {
            json!({})
        } else {
            json!({ "after": last_cursor })
        };
        ws.subscribe(&id, INBOX, after).await;
        while received.len() < sent {
            let message = ws.next().await;
            assert_eq!(message["id"], id.as_str(), "{message}");
            if message["type"] == "error" {
                assert_eq!(message["payload"][0]["extensions"]["code"], "RATE_LIMITED");
                break;
            }
            let c = change(&message["payload"]).clone();
            for added in c["added"].as_array().unwrap() {
                received.push(added["title"].as_str().unwrap().to_owned());
            }
            last_cursor = c["cursor"].clone();
        }
        operation += 1;
        assert!(operation < 100, "resuming never caught up");
    }
    assert_eq!(received.len(), sent, "nothing twice");
    let mut titles: Vec<String> = received.clone();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), sent, "every notification exactly once");
    ws.close().await;
}

async fn the_server_closes_sockets_with_1001_when_it_shuts_down(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut ws = app.ws("ann").await;
    ws.subscribe("1", INBOX, json!({})).await;
    // Keep the store (and its database) until the server has stopped.
    let crate::app::TestApp { node, store, .. } = app;
    let stopping = tokio::spawn(node.stop());
    let closed = ws.closed().await;
    assert_eq!(closed.code, 1001, "{closed:?}");
    stopping.await.expect("stopped");
    drop(store);
}

/// Several nodes share one database only on Postgres, so this runs there alone.
async fn a_send_through_one_node_reaches_a_subscriber_on_another(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Node B would poll only once a minute: the send must reach it through NOTIFY.
    let mut settings = test_settings(&app.store);
    settings.live_poll_ms = 60_000;
    let other = Node::start(&settings).await;
    let mut ws = Ws::connect(other.port, "graphql-transport-ws").await;
    ws.init(json!({ "Authorization": format!("Bearer {}", app.token("ann")) }))
        .await;
    subscribe_inbox(&app, &mut ws, "1", "ann").await;
    let mut counts = Ws::connect(other.port, "graphql-transport-ws").await;
    counts.init(json!({ "token": app.token("ann") })).await;
    counts.subscribe("c", COUNTS, json!({})).await;
    counts.next_payload("c").await;

    let sent = app.send(&["ann"], "from node A").await;
    let payload = ws.next_payload("1").await;
    assert_eq!(
        change(&payload)["added"][0]["id"],
        sent[0]["notificationId"]
    );
    assert_eq!(
        counts.next_payload("c").await["data"]["unreadCount"]["unread"],
        1
    );
    ws.close().await;
    counts.close().await;
    other.stop().await;
}

/// The hand-over from snapshot to live, with a hub driven by hand: the tailer lags behind the
/// snapshot, so the hub delivers changes the snapshot already holds, and later ones.
async fn a_lagging_tailer_neither_duplicates_nor_skips_changes_at_the_hand_over(backend: Backend) {
    use belfry::api::graphql::{build, ApiContext, Limits};
    use belfry::auth::Principal;
    use belfry::live::{change::derive, LiveHub};
    use belfry::metrics::Metrics;
    use futures_util::StreamExt;

    let Some(store) = crate::helpers::TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    let hub = LiveHub::new(0, 64, Metrics::new());
    let schema = build(
        ApiContext {
            engine: engine.engine.clone(),
            hub: hub.clone(),
            max_page: 10,
            channels: vec![belfry::domain::Channel::InApp],
            defaults: Default::default(),
            webhooks: Vec::new().into(),
            clock: std::sync::Arc::new(belfry::clock::SystemClock),
        },
        Limits {
            depth: 12,
            complexity: 2_000,
            document: belfry::api::graphql::guard::DocumentLimits {
                nesting: 64,
                tokens: 10_000,
                selections: 5_000,
                mutation_fields: 10,
            },
        },
        Metrics::new(),
    );
    let mut positions = Vec::new();
    for title in ["one", "two", "three"] {
        positions.push(engine.send(&["ann"], "general", title).await.events[0].position);
    }
    let after = belfry::api::graphql::types::Cursor(positions[0]).encode();
    let request = async_graphql::Request::new(INBOX)
        .variables(async_graphql::Variables::from_json(
            json!({ "after": after }),
        ))
        .data(Principal::User(crate::helpers::user("ann")));
    let mut stream = schema.execute_stream(request);
    let mut titles = Vec::new();
    for _ in 0..2 {
        let response = tokio::time::timeout(crate::app::WAIT, stream.next())
            .await
            .expect("catch-up")
            .expect("a response");
        let data = response.data.into_json().unwrap();
        titles.push(
            data["inbox"]["added"][0]["title"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(titles, ["two", "three"], "the catch-up after the cursor");

    // The tailer now publishes what the snapshot already held, then a new send.
    engine.send(&["ann"], "general", "four").await;
    let events = store.all_events().await;
    let changes = events
        .iter()
        .filter_map(|e| derive(e).unwrap())
        .collect::<Vec<_>>();
    hub.publish(events.last().unwrap().position, changes);
    let response = tokio::time::timeout(crate::app::WAIT, stream.next())
        .await
        .expect("live")
        .expect("a response");
    let data = response.data.into_json().unwrap();
    assert_eq!(
        data["inbox"]["added"][0]["title"], "four",
        "changes already in the snapshot are not sent twice"
    );
    assert_eq!(
        data["inbox"]["counts"]["unread"], 4,
        "and counts are not applied twice"
    );
    engine.stop().await;
}

crate::on_both_backends!(
    a_lagging_tailer_neither_duplicates_nor_skips_changes_at_the_hand_over,
    a_send_reaches_a_live_subscriber_and_a_read_updates_another_connection,
    resuming_with_the_last_cursor_delivers_exactly_what_was_missed_then_goes_live,
    a_resume_replays_changes_to_older_notifications_once,
    a_subscriber_that_falls_behind_is_closed_and_loses_nothing_on_resume,
    the_server_closes_sockets_with_1001_when_it_shuts_down,
);

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_through_one_node_reaches_a_subscriber_on_another() {
        super::a_send_through_one_node_reaches_a_subscriber_on_another(
            crate::helpers::Backend::Postgres,
        )
        .await
    }
}
