//! What happens to a planned delivery once it falls due: whether to attempt it or skip it
//! ([`on_due`]), when to try again after a failure ([`RetryPolicy`]), and the facts a worker
//! records ([`RecordDelivery`]), decided against the delivery's current status so that a
//! settled delivery never gets a second outcome.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use super::digest::DigestId;
use super::event::{
    DeferReason, DeliveryAttempted, DeliveryDeferred, DeliveryDigested, DeliveryEvent,
    DeliveryFailed, DeliveryRef, DeliveryRetried, DeliverySkipped, DeliverySucceeded, Event,
};
use super::values::{Category, SkipReason, Unless};
use super::{Decide, DomainError};

/// What a due delivery is decided against, read when it falls due (not when it was planned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DueState {
    pub unless: Option<Unless>,
    pub read: bool,
    pub seen: bool,
    /// The person switched this channel off for the category since the send.
    pub muted: bool,
    pub critical: bool,
    /// The person (or the server) has somewhere to deliver to on this channel.
    pub reachable: bool,
    /// The end of the person's quiet hours, when they are in them now and they hold this
    /// notification (see [`super::quiet::QuietPolicy`]).
    pub quiet_until: Option<DateTime<Utc>>,
    /// The notification's `expiresAt` has passed.
    pub expired: bool,
    /// When the person's digest for this category and channel closes next, when they have
    /// one and it gathers this notification.
    pub digest_closes: Option<DateTime<Utc>>,
}

/// What to do with a delivery that fell due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDue {
    Attempt,
    Skip(SkipReason),
    /// Wait until then (the end of the person's quiet hours), and decide again.
    Defer(DateTime<Utc>, DeferReason),
    /// Join the person's digest that closes then.
    Digest(DateTime<Utc>),
}

/// Preferences are checked again here, so a person who mutes email in the meantime gets
/// none; `critical` goes through a mute, as in-app. A delivery that would be skipped is
/// skipped at once, quiet hours or not; one that would go out joins the person's digest
/// when they have one (quiet hours then hold the digest), else waits out quiet hours.
pub fn on_due(state: &DueState) -> OnDue {
    if state.expired {
        return OnDue::Skip(SkipReason::Expired);
    }
    match state.unless {
        Some(Unless::Read) if state.read => return OnDue::Skip(SkipReason::Read),
        Some(Unless::Seen) if state.seen || state.read => return OnDue::Skip(SkipReason::Seen),
        _ => {}
    }
    if state.muted && !state.critical {
        return OnDue::Skip(SkipReason::Muted);
    }
    if !state.reachable {
        return OnDue::Skip(SkipReason::NoAddress);
    }
    if let Some(closes) = state.digest_closes {
        return OnDue::Digest(closes);
    }
    match state.quiet_until {
        Some(until) => OnDue::Defer(until, DeferReason::QuietHours),
        None => OnDue::Attempt,
    }
}

/// Exponential backoff with jitter: attempt `n` failed, the next waits `base * 2^(n-1)`
/// (at most `max_wait`), of which a random half is drawn outside (`jitter` in `[0, 1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts within 26 minutes: 15 s, 30 s, 1, 2, 4, 8 and 10 minutes apart (each wait
    /// at least half of that, by its jitter).
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_secs(15),
            max_wait: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// When to try again after attempt `attempt` failed transiently; `None` when it was the
    /// last. A provider's own `retry_after` wins when it asks for longer (up to an hour).
    pub fn next(
        &self,
        attempt: u32,
        failed_at: DateTime<Utc>,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.max_wait);
        let jitter = jitter.clamp(0.0, 1.0);
        let mut wait = full.mul_f64(0.5 + 0.5 * jitter);
        if let Some(asked) = retry_after {
            wait = wait.max(asked.min(Duration::from_secs(3_600)));
        }
        let wait = chrono::Duration::from_std(wait).ok()?;
        // At the precision both backends keep, so the log and the delivery log agree.
        Some((failed_at + wait).trunc_subsecs(6))
    }
}

