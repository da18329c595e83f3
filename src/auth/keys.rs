//! Service API keys: `bfk_<id>_<secret>`, shown once at creation and stored as a SHA-256
//! hash. Keys carry scopes and can be revoked; a revoked key is refused at once on every node
//! (each request looks its key up: there is no cache to go stale).

use anyhow::Context;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{random_hex, AuthError, Scope, Service};
use crate::eventlog::Db;
use crate::on_reader;

/// Every key starts with this, so a credential is told apart from a JWT at a glance.
pub const KEY_PREFIX: &str = "bfk_";

/// A key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The `api_keys` table.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    db: Db,
}

fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_scopes(text: &str) -> anyhow::Result<Vec<Scope>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).map_err(anyhow::Error::msg))
        .collect()
}

type KeyRow = (
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

impl ApiKeys {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates a key; returns it in full (the only time it is ever available) and its info.
    pub async fn create(&self, name: &str, scopes: &[Scope]) -> anyhow::Result<(String, KeyInfo)> {
        let name = name.trim();
        anyhow::ensure!(
            !name.is_empty() && name.len() <= 100,
            "a key name must be 1 to 100 characters"
        );
        anyhow::ensure!(!scopes.is_empty(), "give a key at least one scope");
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let id = random_hex(6)?;
        let key = format!("{KEY_PREFIX}{id}_{}", random_hex(32)?);
        let created_at = crate::engine::now();
        let sql = "INSERT INTO api_keys (id, name, scopes, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
        macro_rules! insert {
            ($pool:expr) => {
                sqlx::query(sql)
                    .bind(&id)
                    .bind(name)
                    .bind(scopes_text(&scopes))
                    .bind(hash(&key))
                    .bind(created_at)
                    .execute($pool)
                    .await
                    .map(|_| ())
            };
        }
        match &self.db {
            Db::Sqlite { writer, .. } => insert!(writer),
            Db::Postgres(pool) => insert!(pool),
        }
        .context("Failed to store the new API key")?;
        let info = KeyInfo {
            id,
            name: name.to_owned(),
            scopes,
            created_at,
            revoked_at: None,
        };
        Ok((key, info))
    }

    /// Revokes a key by id; `false` when no such key is active.
    pub async fn revoke(&self, id: &str) -> anyhow::Result<bool> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        let now = crate::engine::now();
        let affected = match &self.db {
            Db::Sqlite { writer, .. } => sqlx::query(sql)
                .bind(now)
                .bind(id)
                .execute(writer)
                .await
                .map(|r| r.rows_affected()),
            Db::Postgres(pool) => sqlx::query(sql)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .with_context(|| format!("Failed to revoke API key {id}"))?;
        Ok(affected > 0)
    }

    /// Every key, oldest first, revoked ones included.
    pub async fn list(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let rows: Vec<KeyRow> = on_reader!(&self.db, |p| sqlx::query_as(
            "SELECT id, name, scopes, key_hash, created_at, revoked_at FROM api_keys ORDER BY created_at, id"
        )
        .fetch_all(p)
        .await)
        .context("Failed to list API keys")?;
        rows.into_iter().map(info).collect()
    }

    /// The service a presented key belongs to, if the key is known and not revoked.
    pub async fn verify(&self, presented: &str) -> Result<Service, AuthError> {
        let Some(id) = presented
            .strip_prefix(KEY_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
        else {
            return Err(AuthError::UnknownKey);
        };
        let row: Option<KeyRow> = on_reader!(&self.db, |p| {
            sqlx::query_as(
            "SELECT id, name, scopes, key_hash, created_at, revoked_at FROM api_keys WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await
        })
        .map_err(|e| {
            tracing::error!(error = %e, "API key lookup failed");
            AuthError::Unavailable
        })?;
        let Some(row) = row else {
            return Err(AuthError::UnknownKey);
        };
        // Both sides are hashes of the key, so comparing them leaks nothing about the key.
        if row.3 != hash(presented) || row.5.is_some() {
            return Err(AuthError::UnknownKey);
        }
        let info = info(row).map_err(|e| {
            tracing::error!(error = format!("{e:#}"), "stored API key is invalid");
            AuthError::Unavailable
        })?;
        Ok(Service {
            key_id: info.id,
            name: info.name,
            scopes: info.scopes,
        })
    }
}

fn info((id, name, scopes, _, created_at, revoked_at): KeyRow) -> anyhow::Result<KeyInfo> {
    Ok(KeyInfo {
        scopes: parse_scopes(&scopes).with_context(|| format!("API key {id} has bad scopes"))?,
        id,
        name,
        created_at,
        revoked_at,
    })
}
