//! Given / when / then tests for every command and every rejection. No database.

use chrono::{DateTime, TimeZone, Utc};

use super::event::{BulkItem, Content, DeliveryEvent, Event, Flags};
use super::inbox::{self, InboxItem, Mark, MarkAll};
use super::notification::{self, Change, ChangeNotification, SendNotification, SendState};
use super::preferences::{self, Preferences, SetPreferences};
use super::values::*;
use super::{Decide, DomainError};

pub(super) fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .expect("valid time")
}

pub(super) fn user(s: &str) -> UserId {
    UserId::parse(s).expect("valid user")
}

fn cat(s: &str) -> Category {
    Category::parse(s).expect("valid category")
}

pub(super) fn content(category: &str, critical: bool) -> Content {
    Content {
        category: cat(category),
        priority: Priority::High,
        critical,
        title: Title::parse("Build failed").expect("title"),
        body: Body::parse("main is red").expect("body"),
        data: Payload::default(),
        action_url: Some(Link::parse("action url", "/builds/1").expect("link")),
        icon: None,
    }
}

pub(super) fn ids() -> impl FnMut() -> NotificationId {
    let mut n = 0u128;
    move || {
        n += 1;
        NotificationId::from_uuid(uuid::Uuid::from_u128(n))
    }
}

pub(super) fn send(recipients: &[&str], c: Content, key: Option<&str>) -> SendNotification {
    SendNotification::new(
        recipients.iter().map(|r| user(r)),
        c,
        Vec::new(),
        key.map(|k| IdempotencyKey::parse(k).expect("key")),
        at(),
        ids(),
    )
}

pub(super) fn routed(recipients: &[&str], c: Content, routes: &[Route]) -> SendNotification {
    SendNotification {
        routes: routes.to_vec(),
        ..send(recipients, c, None)
    }
}

pub(super) fn route(channel: Channel, delay_secs: u32, unless: Option<Unless>) -> Route {
    Route::new(channel, delay_secs, unless).expect("valid route")
}

/// Given the state a command is decided against, when the command comes, then these events.
pub(super) struct Given<S>(S);

pub(super) fn given_state<S>(state: S) -> Given<S> {
    Given(state)
}

impl<S> Given<S> {
    pub(super) fn when<C: Decide<State = S>>(&self, cmd: &C) -> Result<Vec<Event>, DomainError> {
        cmd.decide(&self.0)
    }
}

/// A person's preferences after these earlier events.
fn preferences_after(history: &[Event]) -> Preferences {
    history
        .iter()
        .fold(Preferences::default(), preferences::evolve)
}

/// A person's inbox after these earlier events, the first at position 1.
fn inbox_after(history: &[Event]) -> Vec<InboxItem> {
    (1..).zip(history).fold(Vec::new(), |items, (position, e)| {
        inbox::evolve(items, position, e)
    })
}

/// Given earlier events of one notification, when a change is asked, then these events.
struct GivenNotification(Option<notification::Notification>);

fn given(events: &[Event]) -> GivenNotification {
    GivenNotification(events.iter().fold(None, notification::evolve))
}

impl GivenNotification {
    fn when(self, by: &str, change: Change) -> Result<Vec<Event>, DomainError> {
        let id = self
            .0
            .as_ref()
            .map(|n| n.id)
            .unwrap_or_else(|| NotificationId::from_uuid(uuid::Uuid::from_u128(1)));
        given_state(self.0).when(&ChangeNotification {
            id,
            actor: user(by),
            change,
            at: at(),
        })
    }
}

fn sent_to(who: &str) -> Vec<Event> {
    given_state(SendState::default())
        .when(&send(&[who], content("builds", false), None))
        .expect("send is accepted")
}

/// Seen and read (reading a notification marks it seen too).
const READ: Flags = Flags {
    seen: true,
    read: true,
    archived: false,
};

/// Seen, still unread.
const SEEN: Flags = Flags {
    seen: true,
    read: false,
    archived: false,
};

