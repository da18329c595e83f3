//! A person's contact points, parsed at the boundary: a value that exists is valid, in its
//! canonical form (an email's domain lowercased, a phone number without separators, a
//! locale's subtags in their conventional case).

use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::super::values::InputError;

/// Declares a string newtype that is only built by its `parse`, and reads from JSON the same way.
macro_rules! contact_value {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InputError;

            fn try_from(raw: String) -> Result<Self, InputError> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// The longest display name, in characters.
pub const DISPLAY_NAME_MAX: usize = 200;
/// The longest address SMTP carries (RFC 5321's path limit less its angle brackets), in bytes.
pub const EMAIL_MAX: usize = 254;
/// The longest locale tag accepted (RFC 5646 asks implementations to take at least 35).
pub const LOCALE_MAX: usize = 35;

contact_value!(
    /// How a person is addressed, e.g. in an email's `To:`; 1 to 200 characters, trimmed.
    DisplayName
);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        const F: &str = "displayName";
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > DISPLAY_NAME_MAX {
            return Err(InputError::new(
                F,
                format!("must be 1 to {DISPLAY_NAME_MAX} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(InputError::new(F, "must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }
}

contact_value!(
    /// An email address the email channel can send to (lettre parses it), at most 254 bytes,
    /// its domain lowercased.
    EmailAddress
);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        const F: &str = "email";
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > EMAIL_MAX {
            return Err(InputError::new(
                F,
                format!("must be 1 to {EMAIL_MAX} bytes"),
            ));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InputError::new(
                F,
                "must be a bare address such as ann@example.com, without spaces or a name",
            ));
        }
        let Some((local, domain)) = raw.rsplit_once('@') else {
            return Err(InputError::new(
                F,
                "must be an address such as ann@example.com",
            ));
        };
        // Domains are case-insensitive; the local part belongs to the receiving server.
        let domain = domain.to_lowercase();
        if domain.starts_with('[') || domain.parse::<std::net::IpAddr>().is_ok() {
            return Err(InputError::new(F, "must name a domain, not an IP address"));
        }
        if local.is_empty() || lettre::Address::new(local, &domain).is_err() {
            return Err(InputError::new(
                F,
                "is not a valid address (expected e.g. ann@example.com)",
            ));
        }
        Ok(Self(format!("{local}@{domain}")))
    }
}

contact_value!(
    /// A phone number in E.164: `+`, then 8 to 15 digits, the first not 0. Spaces and hyphens
    /// between digits are accepted on input and dropped.
    PhoneNumber
);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        const F: &str = "phone";
        let shape = "must be in E.164 form: + and 8 to 15 digits, e.g. +4915112345678";
        let Some(rest) = raw.trim().strip_prefix('+') else {
            return Err(InputError::new(F, shape));
        };
        let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let well_formed = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
            // Separators go between digits only.
            && rest.starts_with(|c: char| c.is_ascii_digit())
            && rest.ends_with(|c: char| c.is_ascii_digit())
            && !rest.contains("  ")
            && !rest.contains("--");
        if !well_formed {
            return Err(InputError::new(F, shape));
        }
        Ok(Self(format!("+{digits}")))
    }
}

contact_value!(
    /// A BCP 47 language tag of the shape `language[-Script][-REGION][-variant...]`, e.g. `de`,
    /// `de-DE`, `zh-Hant-TW`, `sl-rozaj`; each subtag in its conventional case.
    Locale
);

impl Locale {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        const F: &str = "locale";
        let refuse = || {
            InputError::new(
                F,
                "must be a BCP 47 language tag such as de, de-DE or zh-Hant-TW",
            )
        };
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > LOCALE_MAX {
            return Err(refuse());
        }
        let mut subtags = raw.split(['-', '_']);
        let language = subtags.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(refuse());
        }
        let mut tag = language.to_ascii_lowercase();
        // Script, region and variants may each appear once, in that order.
        let mut stage = 0;
        for subtag in subtags {
            let alpha = subtag.bytes().all(|b| b.is_ascii_alphabetic());
            let digits = subtag.bytes().all(|b| b.is_ascii_digit());
            let alnum = subtag.bytes().all(|b| b.is_ascii_alphanumeric());
            let variant = alnum
                && ((5..=8).contains(&subtag.len())
                    || (subtag.len() == 4 && subtag.as_bytes()[0].is_ascii_digit()));
            let canonical = if stage < 1 && subtag.len() == 4 && alpha {
                stage = 1;
                let mut script = subtag.to_ascii_lowercase();
                script[..1].make_ascii_uppercase();
                script
            } else if stage < 2 && ((subtag.len() == 2 && alpha) || (subtag.len() == 3 && digits)) {
                stage = 2;
                subtag.to_ascii_uppercase()
            } else if variant {
                stage = 3;
                subtag.to_ascii_lowercase()
            } else {
                return Err(refuse());
            };
            tag.push('-');
            tag.push_str(&canonical);
        }
        Ok(Self(tag))
    }
}

/// An IANA time zone name the zone database knows, e.g. `Europe/Berlin`,
/// `America/Argentina/Buenos_Aires`, `UTC`, or a link such as `Asia/Calcutta`: exactly the
/// names [`chrono_tz::Tz`] parses, in their case (`europe/berlin` is refused). The database is
/// the one compiled into chrono-tz (decision 0035). Kept as given, trimmed, with the zone it
/// names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName {
    name: String,
    tz: Tz,
}

impl TimeZoneName {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let name = raw.trim();
        let tz = name.parse::<Tz>().map_err(|_| {
            InputError::new(
                "timeZone",
                "must be an IANA time zone name such as Europe/Berlin or UTC",
            )
        })?;
        Ok(Self {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The zone, for reading local times (quiet hours) in it.
    pub fn tz(&self) -> Tz {
        self.tz
    }
}

impl TryFrom<String> for TimeZoneName {
    type Error = InputError;

    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::parse(&raw)
    }
}

impl From<TimeZoneName> for String {
    fn from(value: TimeZoneName) -> String {
        value.name
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
