//! Scheduled sends: their time bounds, their fingerprint, and what cancelling and publishing
//! decide in each state.

use chrono::Duration;

use super::event::Event;
use super::schedule::{
    CancelScheduled, PublishScheduled, Schedule, ScheduleEvent, ScheduleId, ScheduleSend,
    ScheduleState, ScheduleStatus, ScheduleTarget,
};
use super::tests::{at, content, send};
use super::{Decide, DomainError};

fn id() -> ScheduleId {
    ScheduleId::from_uuid(uuid::Uuid::from_u128(7))
}

fn scheduled(key: Option<&str>, hours: i64) -> ScheduleSend {
    let send = send(&["ann", "bob"], content("sales", false), key);
    ScheduleSend::new(id(), at() + Duration::hours(hours), send)
        .expect("in range")
        .expect("in the future")
}

fn history(status: Option<ScheduleEvent>) -> Option<Schedule> {
    let mut events = scheduled(None, 1).decide(&None).expect("scheduled");
    events.extend(status.map(Event::Schedule));
    Schedule::of(&events)
}

fn closed() -> super::schedule::ScheduleClosed {
    super::schedule::ScheduleClosed {
        schedule_id: id(),
        at: at(),
    }
}

#[test]
fn a_send_is_scheduled_only_for_the_future_and_within_a_year() {
    let now = send(&["ann"], content("sales", false), None);
    assert_eq!(
        ScheduleSend::new(id(), at(), now.clone()),
        Ok(None),
        "now: at once"
    );
    assert!(ScheduleSend::new(id(), at() + Duration::days(366), now.clone()).is_err());
    assert!(ScheduleSend::new(id(), at() + Duration::days(365), now)
        .expect("in range")
        .is_some());
}

#[test]
fn a_retry_under_the_key_must_name_the_same_time() {
    let first = scheduled(Some("sale"), 1);
    let events = first.decide(&None).expect("scheduled");
    let Event::Schedule(ScheduleEvent::Scheduled(e)) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(e.recipients.len(), 2);
    let keyed: ScheduleState = Some(Ok(super::schedule::KeyedSchedule {
        id: id(),
        request_hash: e.request_hash.clone().expect("a hash"),
    }));
    assert_eq!(first.decide(&keyed), Ok(Vec::new()), "the same request");
    assert!(matches!(
        scheduled(Some("sale"), 2).decide(&keyed),
        Err(DomainError::IdempotencyConflict(_))
    ));
    assert!(matches!(
        first.decide(&Some(Err(()))),
        Err(DomainError::IdempotencyConflict(_))
    ));
}

#[test]
fn cancelling_and_publishing_depend_on_where_it_stands() {
    let cancel = CancelScheduled {
        target: ScheduleTarget::Id(id()),
        at: at(),
    };
    assert_eq!(history(None).expect("one").status, ScheduleStatus::Pending);
    assert_eq!(cancel.decide(&history(None)).expect("cancelled").len(), 1);
    let cancelled = history(Some(ScheduleEvent::Cancelled(closed())));
    assert_eq!(
        cancel.decide(&cancelled),
        Ok(Vec::new()),
        "cancelled already"
    );
    let published = history(Some(ScheduleEvent::Published(closed())));
    assert_eq!(
        cancel.decide(&published),
        Err(DomainError::SchedulePublished(id()))
    );
    assert!(matches!(
        cancel.decide(&None),
        Err(DomainError::ScheduleNotFound(_))
    ));
    let publish = |hours| PublishScheduled {
        id: id(),
        at: at() + Duration::hours(hours),
    };
    assert_eq!(
        publish(0).decide(&history(None)),
        Ok(Vec::new()),
        "not due yet"
    );
    assert_eq!(
        publish(1).decide(&history(None)).expect("published").len(),
        1
    );
    assert_eq!(publish(2).decide(&cancelled), Ok(Vec::new()));
    assert_eq!(publish(2).decide(&published), Ok(Vec::new()));
    // Published, the send keeps the scheduled ids and leaves the key to the schedule.
    let schedule = history(None).expect("one");
    let made = schedule.scheduled.send(at() + Duration::hours(1));
    assert_eq!(made.deliveries.len(), 2);
    assert_eq!(made.idempotency_key, None);
    assert_eq!(made.at, at() + Duration::hours(1));
}

#[test]
fn expiring_takes_the_notification_out_and_skips_what_waits() {
    use super::event::{DeliveryEvent, ExpireReason, Flags};
    use super::notification::{ExpireNotification, ExpireState, Notification};
    use super::values::{Category, Channel, DeliveryId, NotificationId, SkipReason};
    let n = NotificationId::from_uuid(uuid::Uuid::from_u128(1));
    let expire = ExpireNotification {
        id: n,
        reason: ExpireReason::ExpiresAt,
        at: at(),
    };
    assert_eq!(
        expire.decide(&ExpireState::default()),
        Ok(Vec::new()),
        "gone already"
    );
    let state = ExpireState {
        notification: Some(Notification {
            id: n,
            recipient: super::tests::user("ann"),
            category: Category::parse("sales").expect("category"),
            flags: Flags {
                seen: true,
                ..Flags::default()
            },
        }),
        waiting: vec![(DeliveryId::of(n, 0), Channel::Email)],
    };
    let events = expire.decide(&state).expect("expired");
    let Event::NotificationExpired(e) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(Flags::delta(e.before, Flags::GONE), (-1, 0), "unread, seen");
    assert!(matches!(
        &events[1],
        Event::Delivery(DeliveryEvent::Skipped(s)) if s.reason == SkipReason::Expired
    ));
}