/// Then: exactly one change event, of this type, leaving these flags.
fn then_one_change(events: &[Event], type_name: &str, after: Flags) {
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].type_name(), type_name);
    assert_eq!(flags_after(events), after);
}

fn flags_after(events: &[Event]) -> Flags {
    match events {
        [Event::NotificationSeen(e)
        | Event::NotificationRead(e)
        | Event::NotificationUnread(e)
        | Event::NotificationArchived(e)
        | Event::NotificationUnarchived(e)] => e.after,
        other => panic!("expected one change event, got {other:?}"),
    }
}

#[test]
fn a_send_to_several_people_creates_one_notification_each_and_drops_duplicates() {
    let cmd = send(&["ann", "bob", "ann"], content("builds", false), None);
    let events = given_state(SendState::default())
        .when(&cmd)
        .expect("accepted");
    assert_eq!(events.len(), 2);
    let recipients: Vec<_> = events
        .iter()
        .filter_map(|e| e.user().map(|u| u.as_str().to_owned()))
        .collect();
    assert_eq!(recipients, ["ann", "bob"]);
    assert!(events.iter().all(|e| e.type_name() == "notification.sent"));
    assert_ne!(events[0].stream_id(), events[1].stream_id());
}

#[test]
fn a_send_to_someone_who_muted_the_category_is_suppressed_not_shown() {
    let state = SendState {
        previous_fingerprint: None,
        muted: [user("bob")].into(),
        ..Default::default()
    };
    let events = given_state(state)
        .when(&send(&["ann", "bob"], content("builds", false), None))
        .expect("accepted");
    assert_eq!(events[0].type_name(), "notification.sent");
    assert_eq!(events[1].type_name(), "notification.suppressed");
    assert_eq!(notification::evolve(None, &events[1]), None);
}

#[test]
fn a_critical_send_reaches_people_who_muted_the_category() {
    let state = SendState {
        previous_fingerprint: None,
        muted: [user("bob")].into(),
        ..Default::default()
    };
    let events = given_state(state)
        .when(&send(&["bob"], content("security", true), None))
        .expect("accepted");
    assert_eq!(events[0].type_name(), "notification.sent");
}

#[test]
fn a_retried_keyed_send_with_the_same_payload_decides_nothing_new() {
    let cmd = send(&["ann"], content("builds", false), Some("order-1"));
    let state = SendState {
        previous_fingerprint: Some(cmd.fingerprint()),
        ..Default::default()
    };
    // A retry carries new ids and a new clock reading; the fingerprint ignores both.
    let mut retry = send(&["ann"], content("builds", false), Some("order-1"));
    retry.at = at() + chrono::Duration::seconds(5);
    assert_eq!(given_state(state).when(&retry), Ok(vec![]));
}

#[test]
fn a_keyed_send_with_a_different_payload_is_a_conflict() {
    let first = send(&["ann"], content("builds", false), Some("order-1"));
    let state = SendState {
        previous_fingerprint: Some(first.fingerprint()),
        ..Default::default()
    };
    let changed = send(&["ann", "bob"], content("builds", false), Some("order-1"));
    assert_eq!(
        given_state(state).when(&changed),
        Err(DomainError::IdempotencyConflict(
            IdempotencyKey::parse("order-1").expect("key")
        ))
    );
}