/// A delivery's status as commands see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Planned, being attempted, or waiting to retry.
    Open,
    /// Failed for good: nothing more happens to it unless an operator retries it.
    Failed,
    /// Succeeded or skipped: nothing more happens to it.
    Done,
}

/// A step a worker records for one delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Attempt {
        attempt: u32,
    },
    Succeeded {
        attempt: u32,
        provider_id: Option<String>,
    },
    Failed {
        attempt: u32,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
    Skipped {
        reason: SkipReason,
        category: Category,
    },
    /// It waits until `until`, when it is due again.
    Deferred {
        until: DateTime<Utc>,
        reason: DeferReason,
    },
    /// It joins a digest instead of going out, and is settled.
    Digested {
        digest_id: DigestId,
        closes_at: DateTime<Utc>,
        category: Category,
        sent_at: DateTime<Utc>,
    },
    /// An operator asks for one more attempt of a delivery that failed for good.
    Retry,
}

impl Step {
    /// Whether it ends an attempt (or calls the delivery off): the worker's claim has served.
    pub fn is_outcome(&self) -> bool {
        matches!(
            self,
            Step::Succeeded { .. }
                | Step::Failed { .. }
                | Step::Skipped { .. }
                | Step::Deferred { .. }
                | Step::Digested { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordDelivery {
    pub delivery: DeliveryRef,
    pub step: Step,
    pub at: DateTime<Utc>,
}

/// Decides a step: nothing for a delivery already settled (a second worker, or a retry of
/// the record, changes nothing), an error for one never planned. An operator's retry is for
/// a delivery that failed for good, and refused for any other.
impl Decide for RecordDelivery {
    type State = Option<Status>;

    fn decide(&self, state: &Option<Status>) -> Result<Vec<Event>, DomainError> {
        let id = self.delivery.delivery_id;
        let status = state.ok_or(DomainError::DeliveryNotFound(id))?;
        let delivery = self.delivery.clone();
        let at = self.at;
        let event = match &self.step {
            Step::Retry if status == Status::Failed => {
                DeliveryEvent::Retried(DeliveryRetried { delivery, at })
            }
            Step::Retry => return Err(DomainError::DeliveryNotFailed(id)),
            _ if status != Status::Open => return Ok(Vec::new()),
            Step::Attempt { attempt } => DeliveryEvent::Attempted(DeliveryAttempted {
                delivery,
                attempt: *attempt,
                at,
            }),
            Step::Succeeded {
                attempt,
                provider_id,
            } => DeliveryEvent::Succeeded(DeliverySucceeded {
                delivery,
                attempt: *attempt,
                provider_id: provider_id.clone(),
                at,
            }),
            Step::Failed {
                attempt,
                error,
                retry_at,
            } => DeliveryEvent::Failed(DeliveryFailed {
                delivery,
                attempt: *attempt,
                error: error.clone(),
                retry_at: *retry_at,
                at,
            }),
            Step::Deferred { until, reason } => DeliveryEvent::Deferred(DeliveryDeferred {
                delivery,
                until: *until,
                reason: *reason,
                at,
            }),
            Step::Digested {
                digest_id,
                closes_at,
                category,
                sent_at,
            } => DeliveryEvent::Digested(DeliveryDigested {
                delivery,
                category: category.clone(),
                digest_id: *digest_id,
                closes_at: *closes_at,
                sent_at: *sent_at,
                at,
            }),
            Step::Skipped { reason, category } => DeliveryEvent::Skipped(DeliverySkipped {
                delivery_id: delivery.delivery_id,
                notification_id: delivery.notification_id,
                recipient: delivery.recipient,
                category: category.clone(),
                channel: delivery.channel,
                reason: *reason,
                at,
            }),
        };
        Ok(vec![Event::Delivery(event)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(f: impl FnOnce(&mut DueState)) -> Option<SkipReason> {
        let mut state = DueState {
            reachable: true,
            ..DueState::default()
        };
        f(&mut state);
        match on_due(&state) {
            OnDue::Attempt => None,
            OnDue::Skip(reason) => Some(reason),
            OnDue::Defer(..) => panic!("deferred without quiet hours"),
            OnDue::Digest(..) => panic!("in a digest without one"),
        }
    }

    #[test]
    fn a_delivery_due_in_quiet_hours_waits_unless_it_would_be_skipped() {
        let until = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(7);
        let quiet = |f: fn(&mut DueState)| {
            let mut state = DueState {
                reachable: true,
                quiet_until: Some(until),
                ..DueState::default()
            };
            f(&mut state);
            on_due(&state)
        };
        assert_eq!(quiet(|_| {}), OnDue::Defer(until, DeferReason::QuietHours));
        assert_eq!(
            quiet(|s| {
                s.unless = Some(Unless::Read);
                s.read = true
            }),
            OnDue::Skip(SkipReason::Read),
            "read meanwhile: nothing to wait for"
        );
        assert_eq!(quiet(|s| s.muted = true), OnDue::Skip(SkipReason::Muted));
        assert_eq!(
            quiet(|s| s.reachable = false),
            OnDue::Skip(SkipReason::NoAddress)
        );
        assert_eq!(
            quiet(|s| s.expired = true),
            OnDue::Skip(SkipReason::Expired),
            "expired meanwhile: nothing to wait for"
        );
    }

    #[test]
    fn a_due_delivery_is_skipped_for_what_happened_since_the_send() {
        assert_eq!(due(|_| {}), None);
        assert_eq!(due(|s| s.read = true), None, "read, but no `unless`");
        assert_eq!(
            due(|s| {
                s.unless = Some(Unless::Read);
                s.read = true
            }),
            Some(SkipReason::Read)
        );
        assert_eq!(
            due(|s| {
                s.unless = Some(Unless::Read);
                s.seen = true
            }),
            None,
            "seen is not read"
        );
        assert_eq!(
            due(|s| {
                s.unless = Some(Unless::Seen);
                s.seen = true
            }),
            Some(SkipReason::Seen)
        );
        assert_eq!(due(|s| s.muted = true), Some(SkipReason::Muted));
        assert_eq!(
            due(|s| {
                s.muted = true;
                s.critical = true
            }),
            None
        );
        assert_eq!(due(|s| s.reachable = false), Some(SkipReason::NoAddress));
    }

    #[test]
    fn retries_back_off_within_their_bounds_and_stop_after_the_last() {
        let policy = RetryPolicy::default();
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let wait = |attempt, jitter| {
            policy
                .next(attempt, at, None, jitter)
                .map(|t| (t - at).num_milliseconds())
        };
        assert_eq!(wait(1, 0.0), Some(7_500), "half of 15 s at the least");
        assert_eq!(wait(1, 1.0), Some(15_000));
        assert_eq!(wait(3, 1.0), Some(60_000));
        assert_eq!(wait(7, 1.0), Some(600_000), "capped at 10 minutes");
        assert_eq!(wait(8, 0.5), None, "the eighth attempt was the last");
        let odd = policy.next(1, at, None, 0.123_456_789).expect("a retry");
        assert_eq!(
            odd.timestamp_subsec_nanos() % 1_000,
            0,
            "microseconds, as stored"
        );
        let asked = policy.next(1, at, Some(Duration::from_secs(120)), 0.0);
        assert_eq!(
            asked.map(|t| (t - at).num_seconds()),
            Some(120),
            "Retry-After wins"
        );
        let total: i64 = (1..8).map(|a| wait(a, 1.0).unwrap_or(0)).sum();
        assert_eq!(total / 1000, 1_545, "26 minutes at the most");
    }
}
