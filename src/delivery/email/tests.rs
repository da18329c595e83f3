#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use figment::providers::{Format, Toml};
use uuid::Uuid;

use lettre::transport::smtp::response::Response;

use super::classify::{provider_id, redact};
use super::message::Parts;
use super::*;
use crate::delivery::{Contact, Message};
use crate::domain::{
    Body, Category, Content, Link, NotificationId, Payload, Priority, Title, UserId,
};

fn settings(toml: &str) -> Result<SmtpSettings, String> {
    figment::Figment::from(Toml::string(toml))
        .extract()
        .map_err(|e| e.to_string())
}

fn originator() -> Originator {
    let settings = settings(
        r#"from = "Belfry <noreply@example.com>"
           reply_to = "Support <help@example.com>"
           app_url = "https://app.example.com/""#,
    )
    .unwrap();
    settings.prepare().unwrap().0
}

fn content(action: Option<&str>) -> Content {
    Content {
        category: Category::parse("billing").unwrap(),
        priority: Priority::Normal,
        critical: false,
        title: Title::parse("Invoice <#42> & \"more\"").unwrap(),
        body: Body::parse("Line one\nline <two>\n\nSecond paragraph").unwrap(),
        data: Payload::default(),
        action_url: action.map(|a| Link::parse("action_url", a).unwrap()),
        icon: None,
    }
}

struct Fixture {
    user: UserId,
    content: Content,
    contact: Contact,
}

impl Fixture {
    fn new(action: Option<&str>) -> Fixture {
        Fixture {
            user: UserId::parse("u-1").unwrap(),
            content: content(action),
            contact: Contact {
                display_name: Some("Ada Lovelace".to_owned()),
                email: Some("ada@example.org".to_owned()),
                ..Contact::default()
            },
        }
    }

    fn message(&self, attempt_minute: u32) -> Message<'_> {
        Message {
            delivery_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
            notification_id: NotificationId::from_uuid(Uuid::from_u128(7)),
            recipient: &self.user,
            content: &self.content,
            contact: &self.contact,
            sent_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            attempt_at: Utc
                .with_ymd_and_hms(2026, 3, 1, 12, attempt_minute, 0)
                .unwrap(),
            preferences_url: Some("https://belfry.example.com/preferences?u=1&c=\"x\""),
            unsubscribe_url: Some("https://belfry.example.com/unsubscribe?t=abc"),
            digest: None,
        }
    }
}

fn headers(email: &lettre::Message) -> String {
    let raw = String::from_utf8(email.formatted()).unwrap();
    raw.split("\r\n\r\n").next().unwrap().to_owned()
}

#[test]
fn an_email_carries_its_headers_and_the_same_message_id_on_every_attempt() {
    let fixture = Fixture::new(None);
    let first = build_email(&originator(), &fixture.message(0)).unwrap();
    let second = build_email(&originator(), &fixture.message(5)).unwrap();
    let head = headers(&first);
    for expected in [
        "From: Belfry <noreply@example.com>",
        "Reply-To: Support <help@example.com>",
        "To: \"Ada Lovelace\" <ada@example.org>",
        "Message-ID: <01920000-0000-7000-8000-000000000001@example.com>",
        "Date: Sun, 01 Mar 2026 12:00:00 +0000",
        "List-Unsubscribe: <https://belfry.example.com/unsubscribe?t=abc>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "X-Belfry-Delivery-Id: 01920000-0000-7000-8000-000000000001",
        "X-Belfry-Notification-Id: 00000000-0000-0000-0000-000000000007",
        "Content-Type: multipart/alternative",
    ] {
        assert!(
            head.contains(expected),
            "{expected:?} missing from:\n{head}"
        );
    }
    let second = headers(&second);
    assert!(second.contains("Message-ID: <01920000-0000-7000-8000-000000000001@example.com>"));
    assert!(
        second.contains("Date: Sun, 01 Mar 2026 12:05:00 +0000"),
        "{second}"
    );
}

