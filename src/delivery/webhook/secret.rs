//! Signing secrets in Standard Webhooks' `whsec_` form, and the `webhook-signature` header
//! they make.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::Deserialize;
use sha2::Sha256;

use super::EndpointError;

const SECRET_PREFIX: &str = "whsec_";
/// The spec's range for a secret: "between 24 bytes (192 bits) and 64 bytes (512 bits)".
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Standard base64 with or without its `=` padding, as secrets are handed around both ways.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A `whsec_<base64>` signing secret, held as the HMAC keyed by it; never printed.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct WebhookSecret(Hmac<Sha256>);

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, EndpointError> {
        let encoded = raw
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(EndpointError::SecretPrefix)?;
        // A secret box, so the decoded key is wiped when this returns.
        let key: SecretSlice<u8> = SECRET_BASE64
            .decode(encoded)
            .map_err(|_| EndpointError::SecretBase64)?
            .into();
        let len = key.expose_secret().len();
        if !SECRET_BYTES.contains(&len) {
            return Err(EndpointError::SecretLength(len));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key.expose_secret())
            .map_err(|_| EndpointError::SecretLength(len))?;
        Ok(Self(mac))
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = EndpointError;

    fn try_from(raw: String) -> Result<Self, EndpointError> {
        Self::parse(&raw)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// The `webhook-signature` header's value: `v1,<signature>` for each secret, space-separated.
/// The signature is the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed by the secret.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| {
            let mut mac = secret.0.clone();
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect();
    signatures.join(" ")
}
