//! The webhook channel against a real receiver (`tests/peers/webhook_receiver.py`) that checks
//! every request with the reference Standard Webhooks library. No database is involved, so
//! these run once, not per backend.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use belfry::delivery::webhook::{WebhookChannel, WebhookEndpoint};
use belfry::delivery::{Channel, Contact, Message, Outcome};
use belfry::domain::{
    Body, Category, Content, Link, NotificationId, Payload, Priority, Title, UserId,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::peers;

/// A `whsec_` secret whose 32 key bytes are all `byte`.
pub(crate) fn secret(byte: u8) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

/// The receiver, killed when dropped.
pub(crate) struct Receiver {
    child: Child,
    lines: mpsc::Receiver<Value>,
    port: u16,
}

impl Receiver {
    /// A receiver verifying with each of `secrets`.
    pub(crate) fn start(secrets: &[&str]) -> Receiver {
        Self::start_slow(secrets, 5.0)
    }

    /// A receiver whose `/slow` path answers after `slow_seconds`.
    pub(crate) fn start_slow(secrets: &[&str], slow_seconds: f64) -> Receiver {
        Self::start_with(secrets, &["--slow-seconds", &slow_seconds.to_string()])
    }

    /// A receiver started with `args` besides its secrets (`--faults`, `--retry-after`, ...).
    pub(crate) fn start_with(secrets: &[&str], args: &[&str]) -> Receiver {
        let mut command = Command::new(peers::python());
        command
            .arg(peers::script("webhook_receiver.py"))
            .args(["--port", "0"])
            .args(args);
        for secret in secrets {
            command.args(["--secret", secret]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the webhook receiver");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line).expect("a JSON line");
                if send.send(value).is_err() {
                    break;
                }
            }
        });
        let mut receiver = Receiver {
            child,
            lines,
            port: 0,
        };
        let listening = receiver.next();
        receiver.port = listening["listening"].as_u64().expect("the port line") as u16;
        receiver
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next line the receiver wrote, waiting at most 20 s for it.
    pub(crate) fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the webhook receiver wrote nothing within 20 s")
    }

    /// A line the receiver has already written, if any: to show nothing more arrived.
    pub(crate) fn try_next(&self) -> Option<Value> {
        self.lines.try_recv().ok()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn channel(url: &str, secrets: &[&str], timeout_ms: u64) -> WebhookChannel {
    let endpoint: WebhookEndpoint =
        serde_json::from_value(json!({"url": url, "secrets": secrets, "timeout_ms": timeout_ms}))
            .expect("a valid endpoint");
    WebhookChannel::new(endpoint).expect("a webhook channel")
}

/// One delivery's inputs, owned; [`Delivery::attempt`] lends them out as a message.
struct Delivery {
    id: Uuid,
    notification_id: NotificationId,
    recipient: UserId,
    content: Content,
    contact: Contact,
    sent_at: DateTime<Utc>,
}

impl Delivery {
    fn new() -> Delivery {
        Delivery {
            id: Uuid::now_v7(),
            notification_id: NotificationId::from_uuid(Uuid::now_v7()),
            recipient: UserId::parse("ada@acme").unwrap(),
            content: Content {
                category: Category::parse("billing").unwrap(),
                priority: Priority::Urgent,
                critical: true,
                title: Title::parse("Payment failed").unwrap(),
                body: Body::parse("Your card was declined.").unwrap(),
                data: Payload::parse(json!({"invoice": "INV-42", "amount": 1999})).unwrap(),
                action_url: Some(Link::parse("actionUrl", "https://app.example/inv/42").unwrap()),
                icon: Some(Link::parse("icon", "/icons/card.png").unwrap()),
            },
            contact: Contact {
                display_name: Some("Ada Lovelace".to_owned()),
                email: Some("ada@example.com".to_owned()),
                phone: Some("+4915112345678".to_owned()),
                locale: Some("de-DE".to_owned()),
                time_zone: Some("Europe/Berlin".to_owned()),
            },
            sent_at: Utc::now() - chrono::Duration::seconds(3),
        }
    }

    /// An attempt at `attempt_at`; the receiver's library refuses timestamps more than five
    /// minutes from its own clock, so tests attempt at about now.
    fn attempt(&self, attempt_at: DateTime<Utc>) -> Message<'_> {
        Message {
            delivery_id: self.id,
            notification_id: self.notification_id,
            recipient: &self.recipient,
            content: &self.content,
            contact: &self.contact,
            sent_at: self.sent_at,
            attempt_at,
            preferences_url: Some("https://belfry.example/preferences"),
            unsubscribe_url: None,
            digest: None,
        }
    }
}

/// One attempt at a fresh delivery to `path` of a receiver holding `secret(1)`: the outcome,
/// what the receiver got, and the receiver's origin (how errors name it).
async fn attempt_at(path: &str) -> (Outcome, Value, String) {
    let receiver = Receiver::start(&[&secret(1)]);
    let channel = channel(&receiver.url(path), &[&secret(1)], 10_000);
    let delivery = Delivery::new();
    let outcome = channel.deliver(&delivery.attempt(Utc::now())).await;
    (outcome, receiver.next(), receiver.url(""))
}

fn transient_error(outcome: Outcome) -> (String, Option<Duration>) {
    match outcome {
        Outcome::Transient { error, retry_after } => (error, retry_after),
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_delivery_arrives_signed_with_the_notification_and_the_contact() {
    let receiver = Receiver::start(&[&secret(1)]);
    let channel = channel(&receiver.url("/ok"), &[&secret(1)], 10_000);
    let delivery = Delivery::new();
    let now = Utc::now();

    let outcome = channel.deliver(&delivery.attempt(now)).await;

    assert_eq!(
        outcome,
        Outcome::Accepted {
            provider_id: Some("rx-1".to_owned())
        }
    );
    let got = receiver.next();
    assert_eq!(got["verified"], json!([true]), "{got}");
    assert_eq!(got["id"], json!(delivery.id.to_string()));
    assert_eq!(got["timestamp"], json!(now.timestamp().to_string()));
    assert_eq!(got["contentType"], json!("application/json"));
    assert!(
        got["userAgent"].as_str().unwrap().starts_with("Belfry/"),
        "{got}"
    );
    let body = &got["body"];
    assert_eq!(body["type"], json!("notification.delivery"));
    let stamped = DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(stamped.timestamp_millis(), now.timestamp_millis());
    let sent =
        DateTime::parse_from_rfc3339(body["data"]["notification"]["sentAt"].as_str().unwrap())
            .unwrap();
    assert_eq!(sent.timestamp_millis(), delivery.sent_at.timestamp_millis());
    assert_eq!(body["data"]["deliveryId"], json!(delivery.id.to_string()));
    assert_eq!(
        body["data"]["notificationId"],
        json!(delivery.notification_id.to_string())
    );
    assert_eq!(
        body["data"]["recipient"],
        json!({
            "id": "ada@acme", "displayName": "Ada Lovelace", "email": "ada@example.com",
            "phone": "+4915112345678", "locale": "de-DE", "timeZone": "Europe/Berlin"
        })
    );
    let mut notification = body["data"]["notification"].clone();
    notification.as_object_mut().unwrap().remove("sentAt");
    assert_eq!(
        notification,
        json!({
            "category": "billing", "priority": "urgent", "critical": true,
            "title": "Payment failed", "body": "Your card was declined.",
            "data": {"invoice": "INV-42", "amount": 1999},
            "actionUrl": "https://app.example/inv/42", "icon": "/icons/card.png"
        })
    );
    assert_eq!(
        body["data"]["preferencesUrl"],
        json!("https://belfry.example/preferences")
    );
}

#[tokio::test]
async fn two_attempts_of_one_delivery_carry_the_same_webhook_id() {
    let receiver = Receiver::start(&[&secret(1)]);
    let channel = channel(&receiver.url("/ok"), &[&secret(1)], 10_000);
    let delivery = Delivery::new();
    let first = Utc::now();
    let second = first + chrono::Duration::seconds(2);

    channel.deliver(&delivery.attempt(first)).await;
    channel.deliver(&delivery.attempt(second)).await;
    channel.deliver(&Delivery::new().attempt(second)).await;

    let (a, b, other) = (receiver.next(), receiver.next(), receiver.next());
    assert_eq!(a["verified"], json!([true]), "{a}");
    assert_eq!(b["verified"], json!([true]), "{b}");
    assert_eq!(a["id"], json!(delivery.id.to_string()));
    assert_eq!(b["id"], a["id"]);
    assert_eq!(a["timestamp"], json!(first.timestamp().to_string()));
    assert_eq!(b["timestamp"], json!(second.timestamp().to_string()));
    assert_ne!(other["id"], a["id"], "another delivery has its own id");
}

#[tokio::test]
async fn during_a_rotation_a_receiver_holding_either_secret_verifies() {
    let (old, new, unrelated) = (secret(1), secret(2), secret(3));
    let receiver = Receiver::start(&[&old, &new, &unrelated]);
    let channel = channel(&receiver.url("/ok"), &[&old, &new], 10_000);

    channel.deliver(&Delivery::new().attempt(Utc::now())).await;

    let got = receiver.next();
    assert_eq!(got["verified"][0], json!(true), "{got}");
    assert_eq!(got["verified"][1], json!(true), "{got}");
    assert!(
        got["verified"][2]
            .as_str()
            .unwrap()
            .contains("No matching signature"),
        "{got}"
    );
    assert_eq!(got["signature"].as_str().unwrap().split(' ').count(), 2);
}

#[tokio::test]
async fn a_receiver_with_another_secret_refuses_the_delivery() {
    let receiver = Receiver::start(&[&secret(9)]);
    let channel = channel(&receiver.url("/ok"), &[&secret(1)], 10_000);

    channel.deliver(&Delivery::new().attempt(Utc::now())).await;

    let got = receiver.next();
    let verdict = got["verified"][0].as_str().unwrap_or_default();
    assert!(verdict.contains("No matching signature found"), "{got}");
}

#[tokio::test]
async fn an_endpoint_answering_500_is_a_transient_failure_quoting_it() {
    let (outcome, got, origin) = attempt_at("/fail").await;
    assert_eq!(got["verified"], json!([true]));
    let (error, retry_after) = transient_error(outcome);
    assert_eq!(
        error,
        format!(
            "the webhook endpoint {origin} answered 500 Internal Server Error: database is down"
        )
    );
    assert_eq!(retry_after, None);
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_in_time_is_a_transient_failure() {
    let receiver = Receiver::start(&[&secret(1)]);
    let channel = channel(&receiver.url("/slow"), &[&secret(1)], 300);
    let started = Instant::now();

    let outcome = channel.deliver(&Delivery::new().attempt(Utc::now())).await;

    // The receiver holds its answer back for 5 s; the attempt gives up long before.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (error, retry_after) = transient_error(outcome);
    assert_eq!(
        error,
        format!(
            "the webhook endpoint {} did not answer within 300 ms (timeout_ms)",
            receiver.url("")
        )
    );
    assert_eq!(retry_after, None);
    assert_eq!(
        receiver.next()["path"],
        json!("/slow"),
        "the request arrived"
    );
}

#[tokio::test]
async fn an_endpoint_answering_429_is_retried_after_the_time_it_asked_for() {
    let (outcome, _, _) = attempt_at("/busy").await;
    let (error, retry_after) = transient_error(outcome);
    assert!(error.contains("429 Too Many Requests"), "{error}");
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn an_endpoint_answering_410_is_gone() {
    let (outcome, _, origin) = attempt_at("/gone").await;
    assert_eq!(
        outcome,
        Outcome::Gone {
            error: format!("the webhook endpoint {origin} answered 410 Gone: endpoint removed")
        }
    );
}

#[tokio::test]
async fn an_endpoint_answering_400_is_a_permanent_failure() {
    let (outcome, _, origin) = attempt_at("/bad").await;
    assert_eq!(
        outcome,
        Outcome::Permanent {
            error: format!("the webhook endpoint {origin} answered 400 Bad Request: unknown field")
        }
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_says_where_it_pointed() {
    let (outcome, got, _) = attempt_at("/redirect").await;
    assert_eq!(got["path"], json!("/redirect"));
    let Outcome::Permanent { error } = outcome else {
        panic!("a redirect is permanent, got {outcome:?}");
    };
    assert!(
        error.contains("308 Permanent Redirect") && error.contains("http://elsewhere.invalid/hook"),
        "{error}"
    );
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_endpoint_nobody_listens_on_is_a_transient_failure() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let outcome = channel(&url, &[&secret(1)], 10_000)
        .deliver(&Delivery::new().attempt(Utc::now()))
        .await;
    let (error, _) = transient_error(outcome);
    let expected = format!("could not connect to the webhook endpoint http://127.0.0.1:{port}: ");
    assert!(error.starts_with(&expected), "{error}");
}

#[tokio::test]
async fn a_failed_tls_handshake_is_a_transient_failure() {
    // The receiver speaks plain HTTP, so no TLS session can be made with it.
    let receiver = Receiver::start(&[&secret(1)]);
    let url = receiver.url("/ok").replacen("http://", "https://", 1);
    let outcome = channel(&url, &[&secret(1)], 10_000)
        .deliver(&Delivery::new().attempt(Utc::now()))
        .await;
    let (error, _) = transient_error(outcome);
    assert!(
        error.starts_with("could not connect to the webhook endpoint https://127.0.0.1:"),
        "{error}"
    );
    assert!(error.contains("TLS handshake failed: "), "{error}");
}

#[tokio::test]
async fn a_category_the_endpoint_does_not_take_is_not_sent() {
    let origin = format!("http://127.0.0.1:{}", closed_port());
    let endpoint: WebhookEndpoint = serde_json::from_value(
        json!({"url": format!("{origin}/hook"), "secrets": [secret(1)], "categories": ["stock"]}),
    )
    .unwrap();
    let outcome = WebhookChannel::new(endpoint)
        .unwrap()
        .deliver(&Delivery::new().attempt(Utc::now()))
        .await;
    assert_eq!(
        outcome,
        Outcome::Permanent {
            error: format!("the webhook endpoint {origin} does not take category billing")
        }
    );
}