#[test]
fn everything_from_the_notification_is_escaped_in_the_html_part() {
    let parts = Parts {
        title: "Invoice <#42> & \"more\"",
        body: "a <b>\nc\n\nd's",
        action: Some("https://app.example.com/x?a=1&b=\"2\""),
        preferences: Some("https://b.example.com/p?q=<1>"),
        locale: Some("de-DE\"><x"),
    };
    let html = parts.html();
    assert!(html.contains("<title>Invoice &lt;#42&gt; &amp; &quot;more&quot;</title>"));
    assert!(
        html.contains("<p>a &lt;b&gt;<br>\nc</p>\n<p>d&#39;s</p>"),
        "{html}"
    );
    assert!(html.contains("href=\"https://app.example.com/x?a=1&amp;b=&quot;2&quot;\""));
    assert!(html.contains("href=\"https://b.example.com/p?q=&lt;1&gt;\""));
    assert!(html.contains("<html lang=\"de-DE&quot;&gt;&lt;x\">"));
    assert!(!html.contains("<b>") && !html.contains("<x"));
    let text = parts.text();
    assert!(text.starts_with("Invoice <#42> & \"more\"\n\na <b>\nc\n\nd's\n"));
    assert!(text.contains("Open: https://app.example.com/x?a=1&b=\"2\"\n"));
    assert!(text.contains("Manage your notification preferences: https://b.example.com/p?q=<1>"));
}

#[test]
fn a_relative_action_link_is_made_absolute_only_when_the_app_url_is_known() {
    let fixture = Fixture::new(Some("/orders/42"));
    let with = build_email(&originator(), &fixture.message(0)).unwrap();
    let with = String::from_utf8(with.formatted()).unwrap();
    assert!(with.contains("https://app.example.com/orders/42"), "{with}");

    let mut bare = originator();
    bare.app_url = None;
    let without = build_email(&bare, &fixture.message(0)).unwrap();
    let without = String::from_utf8(without.formatted()).unwrap();
    assert!(!without.contains("/orders/42"), "{without}");
    assert!(!without.contains("Open"), "{without}");
}

#[test]
fn a_contact_without_a_usable_address_cannot_be_mailed() {
    let mut fixture = Fixture::new(None);
    fixture.contact.email = None;
    let missing = build_email(&originator(), &fixture.message(0)).unwrap_err();
    assert_eq!(missing, BuildError::NoAddress);
    fixture.contact.email = Some("not an address".to_owned());
    let bad = build_email(&originator(), &fixture.message(0)).unwrap_err();
    assert!(matches!(bad, BuildError::BadAddress(_)), "{bad:?}");
    assert!(!bad.to_string().contains("not an address"), "{bad}");
}

#[test]
fn an_unsubscribe_url_that_cannot_be_a_header_is_refused() {
    let fixture = Fixture::new(None);
    let mut message = fixture.message(0);
    message.unsubscribe_url = Some("https://x.example/u?t=a>b");
    let error = build_email(&originator(), &message).unwrap_err();
    assert_eq!(error, BuildError::BadUnsubscribeUrl);
    message.unsubscribe_url = None;
    let head = headers(&build_email(&originator(), &message).unwrap());
    assert!(!head.contains("List-Unsubscribe"), "{head}");
}

#[test]
fn the_port_follows_the_tls_mode_unless_set() {
    for (tls, port) in [("none", 25), ("starttls", 587), ("tls", 465)] {
        let s = settings(&format!("from = \"a@example.com\"\ntls = \"{tls}\"")).unwrap();
        assert_eq!(s.port(), port);
        s.validate().unwrap();
    }
    let s = settings("from = \"a@example.com\"\nport = 2525").unwrap();
    assert_eq!((s.tls, s.port()), (SmtpTls::Starttls, 2525));
    assert_eq!(
        (s.host.as_str(), s.pool_size, s.timeout_secs),
        ("localhost", 4, 30)
    );
}

#[test]
fn settings_are_refused_with_a_reason() {
    let refused = |toml: &str| format!("{:#}", settings(toml).unwrap().validate().unwrap_err());
    let bad_from = refused("from = \"noreply at example\"");
    assert!(
        bad_from.contains("smtp.from = \"noreply at example\" is not a mailbox"),
        "{bad_from}"
    );
    let bad_reply = refused("from = \"a@example.com\"\nreply_to = \"<<\"");
    assert!(bad_reply.contains("smtp.reply_to"), "{bad_reply}");
    let no_user = refused("from = \"a@example.com\"\npassword = \"p\"");
    assert!(
        no_user.contains("smtp.password is set without smtp.username"),
        "{no_user}"
    );
    let clear =
        refused("from = \"a@example.com\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"");
    assert!(clear.contains("in clear"), "{clear}");
    let missing = refused("from = \"a@example.com\"\nca_file = \"/nonexistent/ca.pem\"");
    assert!(
        missing.contains("Failed to read smtp.ca_file = /nonexistent/ca.pem"),
        "{missing}"
    );

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("ca.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let no_pem = refused(&format!("from = \"a@example.com\"\nca_file = {:?}", empty));
    assert!(no_pem.contains("holds no PEM certificate"), "{no_pem}");

    let unknown = settings("from = \"a@example.com\"\nstarttls = true").unwrap_err();
    assert!(unknown.contains("starttls"), "{unknown}");
    let no_from = settings("host = \"smtp.example.com\"").unwrap_err();
    assert!(no_from.contains("from"), "{no_from}");
}