#[test]
fn the_fingerprint_ignores_recipient_order_but_not_content() {
    let a = send(&["ann", "bob"], content("builds", false), None);
    let b = send(&["bob", "ann"], content("builds", false), None);
    let c = send(&["ann", "bob"], content("deploys", false), None);
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn marking_read_also_marks_seen() {
    let events = given(&sent_to("ann"))
        .when("ann", Change::MarkRead)
        .expect("accepted");
    then_one_change(&events, "notification.read", READ);
}

#[test]
fn marking_seen_leaves_it_unread() {
    let events = given(&sent_to("ann"))
        .when("ann", Change::MarkSeen)
        .expect("accepted");
    then_one_change(&events, "notification.seen", SEEN);
}

#[test]
fn marking_unread_after_read_keeps_it_seen() {
    let mut history = sent_to("ann");
    history.extend(given(&history).when("ann", Change::MarkRead).expect("read"));
    let events = given(&history)
        .when("ann", Change::MarkUnread)
        .expect("accepted");
    then_one_change(&events, "notification.unread", SEEN);
}

#[test]
fn archiving_and_unarchiving_round_trip() {
    let mut history = sent_to("ann");
    let archived = given(&history)
        .when("ann", Change::Archive)
        .expect("archive");
    assert_eq!(archived[0].type_name(), "notification.archived");
    assert!(flags_after(&archived).archived);
    history.extend(archived);
    let restored = given(&history)
        .when("ann", Change::Unarchive)
        .expect("unarchive");
    assert_eq!(restored[0].type_name(), "notification.unarchived");
    assert!(!flags_after(&restored).archived);
}

#[test]
fn a_change_already_in_effect_decides_nothing() {
    let mut history = sent_to("ann");
    history.extend(given(&history).when("ann", Change::MarkRead).expect("read"));
    assert_eq!(given(&history).when("ann", Change::MarkRead), Ok(vec![]));
    assert_eq!(given(&history).when("ann", Change::MarkSeen), Ok(vec![]));
    assert_eq!(
        given(&sent_to("ann")).when("ann", Change::Unarchive),
        Ok(vec![])
    );
    assert_eq!(
        given(&sent_to("ann")).when("ann", Change::MarkUnread),
        Ok(vec![])
    );
}

#[test]
fn a_user_cannot_change_another_users_notification() {
    let result = given(&sent_to("ann")).when("mallory", Change::MarkRead);
    assert!(matches!(result, Err(DomainError::NotificationNotFound(_))));
}

#[test]
fn changing_a_notification_that_does_not_exist_is_not_found() {
    for change in [
        Change::MarkSeen,
        Change::MarkRead,
        Change::MarkUnread,
        Change::Archive,
        Change::Unarchive,
    ] {
        assert!(matches!(
            given(&[]).when("ann", change),
            Err(DomainError::NotificationNotFound(_))
        ));
    }
}

#[test]
fn a_suppressed_notification_cannot_be_changed() {
    let state = SendState {
        previous_fingerprint: None,
        muted: [user("ann")].into(),
        ..Default::default()
    };
    let events = given_state(state)
        .when(&send(&["ann"], content("builds", false), None))
        .expect("accepted");
    assert!(matches!(
        given(&events).when("ann", Change::MarkRead),
        Err(DomainError::NotificationNotFound(_))
    ));
}

fn item(n: u128, category: &str, position: i64, flags: Flags) -> InboxItem {
    InboxItem {
        notification_id: NotificationId::from_uuid(uuid::Uuid::from_u128(n)),
        category: cat(category),
        sent_position: position,
        flags,
    }
}

fn mark_all(mark: Mark, category: Option<&str>, up_to: Option<i64>) -> MarkAll {
    MarkAll {
        user: user("ann"),
        mark,
        category: category.map(cat),
        up_to_position: up_to,
        at: at(),
    }
}

fn marked_ids(events: &[Event]) -> Vec<u128> {
    match events {
        [Event::InboxMarked(_, e)] => e
            .items
            .iter()
            .map(|i: &BulkItem| i.notification_id.as_uuid().as_u128())
            .collect(),
        other => panic!("expected one bulk event, got {other:?}"),
    }
}

#[test]
fn mark_all_read_marks_every_unread_unarchived_notification() {
    let archived = Flags {
        archived: true,
        ..Flags::default()
    };
    let items = [
        item(1, "builds", 1, Flags::default()),
        item(2, "deploys", 2, Flags::default()),
        item(3, "builds", 3, READ),
        item(4, "builds", 4, archived),
    ];
    let events = given_state(items.to_vec())
        .when(&mark_all(Mark::Read, None, None))
        .expect("accepted");
    assert_eq!(events[0].type_name(), "inbox.all_read");
    assert_eq!(events[0].stream_id(), "inbox-ann");
    assert_eq!(marked_ids(&events), [1, 2]);
}

#[test]
fn mark_all_read_by_category_leaves_other_categories_unread() {
    let items = [
        item(1, "builds", 1, Flags::default()),
        item(2, "deploys", 2, Flags::default()),
    ];
    let events = given_state(items.to_vec())
        .when(&mark_all(Mark::Read, Some("deploys"), None))
        .expect("accepted");
    assert_eq!(marked_ids(&events), [2]);
}

#[test]
fn mark_all_read_up_to_a_cursor_leaves_later_arrivals_unread() {
    let items = [
        item(1, "builds", 10, Flags::default()),
        item(2, "builds", 11, Flags::default()),
    ];
    let events = given_state(items.to_vec())
        .when(&mark_all(Mark::Read, None, Some(10)))
        .expect("accepted");
    assert_eq!(marked_ids(&events), [1]);
}

#[test]
fn mark_all_seen_marks_unseen_only_and_keeps_them_unread() {
    let items = [
        item(1, "builds", 1, Flags::default()),
        item(2, "builds", 2, SEEN),
    ];
    let events = given_state(items.to_vec())
        .when(&mark_all(Mark::Seen, None, None))
        .expect("accepted");
    assert_eq!(events[0].type_name(), "inbox.all_seen");
    assert_eq!(marked_ids(&events), [1]);
    let after = inbox::evolve(items.to_vec(), 3, &events[0]);
    assert!(after.iter().all(|i| i.flags.seen && !i.flags.read));
}

#[test]
fn mark_all_with_nothing_to_mark_decides_nothing() {
    let nothing = mark_all(Mark::Read, None, None);
    assert_eq!(given_state(Vec::new()).when(&nothing), Ok(vec![]));
    assert_eq!(
        given_state(vec![item(1, "b", 1, READ)]).when(&nothing),
        Ok(vec![])
    );
}

#[test]
fn a_bulk_mark_replays_onto_the_notification_state() {
    let history = sent_to("ann");
    let id = match &history[0] {
        Event::NotificationSent(e) => e.notification_id,
        other => panic!("unexpected {other:?}"),
    };
    let items = inbox_after(&history);
    assert_eq!(items[0].notification_id, id);
    let bulk = given_state(items)
        .when(&mark_all(Mark::Read, None, None))
        .expect("accepted");
    let state = [history[0].clone(), bulk[0].clone()]
        .iter()
        .fold(None, notification::evolve);
    assert_eq!(state.map(|n| n.flags.read), Some(true));
}

fn set(changes: &[(&str, Channel, bool)]) -> SetPreferences {
    SetPreferences {
        user: user("ann"),
        changes: changes
            .iter()
            .map(|(c, ch, on)| (cat(c), *ch, *on))
            .collect(),
        at: at(),
    }
}

#[test]
fn every_channel_is_on_until_switched_off() {
    let prefs = Preferences::default();
    for channel in Channel::ALL {
        assert!(prefs.enabled(&cat("builds"), *channel));
    }
}

#[test]
fn switching_a_channel_off_records_a_preference_change() {
    let events = given_state(preferences_after(&[]))
        .when(&set(&[("builds", Channel::InApp, false)]))
        .expect("accepted");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].type_name(), "preference.changed");
    assert_eq!(events[0].stream_id(), "preferences-ann");
    let state = preferences::evolve(Preferences::default(), &events[0]);
    assert!(!state.enabled(&cat("builds"), Channel::InApp));
    assert!(state.enabled(&cat("builds"), Channel::Email));
    assert!(state.enabled(&cat("deploys"), Channel::InApp));
}

