#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use figment::providers::{Format, Toml};
use figment::Figment;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use serde::Deserialize;

use super::classify::{classify, quote, retry_after, BODY_QUOTE_MAX};
use super::payload::Envelope;
use super::*;
use crate::delivery::{Contact, Message};
use crate::domain::{
    Body, Category, Content, Link, NotificationId, Payload, Priority, Title, UserId,
};

/// The Standard Webhooks spec's own example (and its reference libraries' test vector).
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TIMESTAMP: i64 = 1_614_265_330;
const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

#[derive(Debug, Deserialize)]
struct Hooks {
    webhooks: Vec<WebhookEndpoint>,
}

fn hooks(toml: &str) -> Result<Vec<WebhookEndpoint>, String> {
    Figment::from(Toml::string(toml))
        .extract::<Hooks>()
        .map(|h| h.webhooks)
        .map_err(|e| e.to_string())
}

fn secret(raw: &str) -> WebhookSecret {
    WebhookSecret::parse(raw).unwrap()
}

#[test]
fn the_signature_matches_the_specs_example() {
    let header = signature_header(
        &[secret(SPEC_SECRET)],
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY.as_bytes(),
    );
    assert_eq!(header, SPEC_SIGNATURE);
}

#[test]
fn during_a_rotation_each_secret_signs_in_the_order_configured() {
    let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    let both = signature_header(
        &[secret(&other), secret(SPEC_SECRET)],
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY.as_bytes(),
    );
    let alone = signature_header(
        &[secret(&other)],
        SPEC_ID,
        SPEC_TIMESTAMP,
        SPEC_BODY.as_bytes(),
    );
    assert_eq!(both, format!("{alone} {SPEC_SIGNATURE}"));
    assert_ne!(alone, SPEC_SIGNATURE);
}

#[test]
fn a_secret_is_read_with_or_without_base64_padding() {
    let key = STANDARD.encode([1u8; 25]);
    assert!(key.ends_with('='));
    let padded = signature_header(&[secret(&format!("whsec_{key}"))], "a", 1, b"b");
    let bare = format!("whsec_{}", key.trim_end_matches('='));
    assert_eq!(signature_header(&[secret(&bare)], "a", 1, b"b"), padded);
}

