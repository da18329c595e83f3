//! Deliveries through the real workers and the log when the far side misbehaves: an SMTP
//! server that refuses for now, rejects for good, or is not running yet, and a webhook
//! endpoint that does not answer in time or asks to be left alone for two minutes. Each
//! fault is recorded as the delivery log and the notification's history show it, retried
//! (or not) on the injected clock, and the retry carries the first attempt's id.

use belfry::clock::{Clock as _, ManualClock};
use belfry::delivery::webhook::WebhookEndpoint;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{json, Value};

use crate::app::{spawn_app_clocked, TestApp};
use crate::deliver::{endpoint, send, settled, workers_clock};
use crate::email::Sink;
use crate::helpers::Backend;
use crate::routes::deliveries;
use crate::webhook::{secret, Receiver};

const EMAIL: &str = "EMAIL";
const WEBHOOK: &str = "WEBHOOK";

/// The facts of a notification's history, oldest first: each one's type and data.
pub(crate) async fn history(app: &TestApp, id: &str) -> Vec<(String, Value)> {
    app.data(
        &app.key,
        "query($id: ID!) { notificationHistory(id: $id) { type data } }",
        json!({ "id": id }),
    )
    .await["notificationHistory"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("type").to_owned(),
                e["data"].clone(),
            )
        })
        .collect()
}

fn types(history: &[(String, Value)]) -> Vec<&str> {
    history.iter().map(|(t, _)| t.as_str()).collect()
}