#[test]
fn the_provider_id_is_the_queue_id_or_what_the_reply_adds_to_ok() {
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
    let ok = |lines: &[&str]| {
        let code = Code::new(
            Severity::PositiveCompletion,
            Category::MailSystem,
            Detail::Zero,
        );
        provider_id(&Response::new(
            code,
            lines.iter().map(|l| l.to_string()).collect(),
        ))
    };
    assert_eq!(
        ok(&["2.0.0 Ok: queued as 4Xk2Lq1nZz"]).as_deref(),
        Some("4Xk2Lq1nZz")
    );
    assert_eq!(
        ok(&["Ok 0100018f-aaaa-bbbb"]).as_deref(),
        Some("0100018f-aaaa-bbbb")
    );
    assert_eq!(ok(&["2.0.0 OK"]), None);
    assert_eq!(ok(&["OK"]), None);
    assert_eq!(ok(&["2.0.0"]), None);
    assert_eq!(ok(&[]), None);
}

#[test]
fn the_recipients_address_is_taken_out_of_server_replies() {
    assert_eq!(
        redact(
            "5.1.1 <Ada@Example.org>: Recipient address rejected (ada@example.org)",
            "ada@example.org"
        ),
        "5.1.1 <[recipient]>: Recipient address rejected ([recipient])"
    );
    assert_eq!(redact("4.3.0 busy", ""), "4.3.0 busy");
}

#[test]
fn a_digest_email_lists_each_notification_escaped_in_both_parts() {
    let fixture = Fixture::new(Some("/orders/1?a=1&b=2"));
    let digest_id = crate::domain::digest::DigestId::of(
        &fixture.user,
        &fixture.content.category,
        crate::domain::Channel::Email,
        Utc.with_ymd_and_hms(2026, 3, 1, 13, 0, 0).unwrap(),
    );
    let digest = crate::delivery::DigestBody {
        digest_id,
        category: fixture.content.category.clone(),
        closes_at: Utc.with_ymd_and_hms(2026, 3, 1, 13, 0, 0).unwrap(),
        items: vec![crate::delivery::DigestEntry {
            notification_id: NotificationId::from_uuid(Uuid::from_u128(9)),
            content: std::sync::Arc::new(fixture.content.clone()),
            sent_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 5, 0).unwrap(),
        }],
    };
    let mut message = fixture.message(0);
    message.digest = Some(&digest);
    let email = build_email(&originator(), &message).unwrap();
    let raw = String::from_utf8(email.formatted()).unwrap();
    let head = headers(&email);
    assert!(
        head.contains(&format!("X-Belfry-Digest-Id: {digest_id}")),
        "{head}"
    );
    assert!(!head.contains("X-Belfry-Notification-Id"), "{head}");
    assert!(raw.contains("Content-Type: text/plain"), "{raw}");
    assert!(raw.contains("Content-Type: text/html"), "{raw}");

    let listed = super::message::Listed::of(&originator(), &digest, Some("Europe/Berlin"));
    let parts = Parts {
        title: "1 new notification: billing",
        body: "",
        action: None,
        preferences: Some("https://b.example.com/p"),
        locale: None,
    };
    let text = parts.digest_text(&listed);
    for expected in [
        "1 new notification: billing\n",
        "* Invoice <#42> & \"more\" (Sun  1 Mar, 13:05 CET)\n",
        "  line <two>\n",
        "  Open: https://app.example.com/orders/1?a=1&b=2\n",
        "Manage your notification preferences: https://b.example.com/p",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let html = parts.digest_html(&listed);
    for expected in [
        "<strong>Invoice &lt;#42&gt; &amp; &quot;more&quot;</strong>",
        "line &lt;two&gt;",
        "<a href=\"https://app.example.com/orders/1?a=1&amp;b=2\">Open</a>",
        "Sun  1 Mar, 13:05 CET",
    ] {
        assert!(
            html.contains(expected),
            "{expected:?} missing from:\n{html}"
        );
    }
}
