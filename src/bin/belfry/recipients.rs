//! `belfry recipients import|get|delete`: the recipient directory from the shell, through the
//! engine as the API changes it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use belfry::app::open_db;
use belfry::clock;
use belfry::config::Settings;
use belfry::domain::recipient::{
    EraseRecipient, ProfileUpdate, RecipientCommand, RecipientInput, UpsertRecipients, UPSERT_MAX,
};
use belfry::domain::{Command, UserId};
use belfry::recipients;
use clap::Subcommand;

use crate::send::{cli_metadata, start_engine};

/// The most refused lines an import lists before it says how many more there are.
const ERRORS_SHOWN: usize = 20;

#[derive(Subcommand)]
pub enum RecipientsCmd {
    /// Set contact points from an NDJSON file, one person per line, e.g.
    /// {"userId":"ann","email":"ann@example.com","timeZone":"Europe/Berlin"}. A field left
    /// out stays as it is; null clears it. Every line is checked first: one bad line and
    /// nothing is written. Then the lines are written in order, 1,000 per transaction.
    Import {
        /// The NDJSON file.
        file: PathBuf,
    },
    /// Print one person's contact points as JSON.
    Get {
        /// The person's user id.
        user: String,
    },
    /// Remove one person's contact points from the directory for good.
    Delete {
        /// The person's user id.
        user: String,
    },
}

pub async fn run(settings: Settings, command: RecipientsCmd) -> anyhow::Result<ExitCode> {
    match command {
        RecipientsCmd::Import { file } => import(&settings, &file).await,
        RecipientsCmd::Get { user } => get(&settings, &user).await,
        RecipientsCmd::Delete { user } => delete(&settings, &user).await,
    }
}

/// Every line of `file` parsed, or every refusal (line numbers from 1; blank lines skipped).
fn read_updates(file: &Path) -> anyhow::Result<Vec<ProfileUpdate>> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("Failed to open {}", file.display()))?,
    );
    let mut updates = Vec::new();
    let mut refused = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("Failed to read {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<RecipientInput>(&line)
            .map_err(|e| format!("line {}: not a recipient: {e}", i + 1))
            .and_then(|input| input.parse().map_err(|e| format!("line {}: {e}", i + 1)));
        match parsed {
            Ok(update) => updates.push(update),
            Err(message) => refused.push(message),
        }
    }
    if !refused.is_empty() {
        let mut report = refused
            .iter()
            .take(ERRORS_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ");
        if refused.len() > ERRORS_SHOWN {
            report.push_str(&format!("\n  and {} more", refused.len() - ERRORS_SHOWN));
        }
        anyhow::bail!(
            "{} refused {} of its lines; nothing was imported:\n  {report}",
            file.display(),
            refused.len()
        );
    }
    Ok(updates)
}

async fn import(settings: &Settings, file: &Path) -> anyhow::Result<ExitCode> {
    let updates = read_updates(file)?;
    let total = updates.len();
    let (engine, stop, appender) = start_engine(settings).await?;
    let written = async {
        let mut changed = 0;
        let mut updates = updates.into_iter().peekable();
        while updates.peek().is_some() {
            let batch: Vec<ProfileUpdate> = updates.by_ref().take(UPSERT_MAX).collect();
            let command = RecipientCommand::Upsert(UpsertRecipients {
                updates: batch,
                at: clock::now(),
            });
            let outcome = engine
                .execute(Command::Recipients(command), cli_metadata())
                .await?;
            changed += outcome.events.len();
        }
        anyhow::Ok(changed)
    }
    .await;
    stop.cancel();
    let _ = appender.await;
    let changed = written?;
    println!(
        "imported {total} recipients from {} ({changed} profiles changed)",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_user(raw: &str) -> anyhow::Result<UserId> {
    UserId::parse(raw).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn get(settings: &Settings, user: &str) -> anyhow::Result<ExitCode> {
    let user = parse_user(user)?;
    let db = open_db(settings).await?;
    let Some(recipient) = recipients::get(&db, &user).await? else {
        anyhow::bail!("the directory has no profile for {user}");
    };
    let p = recipient.profile;
    println!(
        "{}",
        serde_json::json!({
            "userId": recipient.user_id.as_str(),
            "displayName": p.display_name.map(String::from),
            "email": p.email.map(String::from),
            "phone": p.phone.map(String::from),
            "locale": p.locale.map(String::from),
            "timeZone": p.time_zone.map(String::from),
            "updatedAt": recipient.updated_at,
        })
    );
    Ok(ExitCode::SUCCESS)
}

async fn delete(settings: &Settings, user: &str) -> anyhow::Result<ExitCode> {
    let user = parse_user(user)?;
    let (engine, stop, appender) = start_engine(settings).await?;
    let command = RecipientCommand::Erase(EraseRecipient {
        user: user.clone(),
        at: clock::now(),
    });
    let outcome = engine
        .execute(Command::Recipients(command), cli_metadata())
        .await;
    stop.cancel();
    let _ = appender.await;
    if outcome?.events.is_empty() {
        println!("the directory had no profile for {user}");
    } else {
        println!("erased the contact points of {user}");
    }
    Ok(ExitCode::SUCCESS)
}
