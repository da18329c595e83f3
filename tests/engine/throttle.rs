//! Throttling: at most N notifications of a category reach one person per window. One over
//! the limit is recorded (suppressed, reason `throttled`, in its history) but enters no
//! inbox and no counter, and its deliveries are skipped as `throttled`; the window runs on
//! the server's injected clock; critical sends are exempt; a send may name its own throttle
//! or none; and replay rebuilds the same read model.

use std::sync::Arc;

use belfry::clock::ManualClock;
use belfry::config::{Settings, ThrottleSetting};
use serde_json::{json, Value};

use crate::app::{merged, spawn_app_clocked, TestApp};
use crate::deliver::workers_clock;
use crate::helpers::{Backend, TestStore};
use crate::routes::deliveries;

const SEND: &str = "mutation($input: SendNotificationInput!) { \
    sendNotification(input: $input) { deliveries { recipient notificationId suppressed throttled } } }";

/// A server whose `marketing` category allows `max` per `per_seconds`, on a clock the test moves.
async fn throttled_app(
    backend: Backend,
    max: i64,
    per_seconds: i64,
) -> Option<(TestApp, Arc<ManualClock>)> {
    let clock = workers_clock();
    let tune = move |s: &mut Settings| {
        s.throttle
            .insert("marketing".into(), ThrottleSetting { max, per_seconds });
    };
    let app = spawn_app_clocked(backend, tune, clock.clone()).await?;
    Some((app, clock))
}