#[test]
fn setting_a_switch_to_its_current_value_decides_nothing() {
    let on = set(&[("builds", Channel::Email, true)]);
    assert_eq!(given_state(preferences_after(&[])).when(&on), Ok(vec![]));
    let switched_off = given_state(preferences_after(&[]))
        .when(&set(&[("builds", Channel::Sms, false)]))
        .expect("accepted");
    let off = set(&[("builds", Channel::Sms, false)]);
    assert_eq!(
        given_state(preferences_after(&switched_off)).when(&off),
        Ok(vec![])
    );
    let from_switches = Preferences::from_switches([(cat("builds"), Channel::Sms, false)]);
    assert_eq!(given_state(from_switches).when(&off), Ok(vec![]));
}

#[test]
fn within_one_command_a_later_change_to_the_same_switch_wins() {
    let events = given_state(preferences_after(&[]))
        .when(&set(&[
            ("builds", Channel::Push, false),
            ("builds", Channel::Push, true),
        ]))
        .expect("accepted");
    assert_eq!(events.len(), 2);
    assert!(preferences_after(&events).enabled(&cat("builds"), Channel::Push));
}

#[test]
fn events_round_trip_through_their_stored_form() {
    let mut events = sent_to("ann");
    events.extend(
        given(&events)
            .when("ann", Change::Archive)
            .expect("archive"),
    );
    events.extend(
        given_state(preferences_after(&[]))
            .when(&set(&[("builds", Channel::InApp, false)]))
            .expect("accepted"),
    );
    for event in events {
        let decoded = Event::decode(event.type_name(), Event::VERSION, event.to_raw_json().get())
            .expect("decodes")
            .expect("known type");
        assert_eq!(decoded, event);
    }
}

