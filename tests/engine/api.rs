//! The GraphQL API over HTTP as a client uses it: read-your-writes for every mutation, paging,
//! bad input refused with codes and nothing appended, and the committed schema.

use serde_json::{json, Value};

use crate::app::{code, spawn_app, TestApp};
use crate::helpers::Backend;

const NOTIFICATION: &str =
    "query($id: ID!) { notification(id: $id) { id seen read archived readAt } }";

async fn notification(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(token, NOTIFICATION, json!({ "id": id })).await["notification"].clone()
}

async fn counts(app: &TestApp, token: &str) -> Value {
    app.data(
        token,
        "{ counts { unread unseen byCategory { category unread unseen } } }",
        json!({}),
    )
    .await["counts"]
        .clone()
}

async fn every_mutation_is_visible_to_the_next_query(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ann = app.token("ann");
    let sent = app.send(&["ann"], "hello").await;
    let id = sent[0]["notificationId"].as_str().unwrap().to_owned();
    let page = app
        .data(
            &ann,
            "{ notifications { edges { node { id title } } } }",
            json!({}),
        )
        .await;
    assert_eq!(page["notifications"]["edges"][0]["node"]["id"], id.as_str());
    assert_eq!(counts(&app, &ann).await["unread"], 1);

    let steps: [(&str, &str, bool); 5] = [
        ("markSeen", "seen", true),
        ("markRead", "read", true),
        ("markUnread", "read", false),
        ("archive", "archived", true),
        ("unarchive", "archived", false),
    ];
    for (mutation, field, expected) in steps {
        let query = format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ {field} }} }}");
        let result = app.data(&ann, &query, json!({ "id": id })).await;
        assert_eq!(
            result[mutation][field], expected,
            "{mutation} returns its own write"
        );
        assert_eq!(
            notification(&app, &ann, &id).await[field],
            expected,
            "a query right after {mutation} sees it"
        );
    }
    app.data(
        &ann,
        "mutation($id: ID!) { archive(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    let archive = app
        .data(
            &ann,
            "{ inbox: notifications { edges { node { id } } } archive: notifications(filter: { archived: true }) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(archive["inbox"]["edges"], json!([]));
    assert_eq!(archive["archive"]["edges"][0]["node"]["id"], id.as_str());

    app.send(&["ann"], "two").await;
    app.send(&["ann"], "three").await;
    let marked = app
        .data(
            &ann,
            "mutation { markAllSeen { changed counts { unseen unread } } }",
            json!({}),
        )
        .await;
    assert_eq!(marked["markAllSeen"]["changed"], 2);
    assert_eq!(
        marked["markAllSeen"]["counts"],
        json!({ "unseen": 0, "unread": 2 })
    );
    let marked = app
        .data(
            &ann,
            "mutation { markAllRead { changed counts { unread } } }",
            json!({}),
        )
        .await;
    assert_eq!(marked["markAllRead"]["counts"]["unread"], 0);
    assert_eq!(counts(&app, &ann).await["unread"], 0);

    let prefs = app
        .data(
            &ann,
            "mutation { updatePreferences(changes: [{ category: \"marketing\", channel: IN_APP, enabled: false }]) { category channel enabled } }",
            json!({}),
        )
        .await;
    assert_eq!(
        prefs["updatePreferences"],
        json!([{ "category": "marketing", "channel": "IN_APP", "enabled": false }])
    );
    let stored = app
        .data(
            &ann,
            "{ preferences { category channel enabled } }",
            json!({}),
        )
        .await;
    assert_eq!(stored["preferences"], prefs["updatePreferences"]);
    let muted = app
        .data(
            &app.key,
            crate::app::SEND,
            json!({ "input": { "recipients": ["ann"], "title": "sale", "category": "marketing" } }),
        )
        .await;
    assert_eq!(
        muted["sendNotification"]["deliveries"][0]["suppressed"],
        true
    );
    assert_eq!(
        counts(&app, &ann).await["unread"],
        0,
        "a muted send is not shown"
    );
}

async fn mark_all_read_up_to_a_cursor_leaves_later_notifications_unread(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ann = app.token("ann");
    app.send(&["ann"], "one").await;
    let seen_last = app.send(&["ann"], "two").await;
    app.send(&["ann"], "arrived meanwhile").await;
    let marked = app
        .data(
            &ann,
            "mutation($upTo: Cursor) { markAllRead(upTo: $upTo) { changed counts { unread } } }",
            json!({ "upTo": seen_last[0]["cursor"] }),
        )
        .await;
    assert_eq!(marked["markAllRead"]["changed"], 2);
    assert_eq!(marked["markAllRead"]["counts"]["unread"], 1);
    let unread = app
        .data(
            &ann,
            "{ notifications(filter: { unreadOnly: true }) { edges { node { title } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        unread["notifications"]["edges"],
        json!([{ "node": { "title": "arrived meanwhile" } }])
    );
}

async fn the_inbox_pages_newest_first_with_stable_cursors(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ann = app.token("ann");
    for i in 0..5 {
        app.send(&["ann"], &format!("n{i}")).await;
    }
    let query = "query($after: Cursor) { notifications(first: 2, after: $after) {
        edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }";
    let mut titles = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.data(&ann, query, json!({ "after": after })).await;
        let conn = &page["notifications"];
        for edge in conn["edges"].as_array().unwrap() {
            titles.push(edge["node"]["title"].as_str().unwrap().to_owned());
        }
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(titles, ["n4", "n3", "n2", "n1", "n0"]);
    // The same cursor gives the same page after more arrive.
    let again = app.data(&ann, query, json!({ "after": after })).await;
    app.send(&["ann"], "n5").await;
    let later = app.data(&ann, query, json!({ "after": after })).await;
    assert_eq!(again, later);
}