/// The data of the first `delivery.failed` in `history`.
fn first_failure(history: &[(String, Value)]) -> &Value {
    history
        .iter()
        .find(|(t, _)| t == "delivery.failed")
        .map(|(_, data)| data)
        .unwrap_or_else(|| panic!("no delivery.failed in {history:?}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("a time: {value}"))
        .to_utc()
}

/// `t` at the precision both backends keep (microseconds).
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn error(row: &Value) -> &str {
    row["lastError"].as_str().unwrap_or_default()
}

/// Gives each of `users` an address at example.com in the directory.
async fn with_email(app: &TestApp, users: &[&str]) {
    let recipients: Vec<Value> = users
        .iter()
        .map(|u| json!({ "userId": u, "email": format!("{u}@example.com") }))
        .collect();
    app.data(
        &app.key,
        "mutation($r: [RecipientInput!]!) { upsertRecipients(recipients: $r) { userId } }",
        json!({ "r": recipients }),
    )
    .await;
}

/// Moves the server's clock just past `row`'s due time.
fn advance_past_due(clock: &ManualClock, row: &Value) {
    clock.advance(time(&row["dueAt"]) - clock.now() + Duration::seconds(1));
}

/// Moves the server's clock by `by` and returns once the workers have looked at the schedule
/// at the new time: a probe, sent just before to `to` on `channel` and due halfway through `by`, can
/// only be claimed at the new time, and whatever else is due by then is claimed with it. The
/// probe's notification id, once its delivery is settled as `status`.
async fn advance_and_probe(
    app: &TestApp,
    clock: &ManualClock,
    by: Duration,
    to: &str,
    channel: &str,
    status: &str,
) -> String {
    let before = clock.now();
    // Sent before the clock moves, due halfway through the move.
    let route = json!([{ "channel": channel, "afterSeconds": (by / 2).num_seconds() }]);
    let probe = send(app, &[to], "Probe", route).await.remove(0);
    clock.advance(by);
    settled(app, &probe, status).await;
    let facts = history(app, &probe).await;
    let (_, planned) = facts
        .iter()
        .find(|(t, _)| t == "delivery.planned")
        .expect("the probe was planned");
    let due = time(&planned["due_at"]);
    assert!(
        before < due && due <= clock.now(),
        "the probe is due after {before} and by {}: {planned}",
        clock.now()
    );
    probe
}

/// A socket bound to a free local port without listening, so connections to it are refused:
/// an SMTP server that is down. It holds the port with `SO_REUSEPORT`, so the sink can start
/// on the same port (`--reuse-port`) while no other process can take it meanwhile.
fn reserved_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_reuseport(true).expect("SO_REUSEPORT");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("bind a free port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}

async fn an_email_refused_for_now_is_accepted_on_the_retry_with_the_same_message_id(
    backend: Backend,
) {
    let mut sink = Sink::start(&["--refuse-first", "1", "--refuse-code", "451"]).await;
    let smtp = sink.settings("");
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(backend, |s| s.smtp = Some(smtp), clock.clone()).await else {
        return;
    };
    with_email(&app, &["ann"]).await;
    let ids = send(
        &app,
        &["ann"],
        "Payment failed",
        json!([{ "channel": EMAIL }]),
    )
    .await;
    let refused = sink.next().await;
    assert_eq!(refused["refused"], 451, "{refused}");
    let row = settled(&app, &ids[0], "retrying").await;
    assert_eq!(row["attempts"], 1, "{row}");
    assert!(error(&row).contains("451 4.3.0"), "{row}");
    let facts = history(&app, &ids[0]).await;
    let failed = first_failure(&facts);
    assert!(
        time(&failed["retry_at"]) > time(&failed["at"]),
        "a transient failure is tried again later: {failed}"
    );
    assert_eq!(
        micros(time(&row["dueAt"])),
        micros(time(&failed["retry_at"])),
        "due again when the failure said: {row}"
    );

    advance_past_due(&clock, &row);
    let received = sink.received().await;
    let row = settled(&app, &ids[0], "succeeded").await;
    assert_eq!(row["attempts"], 2, "{row}");
    let message_id = format!("<{}@belfry.test>", row["id"].as_str().expect("an id"));
    assert_eq!(received.header("Message-ID"), message_id);
    assert_eq!(
        refused["message_id"], message_id,
        "the refused attempt carried the same Message-ID"
    );
    sink.assert_quiet();
    assert_eq!(
        types(&history(&app, &ids[0]).await),
        [
            "notification.sent",
            "delivery.planned",
            "delivery.attempted",
            "delivery.failed",
            "delivery.attempted",
            "delivery.succeeded"
        ]
    );
}

async fn an_email_rejected_for_good_fails_once_and_is_never_attempted_again(backend: Backend) {
    let mut sink = Sink::start(&["--reject-all", "550"]).await;
    let smtp = sink.settings("");
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(backend, |s| s.smtp = Some(smtp), clock.clone()).await else {
        return;
    };
    with_email(&app, &["ann", "bob"]).await;
    let ids = send(
        &app,
        &["ann"],
        "Payment failed",
        json!([{ "channel": EMAIL }]),
    )
    .await;
    let refused = sink.next().await;
    assert_eq!(refused["refused"], 550, "{refused}");
    let row = settled(&app, &ids[0], "failed").await;
    assert_eq!(row["attempts"], 1, "{row}");
    assert!(row["dueAt"].is_null(), "never due again: {row}");
    assert!(error(&row).contains("550 5.1.1"), "{row}");
    let facts = history(&app, &ids[0]).await;
    assert!(first_failure(&facts).get("retry_at").is_none(), "{facts:?}");

    advance_and_probe(&app, &clock, Duration::hours(2), "bob", EMAIL, "failed").await;
    let probed = sink.next().await;
    assert_eq!(
        probed["rcpt_tos"],
        json!(["bob@example.com"]),
        "only the probe was attempted: {probed}"
    );
    sink.assert_quiet();
    assert_eq!(deliveries(&app, &ids[0]).await[0]["attempts"], 1);
    assert_eq!(
        types(&history(&app, &ids[0]).await),
        [
            "notification.sent",
            "delivery.planned",
            "delivery.attempted",
            "delivery.failed"
        ]
    );
}

async fn an_email_to_a_server_that_is_down_is_accepted_once_it_is_up(backend: Backend) {
    let (reserved, port) = reserved_port();
    let smtp = crate::email::settings(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\""
    ));
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(backend, |s| s.smtp = Some(smtp), clock.clone()).await else {
        return;
    };
    with_email(&app, &["ann"]).await;
    let ids = send(
        &app,
        &["ann"],
        "Payment failed",
        json!([{ "channel": EMAIL }]),
    )
    .await;
    let row = settled(&app, &ids[0], "retrying").await;
    assert_eq!(row["attempts"], 1, "{row}");
    assert!(error(&row).contains("connection refused"), "{row}");

    let port = port.to_string();
    let mut sink = Sink::start(&["--port", &port, "--reuse-port"]).await;
    advance_past_due(&clock, &row);
    let received = sink.received().await;
    let row = settled(&app, &ids[0], "succeeded").await;
    assert_eq!(row["attempts"], 2, "{row}");
    assert_eq!(
        received.header("Message-ID"),
        format!("<{}@belfry.test>", row["id"].as_str().expect("an id"))
    );
    sink.assert_quiet();
    drop(reserved);
}

async fn a_webhook_that_does_not_answer_in_time_is_retried_with_the_same_webhook_id(
    backend: Backend,
) {
    // The first request waits 5 s for its answer, every later one is answered at once.
    let receiver = Receiver::start_with(&[&secret(21)], &["--faults", "1", "--slow-seconds", "5"]);
    let endpoint: WebhookEndpoint = serde_json::from_value(
        json!({ "url": receiver.url("/slow"), "secrets": [secret(21)], "timeout_ms": 300 }),
    )
    .expect("a valid endpoint");
    let clock = workers_clock();
    let Some(app) =
        spawn_app_clocked(backend, |s| s.webhooks = vec![endpoint], clock.clone()).await
    else {
        return;
    };
    let ids = send(&app, &["ann"], "Stock low", json!([{ "channel": WEBHOOK }])).await;
    let first = receiver.next();
    let row = settled(&app, &ids[0], "retrying").await;
    assert_eq!(row["attempts"], 1, "{row}");
    assert_eq!(
        error(&row),
        format!(
            "the webhook endpoint {} did not answer within 300 ms (timeout_ms)",
            receiver.url("")
        )
    );

    advance_past_due(&clock, &row);
    let second = receiver.next();
    let row = settled(&app, &ids[0], "succeeded").await;
    assert_eq!(row["attempts"], 2, "{row}");
    for got in [&first, &second] {
        assert_eq!(got["verified"], json!([true]), "{got}");
        assert_eq!(got["id"], row["id"], "webhook-id is the delivery's id");
    }
    assert!(receiver.try_next().is_none(), "two attempts in all");
    assert_eq!(
        types(&history(&app, &ids[0]).await),
        [
            "notification.sent",
            "delivery.planned",
            "delivery.attempted",
            "delivery.failed",
            "delivery.attempted",
            "delivery.succeeded"
        ]
    );
}

async fn a_webhook_answering_429_is_not_retried_before_its_retry_after(backend: Backend) {
    // The first request is answered 429 with Retry-After: 120, every later one 200.
    let receiver = Receiver::start_with(&[&secret(22)], &["--faults", "1", "--retry-after", "120"]);
    let url = receiver.url("/busy");
    let clock = workers_clock();
    let Some(app) = spawn_app_clocked(
        backend,
        |s| s.webhooks = vec![endpoint(&url, &secret(22))],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let ids = send(&app, &["ann"], "Stock low", json!([{ "channel": WEBHOOK }])).await;
    let first = receiver.next();
    let row = settled(&app, &ids[0], "retrying").await;
    assert!(error(&row).contains("429 Too Many Requests"), "{row}");
    let facts = history(&app, &ids[0]).await;
    let failed = first_failure(&facts);
    let (failed_at, retry_at) = (time(&failed["at"]), time(&failed["retry_at"]));
    assert!(
        retry_at - failed_at >= Duration::seconds(120),
        "retried {} s after the 429 that asked for 120",
        (retry_at - failed_at).num_seconds()
    );
    assert_eq!(micros(time(&row["dueAt"])), micros(retry_at), "{row}");

    // A minute is four times the backoff after a first attempt, and half what was asked for.
    let probe = advance_and_probe(
        &app,
        &clock,
        Duration::seconds(60),
        "bob",
        WEBHOOK,
        "succeeded",
    )
    .await;
    let probed = receiver.next();
    assert_eq!(
        probed["body"]["data"]["notificationId"], probe,
        "only the probe was attempted: {probed}"
    );
    assert!(receiver.try_next().is_none(), "not attempted again yet");
    let row = deliveries(&app, &ids[0]).await.remove(0);
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("retrying"), &json!(1))
    );

    advance_past_due(&clock, &row);
    let second = receiver.next();
    assert_eq!(second["id"], first["id"], "the same webhook-id");
    assert_eq!(second["verified"], json!([true]), "{second}");
    let row = settled(&app, &ids[0], "succeeded").await;
    assert_eq!(row["attempts"], 2, "{row}");
    assert!(receiver.try_next().is_none(), "two attempts in all");
}

crate::on_both_backends!(
    an_email_refused_for_now_is_accepted_on_the_retry_with_the_same_message_id,
    an_email_rejected_for_good_fails_once_and_is_never_attempted_again,
    an_email_to_a_server_that_is_down_is_accepted_once_it_is_up,
    a_webhook_that_does_not_answer_in_time_is_retried_with_the_same_webhook_id,
    a_webhook_answering_429_is_not_retried_before_its_retry_after,
);

/// The retry time a `delivery.failed` records is the delivery log's `dueAt`, as on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_retry_time_in_the_log_is_the_delivery_logs_due_time() {
    let receiver = Receiver::start(&[&secret(23)]);
    let url = receiver.url("/fail");
    let Some(app) = spawn_app_clocked(
        Backend::Postgres,
        |s| s.webhooks = vec![endpoint(&url, &secret(23))],
        workers_clock(),
    )
    .await
    else {
        return;
    };
    let ids = send(&app, &["ann"], "Stock low", json!([{ "channel": WEBHOOK }])).await;
    receiver.next();
    let row = settled(&app, &ids[0], "retrying").await;
    let facts = history(&app, &ids[0]).await;
    assert_eq!(
        time(&row["dueAt"]),
        time(&first_failure(&facts)["retry_at"])
    );
}
