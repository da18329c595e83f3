//! What a notification says: its category, title, body, data and links.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{has_control, limits, InputError};

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
