//! Routes: which external channels a send goes out on, and when.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{limits, Channel, InputError, NotificationId};

named_enum!(
    /// A condition that calls a delayed delivery off: the notification was read (or seen)
    /// in the app before the delivery fell due.
    Unless, "unless" { Read => "read", Seen => "seen" }
);

named_enum!(
    /// Why a planned (or asked-for) delivery was not made.
    SkipReason, "reason" {
        Muted => "muted",
        Read => "read",
        Seen => "seen",
        NoAddress => "no_address",
        Expired => "expired",
        Throttled => "throttled",
    }
);

/// One external delivery a send asks for: a channel, a delay, and what calls it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    pub channel: Channel,
    /// Seconds after the send; 0 is at once.
    pub delay_secs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<Unless>,
}

impl Route {
    /// A route for `channel`, after `delay_secs`, unless `unless`. In-app delivery is not a
    /// route (it always happens), and only the channels this build delivers to are accepted.
    pub fn new(
        channel: Channel,
        delay_secs: u32,
        unless: Option<Unless>,
    ) -> Result<Self, InputError> {
        match channel {
            Channel::Email | Channel::Webhook => {}
            Channel::InApp => {
                return Err(InputError::new(
                    "routes",
                    "in-app delivery always happens: routes name the external channels (email, webhook)",
                ))
            }
            Channel::Sms | Channel::Push => {
                return Err(InputError::new(
                    "routes",
                    format!("the {channel} channel is not available yet: routes take email and webhook"),
                ))
            }
        }
        if delay_secs > limits::ROUTE_DELAY_MAX_SECS {
            return Err(InputError::new(
                "routes",
                format!(
                    "a delay is at most {} seconds (30 days)",
                    limits::ROUTE_DELAY_MAX_SECS
                ),
            ));
        }
        if unless.is_some() && delay_secs == 0 {
            return Err(InputError::new(
                "routes",
                "`unless` needs a delay: a delivery at once cannot wait to see whether it was read",
            ));
        }
        Ok(Self {
            channel,
            delay_secs,
            unless,
        })
    }

    /// The routes of one send: at most [`limits::ROUTES_MAX`], none twice.
    pub fn list(routes: Vec<Route>) -> Result<Vec<Route>, InputError> {
        if routes.len() > limits::ROUTES_MAX {
            return Err(InputError::new(
                "routes",
                format!("at most {} routes per send", limits::ROUTES_MAX),
            ));
        }
        for (i, route) in routes.iter().enumerate() {
            if routes[..i].contains(route) {
                return Err(InputError::new(
                    "routes",
                    format!("the route {route} is given twice"),
                ));
            }
        }
        Ok(routes)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {}s", self.channel, self.delay_secs)?;
        if let Some(unless) = self.unless {
            write!(f, " unless {unless}")?;
        }
        Ok(())
    }
}

/// The routes each category gets when a send names none: the server's default routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing(std::collections::BTreeMap<super::Category, Vec<Route>>);

impl Routing {
    /// A table of `(category, routes)`; each category's routes are checked as a send's are.
    pub fn new(
        table: impl IntoIterator<Item = (super::Category, Vec<Route>)>,
    ) -> Result<Self, InputError> {
        let mut routing = std::collections::BTreeMap::new();
        for (category, routes) in table {
            routing.insert(category, Route::list(routes)?);
        }
        Ok(Self(routing))
    }

    /// The routes of `category` when a send names none (none when it has no default).
    pub fn for_category(&self, category: &super::Category) -> &[Route] {
        self.0.get(category).map_or(&[], Vec::as_slice)
    }
}

/// A UUID derived from `parts` (their SHA-256, shaped as a random UUID): the same parts name
/// the same id on every node and in every replay.
pub fn derived_uuid(parts: &[&[u8]]) -> Uuid {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// One external delivery of one notification: the same id on every attempt, which makes it
/// the idempotency key receivers drop duplicates by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(Uuid);

impl DeliveryId {
    /// The id of route number `index` of `notification`: derived, not drawn, so deciding the
    /// same send again names the same deliveries.
    pub fn of(notification: NotificationId, index: usize) -> Self {
        Self(derived_uuid(&[
            b"belfry delivery\0",
            notification.as_uuid().as_bytes(),
            &(index as u64).to_be_bytes(),
        ]))
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| InputError::new("delivery id", "must be a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
