//! Scheduled sends: a send with `sendAt` enters no inbox, counter or live subscription until
//! its time on the server's clock, then arrives live with the ids the schedule gave it and
//! its deliveries planned from then; before that an admin lists it and may cancel it, by id
//! or by idempotency key; a retry under its key answers with the same schedule; and replay
//! rebuilds the same read model.

use std::sync::Arc;
use std::time::Duration;

use belfry::clock::{Clock, ManualClock};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::app::{code, merged, spawn_app_clocked, TestApp};
use crate::cli::assert_replay_is_clean;
use crate::deliver::workers_clock;
use crate::helpers::Backend;
use crate::routes::deliveries;
use crate::throttle::inbox;

const SEND: &str = "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { \
    replayed deliveries { notificationId } \
    scheduled { id sendAt status category title recipientCount idempotencyKey \
    recipients { recipient notificationId } } } }";

const LIST: &str = "query($status: ScheduledSendStatus) { scheduledSends(status: $status) { \
    id status title sendAt } }";

const CANCEL: &str = "mutation($id: ID, $key: String) { \
    cancelScheduledSend(id: $id, idempotencyKey: $key) { id status } }";

async fn app(backend: Backend) -> Option<(TestApp, Arc<ManualClock>)> {
    let clock = workers_clock();
    let app = spawn_app_clocked(backend, |_| {}, clock.clone()).await?;
    Some((app, clock))
}

fn later(clock: &ManualClock, seconds: i64) -> DateTime<Utc> {
    clock.now() + chrono::Duration::seconds(seconds)
}

/// Schedules `title` to `to` at `at`; the answer's `scheduled`.
async fn schedule(
    app: &TestApp,
    to: &[&str],
    title: &str,
    at: DateTime<Utc>,
    extra: Value,
) -> Value {
    let input = merged(
        json!({ "recipients": to, "title": title, "sendAt": at }),
        &extra,
    );
    let answer =
        app.data(&app.key, SEND, json!({ "input": input })).await["sendNotification"].clone();
    assert_eq!(answer["deliveries"], json!([]), "{answer}");
    answer["scheduled"].clone()
}

async fn list(app: &TestApp, status: Option<&str>) -> Vec<Value> {
    app.data(&app.key, LIST, json!({ "status": status })).await["scheduledSends"]
        .as_array()
        .expect("a list")
        .clone()
}

