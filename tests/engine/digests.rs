//! Digests: an email that falls due while its person has a digest for its category joins the
//! digest (`delivery.digested`) instead of going out; when the digest's time comes on the
//! person's wall clock, one message lists what is left, newest first (read ones left out; no
//! message when nothing is left), and `digest.closed` names the notifications it covered.
//! People in different time zones, hourly and daily; `urgent` goes out at once; replay
//! rebuilds the same read model. The server's clock is the test's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use belfry::clock::ManualClock;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::app::{code, merged, send_first, spawn_app_clocked, TestApp};
use crate::deliver::settled;
use crate::email::Sink;
use crate::helpers::Backend;
use crate::routes::deliveries;

const SET: &str = "mutation($user: String, $category: String!, $channel: Channel!, \
    $schedule: DigestScheduleInput) { setDigest(userId: $user, category: $category, \
    channel: $channel, schedule: $schedule) { timeZone settings { category channel \
    schedule { frequency at day } nextAt } } }";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

/// A server with email to a real SMTP sink, its clock at `start`.
async fn app_at(backend: Backend, start: &str) -> Option<(TestApp, Arc<ManualClock>, Sink)> {
    let sink = Sink::start(&[]).await;
    let smtp = sink.settings("");
    let clock = Arc::new(ManualClock::new(at(start)));
    let app = spawn_app_clocked(backend, move |s| s.smtp = Some(smtp), clock.clone()).await?;
    Some((app, clock, sink))
}

/// Puts `user` in the directory with an address and `zone`.
async fn profile(app: &TestApp, user: &str, zone: &str) {
    crate::quiet_hours::profile(app, user, Some(zone)).await;
}

/// The person sets their own digest for `orders` by email; the answer.
async fn set_own(app: &TestApp, user: &str, schedule: Value) -> Value {
    app.data(
        &app.token(user),
        SET,
        json!({ "category": "orders", "channel": "EMAIL", "schedule": schedule }),
    )
    .await["setDigest"]
        .clone()
}

/// Sends `title` to `user` by email (and in-app) in `orders`; the notification id.
async fn send(app: &TestApp, user: &str, title: &str, extra: Value) -> String {
    let input = merged(
        json!({ "recipients": [user], "title": title, "body": format!("About {title}."),
        "category": "orders", "routes": [{ "channel": "EMAIL" }] }),
        &extra,
    );
    send_first(app, input).await
}

/// The digest `id`'s email delivery joined, once it has.
async fn joined(app: &TestApp, id: &str) -> String {
    let row = settled(app, id, "digested").await;
    row["digestId"].as_str().expect("a digest id").to_owned()
}