async fn bad_input_is_refused_with_a_code_and_appends_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ann = app.token("ann");
    app.send(&["ann"], "existing").await;
    let before = app.log_len().await;
    let send = |input: Value| json!({ "query": crate::app::SEND, "variables": { "input": input } });
    let big_data: serde_json::Map<String, Value> = (0..2_000)
        .map(|i| (format!("k{i}"), json!("0123456789")))
        .collect();
    let cases = [
        (
            "oversized title",
            send(json!({ "recipients": ["ann"], "title": "t".repeat(201) })),
        ),
        (
            "oversized body",
            send(json!({ "recipients": ["ann"], "title": "t", "body": "b".repeat(5_001) })),
        ),
        (
            "oversized data",
            send(json!({ "recipients": ["ann"], "title": "t", "data": big_data })),
        ),
        (
            "data not an object",
            send(json!({ "recipients": ["ann"], "title": "t", "data": [1] })),
        ),
        (
            "no recipients",
            send(json!({ "recipients": [], "title": "t" })),
        ),
        (
            "bad recipient",
            send(json!({ "recipients": [""], "title": "t" })),
        ),
        (
            "bad category",
            send(json!({ "recipients": ["ann"], "title": "t", "category": "Not A Slug!" })),
        ),
        (
            "bad priority",
            send(json!({ "recipients": ["ann"], "title": "t", "priority": "LOUD" })),
        ),
        (
            "bad link",
            send(
                json!({ "recipients": ["ann"], "title": "t", "actionUrl": "javascript:alert(1)" }),
            ),
        ),
        ("missing title", send(json!({ "recipients": ["ann"] }))),
        // Postgres text and jsonb cannot hold NUL: refused up front, never a failed batch.
        (
            "NUL in the body",
            send(json!({ "recipients": ["ann"], "title": "t", "body": "a\u{0}b" })),
        ),
        (
            "NUL in the data",
            send(json!({ "recipients": ["ann"], "title": "t", "data": { "k": ["a\u{0}b"] } })),
        ),
        (
            "syntax error",
            json!({ "query": "mutation { sendNotification(" }),
        ),
        ("unknown field", json!({ "query": "{ nope }" })),
    ];
    // Twice: the server keeps parsed documents, and a second request must be refused alike.
    for (case, body) in cases.iter().chain(cases.iter()) {
        let (status, response) = app.post(Some(&app.key), body.clone()).await;
        assert_eq!(status, 200, "{case}: {response}");
        assert_eq!(code(&response), "BAD_USER_INPUT", "{case}: {response}");
    }
    let user_cases = [
        ("bad id", "mutation { markRead(id: \"nope\") { id } }"),
        (
            "bad cursor",
            "{ notifications(after: \"bm9wZQ\") { edges { cursor } } }",
        ),
        (
            "page too large",
            "{ notifications(first: 1000) { edges { cursor } } }",
        ),
        (
            "bad category filter",
            "{ notifications(filter: { category: \"A B\" }) { edges { cursor } } }",
        ),
        (
            "no preference changes",
            "mutation { updatePreferences(changes: []) { enabled } }",
        ),
    ];
    for (case, query) in user_cases {
        let response = app.graphql(Some(&ann), query, json!({})).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{case}: {response}");
    }
    let deep = format!(
        "{{ {}counts {{ unread }}{} }}",
        "notifications { edges { node { ".repeat(4),
        " } } }".repeat(4)
    );
    for _ in 0..2 {
        let response = app.graphql(Some(&ann), &deep, json!({})).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "too deep: {response}");
    }

    let (status, response) = app.post(Some(&app.key), json!("not a request")).await;
    assert_eq!(
        (status, code(&response)),
        (400, "BAD_USER_INPUT"),
        "{response}"
    );
    let huge = send(json!({ "recipients": ["ann"], "title": "t", "body": "b".repeat(2 << 20) }));
    let (status, response) = app.post(Some(&app.key), huge).await;
    assert_eq!(
        (status, code(&response)),
        (413, "BAD_USER_INPUT"),
        "{response}"
    );

    assert_eq!(
        app.log_len().await,
        before,
        "a rejected request appends nothing"
    );
}

