//! User tokens: JWTs whose `sub` is the user id, verified with an HS256 secret or an RS256 /
//! ES256 public key. Expiry is required and enforced.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use crate::domain::UserId;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
}

/// Verifies user tokens, and mints them when it holds a shared secret.
pub struct TokenVerifier {
    decoding: DecodingKey,
    validation: Validation,
    /// Present for HS256 only: with a public key, tokens are minted by whoever holds the
    /// private key (an identity provider), never here.
    encoding: Option<EncodingKey>,
}

impl TokenVerifier {
    /// HS256 with a shared secret (at least 32 bytes).
    pub fn hs256(secret: &[u8], leeway: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= 32,
            "jwt_secret must be at least 32 bytes long (got {})",
            secret.len()
        );
        Ok(Self {
            decoding: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256, leeway),
            encoding: Some(EncodingKey::from_secret(secret)),
        })
    }

    /// RS256 or ES256, from a PEM public key (the algorithm follows the key type).
    pub fn public_key_pem(pem: &[u8], leeway: Duration) -> anyhow::Result<Self> {
        let (decoding, algorithm) = match DecodingKey::from_rsa_pem(pem) {
            Ok(key) => (key, Algorithm::RS256),
            Err(_) => (
                DecodingKey::from_ec_pem(pem)
                    .context("jwt_public_key is neither an RSA nor an EC public key in PEM")?,
                Algorithm::ES256,
            ),
        };
        Ok(Self {
            decoding,
            validation: validation(algorithm, leeway),
            encoding: None,
        })
    }

    /// The user a valid, unexpired token names.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        self.verify_until(token).map(|(user, _)| user)
    }

    /// The user a valid, unexpired token names, and the moment it stops being accepted (its
    /// `exp` plus the leeway).
    pub fn verify_until(&self, token: &str) -> Result<(UserId, SystemTime), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => {
                    AuthError::Malformed("the token is signed with another algorithm".to_owned())
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    AuthError::Malformed(format!("the token has no {claim:?} claim"))
                }
                // The decoder's own words (base64 offsets, JSON internals) mean nothing to
                // the client: say what is wrong in its terms, and keep the detail for the log.
                _ => {
                    tracing::debug!(error = %e, "refused a token that could not be decoded");
                    AuthError::Malformed("it is not a JWT this server can read".to_owned())
                }
            })?;
        let user = UserId::parse(&data.claims.sub)
            .map_err(|e| AuthError::Malformed(format!("the token's sub is not a user id: {e}")))?;
        let exp = u64::try_from(data.claims.exp).unwrap_or(0);
        let until = UNIX_EPOCH + Duration::from_secs(exp.saturating_add(self.validation.leeway));
        Ok((user, until))
    }

    /// Mints a token for `user` that expires after `ttl`.
    pub fn mint(&self, user: &UserId, ttl: Duration) -> anyhow::Result<String> {
        let Some(encoding) = &self.encoding else {
            anyhow::bail!(
                "tokens are verified with a public key here; mint them with the matching private key"
            );
        };
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).context("the token lifetime is too long")?;
        let claims = Claims {
            sub: user.as_str().to_owned(),
            exp: now.saturating_add(ttl),
            iat: Some(now),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, encoding)
            .context("Failed to sign the token")
    }
}

fn validation(algorithm: Algorithm, leeway: Duration) -> Validation {
    let mut v = Validation::new(algorithm);
    v.leeway = leeway.as_secs();
    v.set_required_spec_claims(&["exp", "sub"]);
    v.validate_exp = true;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn user(s: &str) -> UserId {
        UserId::parse(s).expect("valid user id")
    }

    #[test]
    fn a_minted_token_verifies_as_its_user() {
        let v = TokenVerifier::hs256(SECRET, Duration::ZERO).unwrap();
        let token = v.mint(&user("ann"), Duration::from_secs(60)).unwrap();
        assert_eq!(v.verify(&token), Ok(user("ann")));
    }

    #[test]
    fn another_secret_is_a_bad_signature() {
        let a = TokenVerifier::hs256(SECRET, Duration::ZERO).unwrap();
        let b = TokenVerifier::hs256(b"ffffffffffffffffffffffffffffffff", Duration::ZERO).unwrap();
        let token = a.mint(&user("ann"), Duration::from_secs(60)).unwrap();
        assert_eq!(b.verify(&token), Err(AuthError::BadSignature));
    }

    #[test]
    fn an_expired_token_is_refused_beyond_the_leeway() {
        let v = TokenVerifier::hs256(SECRET, Duration::from_secs(30)).unwrap();
        let past = |secs: i64| {
            let claims = Claims {
                sub: "ann".into(),
                exp: chrono::Utc::now().timestamp() - secs,
                iat: None,
            };
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        assert_eq!(v.verify(&past(3_600)), Err(AuthError::Expired));
        assert_eq!(v.verify(&past(5)), Ok(user("ann")));
    }

    #[test]
    fn short_secrets_and_garbage_are_refused() {
        assert!(TokenVerifier::hs256(b"short", Duration::ZERO).is_err());
        let v = TokenVerifier::hs256(SECRET, Duration::ZERO).unwrap();
        assert!(matches!(
            v.verify("not.a.jwt"),
            Err(AuthError::Malformed(_))
        ));
        // The client is told what is wrong in its terms, never the decoder's internals.
        for garbage in ["not.a.jwt", "eyJhbGciOiJub25lIn0.e30.", "a.b.c.d", "x"] {
            let said = v.verify(garbage).unwrap_err().to_string();
            assert_eq!(
                said,
                "the token is malformed: it is not a JWT this server can read"
            );
        }
    }
}
