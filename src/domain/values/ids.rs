//! Who and which: the people notifications go to, the notifications themselves, and the keys
//! that make a send safe to retry.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{has_control, limits, InputError};

/// A person who receives notifications (the JWT `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), InputError> {
        const F: &str = "user id";
        if raw.is_empty() {
            return Err(InputError::new(F, "must not be empty"));
        }
        if raw.chars().count() > limits::USER_ID_MAX {
            return Err(InputError::new(
                F,
                format!("must be at most {} characters", limits::USER_ID_MAX),
            ));
        }
        if has_control(raw) || raw.chars().any(char::is_whitespace) {
            return Err(InputError::new(
                F,
                "must not contain whitespace or control characters",
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::check(&raw)?;
        Ok(Self(raw))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One delivered (or suppressed) notification: one per recipient of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotificationId(Uuid);

impl NotificationId {
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| InputError::new("notification id", "must be a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A caller-chosen key that makes a send safe to retry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), InputError> {
        const F: &str = "idempotency key";
        if raw.is_empty() || raw.len() > limits::IDEMPOTENCY_KEY_MAX {
            return Err(InputError::new(
                F,
                format!("must be 1 to {} bytes", limits::IDEMPOTENCY_KEY_MAX),
            ));
        }
        if has_control(raw) {
            return Err(InputError::new(F, "must not contain control characters"));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::check(&raw)?;
        Ok(Self(raw))
    }
}
