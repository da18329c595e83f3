//! Service API keys: `bfk_<id>_<secret>`, shown once at creation and stored as a SHA-256
//! hash. Keys carry scopes and can be revoked. A server remembers a key it has verified for a
//! short while (`api_key_cache_secs`), so a revoked key is refused on every node within that
//! time; with no cache, each request looks its key up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The `api_keys` table, with an optional cache of verified keys.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    db: Db,
    cache: Option<Arc<KeyCache>>,
}

/// Keys verified in the last `ttl`, by the hash of the whole key. Only keys that passed are
/// held, so a wrong or unknown key always costs a lookup and can never be let in by the cache.
#[derive(Debug)]
struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Service, Instant)>>,
}

impl KeyCache {
    /// More entries than any deployment has keys; a bound all the same.
    const MAX_ENTRIES: usize = 4_096;

    fn get(&self, hashed: &str, now: Instant) -> Option<Service> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(hashed) {
            Some((service, verified)) if now.duration_since(*verified) < self.ttl => {
                Some(service.clone())
            }
            _ => None,
        }
    }

    fn put(&self, hashed: String, service: Service, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, verified)| now.duration_since(*verified) < ttl);
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hashed, (service, now));
    }
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
    /// Keys read from `db` on every verification: what the command line uses.
    pub fn new(db: Db) -> Self {
        Self { db, cache: None }
    }

    /// Keys that, once verified, are trusted for `ttl` without another lookup; a revocation
    /// takes effect on this server within `ttl`. A zero `ttl` caches nothing.
    pub fn cached(db: Db, ttl: Duration) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            Arc::new(KeyCache {
                ttl,
                entries: Mutex::new(HashMap::new()),
            })
        });
        Self { db, cache }
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
        let created_at = crate::clock::now();
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
        let now = crate::clock::now();
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

    /// The service a presented key belongs to, if the key is known and not revoked (or was
    /// so within the cache's time to live).
    pub async fn verify(&self, presented: &str) -> Result<Service, AuthError> {
        let hashed = hash(presented);
        if let Some(cache) = &self.cache {
            if let Some(service) = cache.get(&hashed, Instant::now()) {
                return Ok(service);
            }
        }
        let service = self.look_up(presented, &hashed).await?;
        if let Some(cache) = &self.cache {
            cache.put(hashed, service.clone(), Instant::now());
        }
        Ok(service)
    }

    async fn look_up(&self, presented: &str, hashed: &str) -> Result<Service, AuthError> {
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
        if row.3 != hashed || row.5.is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn service(id: &str) -> Service {
        Service {
            key_id: id.to_owned(),
            name: "svc".to_owned(),
            scopes: vec![Scope::Send],
        }
    }

    #[test]
    fn a_verified_key_is_trusted_until_its_time_to_live_ends() {
        let cache = cache(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(
            cache.get("h", t0),
            None,
            "nothing is trusted before it is verified"
        );
        cache.put("h".to_owned(), service("a"), t0);
        assert_eq!(
            cache.get("h", t0 + Duration::from_millis(4_999)),
            Some(service("a"))
        );
        assert_eq!(cache.get("h", t0 + Duration::from_secs(5)), None);
        assert_eq!(cache.get("other", t0), None);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_stays_bounded() {
        let cache = cache(Duration::from_secs(5));
        let t0 = Instant::now();
        for i in 0..KeyCache::MAX_ENTRIES {
            cache.put(format!("old{i}"), service("a"), t0);
        }
        let later = t0 + Duration::from_secs(6);
        cache.put("new".to_owned(), service("b"), later);
        assert_eq!(
            cache.entries.lock().unwrap().len(),
            1,
            "expired entries were dropped"
        );
        for i in 0..KeyCache::MAX_ENTRIES {
            cache.put(format!("fresh{i}"), service("c"), later);
        }
        assert!(cache.entries.lock().unwrap().len() <= KeyCache::MAX_ENTRIES);
        assert_eq!(cache.get("fresh4095", later), Some(service("c")));
    }
}
