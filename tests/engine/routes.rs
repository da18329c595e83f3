//! Routes: a send asks for external deliveries, each becomes a fact in the log in the send's
//! own transaction (planned with its due time, or skipped with its reason), the delivery log
//! shows them to operators, and replay rebuilds them to the same rows.

use serde_json::{json, Value};

use crate::app::{code, spawn_app, TestApp};
use crate::helpers::Backend;

const SEND: &str = "mutation($input: SendNotificationInput!) { \
    sendNotification(input: $input) { deliveries { recipient notificationId } } }";

const DELIVERIES: &str = "query($id: ID!) { deliveries(notificationId: $id) { \
    id channel status dueAt unless reason attempts lastError providerId plannedAt updatedAt digestId } }";

/// Sends as the service key; returns each recipient's notification id.
async fn send(app: &TestApp, input: Value) -> Vec<(String, String)> {
    let data = app.data(&app.key, SEND, json!({ "input": input })).await;
    data["sendNotification"]["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            (
                d["recipient"].as_str().expect("recipient").to_owned(),
                d["notificationId"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

/// A notification's delivery log, as an operator reads it.
pub(crate) async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    app.data(&app.key, DELIVERIES, json!({ "id": id })).await["deliveries"]
        .as_array()
        .expect("a list")
        .clone()
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("a time: {value}"))
        .to_utc()
}

async fn a_send_plans_its_routes_and_skips_a_muted_channel(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let bob = app.token("bob");
    app.data(
        &bob,
        "mutation { updatePreferences(changes: [{ category: \"billing\", channel: EMAIL, enabled: false }]) { enabled } }",
        json!({}),
    )
    .await;
    let sent = send(
        &app,
        json!({
            "recipients": ["ann", "bob"],
            "category": "billing",
            "title": "Invoice ready",
            // Delayed, so no worker takes them while the test looks (this server has no
            // channel configured: a due one would be skipped as no_address).
            "routes": [
                { "channel": "EMAIL", "afterSeconds": 3600 },
                { "channel": "WEBHOOK", "afterSeconds": 600, "unless": "READ" },
            ],
        }),
    )
    .await;
    assert_eq!(sent.len(), 2);

    let ann = deliveries(&app, &sent[0].1).await;
    assert_eq!(ann.len(), 2, "{ann:?}");
    let (email, webhook) = (&ann[0], &ann[1]);
    assert_eq!(
        (email["channel"].as_str(), email["status"].as_str()),
        (Some("email"), Some("planned"))
    );
    assert_eq!(
        time(&email["dueAt"]) - time(&email["plannedAt"]),
        chrono::Duration::seconds(3600)
    );
    assert_eq!(email["attempts"], 0);
    assert!(email["lastError"].is_null() && email["providerId"].is_null());
    assert_eq!(
        (webhook["channel"].as_str(), webhook["unless"].as_str()),
        (Some("webhook"), Some("read"))
    );
    assert_eq!(
        time(&webhook["dueAt"]) - time(&webhook["plannedAt"]),
        chrono::Duration::seconds(600)
    );
    assert_ne!(email["id"], webhook["id"]);

    // Bob muted billing email: skipped with the reason, never due; his webhook is planned.
    let bob_deliveries = deliveries(&app, &sent[1].1).await;
    assert_eq!(
        (
            bob_deliveries[0]["status"].as_str(),
            bob_deliveries[0]["reason"].as_str()
        ),
        (Some("skipped"), Some("muted"))
    );
    assert!(bob_deliveries[0]["dueAt"].is_null());
    assert_eq!(bob_deliveries[1]["status"], "planned");

    // The audit trail tells the same story, in the notification's own stream.
    let history = app
        .data(
            &app.key,
            "query($id: ID!) { notificationHistory(id: $id) { type data } }",
            json!({ "id": sent[1].1 }),
        )
        .await;
    let types: Vec<&str> = history["notificationHistory"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        ["notification.sent", "delivery.skipped", "delivery.planned"]
    );
    assert_eq!(
        history["notificationHistory"][1]["data"]["reason"], "muted",
        "{history}"
    );
    // Contact details never enter the log: a delivery names the person, not their address.
    assert!(!history.to_string().contains('@'), "{history}");

    // Only operators see the delivery log.
    let refused = app
        .graphql(Some(&bob), DELIVERIES, json!({ "id": sent[1].1 }))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
}

async fn routes_are_checked_before_anything_is_appended(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let before = app.log_len().await;
    for (routes, says) in [
        (
            json!([{ "channel": "IN_APP" }]),
            "in-app delivery always happens",
        ),
        (json!([{ "channel": "SMS" }]), "not available yet"),
        (
            json!([{ "channel": "EMAIL", "afterSeconds": -5 }]),
            "number of seconds",
        ),
        (
            json!([{ "channel": "EMAIL", "unless": "READ" }]),
            "needs a delay",
        ),
        (
            json!([{ "channel": "EMAIL" }, { "channel": "EMAIL" }]),
            "given twice",
        ),
    ] {
        let body = app
            .graphql(
                Some(&app.key),
                SEND,
                json!({ "input": { "recipients": ["ann"], "title": "x", "routes": routes } }),
            )
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{routes}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "routes", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{routes}: {message}");
    }
    assert_eq!(app.log_len().await, before, "nothing appended");
}

async fn replay_rebuilds_the_delivery_log_to_the_same_rows(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let carol = app.token("carol");
    app.data(
        &carol,
        "mutation { updatePreferences(changes: [{ category: \"orders\", channel: WEBHOOK, enabled: false }]) { enabled } }",
        json!({}),
    )
    .await;
    for i in 0..3 {
        send(
            &app,
            json!({
                "recipients": ["ann", "carol"],
                "category": "orders",
                "title": format!("Order {i}"),
                "routes": [
                    { "channel": "EMAIL", "afterSeconds": 60 * i, "unless": if i > 0 { json!("SEEN") } else { Value::Null } },
                    { "channel": "WEBHOOK" },
                ],
            }),
        )
        .await;
    }
    let url = app.store.url.clone();
    let verified = crate::cli::belfry(&url, &["replay", "--verify"]).await;
    verified.assert_success();
    let replayed = crate::cli::belfry(&url, &["replay", "--projection", "deliveries"]).await;
    replayed.assert_success();
    let verified =
        crate::cli::belfry(&url, &["replay", "--verify", "--projection", "deliveries"]).await;
    verified.assert_success();
    assert!(
        verified.stdout.contains("deliveries"),
        "verify names the projection: {}",
        verified.stdout
    );
}

/// A category's default routing, from the server's configuration, applies to sends that name
/// no routes; `routes: []` asks for none.
async fn a_category_default_routing_applies_to_sends_that_name_no_routes(backend: Backend) {
    let route = |channel: &str, after_seconds, unless: Option<&str>| belfry::config::RouteSetting {
        channel: channel.to_owned(),
        after_seconds,
        unless: unless.map(str::to_owned),
    };
    let Some(app) = crate::app::spawn_app_with(backend, |s| {
        s.routing.insert(
            "billing".to_owned(),
            vec![route("email", 0, None), route("webhook", 600, Some("read"))],
        );
    })
    .await
    else {
        return;
    };
    let by_default = send(
        &app,
        json!({ "recipients": ["ann"], "category": "billing", "title": "Invoice" }),
    )
    .await;
    let planned: Vec<(String, Option<String>)> = deliveries(&app, &by_default[0].1)
        .await
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap_or("").to_owned(),
                d["unless"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("email".to_owned(), None),
            ("webhook".to_owned(), Some("read".to_owned()))
        ]
    );
    let none = send(
        &app,
        json!({ "recipients": ["ann"], "category": "billing", "title": "Quiet", "routes": [] }),
    )
    .await;
    assert!(deliveries(&app, &none[0].1).await.is_empty());
    let other = send(
        &app,
        json!({ "recipients": ["ann"], "category": "news", "title": "Hi" }),
    )
    .await;
    assert!(deliveries(&app, &other[0].1).await.is_empty());

    // A routing the server cannot use stops it at start, naming the category.
    let mut settings = crate::app::test_settings(&app.store);
    settings
        .routing
        .insert("billing".to_owned(), vec![route("sms", 0, None)]);
    let refused = belfry::app::Application::build(&settings)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(
        refused.contains("routing.billing") && refused.contains("sms"),
        "{refused}"
    );
}

crate::on_both_backends!(
    a_send_plans_its_routes_and_skips_a_muted_channel,
    routes_are_checked_before_anything_is_appended,
    replay_rebuilds_the_delivery_log_to_the_same_rows,
    a_category_default_routing_applies_to_sends_that_name_no_routes,
);
