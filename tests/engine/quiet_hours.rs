//! Quiet hours: an email that falls due inside a person's quiet hours waits until they end
//! (a `delivery.deferred` fact with the new due time), read in the person's time zone across
//! a daylight-saving change and when the zone changes while it waits; the in-app notification
//! still lands, marked `quiet`; `urgent` and `critical` sends go through (as configured); and
//! replay rebuilds the same read model. The server's clock is the test's, set to the moments
//! that matter.

use std::sync::Arc;
use std::time::Duration;

use belfry::clock::ManualClock;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::app::{code, merged, send_first, spawn_app_clocked, TestApp};
use crate::deliver::settled;
use crate::email::Sink;
use crate::helpers::Backend;
use crate::routes::deliveries;

const SET: &str = "mutation($windows: [QuietWindowInput!]!, $user: String) { \
    setQuietHours(windows: $windows, userId: $user) { windows { days start end } timeZone quietUntil } }";

const NIGHTS: &str = r#"[{ "days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], "start": "22:00", "end": "07:00" }]"#;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

fn nights() -> Value {
    serde_json::from_str(NIGHTS).expect("windows")
}

/// A server with email to a real SMTP sink, its clock at `start`, configured by `tune`.
async fn app_at(
    backend: Backend,
    start: &str,
    tune: impl FnOnce(&mut belfry::config::Settings) + Send + 'static,
) -> Option<(TestApp, Arc<ManualClock>, Sink)> {
    let sink = Sink::start(&[]).await;
    let smtp = sink.settings("");
    let clock = Arc::new(ManualClock::new(at(start)));
    let app = spawn_app_clocked(
        backend,
        move |s| {
            s.smtp = Some(smtp);
            tune(s);
        },
        clock.clone(),
    )
    .await?;
    Some((app, clock, sink))
}

/// Puts `user` in the directory with an address and `zone` (none: null).
pub(crate) async fn profile(app: &TestApp, user: &str, zone: Option<&str>) {
    app.data(
        &app.key,
        "mutation($r: [RecipientInput!]!) { upsertRecipients(recipients: $r) { userId } }",
        json!({ "r": [{ "userId": user, "email": format!("{user}@example.com"), "timeZone": zone }] }),
    )
    .await;
}

/// The person sets their own quiet hours; the answer.
async fn set_own(app: &TestApp, user: &str, windows: Value) -> Value {
    app.data(&app.token(user), SET, json!({ "windows": windows }))
        .await["setQuietHours"]
        .clone()
}

/// Sends `title` to `user` by email (and in-app), with `extra` input; the notification id.
async fn send(app: &TestApp, user: &str, title: &str, extra: Value) -> String {
    let input = merged(
        json!({ "recipients": [user], "title": title, "category": "orders",
        "routes": [{ "channel": "EMAIL" }] }),
        &extra,
    );
    send_first(app, input).await
}

fn due_at(row: &Value) -> DateTime<Utc> {
    row["dueAt"]
        .as_str()
        .expect("a due time")
        .parse()
        .expect("a time")
}

/// Whether `user`'s notification `id` is marked quiet in their inbox.
async fn quiet_in_inbox(app: &TestApp, user: &str, id: &str) -> bool {
    app.data(
        &app.token(user),
        "query($id: ID!) { notification(id: $id) { quiet } }",
        json!({ "id": id }),
    )
    .await["notification"]["quiet"]
        .as_bool()
        .expect("quiet")
}