/// Sends `input` (recipients default to ann, category to marketing, a title to "Sale");
/// returns each recipient's delivery as the answer has it.
async fn send(app: &TestApp, input: Value) -> Vec<Value> {
    let full = merged(
        json!({ "recipients": ["ann"], "category": "marketing", "title": "Sale" }),
        &input,
    );
    app.data(&app.key, SEND, json!({ "input": full })).await["sendNotification"]["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

/// Sends one to ann; whether it was throttled, and its id.
async fn send_one(app: &TestApp, input: Value) -> (bool, String) {
    let d = &send(app, input).await[0];
    let throttled = d["throttled"].as_bool().expect("throttled");
    assert_eq!(d["suppressed"].as_bool(), Some(throttled), "{d}");
    (
        throttled,
        d["notificationId"].as_str().expect("id").to_owned(),
    )
}

/// The titles in `user`'s inbox, newest first, and their unread count.
pub(crate) async fn inbox(app: &TestApp, user: &str) -> (Vec<String>, i64) {
    let data = app
        .data(
            &app.token(user),
            "{ notifications { edges { node { title } } } counts { unread } }",
            json!({}),
        )
        .await;
    let titles = data["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["title"].as_str().expect("title").to_owned())
        .collect();
    (titles, data["counts"]["unread"].as_i64().expect("unread"))
}

/// The (type, reason) of each event of a notification's history.
pub(crate) async fn history(app: &TestApp, id: &str) -> Vec<(String, Option<String>)> {
    crate::deliver_faults::history(app, id)
        .await
        .into_iter()
        .map(|(t, data)| (t, data["reason"].as_str().map(str::to_owned)))
        .collect()
}

async fn the_send_over_the_limit_is_recorded_not_shown_until_the_window_has_passed(
    backend: Backend,
) {
    let Some((app, clock)) = throttled_app(backend, 3, 3600).await else {
        return;
    };
    for i in 1..=3 {
        let title = format!("Sale {i}");
        let (throttled, _) = send_one(&app, json!({ "title": title })).await;
        assert!(!throttled, "the {i}th of 3 is delivered");
        clock.advance(chrono::Duration::seconds(60));
    }
    // 3 min after the first: the 4th is over the limit, and so is one just inside the window.
    let (throttled, fourth) = send_one(&app, json!({ "title": "Sale 4" })).await;
    assert!(throttled, "the 4th is throttled");
    assert_eq!(
        history(&app, &fourth).await,
        [(
            "notification.suppressed".to_owned(),
            Some("throttled".to_owned())
        )]
    );
    let (titles, unread) = inbox(&app, "ann").await;
    assert_eq!(titles, ["Sale 3", "Sale 2", "Sale 1"]);
    assert_eq!(unread, 3);
    clock.advance(chrono::Duration::seconds(3600 - 180 - 1));
    let (throttled, _) = send_one(&app, json!({ "title": "Sale 5" })).await;
    assert!(throttled, "a second before the first leaves the window");
    // Throttled ones do not count: once the first has left the window, one more fits.
    clock.advance(chrono::Duration::seconds(1));
    let (throttled, _) = send_one(&app, json!({ "title": "Sale 6" })).await;
    assert!(!throttled, "the first has left the window");
    let (throttled, _) = send_one(&app, json!({ "title": "Sale 7" })).await;
    assert!(throttled, "Sale 2, 3 and 6 fill the window again");
    // Other people and other categories are not affected.
    let (throttled, _) = send_one(&app, json!({ "category": "billing" })).await;
    assert!(!throttled);
    assert!(send(&app, json!({ "recipients": ["bob"] })).await[0]["throttled"] == false);
    let (titles, unread) = inbox(&app, "ann").await;
    assert_eq!(titles.len(), 5, "{titles:?}");
    assert_eq!(unread, 5);
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

async fn a_critical_send_is_never_throttled(backend: Backend) {
    let Some((app, _clock)) = throttled_app(backend, 1, 3600).await else {
        return;
    };
    assert!(!send_one(&app, json!({})).await.0);
    assert!(send_one(&app, json!({})).await.0);
    let (throttled, id) = send_one(&app, json!({ "critical": true, "title": "Fraud alert" })).await;
    assert!(!throttled, "critical goes through");
    assert_eq!(history(&app, &id).await[0].0, "notification.sent");
    let (titles, unread) = inbox(&app, "ann").await;
    assert_eq!(titles, ["Fraud alert", "Sale"]);
    assert_eq!(unread, 2);
}

async fn a_send_may_name_a_tighter_throttle_or_none(backend: Backend) {
    let Some((app, clock)) = throttled_app(backend, 3, 3600).await else {
        return;
    };
    // Tighter than the category's: 1 a minute.
    let tight = json!({ "throttle": { "max": 1, "perSeconds": 60 } });
    assert!(!send_one(&app, tight.clone()).await.0);
    assert!(send_one(&app, tight.clone()).await.0);
    clock.advance(chrono::Duration::seconds(60));
    assert!(!send_one(&app, tight.clone()).await.0);
    // A category with no throttle configured, throttled by the send.
    let news = json!({ "category": "news", "throttle": { "max": 1, "perSeconds": 60 } });
    assert!(!send_one(&app, news.clone()).await.0);
    assert!(send_one(&app, news).await.0);
    // Marketing holds 2 in the hour; one more fills it, and `off` goes past it.
    assert!(!send_one(&app, json!({})).await.0);
    assert!(send_one(&app, json!({})).await.0);
    let off = json!({ "throttle": { "off": true } });
    assert!(!send_one(&app, off.clone()).await.0);
    assert!(!send_one(&app, off).await.0);
    // A half-named throttle is refused, naming the field.
    let refused = app
        .graphql(
            Some(&app.key),
            SEND,
            json!({ "input": { "recipients": ["ann"], "title": "x", "throttle": { "max": 0, "perSeconds": 60 } } }),
        )
        .await;
    assert_eq!(crate::app::code(&refused), "BAD_USER_INPUT", "{refused}");
    assert!(refused.to_string().contains("throttle"), "{refused}");
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

async fn sends_decided_together_count_each_other_and_a_broadcast_is_throttled_per_person(
    backend: Backend,
) {
    let Some((app, _clock)) = throttled_app(backend, 3, 3600).await else {
        return;
    };
    // Concurrent sends to one person share appender batches: each still counts those before.
    let sends = (0..12).map(|i| {
        let app = &app;
        async move {
            send_one(app, json!({ "title": format!("Sale {i}") }))
                .await
                .0
        }
    });
    let throttled = futures_util::future::join_all(sends).await;
    assert_eq!(
        throttled.iter().filter(|t| !**t).count(),
        3,
        "exactly 3 of 12 delivered: {throttled:?}"
    );
    assert_eq!(inbox(&app, "ann").await.1, 3);
    // bob got one already; a broadcast to 300 people throttles nobody but ann.
    send(&app, json!({ "recipients": ["bob"] })).await;
    let everyone: Vec<String> = std::iter::once("ann".to_owned())
        .chain((0..299).map(|i| format!("user-{i}")))
        .collect();
    let answer = send(&app, json!({ "recipients": everyone })).await;
    let throttled: Vec<&str> = answer
        .iter()
        .filter(|d| d["throttled"] == true)
        .map(|d| d["recipient"].as_str().expect("recipient"))
        .collect();
    assert_eq!(throttled, ["ann"]);
    assert_eq!(inbox(&app, "user-7").await.1, 1);
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

async fn the_deliveries_of_a_throttled_send_are_skipped_as_throttled(backend: Backend) {
    let Some((app, _clock)) = throttled_app(backend, 1, 3600).await else {
        return;
    };
    // Delayed, so no worker takes the planned one while the test looks.
    let routed = json!({ "routes": [{ "channel": "EMAIL", "afterSeconds": 600 }, { "channel": "WEBHOOK", "afterSeconds": 600 }] });
    let (_, first) = send_one(&app, routed.clone()).await;
    let (throttled, second) = send_one(&app, routed).await;
    assert!(throttled);
    let planned = deliveries(&app, &first).await;
    assert!(
        planned.iter().all(|d| d["status"] == "planned"),
        "{planned:?}"
    );
    let skipped = deliveries(&app, &second).await;
    assert_eq!(skipped.len(), 2);
    for d in &skipped {
        assert_eq!(
            (d["status"].as_str(), d["reason"].as_str()),
            (Some("skipped"), Some("throttled")),
            "{d}"
        );
        assert!(d["dueAt"].is_null());
    }
    let events: Vec<String> = history(&app, &second)
        .await
        .into_iter()
        .map(|(t, r)| format!("{t} {}", r.unwrap_or_default()))
        .collect();
    assert_eq!(
        events,
        [
            "notification.suppressed throttled",
            "delivery.skipped throttled",
            "delivery.skipped throttled"
        ]
    );
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

async fn belfry_send_takes_a_throttle_and_reports_the_throttled(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let send = |throttle: &'static str| {
        let url = store.url.clone();
        async move {
            let args = [
                "send",
                "--to",
                "ann",
                "--title",
                "Sale",
                "--category",
                "marketing",
                "--throttle",
                throttle,
            ];
            let done = crate::cli::belfry(&url, &args).await;
            done.assert_success();
            let json: Value = serde_json::from_str(done.stdout.trim()).expect("JSON");
            json["notifications"][0]["throttled"]
                .as_bool()
                .expect("throttled")
        }
    };
    assert!(!send("1/3600").await);
    assert!(send("1/3600").await);
    assert!(!send("off").await);
    let bad = crate::cli::belfry(
        &store.url,
        &["send", "--to", "ann", "--title", "x", "--throttle", "3"],
    )
    .await;
    assert!(bad.stderr.contains("MAX/SECONDS"), "{}", bad.stderr);
    crate::cli::assert_replay_is_clean(&store.url).await;
}

async fn a_live_subscriber_never_sees_a_throttled_notification(backend: Backend) {
    let Some((app, _clock)) = throttled_app(backend, 1, 3600).await else {
        return;
    };
    let mut ws = app.ws("ann").await;
    crate::live::subscribe_inbox(&app, &mut ws, "1", "ann").await;
    send_one(&app, json!({ "title": "Sale 1" })).await;
    let first = ws.next_payload("1").await;
    assert_eq!(first["data"]["inbox"]["added"][0]["title"], "Sale 1");
    assert!(send_one(&app, json!({ "title": "Sale 2" })).await.0);
    send_one(&app, json!({ "category": "billing", "title": "Invoice" })).await;
    // The next change is the invoice: the throttled sale made none.
    let next = ws.next_payload("1").await;
    assert_eq!(
        next["data"]["inbox"]["added"][0]["title"], "Invoice",
        "{next}"
    );
    assert_eq!(next["data"]["inbox"]["counts"]["unread"], 2, "{next}");
    ws.close().await;
}

async fn a_retry_of_a_throttled_keyed_send_answers_as_the_first_did(backend: Backend) {
    let Some((app, _clock)) = throttled_app(backend, 1, 3600).await else {
        return;
    };
    send_one(&app, json!({})).await;
    let keyed = json!({ "idempotencyKey": "sale-2" });
    let (throttled, id) = send_one(&app, keyed.clone()).await;
    assert!(throttled);
    let (again, again_id) = send_one(&app, keyed).await;
    assert!(again, "the retry reports the first answer");
    assert_eq!(again_id, id);
    // The send's own throttle is part of the request: another under the same key conflicts.
    let changed = app
        .graphql(
            Some(&app.key),
            SEND,
            json!({ "input": { "recipients": ["ann"], "category": "marketing", "title": "Sale",
                "idempotencyKey": "sale-2", "throttle": { "off": true } } }),
        )
        .await;
    assert_eq!(crate::app::code(&changed), "CONFLICT", "{changed}");
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

crate::on_both_backends!(
    a_live_subscriber_never_sees_a_throttled_notification,
    a_retry_of_a_throttled_keyed_send_answers_as_the_first_did,
    the_send_over_the_limit_is_recorded_not_shown_until_the_window_has_passed,
    a_critical_send_is_never_throttled,
    a_send_may_name_a_tighter_throttle_or_none,
    sends_decided_together_count_each_other_and_a_broadcast_is_throttled_per_person,
    the_deliveries_of_a_throttled_send_are_skipped_as_throttled,
    belfry_send_takes_a_throttle_and_reports_the_throttled,
);
