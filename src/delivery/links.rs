//! Signed links in messages: the one-click unsubscribe URL of an email (RFC 8058), which turns
//! one category's email off for one person. The link names the person and the category and
//! carries an HMAC-SHA256 over both, so it cannot be forged or pointed at someone else; it
//! needs no state and no expiry (switching email off twice is harmless).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{Category, UserId};

/// Signs and checks unsubscribe links with a key derived from the server's secret.
#[derive(Clone)]
pub struct LinkSigner {
    key: Hmac<Sha256>,
    /// The server's public base URL, without a trailing `/`.
    public_url: String,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// What a valid unsubscribe link asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub user: UserId,
    pub category: Category,
}

const CONTEXT: &[u8] = b"belfry one-click unsubscribe links";

impl LinkSigner {
    /// A signer keyed by `secret` (the server's token secret), for links under `public_url`.
    pub fn new(secret: &[u8], public_url: &str) -> anyhow::Result<Self> {
        // The links' key is derived, so a link never doubles as a token signature.
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .map_err(|e| anyhow::anyhow!("cannot key the link signer: {e}"))?;
        derive.update(CONTEXT);
        let derived = derive.finalize().into_bytes();
        let key = <Hmac<Sha256> as Mac>::new_from_slice(&derived)
            .map_err(|e| anyhow::anyhow!("cannot key the link signer: {e}"))?;
        Ok(Self {
            key,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The one-click URL that switches `category` email off for `user`.
    pub fn unsubscribe_url(&self, user: &UserId, category: &Category) -> String {
        let payload = format!("{user}\n{category}");
        let signature = self.sign(payload.as_bytes());
        format!(
            "{}/unsubscribe/{}.{}",
            self.public_url,
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The request a link's token makes, if it was signed here.
    pub fn check(&self, token: &str) -> Option<Unsubscribe> {
        let (payload, signature) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.key.clone();
        mac.update(&payload);
        mac.verify_slice(&signature).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let (user, category) = payload.split_once('\n')?;
        Some(Unsubscribe {
            user: UserId::parse(user).ok()?,
            category: Category::parse(category).ok()?,
        })
    }

    fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.key.clone();
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> LinkSigner {
        LinkSigner::new(secret.as_bytes(), "https://notify.example.com/").expect("a signer")
    }

    #[test]
    fn a_link_names_its_person_and_category_and_cannot_be_forged() {
        let s = signer("a-secret-that-is-long-enough-0123456789");
        let ann = UserId::parse("ann").unwrap();
        let billing = Category::parse("billing").unwrap();
        let url = s.unsubscribe_url(&ann, &billing);
        let token = url
            .strip_prefix("https://notify.example.com/unsubscribe/")
            .expect("under the public URL");
        assert_eq!(
            s.check(token),
            Some(Unsubscribe {
                user: ann.clone(),
                category: billing.clone()
            })
        );
        // Another server's secret, a changed payload, or a mangled token: refused.
        assert_eq!(
            signer("another-secret-that-is-long-enough-012345").check(token),
            None
        );
        let (payload, signature) = token.split_once('.').unwrap();
        let bob = URL_SAFE_NO_PAD.encode("bob\nbilling");
        assert_eq!(s.check(&format!("{bob}.{signature}")), None);
        assert_eq!(s.check(payload), None);
        assert_eq!(s.check("not a token"), None);
    }
}
