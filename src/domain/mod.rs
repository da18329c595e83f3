//! The pure domain: commands, events and the decisions between them. No I/O, no async, no
//! clock or randomness: everything external arrives inside the command.
//!
//! Shape: `decide(&State, &Command) -> Result<Vec<Event>, DomainError>` and
//! `evolve(State, &Event) -> State`, one module per stream kind.

pub mod delivery;
pub mod digest;
pub mod endpoint;
pub mod event;
pub mod inbox;
pub mod notification;
pub mod preferences;
pub mod quiet;
pub mod recipient;
pub mod schedule;
pub mod send_input;
pub mod values;

#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod throttle_tests;

pub use event::{Content, Event, Flags};
pub use send_input::SendInput;
pub use values::{
    Body, Category, Channel, DeliveryId, IdempotencyKey, InputError, Link, NotificationId, Payload,
    Priority, Route, Routing, SkipReason, SuppressReason, Throttle, Throttles, Title, Unless,
    UserId,
};

/// A command the domain refuses. Nothing is appended for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("notification {0} not found")]
    NotificationNotFound(NotificationId),
    #[error("idempotency key {:?} was already used for a different request", .0.as_str())]
    IdempotencyConflict(IdempotencyKey),
    #[error("delivery {0} not found")]
    DeliveryNotFound(DeliveryId),
    #[error("delivery {0} has not failed for good: only such a delivery can be retried")]
    DeliveryNotFailed(DeliveryId),
    #[error("no scheduled send {}", match .0 {
        schedule::ScheduleTarget::Id(id) => id.to_string(),
        schedule::ScheduleTarget::Key(key) => format!("under the idempotency key {:?}", key.as_str()),
    })]
    ScheduleNotFound(schedule::ScheduleTarget),
    #[error("scheduled send {0} is published already: its notifications exist")]
    SchedulePublished(schedule::ScheduleId),
}

/// The one shape of every decision: a command, decided against the state it needs (read by the
/// engine from the projections, or folded from earlier events in tests), gives the events to
/// append, none when it changes nothing, or a refusal.
pub trait Decide {
    type State;

    fn decide(&self, state: &Self::State) -> Result<Vec<Event>, DomainError>;
}

/// Every command the engine accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Send(notification::SendNotification),
    Change(notification::ChangeNotification),
    MarkAll(inbox::MarkAll),
    SetPreferences(preferences::SetPreferences),
    SetQuietHours(quiet::SetQuietHours),
    /// A person's digest for one category on one channel, set or cleared.
    SetDigest(digest::SetDigest),
    /// The timekeeper closes a digest whose time has come.
    CloseDigest(digest::CloseDigest),
    /// A service's change to the recipient directory.
    Recipients(recipient::RecipientCommand),
    /// A delivery worker's step: an attempt begun, its outcome, or a skip.
    RecordDelivery(delivery::RecordDelivery),
    /// A webhook endpoint gone (410) or enabled again by an operator.
    ChangeEndpoint(endpoint::ChangeEndpoint),
    /// A send to make later.
    Schedule(schedule::ScheduleSend),
    /// An admin calls a scheduled send off.
    CancelScheduled(schedule::CancelScheduled),
    /// The timekeeper publishes a scheduled send whose time has come.
    PublishScheduled(schedule::PublishScheduled),
    /// The timekeeper takes an expired notification out of its inbox.
    Expire(notification::ExpireNotification),
}
