//! Throttles: at most so many notifications of one category to one person per window.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{limits, Category, InputError};

named_enum!(
    /// Why a notification was recorded but not shown: the person muted its category in the
    /// app, or it was over its category's throttle for them.
    SuppressReason, "reason" { Muted => "muted", Throttled => "throttled" }
);

/// At most `max` notifications of a category reach one person in any `per_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Throttle {
    pub max: u32,
    pub per_seconds: u32,
}

impl Throttle {
    /// A throttle of `max` (at least 1) per `per_seconds` (1 second to 30 days).
    pub fn new(max: i64, per_seconds: i64) -> Result<Self, InputError> {
        let max = within(max, limits::THROTTLE_MAX, || {
            format!(
                "max is a number of notifications from 1 to {}",
                limits::THROTTLE_MAX
            )
        })?;
        let per_seconds = within(per_seconds, limits::THROTTLE_WINDOW_MAX_SECS, || {
            format!(
                "the window is from 1 to {} seconds (30 days)",
                limits::THROTTLE_WINDOW_MAX_SECS
            )
        })?;
        Ok(Self { max, per_seconds })
    }

    pub fn window(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.per_seconds))
    }
}

/// `value` if it is from 1 to `most`, else a refusal saying `why`.
fn within(value: i64, most: u32, why: impl FnOnce() -> String) -> Result<u32, InputError> {
    u32::try_from(value)
        .ok()
        .filter(|v| (1..=most).contains(v))
        .ok_or_else(|| InputError::new("throttle", why()))
}

impl fmt::Display for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.max, self.per_seconds)
    }
}

/// Each category's throttle for sends that name none: the server's `[throttle]` table.
/// Categories without one are not throttled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttles(BTreeMap<Category, Throttle>);

impl Throttles {
    pub fn new(table: impl IntoIterator<Item = (Category, Throttle)>) -> Self {
        Self(table.into_iter().collect())
    }

    /// The throttle of `category` when a send names none.
    pub fn for_category(&self, category: &Category) -> Option<Throttle> {
        self.0.get(category).copied()
    }
}
