//! Expiry and retention: a notification whose send's `expiresAt` (or time to live) passes
//! leaves the inbox and the counters (`notification.expired`, told live and to a resumed
//! subscription), and its email still waiting is skipped as `expired`; the retention policy
//! expires read notifications 30 days after they were read and unread ones 365 days after
//! they were sent; all on the server's clock, and replay rebuilds the same read model.

use std::sync::Arc;
use std::time::Duration;

use belfry::clock::ManualClock;
use chrono::Duration as Span;
use serde_json::{json, Value};

use crate::app::{code, merged, send_first, spawn_app_clocked, TestApp};
use crate::cli::assert_replay_is_clean;
use crate::deliver::workers_clock;
use crate::helpers::Backend;
use crate::routes::deliveries;
use crate::throttle::{history, inbox};

const SEND: &str = "mutation($input: SendNotificationInput!) { \
    sendNotification(input: $input) { deliveries { notificationId } } }";

async fn app(
    backend: Backend,
    tune: impl FnOnce(&mut belfry::config::Settings) + Send + 'static,
) -> Option<(TestApp, Arc<ManualClock>)> {
    let clock = workers_clock();
    let app = spawn_app_clocked(backend, tune, clock.clone()).await?;
    Some((app, clock))
}

/// Sends `title` to ann with `extra` input; the notification id.
async fn send(app: &TestApp, title: &str, extra: Value) -> String {
    let input = merged(
        json!({ "recipients": ["ann"], "title": title, "category": "sales" }),
        &extra,
    );
    send_first(app, input).await
}

