//! Webhook endpoints as the log knows them: an endpoint that answers 410 Gone is disabled (a
//! fact in its own stream), gets no more deliveries, and is enabled again only by an operator.
//! The state is the endpoint's stream itself, folded by [`EndpointState::evolve`]: two facts
//! per outage at most, so no projection is kept for it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::{to_raw_value, RawValue};

use super::event::Event;
use super::values::{DeliveryId, InputError};
use super::{Decide, DomainError};

/// An endpoint's name, as the configuration gives it (`name = "ops-slack"`) or derives it
/// from the URL: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct EndpointName(String);

impl EndpointName {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), InputError> {
        let starts_well = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if raw.len() > Self::MAX || !starts_well || !raw.chars().all(valid) {
            return Err(InputError::new(
                "name",
                format!(
                    "a webhook endpoint's name must be 1 to {} characters of a-z, 0-9, '.', \
                     '_', '-', starting with a letter or digit",
                    Self::MAX
                ),
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EndpointName {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::check(&raw)?;
        Ok(Self(raw))
    }
}

impl fmt::Display for EndpointName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `webhook.disabled`: the endpoint answered a delivery with 410 Gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDisabled {
    pub endpoint: EndpointName,
    /// The delivery it answered so.
    pub delivery_id: DeliveryId,
    /// What it answered, as the delivery's error says it.
    pub error: String,
    pub at: DateTime<Utc>,
}

/// `webhook.enabled`: an operator turned a disabled endpoint back on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEnabled {
    pub endpoint: EndpointName,
    pub at: DateTime<Utc>,
}

/// The facts of one webhook endpoint's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    Disabled(WebhookDisabled),
    Enabled(WebhookEnabled),
}

impl EndpointEvent {
    pub const DISABLED: &'static str = "webhook.disabled";
    pub const ENABLED: &'static str = "webhook.enabled";

    pub fn type_name(&self) -> &'static str {
        match self {
            EndpointEvent::Disabled(_) => Self::DISABLED,
            EndpointEvent::Enabled(_) => Self::ENABLED,
        }
    }

    pub fn endpoint(&self) -> &EndpointName {
        match self {
            EndpointEvent::Disabled(e) => &e.endpoint,
            EndpointEvent::Enabled(e) => &e.endpoint,
        }
    }

    pub fn to_raw_value(&self) -> serde_json::Result<Box<RawValue>> {
        match self {
            EndpointEvent::Disabled(e) => to_raw_value(e),
            EndpointEvent::Enabled(e) => to_raw_value(e),
        }
    }
}

/// The stream of one webhook endpoint's facts.
pub fn endpoint_stream(name: &EndpointName) -> String {
    format!("webhook-{name}")
}

/// Whether an endpoint takes deliveries: enabled unless its last fact disabled it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointState {
    /// Set while the endpoint is disabled: the fact that disabled it.
    pub disabled: Option<WebhookDisabled>,
}

impl EndpointState {
    /// The state after `events`, the facts of the endpoint's stream in order.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events
            .into_iter()
            .fold(EndpointState::default(), |state, event| match event {
                Event::Endpoint(e) => state.evolve(e),
                _ => state,
            })
    }

    pub fn evolve(self, event: &EndpointEvent) -> Self {
        match event {
            EndpointEvent::Disabled(e) => EndpointState {
                disabled: Some(e.clone()),
            },
            EndpointEvent::Enabled(_) => EndpointState { disabled: None },
        }
    }
}

/// What happens to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChange {
    /// It answered `delivery_id` with 410 Gone.
    Gone {
        delivery_id: DeliveryId,
        error: String,
    },
    /// An operator turns it back on.
    Enable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEndpoint {
    pub endpoint: EndpointName,
    pub change: EndpointChange,
    pub at: DateTime<Utc>,
}

/// Disabling a disabled endpoint, or enabling an enabled one, records nothing: several
/// deliveries in flight when an endpoint goes away all come back 410, and one fact says it.
impl Decide for ChangeEndpoint {
    type State = EndpointState;

    fn decide(&self, state: &EndpointState) -> Result<Vec<Event>, DomainError> {
        let endpoint = self.endpoint.clone();
        let event = match (&self.change, &state.disabled) {
            (EndpointChange::Gone { .. }, Some(_)) | (EndpointChange::Enable, None) => {
                return Ok(Vec::new())
            }
            (EndpointChange::Gone { delivery_id, error }, None) => {
                EndpointEvent::Disabled(WebhookDisabled {
                    endpoint,
                    delivery_id: *delivery_id,
                    error: error.clone(),
                    at: self.at,
                })
            }
            (EndpointChange::Enable, Some(_)) => EndpointEvent::Enabled(WebhookEnabled {
                endpoint,
                at: self.at,
            }),
        };
        Ok(vec![Event::Endpoint(event)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> EndpointName {
        EndpointName::parse("ops-slack").expect("a name")
    }

    fn change(change: EndpointChange) -> ChangeEndpoint {
        ChangeEndpoint {
            endpoint: name(),
            change,
            at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn gone() -> ChangeEndpoint {
        change(EndpointChange::Gone {
            delivery_id: DeliveryId::from_uuid(uuid::Uuid::nil()),
            error: "410 Gone".to_owned(),
        })
    }

    fn given(events: &[Event]) -> EndpointState {
        EndpointState::of(events)
    }

    #[test]
    fn a_gone_endpoint_is_disabled_once_and_enabled_only_when_disabled() {
        let disabled = gone().decide(&EndpointState::default()).expect("decided");
        assert!(matches!(
            disabled.as_slice(),
            [Event::Endpoint(EndpointEvent::Disabled(e))] if e.endpoint == name()
        ));
        let state = given(&disabled);
        assert!(state.disabled.is_some());
        assert_eq!(gone().decide(&state), Ok(Vec::new()), "already disabled");
        let enabled = change(EndpointChange::Enable)
            .decide(&state)
            .expect("decided");
        assert_eq!(enabled.len(), 1);
        assert_eq!(
            given(&[disabled, enabled].concat()),
            EndpointState::default()
        );
        assert_eq!(
            change(EndpointChange::Enable).decide(&EndpointState::default()),
            Ok(Vec::new()),
            "enabled already"
        );
    }

    #[test]
    fn endpoint_names_are_short_lowercase_words() {
        for good in ["ops-slack", "n8n", "hooks.example.com-1a2b3c4d", "a_b"] {
            assert!(EndpointName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Ops", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(EndpointName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
