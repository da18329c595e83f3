//! Where the user-token verifier comes from: a public key, a configured secret, or, on the
//! embedded default only, a secret generated once into the data directory.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;

use super::{random_hex, TokenVerifier};
use crate::config::Settings;

/// The file under `data_dir` that holds a generated secret.
pub const SECRET_FILE: &str = "jwt-secret";

/// How the verifier was configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    PublicKey,
    Configured,
    /// Generated (or read back) from `data_dir`: the embedded demo setup.
    Generated,
}

/// Builds the token verifier the settings call for. A shared Postgres database needs a
/// configured secret or key: every node must verify the same tokens.
pub fn token_verifier(settings: &Settings) -> anyhow::Result<(TokenVerifier, SecretSource)> {
    let leeway = Duration::from_secs(settings.jwt_leeway_secs);
    if let Some(path) = &settings.jwt_public_key {
        let pem = std::fs::read(path)
            .with_context(|| format!("Failed to read jwt_public_key {}", path.display()))?;
        return Ok((
            TokenVerifier::public_key_pem(&pem, leeway)?,
            SecretSource::PublicKey,
        ));
    }
    if let Some(secret) = &settings.jwt_secret {
        return Ok((
            TokenVerifier::hs256(secret.expose_secret().as_bytes(), leeway)?,
            SecretSource::Configured,
        ));
    }
    anyhow::ensure!(
        settings.is_embedded(),
        "set jwt_secret (BELFRY_JWT_SECRET, at least 32 bytes) or jwt_public_key: \
         every node sharing a Postgres database must verify the same tokens"
    );
    let secret = generated_secret(&settings.data_dir)?;
    Ok((
        TokenVerifier::hs256(secret.as_bytes(), leeway)?,
        SecretSource::Generated,
    ))
}

/// The secret that signs links in messages (one-click unsubscribe), the token secret's:
/// `None` when tokens are verified by a public key, which signs nothing here.
pub fn link_secret(settings: &Settings) -> anyhow::Result<Option<Vec<u8>>> {
    if settings.jwt_public_key.is_some() {
        return Ok(None);
    }
    if let Some(secret) = &settings.jwt_secret {
        return Ok(Some(secret.expose_secret().as_bytes().to_vec()));
    }
    if !settings.is_embedded() {
        return Ok(None);
    }
    Ok(Some(generated_secret(&settings.data_dir)?.into_bytes()))
}

/// Reads `data_dir/jwt-secret`, creating it (readable by the owner only) on first use.
fn generated_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(SECRET_FILE);
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("Failed to create {}", data_dir.display()))?;
    let secret = random_hex(32)?;
    write_private(&path, &secret)?;
    tracing::info!(path = %path.display(), "generated a token secret for the embedded setup");
    Ok(secret)
}

/// Writes a file only its owner can read.
pub(crate) fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("Failed to write {}", path.display()))
}