async fn history(app: &TestApp, id: &str) -> Vec<String> {
    crate::deliver_faults::history(app, id)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Berlin moves its clocks from 02:00 to 03:00 on 2027-03-28: quiet hours that end at 07:00
/// end at 05:00 UTC that morning, not 06:00.
async fn an_email_due_in_quiet_hours_waits_until_they_end_across_a_dst_change(backend: Backend) {
    // Saturday 23:30 in Berlin (UTC+1).
    let Some((app, clock, mut sink)) = app_at(backend, "2027-03-27T22:30:00Z", |_| {}).await else {
        return;
    };
    profile(&app, "ann", Some("Europe/Berlin")).await;
    let set = set_own(&app, "ann", nights()).await;
    assert_eq!(set["timeZone"], "Europe/Berlin");
    assert_eq!(set["windows"][0]["start"], "22:00");
    assert_eq!(set["quietUntil"], "2027-03-28T05:00:00+00:00", "{set}");
    let id = send(&app, "ann", "Your order shipped", json!({})).await;
    let row = settled(&app, &id, "deferred").await;
    assert_eq!(
        due_at(&row),
        at("2027-03-28T05:00:00Z"),
        "07:00 summer time"
    );
    assert_eq!(row["reason"], "quiet_hours");
    assert!(
        quiet_in_inbox(&app, "ann", &id).await,
        "in the inbox, without a toast"
    );
    // A minute before the end it still waits.
    clock.advance(at("2027-03-28T04:59:00Z") - at("2027-03-27T22:30:00Z"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deliveries(&app, &id).await[0]["status"], "deferred");
    sink.assert_quiet();
    clock.advance(chrono::Duration::minutes(1));
    let received = sink.received().await;
    assert_eq!(received.header("Subject"), "Your order shipped");
    settled(&app, &id, "succeeded").await;
    assert_eq!(
        history(&app, &id).await,
        [
            "notification.sent",
            "delivery.planned",
            "delivery.deferred",
            "delivery.attempted",
            "delivery.succeeded"
        ]
    );
    // Outside quiet hours nothing waits, and nothing is quiet.
    let day = send(&app, "ann", "Delivered", json!({})).await;
    sink.received().await;
    settled(&app, &day, "succeeded").await;
    assert!(!quiet_in_inbox(&app, "ann", &day).await);
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

/// A waiting email is decided again as soon as the person's time zone or quiet hours change.
async fn a_new_time_zone_or_new_quiet_hours_move_a_waiting_email(backend: Backend) {
    // 06:30 in Berlin (UTC+1): quiet until 07:00 there.
    let Some((app, _clock, mut sink)) = app_at(backend, "2027-01-13T05:30:00Z", |_| {}).await
    else {
        return;
    };
    profile(&app, "ann", Some("Europe/Berlin")).await;
    set_own(&app, "ann", nights()).await;
    let first = send(&app, "ann", "First", json!({})).await;
    let row = settled(&app, &first, "deferred").await;
    assert_eq!(due_at(&row), at("2027-01-13T06:00:00Z"));
    // Ann moves to London, where it is 05:30: quiet for longer, until 07:00 UTC.
    profile(&app, "ann", Some("Europe/London")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = deliveries(&app, &first).await[0].clone();
        if row["status"] == "deferred" && due_at(&row) == at("2027-01-13T07:00:00Z") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not moved: {row}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Then to Tokyo, where it is 14:30: it goes at once.
    profile(&app, "ann", Some("Asia/Tokyo")).await;
    assert_eq!(sink.received().await.header("Subject"), "First");
    settled(&app, &first, "succeeded").await;
    // Back in Berlin; clearing the quiet hours releases what waits.
    profile(&app, "ann", Some("Europe/Berlin")).await;
    let second = send(&app, "ann", "Second", json!({})).await;
    settled(&app, &second, "deferred").await;
    sink.assert_quiet();
    let cleared = set_own(&app, "ann", json!([])).await;
    assert_eq!(cleared["windows"], json!([]));
    assert!(cleared["quietUntil"].is_null());
    assert_eq!(sink.received().await.header("Subject"), "Second");
    settled(&app, &second, "succeeded").await;
    let types = history(&app, &first).await;
    assert_eq!(
        types.iter().filter(|t| *t == "delivery.deferred").count(),
        2,
        "deferred, then deferred again for London: {types:?}"
    );
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

/// `urgent` and `critical` go through quiet hours by default, email and toast; a server can
/// hold `urgent` back too.
async fn urgent_and_critical_sends_go_through_quiet_hours(backend: Backend) {
    // 23:00 UTC; bob has no time zone, so UTC it is.
    let Some((app, _clock, mut sink)) = app_at(backend, "2027-01-12T23:00:00Z", |_| {}).await
    else {
        return;
    };
    profile(&app, "bob", None).await;
    let set = set_own(&app, "bob", nights()).await;
    assert_eq!(set["timeZone"], "UTC");
    let normal = send(&app, "bob", "Newsletter", json!({})).await;
    settled(&app, &normal, "deferred").await;
    let urgent = send(&app, "bob", "Server down", json!({ "priority": "URGENT" })).await;
    assert_eq!(sink.received().await.header("Subject"), "Server down");
    settled(&app, &urgent, "succeeded").await;
    assert!(!quiet_in_inbox(&app, "bob", &urgent).await, "with a toast");
    let critical = send(&app, "bob", "Fraud alert", json!({ "critical": true })).await;
    assert_eq!(sink.received().await.header("Subject"), "Fraud alert");
    settled(&app, &critical, "succeeded").await;
    assert!(!quiet_in_inbox(&app, "bob", &critical).await);
    assert!(quiet_in_inbox(&app, "bob", &normal).await);
    sink.assert_quiet();
    crate::cli::assert_replay_is_clean(&app.store.url).await;
    drop(app);

    let Some((app, _clock, mut sink)) = app_at(backend, "2027-01-12T23:00:00Z", |s| {
        s.quiet_hours.urgent_goes_through = false;
    })
    .await
    else {
        return;
    };
    profile(&app, "bob", None).await;
    set_own(&app, "bob", nights()).await;
    let urgent = send(&app, "bob", "Server down", json!({ "priority": "URGENT" })).await;
    settled(&app, &urgent, "deferred").await;
    assert!(quiet_in_inbox(&app, "bob", &urgent).await);
    let critical = send(&app, "bob", "Fraud alert", json!({ "critical": true })).await;
    assert_eq!(sink.received().await.header("Subject"), "Fraud alert");
    settled(&app, &critical, "succeeded").await;
}

/// Webhooks are an external channel too: they wait out quiet hours the same way. The clock
/// stays near the real one here: receivers check the signature's timestamp against theirs.
async fn a_webhook_due_in_quiet_hours_waits_too(backend: Backend) {
    use crate::webhook::{secret, Receiver};
    let receiver = Receiver::start(&[&secret(21)]);
    let url = receiver.url("/ok");
    let clock = crate::deliver::workers_clock();
    let Some(app) = spawn_app_clocked(
        backend,
        move |s| s.webhooks = vec![crate::deliver::endpoint(&url, &secret(21))],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    // Quiet from ten minutes ago until two minutes from now, every day, in UTC.
    let now = belfry::clock::Clock::now(&*clock);
    let hhmm = |t: DateTime<Utc>| t.format("%H:%M").to_string();
    let start = hhmm(now - chrono::Duration::minutes(10));
    let end = hhmm(now + chrono::Duration::minutes(2));
    let window = json!([{ "days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], "start": start, "end": end }]);
    set_own(&app, "ann", window).await;
    let id = send(
        &app,
        "ann",
        "Build finished",
        json!({ "routes": [{ "channel": "WEBHOOK" }] }),
    )
    .await;
    let row = settled(&app, &id, "deferred").await;
    let until = due_at(&row);
    assert!(
        until > now && until <= now + chrono::Duration::minutes(2),
        "{row}"
    );
    assert!(receiver.try_next().is_none(), "nothing before {until}");
    clock.advance(until - now);
    let got = receiver.next();
    assert_eq!(got["verified"], json!([true]), "{got}");
    assert_eq!(got["body"]["data"]["notificationId"], id.as_str());
    settled(&app, &id, "succeeded").await;
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

/// A live subscriber gets the notification at once, marked quiet.
async fn a_quiet_notification_arrives_live_marked_quiet(backend: Backend) {
    let Some((app, _clock, _sink)) = app_at(backend, "2027-01-12T23:00:00Z", |_| {}).await else {
        return;
    };
    set_own(&app, "ann", nights()).await;
    let mut ws = app.ws("ann").await;
    crate::live::subscribe_inbox_to(
        &app,
        &mut ws,
        "1",
        "ann",
        "subscription($after: Cursor) { inbox(after: $after) { added { title quiet } } }",
    )
    .await;
    send(&app, "ann", "Night owl", json!({ "routes": [] })).await;
    let added = ws.next_payload("1").await;
    assert_eq!(
        added["data"]["inbox"]["added"][0],
        json!({ "title": "Night owl", "quiet": true }),
        "{added}"
    );
    send(
        &app,
        "ann",
        "Wake up",
        json!({ "routes": [], "priority": "URGENT" }),
    )
    .await;
    let added = ws.next_payload("1").await;
    assert_eq!(
        added["data"]["inbox"]["added"][0]["quiet"], false,
        "{added}"
    );
    ws.close().await;
}

/// Who may set whose quiet hours, and what is refused.
async fn quiet_hours_are_checked_and_only_their_owner_or_a_service_sets_them(backend: Backend) {
    let Some((app, _clock, _sink)) = app_at(backend, "2027-01-12T12:00:00Z", |_| {}).await else {
        return;
    };
    let refused = |windows: Value| {
        let app = &app;
        async move {
            let answer = app
                .graphql(Some(&app.token("ann")), SET, json!({ "windows": windows }))
                .await;
            assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
            answer.to_string()
        }
    };
    assert!(
        refused(json!([{ "days": ["MON"], "start": "25:00", "end": "07:00" }]))
            .await
            .contains("25:00")
    );
    assert!(
        refused(json!([{ "days": [], "start": "22:00", "end": "07:00" }]))
            .await
            .contains("at least one day")
    );
    let all_week = json!([{ "days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], "start": "00:00", "end": "00:00" }]);
    assert!(refused(all_week).await.contains("whole week"));
    // Nothing was set by the refusals.
    let mine = app
        .data(
            &app.token("ann"),
            "{ quietHours { windows { start } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["quietHours"]["windows"], json!([]));
    // A person sets only their own.
    let other = app
        .graphql(
            Some(&app.token("ann")),
            SET,
            json!({ "windows": nights(), "user": "bob" }),
        )
        .await;
    assert_eq!(code(&other), "FORBIDDEN", "{other}");
    // A service names the person.
    let unnamed = app
        .graphql(Some(&app.key), SET, json!({ "windows": nights() }))
        .await;
    assert_eq!(code(&unnamed), "BAD_USER_INPUT", "{unnamed}");
    let weekend = json!([{ "days": ["SUN", "SAT", "SAT"], "start": "00:00", "end": "00:00" }]);
    let set = app
        .data(&app.key, SET, json!({ "windows": weekend, "user": "bob" }))
        .await;
    assert_eq!(
        set["setQuietHours"]["windows"],
        json!([{ "days": ["SAT", "SUN"], "start": "00:00", "end": "00:00" }])
    );
    let read = app
        .data(
            &app.token("bob"),
            "{ quietHours { windows { days } timeZone } }",
            json!({}),
        )
        .await;
    assert_eq!(
        read["quietHours"]["windows"][0]["days"],
        json!(["SAT", "SUN"])
    );
    let anonymous = app
        .graphql(None, "{ quietHours { timeZone } }", json!({}))
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    crate::cli::assert_replay_is_clean(&app.store.url).await;
}

crate::on_both_backends!(
    an_email_due_in_quiet_hours_waits_until_they_end_across_a_dst_change,
    a_new_time_zone_or_new_quiet_hours_move_a_waiting_email,
    urgent_and_critical_sends_go_through_quiet_hours,
    a_quiet_notification_arrives_live_marked_quiet,
    a_webhook_due_in_quiet_hours_waits_too,
    quiet_hours_are_checked_and_only_their_owner_or_a_service_sets_them,
);