/// Waits (at most 20 s) until ann's inbox holds exactly `titles`, newest first.
async fn inbox_becomes(app: &TestApp, titles: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (now, unread) = inbox(app, "ann").await;
        if now == titles {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the inbox stayed {now:?} ({unread} unread), not {titles:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read(app: &TestApp, id: &str) {
    app.data(
        &app.token("ann"),
        "mutation($id: ID!) { markRead(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
}

async fn an_expired_notification_leaves_the_inbox_and_its_waiting_email_is_skipped(
    backend: Backend,
) {
    // A real SMTP server, and an address for ann: the skipped email is one that would go.
    let mut sink = crate::email::Sink::start(&[]).await;
    let smtp = sink.settings("");
    let Some((app, clock)) = app(backend, move |s| s.smtp = Some(smtp)).await else {
        return;
    };
    app.data(
        &app.key,
        "mutation { upsertRecipients(recipients: [{ userId: \"ann\", email: \"ann@example.com\" }]) { userId } }",
        json!({}),
    )
    .await;
    let mut ws = app.ws("ann").await;
    crate::live::subscribe_inbox_to(
        &app,
        &mut ws,
        "1",
        "ann",
        "subscription($after: Cursor) { inbox(after: $after) { cursor added { title expiresAt } removed counts { unread } } }",
    )
    .await;
    let email = json!([{ "channel": "EMAIL", "afterSeconds": 7200 }]);
    let flash = send(
        &app,
        "Flash sale",
        json!({ "ttlSeconds": 3600, "routes": email }),
    )
    .await;
    let added = ws.next_payload("1").await;
    let expires: chrono::DateTime<chrono::Utc> = added["data"]["inbox"]["added"][0]["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .parse()
        .expect("a time");
    assert_eq!(expires, clock.now_plus(3600));
    let cursor = added["data"]["inbox"]["cursor"].clone();
    send(&app, "Invoice", json!({})).await;
    ws.next_payload("1").await;
    assert_eq!(inbox(&app, "ann").await.1, 2);
    assert_eq!(deliveries(&app, &flash).await[0]["status"], "planned");
    clock.advance(Span::seconds(3599));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox(&app, "ann").await.1, 2, "a second before it expires");
    clock.advance(Span::seconds(1));
    let removed = ws.next_payload("1").await;
    assert_eq!(
        removed["data"]["inbox"]["removed"],
        json!([flash]),
        "{removed}"
    );
    assert_eq!(removed["data"]["inbox"]["counts"]["unread"], 1);
    inbox_becomes(&app, &["Invoice"]).await;
    let d = &deliveries(&app, &flash).await[0];
    assert_eq!(
        (d["status"].as_str(), d["reason"].as_str()),
        (Some("skipped"), Some("expired"))
    );
    // Past the email's due time, nothing goes out; the next email does.
    clock.advance(Span::seconds(3601));
    let next = send(
        &app,
        "Receipt",
        json!({ "routes": [{ "channel": "EMAIL" }] }),
    )
    .await;
    assert_eq!(sink.received().await.header("Subject"), "Receipt");
    crate::deliver::settled(&app, &next, "succeeded").await;
    sink.assert_quiet();
    ws.next_payload("1").await;
    assert_eq!(
        history(&app, &flash).await,
        [
            ("notification.sent".to_owned(), None),
            ("delivery.planned".to_owned(), None),
            (
                "notification.expired".to_owned(),
                Some("expires_at".to_owned())
            ),
            ("delivery.skipped".to_owned(), Some("expired".to_owned())),
        ]
    );
    // It is gone for the person: no such notification to read.
    let gone = app
        .graphql(
            Some(&app.token("ann")),
            "mutation($id: ID!) { markRead(id: $id) { id } }",
            json!({ "id": flash }),
        )
        .await;
    assert_eq!(code(&gone), "NOT_FOUND", "{gone}");
    // A subscriber resuming from before the expiry is told it left.
    let mut again = app.ws("ann").await;
    again
        .subscribe(
            "2",
            "subscription($after: Cursor) { inbox(after: $after) { added { title } removed } }",
            json!({ "after": cursor }),
        )
        .await;
    let first = again.next_payload("2").await;
    let second = again.next_payload("2").await;
    assert_eq!(
        first["data"]["inbox"]["added"][0]["title"], "Invoice",
        "{first}"
    );
    assert_eq!(
        second["data"]["inbox"]["removed"],
        json!([flash]),
        "{second}"
    );
    ws.close().await;
    again.close().await;
    assert_replay_is_clean(&app.store.url).await;
}

async fn the_retention_policy_expires_read_after_30_days_and_unread_after_365(backend: Backend) {
    let Some((app, clock)) = app(backend, |_| {}).await else {
        return;
    };
    let read_first = send(&app, "Read at once", json!({})).await;
    let read_later = send(&app, "Read later", json!({})).await;
    send(&app, "Never read", json!({})).await;
    read(&app, &read_first).await;
    clock.advance(Span::days(30) - Span::seconds(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox(&app, "ann").await.0.len(), 3, "not yet 30 days");
    clock.advance(Span::seconds(1));
    inbox_becomes(&app, &["Never read", "Read later"]).await;
    assert_eq!(
        history(&app, &read_first).await.last().cloned(),
        Some((
            "notification.expired".to_owned(),
            Some("read_retention".to_owned())
        ))
    );
    // Read on day 40: it stays until day 70.
    clock.advance(Span::days(10));
    read(&app, &read_later).await;
    clock.advance(Span::days(30) - Span::seconds(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox(&app, "ann").await.0.len(), 2);
    clock.advance(Span::seconds(1));
    inbox_becomes(&app, &["Never read"]).await;
    assert_eq!(inbox(&app, "ann").await.1, 1);
    // Unread: 365 days after it was sent.
    clock.advance(Span::days(365 - 70));
    inbox_becomes(&app, &[]).await;
    assert_eq!(inbox(&app, "ann").await.1, 0);
    assert_replay_is_clean(&app.store.url).await;
}

async fn retention_can_be_turned_off_and_expiry_is_checked(backend: Backend) {
    let Some((app, clock)) = app(backend, |s| {
        s.retention.read_days = 0;
        s.retention.unread_days = 0;
    })
    .await
    else {
        return;
    };
    let kept = send(&app, "Kept", json!({})).await;
    read(&app, &kept).await;
    send(&app, "Kept unread", json!({})).await;
    let at = clock.now_plus(600);
    send(&app, "Until ten past", json!({ "expiresAt": at })).await;
    clock.advance(Span::days(400));
    inbox_becomes(&app, &["Kept unread", "Kept"]).await;
    for (input, field) in [
        (json!({ "ttlSeconds": 0 }), "ttlSeconds"),
        (json!({ "ttlSeconds": 366 * 86_400 }), "ttlSeconds"),
        (json!({ "expiresAt": clock.now_plus(-1) }), "expiresAt"),
        (
            json!({ "expiresAt": clock.now_plus(60), "ttlSeconds": 60 }),
            "expiresAt",
        ),
        (
            json!({ "sendAt": clock.now_plus(600), "expiresAt": clock.now_plus(60) }),
            "expiresAt",
        ),
    ] {
        let full = merged(json!({ "recipients": ["ann"], "title": "x" }), &input);
        let refused = app
            .graphql(Some(&app.key), SEND, json!({ "input": full }))
            .await;
        assert_eq!(code(&refused), "BAD_USER_INPUT", "{input}: {refused}");
        assert!(refused.to_string().contains(field), "{refused}");
    }
    // A scheduled send's time to live counts from its publication.
    let scheduled = app
        .data(
            &app.key,
            "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { scheduled { id } } }",
            json!({ "input": { "recipients": ["ann"], "title": "Tomorrow only",
                "sendAt": clock.now_plus(86_400), "ttlSeconds": 3600 } }),
        )
        .await;
    assert!(scheduled["sendNotification"]["scheduled"]["id"].is_string());
    clock.advance(Span::seconds(86_400));
    inbox_becomes(&app, &["Tomorrow only", "Kept unread", "Kept"]).await;
    clock.advance(Span::seconds(3600));
    inbox_becomes(&app, &["Kept unread", "Kept"]).await;
    assert_replay_is_clean(&app.store.url).await;
}

crate::on_both_backends!(
    an_expired_notification_leaves_the_inbox_and_its_waiting_email_is_skipped,
    the_retention_policy_expires_read_after_30_days_and_unread_after_365,
    retention_can_be_turned_off_and_expiry_is_checked,
);

/// The clock's time `seconds` from now.
trait NowPlus {
    fn now_plus(&self, seconds: i64) -> chrono::DateTime<chrono::Utc>;
}

impl NowPlus for ManualClock {
    fn now_plus(&self, seconds: i64) -> chrono::DateTime<chrono::Utc> {
        use belfry::clock::Clock;
        self.now() + Span::seconds(seconds)
    }
}