/// Waits (at most 20 s) until the scheduled send `id` is `status`.
async fn becomes(app: &TestApp, id: &str, status: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let one = app
            .data(
                &app.key,
                "query($id: ID!) { scheduledSend(id: $id) { status } }",
                json!({ "id": id }),
            )
            .await;
        if one["scheduledSend"]["status"] == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {status}: {one}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_scheduled_send_appears_live_at_its_time_and_not_before(backend: Backend) {
    let Some((app, clock)) = app(backend).await else {
        return;
    };
    let mut ws = app.ws("ann").await;
    crate::live::subscribe_inbox(&app, &mut ws, "1", "ann").await;
    let at = later(&clock, 3600);
    let routes =
        json!({ "routes": [{ "channel": "EMAIL", "afterSeconds": 600 }], "category": "sales" });
    let scheduled = schedule(&app, &["ann", "bob"], "Sale starts", at, routes).await;
    assert_eq!(scheduled["status"], "PENDING");
    assert_eq!(scheduled["recipientCount"], 2);
    assert_eq!(scheduled["category"], "sales");
    let sent_at: DateTime<Utc> = scheduled["sendAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(sent_at, at);
    let ann_id = scheduled["recipients"][0]["notificationId"]
        .as_str()
        .expect("ann's id")
        .to_owned();
    assert_eq!(scheduled["recipients"][0]["recipient"], "ann");
    // Not before: no inbox, no counter, no live change, no delivery.
    assert_eq!(inbox(&app, "ann").await, (Vec::<String>::new(), 0));
    assert!(deliveries(&app, &ann_id).await.is_empty());
    let pending = list(&app, Some("PENDING")).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], scheduled["id"]);
    clock.advance(chrono::Duration::seconds(3599));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox(&app, "ann").await.1, 0, "a second before its time");
    // At its time: live, with the scheduled id.
    clock.advance(chrono::Duration::seconds(1));
    let change = ws.next_payload("1").await;
    let added = &change["data"]["inbox"]["added"][0];
    assert_eq!(added["title"], "Sale starts", "{change}");
    assert_eq!(added["id"], ann_id.as_str());
    assert_eq!(change["data"]["inbox"]["counts"]["unread"], 1);
    assert_eq!(inbox(&app, "bob").await.1, 1);
    becomes(&app, scheduled["id"].as_str().unwrap(), "PUBLISHED").await;
    // Its delivery is planned from its time, not from when it was scheduled.
    let planned = deliveries(&app, &ann_id).await;
    let due: DateTime<Utc> = planned[0]["dueAt"].as_str().unwrap().parse().unwrap();
    assert!(
        due >= at + chrono::Duration::seconds(600),
        "due {due}, published at {at}"
    );
    let history = crate::deliver_faults::history(&app, &ann_id).await;
    assert_eq!(history[0].0, "notification.sent");
    // Published, it can no longer be cancelled.
    let late = app
        .graphql(Some(&app.key), CANCEL, json!({ "id": scheduled["id"] }))
        .await;
    assert_eq!(code(&late), "CONFLICT", "{late}");
    ws.close().await;
    assert_replay_is_clean(&app.store.url).await;
}

async fn a_cancelled_send_never_appears(backend: Backend) {
    let Some((app, clock)) = app(backend).await else {
        return;
    };
    let keyed = json!({ "idempotencyKey": "spring-sale" });
    let first = schedule(
        &app,
        &["ann"],
        "Spring sale",
        later(&clock, 600),
        keyed.clone(),
    )
    .await;
    let by_id = schedule(&app, &["ann"], "Summer sale", later(&clock, 600), json!({})).await;
    // A retry under the key answers with the same schedule and schedules nothing new.
    let again = app
        .data(
            &app.key,
            SEND,
            json!({ "input": { "recipients": ["ann"], "title": "Spring sale",
                "sendAt": later(&clock, 600), "idempotencyKey": "spring-sale" } }),
        )
        .await["sendNotification"]
        .clone();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["scheduled"]["id"], first["id"]);
    // The same key for another time, or for a send made at once, is a conflict.
    let other_time = app
        .graphql(
            Some(&app.key),
            SEND,
            json!({ "input": { "recipients": ["ann"], "title": "Spring sale",
                "sendAt": later(&clock, 900), "idempotencyKey": "spring-sale" } }),
        )
        .await;
    assert_eq!(code(&other_time), "CONFLICT", "{other_time}");
    let at_once = app
        .graphql(
            Some(&app.key),
            SEND,
            json!({ "input": { "recipients": ["ann"], "title": "Spring sale", "idempotencyKey": "spring-sale" } }),
        )
        .await;
    assert_eq!(code(&at_once), "CONFLICT", "{at_once}");
    assert_eq!(list(&app, Some("PENDING")).await.len(), 2);
    // Cancelled by key and by id; a second cancel changes nothing.
    let cancelled = app
        .data(&app.key, CANCEL, json!({ "key": "spring-sale" }))
        .await;
    assert_eq!(cancelled["cancelScheduledSend"]["status"], "CANCELLED");
    assert_eq!(cancelled["cancelScheduledSend"]["id"], first["id"]);
    for _ in 0..2 {
        let cancelled = app
            .data(&app.key, CANCEL, json!({ "id": by_id["id"] }))
            .await;
        assert_eq!(cancelled["cancelScheduledSend"]["status"], "CANCELLED");
    }
    clock.advance(chrono::Duration::seconds(601));
    // A send made after them is published past them: they were skipped, not waiting.
    let next = schedule(&app, &["ann"], "Autumn sale", later(&clock, 1), json!({})).await;
    clock.advance(chrono::Duration::seconds(1));
    becomes(&app, next["id"].as_str().unwrap(), "PUBLISHED").await;
    assert_eq!(
        inbox(&app, "ann").await,
        (vec!["Autumn sale".to_owned()], 1)
    );
    assert_eq!(list(&app, Some("CANCELLED")).await.len(), 2);
    assert_eq!(list(&app, None).await.len(), 3);
    // Unknown ones, and asking with both or neither.
    let unknown = app
        .graphql(Some(&app.key), CANCEL, json!({ "key": "no-such-key" }))
        .await;
    assert_eq!(code(&unknown), "NOT_FOUND", "{unknown}");
    let neither = app.graphql(Some(&app.key), CANCEL, json!({})).await;
    assert_eq!(code(&neither), "BAD_USER_INPUT", "{neither}");
    assert_replay_is_clean(&app.store.url).await;
}