#[test]
fn a_sent_notification_is_stored_with_its_content_fields_beside_the_others() {
    let full = r#"{"notification_id":"01900000-0000-7000-8000-000000000001","recipient":"ann",
        "category":"builds","priority":"high","critical":true,"title":"Build failed",
        "body":"main is red","data":{"run":7},"action_url":"https://ci.example/7",
        "icon":"https://ci.example/icon.png","at":"2026-01-02T03:04:05Z"}"#;
    let Some(Event::NotificationSent(e)) =
        Event::decode("notification.sent", Event::VERSION, full).expect("decodes")
    else {
        panic!("a sent notification");
    };
    assert_eq!(e.recipient.as_str(), "ann");
    assert_eq!(e.content.category.as_str(), "builds");
    assert_eq!(e.content.priority, Priority::High);
    assert!(e.content.critical);
    assert_eq!(e.content.title.as_str(), "Build failed");
    assert_eq!(e.content.body.as_str(), "main is red");
    assert_eq!(e.content.data.as_json(), &serde_json::json!({"run": 7}));
    assert_eq!(
        e.content.action_url.as_ref().map(|l| l.as_str()),
        Some("https://ci.example/7")
    );
    assert_eq!(e.at, at());
    let stored: serde_json::Value =
        serde_json::from_str(Event::NotificationSent(e).to_raw_json().get()).expect("JSON");
    assert_eq!(
        stored,
        serde_json::from_str::<serde_json::Value>(full).expect("JSON")
    );

    // Body, data, link and icon may be absent.
    let bare = r#"{"notification_id":"01900000-0000-7000-8000-000000000002","recipient":"bob",
        "category":"builds","priority":"low","critical":false,"title":"Hi","at":"2026-01-02T03:04:05Z"}"#;
    let Some(Event::NotificationSuppressed(e)) =
        Event::decode("notification.suppressed", Event::VERSION, bare).expect("decodes")
    else {
        panic!("a suppressed notification");
    };
    assert_eq!(e.content.body.as_str(), "");
    assert_eq!(e.content.data.as_json(), &serde_json::json!({}));
    assert!(e.content.action_url.is_none() && e.content.icon.is_none());
    assert!(Event::decode(
        "notification.sent",
        Event::VERSION,
        r#"{"recipient":"ann"}"#
    )
    .is_err());
}

