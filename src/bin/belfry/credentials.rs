//! `belfry token` and `belfry keys`: user tokens and service API keys.

use std::io::Write;
use std::process::ExitCode;

use belfry::app::open_db;
use belfry::auth::secret::token_verifier;
use belfry::auth::{ApiKeys, Scope};
use belfry::config::Settings;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Create a key; prints it once (only its hash is stored).
    Create {
        /// What the key is for, e.g. the service's name.
        #[arg(long)]
        name: String,
        /// send or admin (repeatable) [default: send]
        #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
    /// Revoke a key by its id (the part after `bfk_`, before the next `_`).
    Revoke { id: String },
    /// List keys (never the keys themselves).
    List,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s)
}

pub fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.len().saturating_sub(1);
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 24h or 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?} is not a duration like 30m, 24h or 7d")),
    };
    if secs == 0 {
        return Err("a token must be valid for some time".to_owned());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Mints a token for `user`, valid for `ttl`.
pub fn token(
    settings: &Settings,
    user: &str,
    ttl: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let user = belfry::domain::UserId::parse(user).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (tokens, _) = token_verifier(settings)?;
    println!("{}", tokens.mint(&user, ttl)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn keys(settings: Settings, command: KeysCmd) -> anyhow::Result<ExitCode> {
    let db = open_db(&settings).await?;
    let keys = ApiKeys::new(db.clone());
    let code = match command {
        KeysCmd::Create { name, scopes } => {
            let scopes = if scopes.is_empty() {
                vec![Scope::Send]
            } else {
                scopes
            };
            let (key, info) = keys.create(&name, &scopes).await?;
            eprintln!(
                "created key {} ({}) with scopes {}; it is shown only now:",
                info.id,
                info.name,
                scope_list(&info.scopes)
            );
            println!("{key}");
            ExitCode::SUCCESS
        }
        KeysCmd::Revoke { id } => {
            if keys.revoke(&id).await? {
                println!("revoked key {id}");
                eprintln!(
                    "running servers refuse it within their api_key_cache_secs ({} s with this configuration)",
                    settings.api_key_cache_secs
                );
                ExitCode::SUCCESS
            } else {
                eprintln!("error: no active key with id {id:?}");
                ExitCode::from(2)
            }
        }
        KeysCmd::List => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<14} {:<12} {:<12} {:<33} revoked",
                "id", "name", "scopes", "created"
            )?;
            for k in keys.list().await? {
                writeln!(
                    out,
                    "{:<14} {:<12} {:<12} {:<33} {}",
                    k.id,
                    k.name,
                    scope_list(&k.scopes),
                    k.created_at.to_rfc3339(),
                    k.revoked_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".to_owned())
                )?;
            }
            ExitCode::SUCCESS
        }
    };
    db.close().await;
    Ok(code)
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
