//! Deliveries leave the app: a send routed to a webhook reaches a real receiver that checks
//! its signature with the reference Standard Webhooks library, every step is a fact in the
//! log and a row of the delivery log, a delayed delivery waits for the (injected) clock and is
//! called off when the notification was read meanwhile, and a failing endpoint is retried
//! with backoff, then given up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use belfry::clock::ManualClock;
use belfry::delivery::webhook::WebhookEndpoint;
use serde_json::{json, Value};

use crate::app::{spawn_app_clocked, spawn_app_with, TestApp};
use crate::helpers::Backend;
use crate::routes::deliveries;
use crate::webhook::{secret, Receiver};

const SEND: &str = "mutation($input: SendNotificationInput!) { \
    sendNotification(input: $input) { deliveries { recipient notificationId } } }";

const DELIVERIES: &str = "query($id: ID!) { deliveries(notificationId: $id) { \
    id channel status dueAt reason attempts lastError providerId } }";

/// The server's clock (its sends and its workers read it), a minute ahead of the system's so
/// that nothing in a test can pass by reading the system clock; what is delayed waits until
/// the test moves it.
pub(crate) fn workers_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        chrono::Utc::now() + chrono::Duration::seconds(60),
    ))
}

pub(crate) fn endpoint(url: &str, secret: &str) -> WebhookEndpoint {
    serde_json::from_value(json!({ "url": url, "secrets": [secret], "timeout_ms": 2000 }))
        .expect("a valid endpoint")
}