async fn an_idempotent_retry_returns_the_first_result_and_a_changed_request_conflicts(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let input =
        json!({ "recipients": ["ann", "bob"], "title": "once", "idempotencyKey": "order-7" });
    let first = app
        .data(&app.key, crate::app::SEND, json!({ "input": input }))
        .await;
    let retry = app
        .data(&app.key, crate::app::SEND, json!({ "input": input }))
        .await;
    assert_eq!(first["sendNotification"]["replayed"], false);
    assert_eq!(retry["sendNotification"]["replayed"], true);
    assert_eq!(
        first["sendNotification"]["deliveries"],
        retry["sendNotification"]["deliveries"]
    );
    let before = app.log_len().await;
    let changed =
        json!({ "recipients": ["ann"], "title": "different", "idempotencyKey": "order-7" });
    let response = app
        .graphql(
            Some(&app.key),
            crate::app::SEND,
            json!({ "input": changed }),
        )
        .await;
    assert_eq!(code(&response), "CONFLICT", "{response}");
    assert_eq!(app.log_len().await, before);
}

async fn the_committed_schema_is_the_one_the_server_serves(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let served = crate::app::http_get(format!("http://127.0.0.1:{}/schema.graphql", app.port()))
        .await
        .expect("GET /schema.graphql")
        .text()
        .await
        .expect("body");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("read schema.graphql");
    assert!(
        served == committed,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
    assert_eq!(
        served,
        belfry::api::graphql::sdl(),
        "`belfry schema` prints the same"
    );
}

async fn operators_see_projection_status_and_a_notifications_history(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ann = app.token("ann");
    let sent = app.send(&["ann"], "audited").await;
    let id = sent[0]["notificationId"].as_str().unwrap();
    app.send(&["ann"], "other").await;
    app.data(&ann, "mutation { markAllSeen { changed } }", json!({}))
        .await;
    app.data(
        &ann,
        "mutation($id: ID!) { markRead(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    let status = app
        .data(
            &app.key,
            "{ projections { name version builtVersion position lag } }",
            json!({}),
        )
        .await;
    let projections = status["projections"].as_array().unwrap();
    assert_eq!(projections.len(), 9);
    for p in projections {
        assert_eq!(p["builtVersion"], p["version"], "{p}");
        assert_eq!(p["lag"], 0, "{p}");
        assert_eq!(p["position"], app.log_len().await as i64, "{p}");
    }
    let history = app
        .data(
            &app.key,
            "query($id: ID!) { notificationHistory(id: $id) { position type metadata } }",
            json!({ "id": id }),
        )
        .await;
    let types: Vec<&str> = history["notificationHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["notification.sent", "inbox.all_seen", "notification.read"],
        "the history includes the bulk mark that touched it"
    );
    assert_eq!(
        history["notificationHistory"][2]["metadata"]["actor"], "user:ann",
        "the audit trail names who acted"
    );
}

crate::on_both_backends!(
    every_mutation_is_visible_to_the_next_query,
    mark_all_read_up_to_a_cursor_leaves_later_notifications_unread,
    the_inbox_pages_newest_first_with_stable_cursors,
    bad_input_is_refused_with_a_code_and_appends_nothing,
    an_idempotent_retry_returns_the_first_result_and_a_changed_request_conflicts,
    the_committed_schema_is_the_one_the_server_serves,
    operators_see_projection_status_and_a_notifications_history,
);
