//! Identity: who is asking. People present a JWT whose `sub` is their user id; services
//! present an API key with scopes. [`Authenticator`] turns a presented credential into a
//! [`Principal`]; what each principal may do is decided by the API.

pub mod jwt;
pub mod keys;
pub mod secret;

use std::fmt;

pub use jwt::TokenVerifier;
pub use keys::{ApiKeys, KeyInfo};

use crate::domain::UserId;

/// What a service key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Send notifications.
    Send,
    /// Operator queries: projection status, a notification's event history.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, String> {
        match s.trim() {
            "send" => Ok(Scope::Send),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?}: expected \"send\" or \"admin\""
            )),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service authenticated by its API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Service {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential was presented.
    Anonymous,
    /// A person, by the `sub` of their token.
    User(UserId),
    /// A backend service, by its API key.
    Service(Service),
}

impl Principal {
    /// How the event log's metadata names this principal.
    pub fn actor(&self) -> Option<String> {
        match self {
            Principal::Anonymous => None,
            Principal::User(user) => Some(format!("user:{user}")),
            Principal::Service(s) => Some(format!("service:{}", s.key_id)),
        }
    }
}

/// Why a presented credential was refused. The message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the token has expired")]
    Expired,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("unknown or revoked API key")]
    UnknownKey,
    /// Looking the key up failed; the cause was logged.
    #[error("credentials could not be checked right now")]
    Unavailable,
}

/// Checks presented credentials: JWTs for people, API keys (prefix `bfk_`) for services.
#[derive(Clone)]
pub struct Authenticator {
    tokens: std::sync::Arc<TokenVerifier>,
    keys: ApiKeys,
}

impl Authenticator {
    pub fn new(tokens: TokenVerifier, keys: ApiKeys) -> Self {
        Self {
            tokens: std::sync::Arc::new(tokens),
            keys,
        }
    }

    /// Authenticates a credential as it appears in an `Authorization` header (`Bearer x`) or a
    /// WebSocket `connection_init` payload (with or without the `Bearer ` prefix).
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        self.authenticate_until(presented).await.map(|(p, _)| p)
    }

    /// As [`Self::authenticate`], with the moment a token stops being accepted (API keys do
    /// not expire), so a long-lived connection can end when its credential does.
    pub async fn authenticate_until(
        &self,
        presented: &str,
    ) -> Result<(Principal, Option<std::time::SystemTime>), AuthError> {
        let credential = strip_bearer(presented);
        if credential.is_empty() {
            return Err(AuthError::Malformed("empty credential".to_owned()));
        }
        if credential.starts_with(keys::KEY_PREFIX) {
            let service = self.keys.verify(credential).await?;
            return Ok((Principal::Service(service), None));
        }
        let (user, until) = self.tokens.verify_until(credential)?;
        Ok((Principal::User(user), Some(until)))
    }
}

fn strip_bearer(presented: &str) -> &str {
    let trimmed = presented.trim();
    match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => trimmed[7..].trim(),
        _ => trimmed,
    }
}

/// `n` random bytes from the operating system, hex-encoded.
pub(crate) fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("Failed to read random bytes from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefixes_are_optional_and_case_insensitive() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bearer  abc "), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bear"), "Bear");
    }

    #[test]
    fn scopes_parse_by_name_only() {
        assert_eq!(Scope::parse("send"), Ok(Scope::Send));
        assert_eq!(Scope::parse(" admin"), Ok(Scope::Admin));
        assert!(Scope::parse("root").is_err());
    }
}