async fn scheduling_is_checked_and_for_admins_to_manage(backend: Backend) {
    let Some((app, clock)) = app(backend).await else {
        return;
    };
    let too_far = app
        .graphql(
            Some(&app.key),
            SEND,
            json!({ "input": { "recipients": ["ann"], "title": "x", "sendAt": later(&clock, 366 * 86_400) } }),
        )
        .await;
    assert_eq!(code(&too_far), "BAD_USER_INPUT", "{too_far}");
    assert!(too_far.to_string().contains("sendAt"), "{too_far}");
    // A time not in the future sends at once.
    let now = app
        .data(
            &app.key,
            SEND,
            json!({ "input": { "recipients": ["ann"], "title": "Now", "sendAt": later(&clock, -5) } }),
        )
        .await;
    assert!(now["sendNotification"]["scheduled"].is_null());
    assert_eq!(inbox(&app, "ann").await.1, 1);
    // A person's token lists and cancels nothing.
    let listed = app.graphql(Some(&app.token("ann")), LIST, json!({})).await;
    assert_eq!(code(&listed), "FORBIDDEN", "{listed}");
    let s = schedule(&app, &["ann"], "Later", later(&clock, 60), json!({})).await;
    let cancel = app
        .graphql(Some(&app.token("ann")), CANCEL, json!({ "id": s["id"] }))
        .await;
    assert_eq!(code(&cancel), "FORBIDDEN", "{cancel}");
    let page = app
        .data(
            &app.key,
            "query($after: ID) { scheduledSends(first: 1, after: $after) { id } }",
            json!({ "after": s["id"] }),
        )
        .await;
    assert_eq!(page["scheduledSends"], json!([]));
}

async fn belfry_send_at_schedules_from_the_shell(backend: Backend) {
    let Some(store) = crate::helpers::TestStore::new(backend).await else {
        return;
    };
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let args = [
        "send",
        "--to",
        "ann",
        "--title",
        "Later",
        "--at",
        at.as_str(),
    ];
    let done = crate::cli::belfry(&store.url, &args).await;
    done.assert_success();
    let answer: Value = serde_json::from_str(done.stdout.trim()).expect("JSON");
    assert_eq!(answer["notifications"], json!([]), "{answer}");
    assert!(answer["scheduled"].is_string(), "{answer}");
    let bad = crate::cli::belfry(
        &store.url,
        &["send", "--to", "ann", "--title", "x", "--at", "tomorrow"],
    )
    .await;
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
    assert_replay_is_clean(&store.url).await;
}

crate::on_both_backends!(
    a_scheduled_send_appears_live_at_its_time_and_not_before,
    a_cancelled_send_never_appears,
    scheduling_is_checked_and_for_admins_to_manage,
    belfry_send_at_schedules_from_the_shell,
);
