//! Value types parsed at the boundary ("parse, don't validate"): once a value exists, it is valid.

use std::fmt;

use serde::{Deserialize, Serialize};

mod content;
mod ids;
#[cfg(test)]
mod tests;

pub use content::{Body, Category, Link, Payload, Title};
pub use ids::{IdempotencyKey, NotificationId, UserId};
pub use route::{derived_uuid, DeliveryId, Route, Routing, SkipReason, Unless};
pub use throttle::{SuppressReason, Throttle, Throttles};

/// Why an input could not be parsed; names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InputError {
    pub field: &'static str,
    pub message: String,
}

impl InputError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Upper bounds on what a notification may carry.
pub mod limits {
    pub const USER_ID_MAX: usize = 128;
    pub const CATEGORY_MAX: usize = 64;
    pub const TITLE_MAX: usize = 200;
    pub const BODY_MAX: usize = 5_000;
    pub const DATA_MAX_BYTES: usize = 16 * 1024;
    pub const LINK_MAX: usize = 2_048;
    pub const IDEMPOTENCY_KEY_MAX: usize = 255;
    pub const RECIPIENTS_MAX: usize = 100_000;
    pub const ROUTES_MAX: usize = 8;
    pub const ROUTE_DELAY_MAX_SECS: u32 = 30 * 24 * 3600;
    pub const THROTTLE_MAX: u32 = 1_000_000;
    pub const THROTTLE_WINDOW_MAX_SECS: u32 = 30 * 24 * 3600;
}

pub(super) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Declares a closed set of names that parse from and print as snake_case strings.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, InputError> {
                match raw.to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(InputError::new($field, format!(
                        "must be one of: {}", [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// How loudly a notification asks for attention.
    Priority, "priority" { Low => "low", Normal => "normal", High => "high", Urgent => "urgent" }
);

named_enum!(
    /// Where a notification can be delivered; preferences switch each per category.
    Channel, "channel" { InApp => "in_app", Email => "email", Sms => "sms", Push => "push", Webhook => "webhook" }
);

// The enum is declared by a macro, so `#[derive(Default)]` cannot mark the variant.
#[allow(clippy::derivable_impls)]
impl Default for Priority {
    fn default() -> Self {
        Priority::Normal
    }
}

// After `named_enum!`, which they use.
mod route;
mod throttle;