/// The digest's events, once it has closed.
async fn digest_history(app: &TestApp, digest: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = app
            .graphql(
                Some(&app.key),
                "query($id: ID!) { digestHistory(id: $id) { type data streamId } }",
                json!({ "id": digest }),
            )
            .await;
        if let Some(events) = answer["data"]["digestHistory"].as_array() {
            return events.clone();
        }
        assert_eq!(code(&answer), "NOT_FOUND", "{answer}");
        assert!(Instant::now() < deadline, "digest {digest} never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn mark_read(app: &TestApp, user: &str, id: &str) {
    app.data(
        &app.token(user),
        "mutation($id: ID!) { markRead(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
}

/// Bob in New York has an hourly digest, Ann in Berlin a daily one at 09:30, Cy in Tokyo a
/// daily one at 17:00 whose items he reads before it closes.
async fn hourly_and_daily_digests_in_two_time_zones(backend: Backend) {
    // Wednesday 07:10 UTC: 02:10 in New York, 08:10 in Berlin, 16:10 in Tokyo.
    let Some((app, clock, mut sink)) = app_at(backend, "2027-01-13T07:10:00Z").await else {
        return;
    };
    profile(&app, "bob", "America/New_York").await;
    profile(&app, "ann", "Europe/Berlin").await;
    profile(&app, "cy", "Asia/Tokyo").await;
    let bob = set_own(&app, "bob", json!({ "frequency": "HOURLY" })).await;
    assert_eq!(bob["timeZone"], "America/New_York");
    assert_eq!(
        bob["settings"],
        json!([{ "category": "orders", "channel": "EMAIL",
            "schedule": { "frequency": "HOURLY", "at": null, "day": null },
            "nextAt": "2027-01-13T08:00:00+00:00" }])
    );
    let ann = set_own(&app, "ann", json!({ "frequency": "DAILY", "at": "09:30" })).await;
    assert_eq!(ann["settings"][0]["nextAt"], "2027-01-13T08:30:00+00:00");
    let cy = set_own(&app, "cy", json!({ "frequency": "DAILY", "at": "17:00" })).await;
    assert_eq!(cy["settings"][0]["nextAt"], "2027-01-13T08:00:00+00:00");

    let b1 = send(&app, "bob", "B1", json!({})).await;
    let b1_digest = joined(&app, &b1).await;
    clock.advance(chrono::Duration::minutes(1));
    let b2 = send(&app, "bob", "B2", json!({})).await;
    let b2_digest = joined(&app, &b2).await;
    clock.advance(chrono::Duration::minutes(1));
    let b3 = send(&app, "bob", "B3", json!({})).await;
    let b3_digest = joined(&app, &b3).await;
    assert!(
        b1_digest == b2_digest && b2_digest == b3_digest,
        "one open digest"
    );
    mark_read(&app, "bob", &b2).await;
    let a1 = send(&app, "ann", "A1", json!({})).await;
    let ann_digest = joined(&app, &a1).await;
    let a2 = send(&app, "ann", "A2", json!({})).await;
    assert_eq!(joined(&app, &a2).await, ann_digest);
    assert_ne!(ann_digest, b1_digest, "each person has their own");
    let c1 = send(&app, "cy", "C1", json!({})).await;
    let cy_digest = joined(&app, &c1).await;
    let c2 = send(&app, "cy", "C2", json!({})).await;
    assert_eq!(joined(&app, &c2).await, cy_digest);
    mark_read(&app, "cy", &c1).await;
    mark_read(&app, "cy", &c2).await;
    // Urgent goes out at once, digest or not.
    let urgent = send(
        &app,
        "ann",
        "Payment failed",
        json!({ "priority": "URGENT" }),
    )
    .await;
    assert_eq!(sink.received().await.header("Subject"), "Payment failed");
    settled(&app, &urgent, "succeeded").await;
    sink.assert_quiet();

    // 08:00 UTC: Bob's hour and Cy's 17:00 close.
    clock.advance(at("2027-01-13T08:00:00Z") - at("2027-01-13T07:12:00Z"));
    let received = sink.received().await;
    assert_eq!(received.header("To"), "bob@example.com");
    assert_eq!(received.header("Subject"), "2 new notifications: orders");
    let text = received.part("text/plain");
    let (first, second) = (text.find("* B3"), text.find("* B1"));
    assert!(
        first.is_some() && second.is_some() && first < second,
        "newest first:\n{text}"
    );
    assert!(!text.contains("B2"), "read meanwhile, left out:\n{text}");
    assert!(text.contains("About B3."), "{text}");
    assert!(
        text.contains("Wed 13 Jan, 02:12 EST"),
        "in his zone:\n{text}"
    );
    let html = received.part("text/html");
    assert!(
        html.contains("<strong>B3</strong>") && html.contains("<strong>B1</strong>"),
        "{html}"
    );
    assert!(!html.contains("B2"), "{html}");

    let closed = digest_history(&app, &b1_digest).await;
    assert_eq!(closed[0]["type"], "digest.closed", "{closed:?}");
    assert_eq!(closed[0]["streamId"], format!("digest-{b1_digest}"));
    assert_eq!(closed[0]["data"]["notifications"], json!([b3, b1]));
    assert_eq!(closed[0]["data"]["left_out"], 1);
    let delivery = closed[0]["data"]["delivery_id"]
        .as_str()
        .expect("a delivery");
    // The digest's delivery is in the delivery log under the digest's id.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = deliveries(&app, &b1_digest).await;
        if rows[0]["status"] == "succeeded" {
            assert_eq!(rows[0]["id"], delivery);
            assert_eq!(rows[0]["digestId"], b1_digest.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "never sent: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let history = digest_history(&app, &b1_digest).await;
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        [
            "digest.closed",
            "delivery.planned",
            "delivery.attempted",
            "delivery.succeeded"
        ]
    );

    // Cy read everything: his digest closed with nothing in it, and sent nothing.
    let cy_closed = digest_history(&app, &cy_digest).await;
    assert_eq!(cy_closed.len(), 1, "{cy_closed:?}");
    assert_eq!(cy_closed[0]["data"]["notifications"], json!([]));
    assert_eq!(cy_closed[0]["data"]["left_out"], 2);
    assert!(cy_closed[0]["data"].get("delivery_id").is_none());

    // Bob's next notification joins the next hour's digest.
    let b4 = send(&app, "bob", "B4", json!({})).await;
    let next = joined(&app, &b4).await;
    assert_ne!(next, b1_digest);
    sink.assert_quiet();

    // 08:30 UTC, 09:30 in Berlin: Ann's daily digest.
    clock.advance(chrono::Duration::minutes(30));
    let received = sink.received().await;
    assert_eq!(received.header("To"), "ann@example.com");
    assert_eq!(received.header("Subject"), "2 new notifications: orders");
    let text = received.part("text/plain");
    assert!(
        text.find("* A2")
            .is_some_and(|a2| text.find("* A1").is_some_and(|a1| a2 < a1)),
        "{text}"
    );
    assert!(!text.contains("Payment failed"), "sent on its own:\n{text}");
    digest_history(&app, &ann_digest).await;
    sink.assert_quiet();
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

/// Setting a digest: only external channels, a time for daily and weekly, a day for weekly;
/// a person sets only their own, a service anyone's; null turns it off.
async fn digests_are_checked_and_only_their_owner_or_a_service_sets_them(backend: Backend) {
    // Wednesday 2027-01-13, 10:00 UTC.
    let Some((app, _clock, _sink)) = app_at(backend, "2027-01-13T10:00:00Z").await else {
        return;
    };
    let bad = |channel: &str, schedule: Value| {
        let app = &app;
        let channel = channel.to_owned();
        async move {
            let answer = app
                .graphql(
                    Some(&app.token("ann")),
                    SET,
                    json!({ "category": "orders", "channel": channel, "schedule": schedule }),
                )
                .await;
            assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
            answer["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let in_app = bad("IN_APP", json!({ "frequency": "HOURLY" })).await;
    assert!(in_app.contains("external"), "{in_app}");
    let no_time = bad("EMAIL", json!({ "frequency": "DAILY" })).await;
    assert!(no_time.contains("`at`"), "{no_time}");
    let bad_time = bad("EMAIL", json!({ "frequency": "DAILY", "at": "25:00" })).await;
    assert!(bad_time.contains("25:00"), "{bad_time}");
    let no_day = bad("EMAIL", json!({ "frequency": "WEEKLY", "at": "08:00" })).await;
    assert!(no_day.contains("`day`"), "{no_day}");

    // A person sets only their own.
    let other = app
        .graphql(
            Some(&app.token("ann")),
            SET,
            json!({ "user": "bob", "category": "orders", "channel": "EMAIL",
                "schedule": { "frequency": "HOURLY" } }),
        )
        .await;
    assert_eq!(code(&other), "FORBIDDEN", "{other}");
    // A service sets anyone's; no profile: read in UTC.
    let set = app
        .data(
            &app.key,
            SET,
            json!({ "user": "bob", "category": "orders", "channel": "WEBHOOK",
                "schedule": { "frequency": "WEEKLY", "day": "MON", "at": "08:00" } }),
        )
        .await;
    assert_eq!(set["setDigest"]["timeZone"], "UTC");
    assert_eq!(
        set["setDigest"]["settings"][0]["nextAt"],
        "2027-01-18T08:00:00+00:00"
    );
    let read = app
        .data(
            &app.token("bob"),
            "{ digests { settings { channel schedule { frequency day at } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        read["digests"]["settings"],
        json!([{ "channel": "WEBHOOK", "schedule": { "frequency": "WEEKLY", "day": "MON", "at": "08:00" } }])
    );
    let off = app
        .data(
            &app.token("bob"),
            SET,
            json!({ "category": "orders", "channel": "WEBHOOK", "schedule": null }),
        )
        .await;
    assert_eq!(off["setDigest"]["settings"], json!([]));
    let anonymous = app
        .graphql(None, "{ digests { timeZone } }", json!({}))
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

/// A digest that closes inside the person's quiet hours is closed on time, and its delivery
/// waits them out like any other.
async fn a_digest_closing_in_quiet_hours_is_sent_when_they_end(backend: Backend) {
    // 21:30 UTC; Ann reads her clock in UTC and is quiet from 22:00 to 07:00.
    let Some((app, clock, mut sink)) = app_at(backend, "2027-01-13T21:30:00Z").await else {
        return;
    };
    profile(&app, "ann", "UTC").await;
    app.data(
        &app.token("ann"),
        "mutation($w: [QuietWindowInput!]!) { setQuietHours(windows: $w) { quietUntil } }",
        json!({ "w": [{ "days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], "start": "22:00", "end": "07:00" }] }),
    )
    .await;
    set_own(&app, "ann", json!({ "frequency": "HOURLY" })).await;
    let id = send(&app, "ann", "Late order", json!({})).await;
    let digest = joined(&app, &id).await;
    clock.advance(chrono::Duration::minutes(30));
    let closed = digest_history(&app, &digest).await;
    assert_eq!(closed[0]["data"]["notifications"], json!([id]));
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let rows = deliveries(&app, &digest).await;
        if rows.first().is_some_and(|r| r["status"] == "deferred") {
            break rows[0].clone();
        }
        assert!(Instant::now() < deadline, "never deferred: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(row["dueAt"], "2027-01-14T07:00:00+00:00");
    assert_eq!(row["reason"], "quiet_hours");
    sink.assert_quiet();
    clock.advance(at("2027-01-14T07:00:00Z") - at("2027-01-13T22:00:00Z"));
    let received = sink.received().await;
    assert_eq!(received.header("Subject"), "1 new notification: orders");
    assert!(received.part("text/plain").contains("* Late order"));
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

crate::on_both_backends!(
    hourly_and_daily_digests_in_two_time_zones,
    digests_are_checked_and_only_their_owner_or_a_service_sets_them,
    a_digest_closing_in_quiet_hours_is_sent_when_they_end,
);
