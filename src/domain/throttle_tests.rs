//! Given / when / then tests of throttling: the decision reads how many notifications of the
//! category reached each recipient in the window, and records what it decided.

use super::event::{DeliveryEvent, Event};
use super::notification::{SendNotification, SendState};
use super::send_input::{SendDefaults, ThrottleInput};
use super::tests::{at, content, given_state, ids, route, routed, send, user};
use super::values::*;
use super::SendInput;

fn three_a_day() -> Throttle {
    Throttle::new(3, 86_400).expect("a throttle")
}

/// A send of `category` to `to`, throttled as `throttle`, routed to email.
fn throttled(to: &[&str], critical: bool, throttle: Option<Throttle>) -> SendNotification {
    SendNotification {
        throttle,
        throttle_by_default: false,
        ..routed(
            to,
            content("marketing", critical),
            &[route(Channel::Email, 0, None)],
        )
    }
}

/// Who of `to` already got how many in the window.
fn recent(counts: &[(&str, u32)]) -> SendState {
    SendState {
        recent: counts.iter().map(|&(u, n)| (user(u), n)).collect(),
        ..Default::default()
    }
}

#[test]
fn a_recipient_below_the_limit_gets_the_notification_and_one_at_it_is_throttled() {
    let events = given_state(recent(&[("ann", 2), ("bob", 3)]))
        .when(&throttled(&["ann", "bob"], false, Some(three_a_day())))
        .expect("accepted");
    assert_eq!(events[0].type_name(), "notification.sent");
    assert_eq!(events[1].type_name(), "delivery.planned");
    let Event::NotificationSuppressed(bob) = &events[2] else {
        panic!("bob's is suppressed: {:?}", events[2]);
    };
    assert_eq!(bob.reason, Some(SuppressReason::Throttled));
    let Event::Delivery(DeliveryEvent::Skipped(email)) = &events[3] else {
        panic!("bob's email is skipped: {:?}", events[3]);
    };
    assert_eq!(email.reason, SkipReason::Throttled);
}

#[test]
fn the_reason_is_stored_in_the_event_and_a_suppression_without_one_was_a_mute() {
    let events = given_state(recent(&[("bob", 3)]))
        .when(&throttled(&["bob"], false, Some(three_a_day())))
        .expect("accepted");
    let json = events[0].to_raw_json();
    assert!(json.get().contains(r#""reason":"throttled""#), "{json}");
    let Some(Event::NotificationSuppressed(back)) =
        Event::decode("notification.suppressed", Event::VERSION, json.get()).expect("decodes")
    else {
        panic!("a suppression");
    };
    assert_eq!(back.suppressed_because(), SuppressReason::Throttled);
    let muted = given_state(SendState {
        muted: [user("bob")].into(),
        ..Default::default()
    })
    .when(&send(&["bob"], content("marketing", false), None))
    .expect("accepted");
    let Event::NotificationSuppressed(muted) = &muted[0] else {
        panic!("a suppression");
    };
    assert_eq!(muted.reason, Some(SuppressReason::Muted));
    let older = muted.clone();
    let older = super::event::NotificationCreated {
        reason: None,
        ..older
    };
    assert_eq!(older.suppressed_because(), SuppressReason::Muted);
}

#[test]
fn a_critical_send_is_never_throttled() {
    let events = given_state(recent(&[("bob", 50)]))
        .when(&throttled(&["bob"], true, Some(three_a_day())))
        .expect("accepted");
    assert_eq!(events[0].type_name(), "notification.sent");
    assert_eq!(events[1].type_name(), "delivery.planned");
}

#[test]
fn a_send_without_a_throttle_is_not_throttled_however_many_came_before() {
    let events = given_state(recent(&[("bob", 50)]))
        .when(&throttled(&["bob"], false, None))
        .expect("accepted");
    assert_eq!(events[0].type_name(), "notification.sent");
}

#[test]
fn a_throttled_send_to_someone_who_also_muted_the_category_is_throttled() {
    let state = SendState {
        muted: [user("bob")].into(),
        muted_channels: [(user("bob"), Channel::Email)].into(),
        ..recent(&[("bob", 3)])
    };
    let events = given_state(state)
        .when(&throttled(&["bob"], false, Some(three_a_day())))
        .expect("accepted");
    let (Event::NotificationSuppressed(n), Event::Delivery(DeliveryEvent::Skipped(d))) =
        (&events[0], &events[1])
    else {
        panic!("suppressed and skipped: {events:?}");
    };
    assert_eq!(
        (n.reason, d.reason),
        (Some(SuppressReason::Throttled), SkipReason::Throttled)
    );
}

fn input(throttle: Option<ThrottleInput>) -> SendInput {
    SendInput {
        recipients: vec!["ann".into()],
        category: Some("marketing".into()),
        title: "Sale".into(),
        throttle,
        ..Default::default()
    }
}

fn limit(max: i64, per_seconds: i64) -> Option<ThrottleInput> {
    Some(ThrottleInput {
        max: Some(max),
        per_seconds: Some(per_seconds),
        off: false,
    })
}

fn off() -> Option<ThrottleInput> {
    Some(ThrottleInput {
        off: true,
        ..Default::default()
    })
}

fn defaults() -> SendDefaults {
    SendDefaults {
        throttles: Throttles::new([(cat("marketing"), three_a_day())]),
        ..Default::default()
    }
}

fn cat(s: &str) -> Category {
    Category::parse(s).expect("a category")
}

fn parse(input: SendInput) -> Result<SendNotification, InputError> {
    SendNotification::parse_with_defaults(input, &defaults(), at(), ids())
}

#[test]
fn a_send_takes_its_categorys_throttle_unless_it_names_its_own_or_none() {
    let by_default = parse(input(None)).expect("valid");
    assert_eq!(by_default.throttle, Some(three_a_day()));
    let own = parse(input(limit(1, 60))).expect("valid");
    assert_eq!(own.throttle, Throttle::new(1, 60).ok());
    let none = parse(input(off())).expect("valid");
    assert_eq!(none.throttle, None);
    let other = parse(SendInput {
        category: Some("billing".into()),
        ..input(None)
    })
    .expect("valid");
    assert_eq!(other.throttle, None, "billing has no throttle configured");
}

#[test]
fn a_throttle_of_its_own_is_part_of_a_sends_fingerprint_and_the_default_is_not() {
    let by_default = parse(input(None)).expect("valid").fingerprint();
    let unthrottled = SendNotification::parse(input(None), at(), ids())
        .expect("valid")
        .fingerprint();
    assert_eq!(by_default, unthrottled, "the configuration may change");
    let own = parse(input(limit(3, 86_400))).expect("valid").fingerprint();
    let none = parse(input(off())).expect("valid").fingerprint();
    assert_ne!(own, by_default);
    assert_ne!(none, by_default);
    assert_ne!(own, none);
}

#[test]
fn a_throttle_out_of_bounds_or_half_named_is_refused() {
    for bad in [
        limit(0, 60),
        limit(-1, 60),
        limit(3, 0),
        limit(3, 30 * 24 * 3600 + 1),
        Some(ThrottleInput {
            max: Some(3),
            ..Default::default()
        }),
        Some(ThrottleInput {
            off: true,
            ..limit(3, 60).expect("some")
        }),
        Some(ThrottleInput::default()),
    ] {
        let err = parse(input(bad)).expect_err(&format!("{bad:?} is refused"));
        assert_eq!(err.field, "throttle", "{err}");
    }
}