#[test]
fn secrets_that_are_not_standard_webhooks_secrets_are_refused() {
    let err = |raw: &str| WebhookSecret::parse(raw).err();
    let short = format!("whsec_{}", STANDARD.encode([1u8; 16]));
    let long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
    assert_eq!(
        err("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        Some(EndpointError::SecretPrefix)
    );
    assert_eq!(err("whsec_not base64!"), Some(EndpointError::SecretBase64));
    assert_eq!(err(&short), Some(EndpointError::SecretLength(16)));
    assert_eq!(err(&long), Some(EndpointError::SecretLength(65)));
    assert_eq!(err(SPEC_SECRET), None);
}

#[test]
fn an_endpoint_reads_from_webhooks_tables_with_defaults() {
    let hooks = hooks(&format!(
        r#"
        [[webhooks]]
        url = "https://hooks.example.com/belfry"
        secrets = ["{SPEC_SECRET}"]

        [[webhooks]]
        url = "http://10.0.0.5:8080/in"
        secrets = ["{SPEC_SECRET}", "{SPEC_SECRET}"]
        categories = ["billing", "stock.low"]
        timeout_ms = 2500
        "#
    ))
    .unwrap();
    let billing = Category::parse("billing").unwrap();
    let comments = Category::parse("comments").unwrap();
    assert_eq!(hooks[0].url().as_str(), "https://hooks.example.com/belfry");
    assert_eq!(hooks[0].timeout(), Duration::from_secs(10));
    assert!(hooks[0].accepts(&comments));
    assert_eq!(hooks[1].secrets.len(), 2);
    assert_eq!(hooks[1].timeout(), Duration::from_millis(2500));
    assert!(hooks[1].accepts(&billing));
    assert!(!hooks[1].accepts(&comments));
}

#[test]
fn a_bad_endpoint_is_refused_saying_what_is_wrong() {
    let table = |fields: &str| hooks(&format!("[[webhooks]]\n{fields}")).unwrap_err();
    let secrets = format!("secrets = [\"{SPEC_SECRET}\"]");
    let cases = [
        (
            format!("url = \"ftp://x.example/\"\n{secrets}"),
            "http or https",
        ),
        (
            format!("url = \"hooks.example.com\"\n{secrets}"),
            "not a usable URL",
        ),
        (
            "url = \"https://x.example/\"\nsecrets = []".to_owned(),
            "at least one",
        ),
        ("url = \"https://x.example/\"".to_owned(), "secrets"),
        (
            "url = \"https://x.example/\"\nsecrets = [\"whsec_AAAA\"]".to_owned(),
            "3 bytes",
        ),
        (
            format!("url = \"https://x.example/\"\n{secrets}\ntimeout_ms = 0"),
            "more than 0",
        ),
        (
            format!("url = \"https://x.example/\"\n{secrets}\nsecret = \"x\""),
            "unknown field",
        ),
        (
            format!("url = \"https://x.example/\"\n{secrets}\ncategories = [\"A B\"]"),
            "category",
        ),
    ];
    for (fields, said) in cases {
        let error = table(&fields);
        assert!(
            error.contains(said),
            "{fields:?} gave {error:?}, not {said:?}"
        );
    }
}

#[test]
fn an_endpoint_prints_neither_its_secrets_nor_its_path() {
    let hook = &hooks(&format!(
        "[[webhooks]]\nurl = \"https://hooks.example.com/services/T0/B0/tok3n\"\n\
         secrets = [\"{SPEC_SECRET}\"]"
    ))
    .unwrap()[0];
    let printed = format!("{hook:?}");
    assert!(printed.contains("https://hooks.example.com"), "{printed}");
    assert!(
        !printed.contains("tok3n") && !printed.contains("MfKQ9r8G"),
        "{printed}"
    );
}

const HOST: &str = "https://hooks.example.com";

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Outcome {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let status = StatusCode::from_u16(status).unwrap();
    let said = quote(body.as_bytes(), &Contact::default());
    classify(HOST, status, &map, &said, at("2025-03-01T09:30:00Z"))
}

fn transient(error: &str, retry_after: Option<u64>) -> Outcome {
    Outcome::Transient {
        error: error.to_owned(),
        retry_after: retry_after.map(Duration::from_secs),
    }
}

#[test]
fn answers_count_as_the_layer_needs_them() {
    let accepted = |id: Option<&str>| Outcome::Accepted {
        provider_id: id.map(str::to_owned),
    };
    let answered = |rest: &str| format!("the webhook endpoint {HOST} answered {rest}");
    assert_eq!(
        answer(200, &[("x-request-id", "rx-1")], "ok"),
        accepted(Some("rx-1"))
    );
    assert_eq!(answer(204, &[], ""), accepted(None));
    assert_eq!(
        answer(500, &[], "database\n   is down"),
        transient(
            &answered("500 Internal Server Error: database is down"),
            None
        )
    );
    assert_eq!(
        answer(408, &[], ""),
        transient(&answered("408 Request Timeout"), None)
    );
    assert_eq!(
        answer(429, &[("retry-after", "7")], ""),
        transient(&answered("429 Too Many Requests"), Some(7))
    );
    assert_eq!(
        answer(410, &[], "bye"),
        Outcome::Gone {
            error: answered("410 Gone: bye")
        }
    );
    assert_eq!(
        answer(400, &[("retry-after", "7")], "unknown field"),
        Outcome::Permanent {
            error: answered("400 Bad Request: unknown field")
        }
    );
    let Outcome::Permanent { error } = answer(308, &[("location", "https://new.example/")], "")
    else {
        panic!("a redirect is permanent");
    };
    assert!(error.contains("308 Permanent Redirect") && error.contains("https://new.example/"));
}

#[test]
fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
    let now = at("2025-03-01T09:30:00Z");
    let wait = |v: &str| retry_after(v, now);
    assert_eq!(wait("0"), Some(Duration::ZERO));
    assert_eq!(wait(" 120 "), Some(Duration::from_secs(120)));
    assert_eq!(
        wait("Sat, 01 Mar 2025 09:31:30 GMT"),
        Some(Duration::from_secs(90))
    );
    assert_eq!(wait("Sat, 01 Mar 2025 09:00:00 GMT"), Some(Duration::ZERO));
    assert_eq!(wait("86400"), Some(MAX_RETRY_AFTER));
    assert_eq!(wait("99999999999999999999999"), Some(MAX_RETRY_AFTER));
    assert_eq!(wait("soon"), None);
    assert_eq!(wait("-5"), None);
    assert_eq!(wait(""), None);
}

#[test]
fn an_error_quotes_only_the_start_of_a_long_body() {
    let Outcome::Transient { error, .. } = answer(502, &[], &"x".repeat(5_000)) else {
        panic!("502 is transient");
    };
    let quoted = error.rsplit(": ").next().unwrap();
    assert_eq!(quoted, format!("{}…", "x".repeat(BODY_QUOTE_MAX)));
}

#[test]
fn an_error_does_not_quote_the_persons_contact_details() {
    let contact = Contact {
        display_name: Some("Ada Lovelace".to_owned()),
        email: Some("Ada@Example.com".to_owned()),
        phone: Some("+4915112345678".to_owned()),
        ..Contact::default()
    };
    let body = "rejected ada@example.COM (Ada Lovelace, +4915112345678): no such user";
    assert_eq!(
        quote(body.as_bytes(), &contact),
        "rejected [recipient] ([recipient], [recipient]): no such user"
    );
}

