//! The demo's credentials: a user token and a service key handed to anyone who opens `/`,
//! for a server nobody else can reach. The key lives in a file in the data directory, so a
//! restart reuses it instead of creating a new one each time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::auth::secret::write_private;
use crate::auth::{ApiKeys, Scope, TokenVerifier};
use crate::domain::UserId;

/// How long the demo user's token lasts.
pub const DEMO_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
const DEMO_KEY_FILE: &str = "demo-service-key";

/// Credentials of the demo page.
#[derive(Debug, Clone)]
pub struct DemoCredentials {
    pub user: UserId,
    /// A user token for `user`.
    pub token: String,
    /// A service key with the `send` and `admin` scopes.
    pub service_key: String,
}

/// Demo credentials shared by every request, when the demo is on.
pub type SharedDemo = Option<Arc<DemoCredentials>>;

impl DemoCredentials {
    /// Mints the demo user's token and reuses the service key kept in `data_dir`, creating
    /// (and keeping) a new one when there is none or it no longer verifies.
    pub async fn load_or_create(
        tokens: &TokenVerifier,
        keys: &ApiKeys,
        data_dir: &Path,
    ) -> anyhow::Result<DemoCredentials> {
        let user = UserId::parse("demo").map_err(|e| anyhow::anyhow!("{e}"))?;
        let token = tokens.mint(&user, DEMO_TOKEN_TTL)?;
        let path = data_dir.join(DEMO_KEY_FILE);
        if let Ok(existing) = std::fs::read_to_string(&path) {
            let existing = existing.trim();
            if keys.verify(existing).await.is_ok() {
                return Ok(DemoCredentials {
                    user,
                    token,
                    service_key: existing.to_owned(),
                });
            }
            // Revoked or from another database: replace it.
            std::fs::remove_file(&path)
                .with_context(|| format!("Failed to replace {}", path.display()))?;
        }
        let (service_key, _) = keys.create("demo", &[Scope::Send, Scope::Admin]).await?;
        write_private(&path, &service_key)?;
        Ok(DemoCredentials {
            user,
            token,
            service_key,
        })
    }
}