#[test]
fn unknown_event_types_are_skipped_and_unknown_versions_refused() {
    assert!(matches!(
        Event::decode("billing.charged", 1, "{}"),
        Ok(None)
    ));
    assert!(Event::decode("notification.read", 99, "{}").is_err());
    assert!(Event::decode("notification.read", 1, r#"{"x": 1}"#).is_err());
}

#[test]
fn each_route_plans_a_delivery_after_its_notification_in_its_stream() {
    let routes = [
        route(Channel::Email, 0, None),
        route(Channel::Webhook, 600, Some(Unless::Read)),
    ];
    let cmd = routed(&["ann", "bob"], content("billing", false), &routes);
    let events = given_state(SendState::default())
        .when(&cmd)
        .expect("accepted");
    let types: Vec<&str> = events.iter().map(Event::type_name).collect();
    assert_eq!(
        types,
        [
            "notification.sent",
            "delivery.planned",
            "delivery.planned",
            "notification.sent",
            "delivery.planned",
            "delivery.planned",
        ]
    );
    let Event::Delivery(DeliveryEvent::Planned(later)) = &events[2] else {
        panic!("a planned delivery: {:?}", events[2]);
    };
    assert_eq!(later.channel, Channel::Webhook);
    assert_eq!(later.due_at, at() + chrono::Duration::seconds(600));
    assert_eq!(later.unless, Some(Unless::Read));
    assert_eq!(later.recipient, user("ann"));
    assert_eq!(events[2].stream_id(), events[0].stream_id());
    // Ids are derived: the same send decided again names the same deliveries, and no two
    // deliveries share one.
    let again = given_state(SendState::default())
        .when(&cmd)
        .expect("accepted");
    assert_eq!(events, again);
    let mut delivery_ids: Vec<DeliveryId> = events
        .iter()
        .filter_map(|e| match e {
            Event::Delivery(DeliveryEvent::Planned(p)) => Some(p.delivery_id),
            _ => None,
        })
        .collect();
    delivery_ids.sort();
    delivery_ids.dedup();
    assert_eq!(delivery_ids.len(), 4);
}

#[test]
fn a_muted_channel_is_skipped_unless_the_send_is_critical() {
    let state = SendState {
        muted_channels: [(user("bob"), Channel::Email)].into(),
        ..Default::default()
    };
    let routes = [
        route(Channel::Email, 0, None),
        route(Channel::Webhook, 0, None),
    ];
    let events = given_state(state.clone())
        .when(&routed(&["bob"], content("billing", false), &routes))
        .expect("accepted");
    let Event::Delivery(DeliveryEvent::Skipped(skipped)) = &events[1] else {
        panic!("a skipped delivery: {:?}", events[1]);
    };
    assert_eq!(
        (skipped.channel, skipped.reason),
        (Channel::Email, SkipReason::Muted)
    );
    assert_eq!(
        events[2].type_name(),
        "delivery.planned",
        "webhooks are not muted"
    );
    let critical = given_state(state)
        .when(&routed(&["bob"], content("security", true), &routes))
        .expect("accepted");
    assert_eq!(critical[1].type_name(), "delivery.planned");
}

#[test]
fn a_keyed_send_with_other_routes_is_a_conflict() {
    let key = Some(IdempotencyKey::parse("order-1").expect("key"));
    let first = SendNotification {
        idempotency_key: key.clone(),
        ..routed(
            &["ann"],
            content("builds", false),
            &[route(Channel::Email, 0, None)],
        )
    };
    let state = SendState {
        previous_fingerprint: Some(first.fingerprint()),
        ..Default::default()
    };
    let other = SendNotification {
        idempotency_key: key.clone(),
        ..routed(
            &["ann"],
            content("builds", false),
            &[route(Channel::Email, 60, None)],
        )
    };
    assert!(matches!(
        given_state(state.clone()).when(&other),
        Err(DomainError::IdempotencyConflict(_))
    ));
    let same = SendNotification {
        idempotency_key: key,
        ..routed(
            &["ann"],
            content("builds", false),
            &[route(Channel::Email, 0, None)],
        )
    };
    assert_eq!(given_state(state).when(&same), Ok(vec![]));
}

#[test]
fn planned_and_skipped_deliveries_round_trip_through_the_log() {
    let routes = [route(Channel::Email, 30, Some(Unless::Seen))];
    let state = SendState {
        muted_channels: [(user("bob"), Channel::Email)].into(),
        ..Default::default()
    };
    let events = given_state(state)
        .when(&routed(&["ann", "bob"], content("billing", false), &routes))
        .expect("accepted");
    for event in &events {
        let raw = event.to_raw_json();
        let back = Event::decode(event.type_name(), Event::VERSION, raw.get())
            .expect("decodes")
            .expect("a known type");
        assert_eq!(&back, event);
    }
}

#[test]
fn stored_delivery_facts_decode_and_encode_to_the_same_type_and_bytes() {
    let delivery = r#""delivery_id":"01900000-0000-7000-8000-0000000000d1","notification_id":"01900000-0000-7000-8000-000000000001","recipient":"ann""#;
    let stored = [
        (
            "delivery.planned",
            format!(
                r#"{{{delivery},"category":"billing","channel":"email","due_at":"2026-01-02T03:04:35Z","unless":"seen","at":"2026-01-02T03:04:05Z"}}"#
            ),
        ),
        (
            "delivery.planned",
            format!(
                r#"{{{delivery},"category":"billing","channel":"webhook","due_at":"2026-01-02T03:04:05Z","at":"2026-01-02T03:04:05Z"}}"#
            ),
        ),
        (
            "delivery.skipped",
            format!(
                r#"{{{delivery},"category":"billing","channel":"email","reason":"no_address","at":"2026-01-02T03:04:05Z"}}"#
            ),
        ),
        (
            "delivery.attempted",
            format!(r#"{{{delivery},"channel":"email","attempt":1,"at":"2026-01-02T03:04:05Z"}}"#),
        ),
        (
            "delivery.succeeded",
            format!(
                r#"{{{delivery},"channel":"email","attempt":2,"provider_id":"<m1@example>","at":"2026-01-02T03:04:05Z"}}"#
            ),
        ),
        (
            "delivery.succeeded",
            format!(
                r#"{{{delivery},"channel":"webhook","attempt":1,"at":"2026-01-02T03:04:05Z"}}"#
            ),
        ),
        (
            "delivery.failed",
            format!(
                r#"{{{delivery},"channel":"email","attempt":1,"error":"421 try later","retry_at":"2026-01-02T03:04:20Z","at":"2026-01-02T03:04:05Z"}}"#
            ),
        ),
        (
            "delivery.failed",
            format!(
                r#"{{{delivery},"channel":"webhook","attempt":8,"error":"410 gone","at":"2026-01-02T03:04:05Z"}}"#
            ),
        ),
        (
            "delivery.retried",
            format!(r#"{{{delivery},"channel":"email","at":"2026-01-02T03:04:05Z"}}"#),
        ),
    ];
    for (type_name, data) in stored {
        let event = Event::decode(type_name, Event::VERSION, &data)
            .expect("decodes")
            .expect("a known type");
        assert!(matches!(event, Event::Delivery(_)), "{event:?}");
        assert_eq!(event.type_name(), type_name);
        assert_eq!(
            event.to_raw_json().get(),
            data,
            "{type_name} stored as it was"
        );
        assert_eq!(event.user(), Some(&user("ann")));
        assert_eq!(
            event.stream_id(),
            "notification-01900000-0000-7000-8000-000000000001"
        );
    }
}