#[test]
fn the_body_carries_the_notification_and_leaves_absent_fields_out() {
    let content = Content {
        category: Category::parse("billing").unwrap(),
        priority: Priority::High,
        critical: true,
        title: Title::parse("Payment failed").unwrap(),
        body: Body::parse("Card declined").unwrap(),
        data: Payload::parse(serde_json::json!({"invoice": 42})).unwrap(),
        action_url: Some(Link::parse("actionUrl", "https://app.example/i/42").unwrap()),
        icon: None,
    };
    let contact = Contact {
        email: Some("ada@example.com".to_owned()),
        ..Contact::default()
    };
    let recipient = UserId::parse("ada").unwrap();
    let delivery_id = uuid::Uuid::now_v7();
    let notification_id = NotificationId::from_uuid(uuid::Uuid::now_v7());
    let message = Message {
        delivery_id,
        notification_id,
        recipient: &recipient,
        content: &content,
        contact: &contact,
        sent_at: at("2025-03-01T09:29:58.120Z"),
        attempt_at: at("2025-03-01T09:30:00Z"),
        preferences_url: None,
        unsubscribe_url: Some("https://belfry.example/u/x"),
        digest: None,
    };
    let body = serde_json::to_value(Envelope::of(&message)).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "notification.delivery",
            "timestamp": "2025-03-01T09:30:00.000Z",
            "data": {
                "deliveryId": delivery_id.to_string(),
                "notificationId": notification_id.to_string(),
                "recipient": {"id": "ada", "email": "ada@example.com"},
                "notification": {
                    "category": "billing", "priority": "high", "critical": true,
                    "title": "Payment failed", "body": "Card declined",
                    "data": {"invoice": 42}, "actionUrl": "https://app.example/i/42",
                    "sentAt": "2025-03-01T09:29:58.120Z"
                }
            }
        })
    );
}

#[test]
fn a_digest_body_lists_its_notifications_newest_first_and_names_no_notification() {
    let content = |title: &str| Content {
        category: Category::parse("orders").unwrap(),
        priority: Priority::Normal,
        critical: false,
        title: Title::parse(title).unwrap(),
        body: Body::default(),
        data: Payload::default(),
        action_url: None,
        icon: None,
    };
    let heading = content("2 new notifications: orders");
    let recipient = UserId::parse("ada").unwrap();
    let contact = Contact::default();
    let digest_id = crate::domain::digest::DigestId::of(
        &recipient,
        &heading.category,
        crate::domain::Channel::Webhook,
        at("2025-03-01T09:00:00Z"),
    );
    let (newer, older) = (uuid::Uuid::from_u128(2), uuid::Uuid::from_u128(1));
    let digest = crate::delivery::DigestBody {
        digest_id,
        category: heading.category.clone(),
        closes_at: at("2025-03-01T09:00:00Z"),
        items: vec![
            crate::delivery::DigestEntry {
                notification_id: NotificationId::from_uuid(newer),
                content: std::sync::Arc::new(content("Shipped")),
                sent_at: at("2025-03-01T08:40:00Z"),
            },
            crate::delivery::DigestEntry {
                notification_id: NotificationId::from_uuid(older),
                content: std::sync::Arc::new(content("Paid")),
                sent_at: at("2025-03-01T08:10:00Z"),
            },
        ],
    };
    let delivery_id = digest_id.delivery_id().as_uuid();
    let message = Message {
        delivery_id,
        notification_id: digest_id.as_notification(),
        recipient: &recipient,
        content: &heading,
        contact: &contact,
        sent_at: at("2025-03-01T09:00:00Z"),
        attempt_at: at("2025-03-01T09:00:01Z"),
        preferences_url: None,
        unsubscribe_url: None,
        digest: Some(&digest),
    };
    let body = serde_json::to_value(Envelope::of(&message)).unwrap();
    let item = |id: uuid::Uuid, title: &str, sent: &str| {
        serde_json::json!({ "id": id.to_string(), "category": "orders", "priority": "normal",
            "critical": false, "title": title, "body": "", "data": {}, "sentAt": sent })
    };
    assert_eq!(
        body,
        serde_json::json!({
            "type": "digest.delivery",
            "timestamp": "2025-03-01T09:00:01.000Z",
            "data": {
                "deliveryId": delivery_id.to_string(),
                "recipient": {"id": "ada"},
                "digest": {
                    "id": digest_id.to_string(),
                    "category": "orders",
                    "closesAt": "2025-03-01T09:00:00.000Z",
                    "count": 2,
                    "notifications": [
                        item(newer, "Shipped", "2025-03-01T08:40:00.000Z"),
                        item(older, "Paid", "2025-03-01T08:10:00.000Z"),
                    ]
                }
            }
        })
    );
}
