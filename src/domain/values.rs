//! Value types parsed at the boundary ("parse, don't validate"): once a value exists, it is valid.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

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

/// A notification category, e.g. `comments` or `billing.invoices`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Category(String);

impl Category {
    pub const DEFAULT: &'static str = "general";

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), InputError> {
        const F: &str = "category";
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c);
        let starts_well = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if raw.is_empty() || raw.len() > limits::CATEGORY_MAX {
            return Err(InputError::new(
                F,
                format!("must be 1 to {} characters", limits::CATEGORY_MAX),
            ));
        }
        if !starts_well || !raw.chars().all(valid_char) {
            return Err(InputError::new(
                F,
                "must start with a lowercase letter or digit and use only a-z, 0-9, '_', '.', ':', '-'",
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::check(&raw)?;
        Ok(Self(raw))
    }
}

impl Default for Category {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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

/// A notification title: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let t = raw.trim();
        Self::check(t)?;
        Ok(Self(t.to_owned()))
    }

    fn check(t: &str) -> Result<(), InputError> {
        if t.is_empty() {
            return Err(InputError::new("title", "must not be empty"));
        }
        if t.chars().count() > limits::TITLE_MAX {
            return Err(InputError::new(
                "title",
                format!("must be at most {} characters", limits::TITLE_MAX),
            ));
        }
        if has_control(t) {
            return Err(InputError::new(
                "title",
                "must not contain control characters",
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Title {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        if raw.trim().len() != raw.len() {
            return Self::parse(&raw);
        }
        Self::check(&raw)?;
        Ok(Self(raw))
    }
}

/// A notification body: up to 5,000 characters (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Body(String);

impl Body {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), InputError> {
        if raw.chars().count() > limits::BODY_MAX {
            return Err(InputError::new(
                "body",
                format!("must be at most {} characters", limits::BODY_MAX),
            ));
        }
        // Line breaks and tabs are fine; NUL is not: Postgres text cannot hold it.
        if raw.contains('\0') {
            return Err(InputError::new("body", "must not contain NUL characters"));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Body {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::check(&raw)?;
        Ok(Self(raw))
    }
}

/// Application data attached to a notification: a JSON object of at most 16 KiB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub struct Payload(serde_json::Value);

impl Payload {
    pub fn parse(value: serde_json::Value) -> Result<Self, InputError> {
        if !value.is_object() {
            return Err(InputError::new("data", "must be a JSON object"));
        }
        if holds_nul(&value) {
            // Postgres `jsonb` refuses `\u0000` in a string or key.
            return Err(InputError::new(
                "data",
                "must not contain NUL characters in its strings or keys",
            ));
        }
        let size = json_len(&value);
        if size > limits::DATA_MAX_BYTES {
            return Err(InputError::new(
                "data",
                format!(
                    "is {size} bytes; must be at most {} bytes",
                    limits::DATA_MAX_BYTES
                ),
            ));
        }
        Ok(Self(value))
    }

    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }
}

impl TryFrom<serde_json::Value> for Payload {
    type Error = InputError;

    fn try_from(value: serde_json::Value) -> Result<Self, InputError> {
        Self::parse(value)
    }
}

/// The length of `value` as compact JSON, counted without writing it anywhere.
fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self(serde_json::Value::Object(Default::default()))
    }
}

/// A link a notification points to (action URL, icon): `http(s)://...` or an app path `/...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Link(String);

impl Link {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InputError> {
        Self::check(field, raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn check(field: &'static str, raw: &str) -> Result<(), InputError> {
        if raw.len() > limits::LINK_MAX {
            return Err(InputError::new(
                field,
                format!("must be at most {} bytes", limits::LINK_MAX),
            ));
        }
        let scheme_ok = raw.starts_with("https://")
            || raw.starts_with("http://")
            || (raw.starts_with('/') && !raw.starts_with("//"));
        if !scheme_ok || has_control(raw) || raw.chars().any(char::is_whitespace) {
            return Err(InputError::new(
                field,
                "must be an http(s) URL or a path starting with '/', without spaces",
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Link {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::check("link", &raw)?;
        Ok(Self(raw))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_from_json_is_parsed_like_one_from_input() {
        let read = |json: &str| serde_json::from_str::<UserId>(json);
        assert_eq!(
            read("\"ann\"").expect("valid"),
            UserId::parse("ann").expect("valid")
        );
        assert!(read("\"\"").is_err());
        assert!(read("\"two words\"").is_err());
        assert!(serde_json::from_str::<Category>("\"Billing\"").is_err());
        assert!(serde_json::from_str::<Title>("\"bell\\u0007\"").is_err());
        assert_eq!(
            serde_json::from_str::<Title>("\" padded \"")
                .expect("trimmed")
                .as_str(),
            "padded"
        );
        assert!(serde_json::from_str::<Body>("\"nul\\u0000\"").is_err());
        assert!(serde_json::from_str::<Link>("\"javascript:alert(1)\"").is_err());
        assert!(serde_json::from_str::<IdempotencyKey>("\"\"").is_err());
        assert!(serde_json::from_str::<Payload>("[1]").is_err());
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(limits::DATA_MAX_BYTES));
        assert!(serde_json::from_str::<Payload>(&big).is_err());
        // What is written reads back as the same value.
        let title = Title::parse("Deploy finished").expect("valid");
        let json = serde_json::to_string(&title).expect("serialize");
        assert_eq!(json, "\"Deploy finished\"");
        assert_eq!(serde_json::from_str::<Title>(&json).expect("read"), title);
    }

    #[test]
    fn categories_are_lowercase_slugs() {
        assert!(Category::parse("billing.invoices").is_ok());
        assert!(Category::parse("Billing").is_err());
        assert!(Category::parse("").is_err());
        assert!(Category::parse("-x").is_err());
        assert!(Category::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn user_ids_reject_blank_and_control_characters() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("a\u{0}").is_err());
        assert!(UserId::parse(&"u".repeat(129)).is_err());
    }

    #[test]
    fn payload_must_be_a_small_object() {
        assert!(Payload::parse(serde_json::json!({"a": 1})).is_ok());
        assert!(Payload::parse(serde_json::json!([1])).is_err());
        let big = "x".repeat(limits::DATA_MAX_BYTES);
        let err = Payload::parse(serde_json::json!({ "a": big })).unwrap_err();
        assert_eq!(err.field, "data");
    }

    #[test]
    fn bodies_and_data_may_not_hold_nul_characters() {
        assert!(Body::parse("two\nlines\tand a tab").is_ok());
        assert_eq!(Body::parse("a\0b").unwrap_err().field, "body");
        let nested = serde_json::json!({"a": [{"b": "x\u{0}y"}]});
        assert_eq!(Payload::parse(nested).unwrap_err().field, "data");
        let key = serde_json::json!({"k\u{0}": 1});
        assert_eq!(Payload::parse(key).unwrap_err().field, "data");
        assert!(Payload::parse(serde_json::json!({"a": ["\t", {"b": null}]})).is_ok());
    }

    #[test]
    fn links_are_http_urls_or_app_paths() {
        assert!(Link::parse("action url", "https://example.com/x").is_ok());
        assert!(Link::parse("action url", "/inbox/1").is_ok());
        assert!(Link::parse("action url", "javascript:alert(1)").is_err());
        assert!(Link::parse("action url", "//evil.example").is_err());
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(Title::parse("  hi ").unwrap().as_str(), "hi");
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"t".repeat(201)).is_err());
    }

    #[test]
    fn enums_parse_case_insensitively_and_list_choices() {
        assert_eq!(Priority::parse("URGENT").unwrap(), Priority::Urgent);
        assert_eq!(Channel::parse("in_app").unwrap(), Channel::InApp);
        let err = Channel::parse("pigeon").unwrap_err();
        assert!(err.message.contains("in_app, email, sms, push, webhook"));
    }
}