/// Sends `title` to `to`, routed as `routes`; returns the notification ids.
pub(crate) async fn send(app: &TestApp, to: &[&str], title: &str, routes: Value) -> Vec<String> {
    let data = app
        .data(
            &app.key,
            SEND,
            json!({ "input": { "recipients": to, "title": title, "category": "orders", "routes": routes } }),
        )
        .await;
    data["sendNotification"]["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["notificationId"].as_str().expect("id").to_owned())
        .collect()
}

/// Waits (at most 20 s) until the first delivery of `id` is settled as `status`.
pub(crate) async fn settled(app: &TestApp, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = deliveries(app, id).await;
        if rows[0]["status"] == status {
            return rows[0].clone();
        }
        assert!(Instant::now() < deadline, "never {status}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn history(app: &TestApp, id: &str) -> Vec<String> {
    app.data(
        &app.key,
        "query($id: ID!) { notificationHistory(id: $id) { type } }",
        json!({ "id": id }),
    )
    .await["notificationHistory"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

async fn a_webhook_route_arrives_signed_and_every_step_is_recorded(backend: Backend) {
    let receiver = Receiver::start(&[&secret(7)]);
    let url = receiver.url("/ok");
    let Some(app) =
        spawn_app_with(backend, |s| s.webhooks = vec![endpoint(&url, &secret(7))]).await
    else {
        return;
    };
    let ids = send(
        &app,
        &["ann"],
        "Order shipped",
        json!([{ "channel": "WEBHOOK" }]),
    )
    .await;
    let got = receiver.next();
    assert_eq!(got["verified"], json!([true]), "{got}");
    assert_eq!(
        got["body"]["data"]["notificationId"],
        ids[0].as_str(),
        "{got}"
    );
    assert_eq!(
        got["body"]["data"]["notification"]["title"],
        "Order shipped"
    );
    let row = settled(&app, &ids[0], "succeeded").await;
    assert_eq!(got["id"], row["id"], "webhook-id is the delivery's id");
    assert_eq!(row["attempts"], 1);
    assert!(row["dueAt"].is_null());
    assert_eq!(
        history(&app, &ids[0]).await,
        [
            "notification.sent",
            "delivery.planned",
            "delivery.attempted",
            "delivery.succeeded"
        ]
    );
    let metrics = crate::app::http_get(format!("http://127.0.0.1:{}/metrics", app.port()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"belfry_deliveries_total{channel="webhook",outcome="succeeded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"belfry_delivery_attempt_seconds_count{channel="webhook"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("belfry_deliveries_due "), "{metrics}");
    let refused = app
        .graphql(
            Some(&app.key),
            "mutation($id: ID!) { retryDelivery(id: $id) { status } }",
            json!({ "id": row["id"] }),
        )
        .await;
    assert_eq!(
        crate::app::code(&refused),
        "CONFLICT",
        "only a failed one: {refused}"
    );
}

async fn a_delivery_after_ten_minutes_unless_read_goes_only_to_the_unread(backend: Backend) {
    let receiver = Receiver::start(&[&secret(8)]);
    let url = receiver.url("/ok");
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(
        backend,
        |s| s.webhooks = vec![endpoint(&url, &secret(8))],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let later = json!([{ "channel": "WEBHOOK", "afterSeconds": 600, "unless": "READ" }]);
    let read = send(&app, &["ann"], "Invoice 1", later.clone()).await;
    let unread = send(&app, &["ann"], "Invoice 2", later).await;
    app.data(
        &app.token("ann"),
        "mutation($id: ID!) { markRead(id: $id) { id } }",
        json!({ "id": read[0] }),
    )
    .await;
    // Nothing is due yet: the workers wait for the clock, not for the wall.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deliveries(&app, &unread[0]).await[0]["status"], "planned");
    clock.advance(chrono::Duration::seconds(601));
    let got = receiver.next();
    assert_eq!(got["body"]["data"]["notificationId"], unread[0].as_str());
    settled(&app, &unread[0], "succeeded").await;
    let skipped = settled(&app, &read[0], "skipped").await;
    assert_eq!(skipped["reason"], "read");
    assert_eq!(skipped["attempts"], 0, "never attempted");
    assert!(
        receiver.try_next().is_none(),
        "the read notification was not delivered"
    );
}

async fn a_failing_endpoint_is_retried_with_backoff_then_given_up(backend: Backend) {
    let receiver = Receiver::start(&[&secret(9)]);
    let url = receiver.url("/fail");
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(
        backend,
        |s| {
            s.webhooks = vec![endpoint(&url, &secret(9))];
            s.delivery_max_attempts = 3;
        },
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let ids = send(
        &app,
        &["ann"],
        "Stock low",
        json!([{ "channel": "WEBHOOK" }]),
    )
    .await;
    let first = receiver.next();
    let row = settled(&app, &ids[0], "retrying").await;
    assert_eq!(row["attempts"], 1);
    assert!(
        row["lastError"].as_str().unwrap_or("").contains("500"),
        "{row}"
    );
    // The second attempt waits 7.5 to 15 s, the third 15 to 30 s.
    clock.advance(chrono::Duration::seconds(16));
    let second = receiver.next();
    assert_eq!(
        first["id"], second["id"],
        "one idempotency key across attempts"
    );
    settled(&app, &ids[0], "retrying").await;
    clock.advance(chrono::Duration::seconds(31));
    receiver.next();
    let row = settled(&app, &ids[0], "failed").await;
    assert_eq!(row["attempts"], 3);
    assert!(row["dueAt"].is_null(), "failed for good: never due again");
    clock.advance(chrono::Duration::seconds(3600));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.try_next().is_none(), "no fourth attempt");
    let types = history(&app, &ids[0]).await;
    assert_eq!(
        types.iter().filter(|t| *t == "delivery.failed").count(),
        3,
        "{types:?}"
    );

    // Operators find it among the last hour's failures, and ask for one more attempt.
    let failures = app
        .data(
            &app.key,
            "{ deliveryLog(status: FAILED) { id notificationId recipient status attempts } }",
            json!({}),
        )
        .await;
    assert_eq!(
        failures["deliveryLog"][0]["notificationId"],
        ids[0].as_str(),
        "{failures}"
    );
    let retry = "mutation($id: ID!) { retryDelivery(id: $id) { status attempts } }";
    let retried = app.data(&app.key, retry, json!({ "id": row["id"] })).await;
    assert_eq!(retried["retryDelivery"]["status"], "retrying", "{retried}");
    let fourth = receiver.next();
    assert_eq!(fourth["id"], first["id"]);
    let row = settled(&app, &ids[0], "failed").await;
    assert_eq!(row["attempts"], 4, "one more attempt, then failed again");

    // The same from the shell.
    let listed = crate::cli::belfry(
        &app.store.url,
        &["deliveries", "list", "--status", "failed"],
    )
    .await;
    listed.assert_success();
    let id = row["id"].as_str().expect("an id");
    assert!(listed.stdout.contains(id), "{}", listed.stdout);
    crate::cli::belfry(&app.store.url, &["deliveries", "retry", id])
        .await
        .assert_success();
    assert_eq!(receiver.next()["id"], first["id"]);
    let row = settled(&app, &ids[0], "failed").await;
    assert_eq!(row["attempts"], 5);
    let refused =
        crate::cli::belfry(&app.store.url, &["deliveries", "list", "--status", "lost"]).await;
    refused.assert_failure();
    assert!(
        refused.stderr.contains("not a status"),
        "{}",
        refused.stderr
    );
    let ok = send(&app, &["bob"], "Fine", json!([])).await;
    assert!(deliveries(&app, &ok[0]).await.is_empty());
    let refused = app
        .graphql(
            Some(&app.key),
            retry,
            json!({ "id": "00000000-0000-4000-8000-000000000000" }),
        )
        .await;
    assert_eq!(crate::app::code(&refused), "NOT_FOUND", "{refused}");
}

/// Two nodes on one Postgres share the backlog: every delivery is sent once, by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_send_each_delivery_once() {
    // Each answer takes 0.5 s, so the backlog (60 at 4 at a time on the sending node) lasts
    // longer than the 5 s after which the other node looks for due deliveries by itself.
    let receiver = Receiver::start_slow(&[&secret(10)], 0.5);
    let url = receiver.url("/slow");
    let Some(app) = crate::app::spawn_app_with(Backend::Postgres, |s| {
        s.webhooks = vec![endpoint(&url, &secret(10))];
        s.delivery_concurrency = 4;
    })
    .await
    else {
        return;
    };
    let mut settings = crate::app::test_settings(&app.store);
    settings.webhooks = vec![endpoint(&url, &secret(10))];
    settings.delivery_concurrency = 4;
    let other = crate::app::Node::start(&settings).await;
    let recipients: Vec<String> = (0..60).map(|i| format!("u{i}")).collect();
    let to: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let ids = send(&app, &to, "Flash sale", json!([{ "channel": "WEBHOOK" }])).await;
    assert_eq!(ids.len(), 60);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let got = receiver.next();
        assert_eq!(got["verified"], json!([true]), "{got}");
        let id = got["id"].as_str().expect("webhook-id").to_owned();
        assert!(seen.insert(id.clone()), "delivery {id} was sent twice");
    }
    for id in &ids {
        settled(&app, id, "succeeded").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.try_next().is_none(), "nothing was sent twice");
    let actors = app
        .store
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "delivery.succeeded")
        .filter_map(|e| e.metadata.actor)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(actors.len(), 2, "both nodes worked the backlog: {actors:?}");
    other.stop().await;
}

/// A server killed with SIGKILL after the receiver got the request but before the outcome was
/// recorded: after a restart the lease expires and the delivery is sent again, with the same
/// `webhook-id`, and recorded once it succeeds.
async fn a_delivery_in_flight_when_the_server_is_killed_is_sent_again_with_its_id(
    backend: Backend,
) {
    let Some(store) = crate::helpers::TestStore::new(backend).await else {
        return;
    };
    let receiver = Receiver::start_slow(&[&secret(11)], 2.0);
    let config = store.dir().join("belfry.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nurl = \"{}\"\nsecrets = [\"{}\"]\ntimeout_ms = 4000\n",
            receiver.url("/slow"),
            secret(11)
        ),
    )
    .expect("write the config");
    let key = belfry::auth::ApiKeys::new(store.db.clone())
        .create(
            "tests",
            &[belfry::auth::Scope::Send, belfry::auth::Scope::Admin],
        )
        .await
        .expect("a key")
        .0;
    let env = [
        ("BELFRY_CONFIG", config.to_str().expect("a path")),
        // Short, so the restarted server claims the delivery again soon; longer than
        // timeout_ms (4 s, itself longer than the receiver's 2 s), as the settings require.
        ("BELFRY_DELIVERY_LEASE_SECS", "5"),
    ];
    let first = crate::logs::Server::start_with(&store, &env);
    let http = crate::app::http();
    let (status, body) = crate::app::post(
        &http,
        first.port,
        Some(&key),
        json!({ "query": SEND, "variables": { "input": {
            "recipients": ["ann"], "title": "Payment failed", "category": "billing",
            "routes": [{ "channel": "WEBHOOK" }],
        } } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["sendNotification"]["deliveries"][0]["notificationId"]
        .as_str()
        .expect("an id")
        .to_owned();
    // The receiver has the request and takes two seconds to answer: kill the server now.
    let got = receiver.next();
    first.kill();

    let second = crate::logs::Server::start_with(&store, &env);
    let again = receiver.next();
    assert_eq!(
        again["id"], got["id"],
        "the same webhook-id: the receiver can drop it"
    );
    assert_eq!(again["verified"], json!([true]));
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let (_, body) = crate::app::post(
            &http,
            second.port,
            Some(&key),
            json!({ "query": DELIVERIES, "variables": { "id": id } }),
        )
        .await;
        let row = body["data"]["deliveries"][0].clone();
        if row["status"] == "succeeded" {
            break row;
        }
        assert!(Instant::now() < deadline, "never succeeded: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row["attempts"], 2, "{row}");
    second.stop();
}

/// Email reaches the person at the address the directory holds, as the SMTP server receives
/// it; a person without one is skipped as `no_address`, not failed.
async fn an_email_route_reaches_the_address_in_the_directory(backend: Backend) {
    let mut sink = crate::email::Sink::start(&[]).await;
    let smtp = sink.settings("");
    let Some(app) = spawn_app_with(backend, |s| {
        s.smtp = Some(smtp);
        s.public_url = Some("https://notify.belfry.test".to_owned());
    })
    .await
    else {
        return;
    };
    app.data(
        &app.key,
        "mutation { upsertRecipients(recipients: [{ userId: \"ann\", displayName: \"Ann Lee\", email: \"ann@example.com\" }]) { userId } }",
        json!({}),
    )
    .await;
    let email = json!([{ "channel": "EMAIL" }]);
    let ids = send(&app, &["ann", "bob"], "Payment failed", email).await;
    let received = sink.received().await;
    assert_eq!(received.header("To"), "Ann Lee <ann@example.com>");
    assert_eq!(received.header("Subject"), "Payment failed");
    assert!(received.part("text/plain").contains("Payment failed"));
    let row = settled(&app, &ids[0], "succeeded").await;
    let id = row["id"].as_str().expect("an id");
    assert!(
        received.header("Message-ID").contains(id),
        "the Message-ID carries the delivery id {id}"
    );
    assert!(row["providerId"].is_string(), "{row}");
    let bob = settled(&app, &ids[1], "skipped").await;
    assert_eq!(bob["reason"], "no_address");
    sink.assert_quiet();

    // The one-click unsubscribe link (RFC 8058) switches this category's email off.
    assert_eq!(
        received.header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let link = received.header("List-Unsubscribe");
    let path = link
        .trim_matches(|c| c == '<' || c == '>')
        .strip_prefix("https://notify.belfry.test")
        .unwrap_or_else(|| panic!("a link under public_url: {link}"))
        .to_owned();
    let local = |path: &str| format!("http://127.0.0.1:{}{path}", app.port());
    let http = crate::app::http();
    let page = http.get(local(&path)).send().await.expect("the page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    let preferences = "{ preferences { category channel enabled } }";
    let ann = app.token("ann");
    assert_eq!(
        app.data(&ann, preferences, json!({})).await["preferences"],
        json!([]),
        "opening the link changes nothing"
    );
    let forged = http
        .post(local(&format!("{path}x")))
        .send()
        .await
        .expect("an answer");
    assert_eq!(forged.status(), 404);
    let clicked = http
        .post(local(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("an answer");
    assert_eq!(clicked.status(), 200);
    assert_eq!(
        app.data(&ann, preferences, json!({})).await["preferences"],
        json!([{ "category": "orders", "channel": "EMAIL", "enabled": false }])
    );
    let next = send(
        &app,
        &["ann"],
        "Payment failed again",
        json!([{ "channel": "EMAIL" }]),
    )
    .await;
    let skipped = settled(&app, &next[0], "skipped").await;
    assert_eq!(skipped["reason"], "muted");
    sink.assert_quiet();
}

/// Preferences are checked again when a delivery falls due: a person who switched the channel
/// off in the meantime gets nothing.
async fn a_channel_muted_before_the_delivery_falls_due_is_skipped(backend: Backend) {
    let receiver = Receiver::start(&[&secret(12)]);
    let url = receiver.url("/ok");
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(
        backend,
        |s| s.webhooks = vec![endpoint(&url, &secret(12))],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let later = json!([{ "channel": "WEBHOOK", "afterSeconds": 600 }]);
    let ids = send(&app, &["ann"], "Weekly report", later).await;
    app.data(
        &app.token("ann"),
        "mutation { updatePreferences(changes: [{ category: \"orders\", channel: WEBHOOK, enabled: false }]) { enabled } }",
        json!({}),
    )
    .await;
    clock.advance(chrono::Duration::seconds(601));
    let row = settled(&app, &ids[0], "skipped").await;
    assert_eq!(row["reason"], "muted");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.try_next().is_none(), "nothing was sent");
}

/// A rebuild of every projection while deliveries are pending sends nothing: what was sent
/// stays sent, and what waits is sent once, when it falls due.
async fn a_rebuild_during_pending_deliveries_sends_nothing(backend: Backend) {
    let receiver = Receiver::start(&[&secret(13)]);
    let url = receiver.url("/ok");
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(
        backend,
        |s| s.webhooks = vec![endpoint(&url, &secret(13))],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let now = send(&app, &["ann"], "Now", json!([{ "channel": "WEBHOOK" }])).await;
    let later = send(
        &app,
        &["ann"],
        "Later",
        json!([{ "channel": "WEBHOOK", "afterSeconds": 600 }]),
    )
    .await;
    receiver.next();
    settled(&app, &now[0], "succeeded").await;
    crate::cli::belfry(&app.store.url, &["replay"])
        .await
        .assert_success();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.try_next().is_none(), "the rebuild sent nothing");
    assert_eq!(deliveries(&app, &now[0]).await[0]["status"], "succeeded");
    assert_eq!(deliveries(&app, &later[0]).await[0]["status"], "planned");
    clock.advance(chrono::Duration::seconds(601));
    let got = receiver.next();
    assert_eq!(got["body"]["data"]["notificationId"], later[0].as_str());
    settled(&app, &later[0], "succeeded").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.try_next().is_none(), "each sent once");
}

crate::on_both_backends!(
    a_webhook_route_arrives_signed_and_every_step_is_recorded,
    a_delivery_after_ten_minutes_unless_read_goes_only_to_the_unread,
    a_failing_endpoint_is_retried_with_backoff_then_given_up,
    a_delivery_in_flight_when_the_server_is_killed_is_sent_again_with_its_id,
    an_email_route_reaches_the_address_in_the_directory,
    a_channel_muted_before_the_delivery_falls_due_is_skipped,
    a_rebuild_during_pending_deliveries_sends_nothing,
);
