//! The recipient directory: each person's contact points in the `recipients` table, beside the
//! log rather than in it, so that they can be erased (decision 0033). It is not a projection:
//! its rows are not a function of the log, and replay leaves them alone. Every change to it is
//! made by the appender, in the transaction that appends the `recipient.*` event saying so, so
//! the directory and the log never disagree.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::Contact;
use crate::domain::event::Event;
use crate::domain::recipient::{
    Directory, DirectoryWrite, DisplayName, EmailAddress, Locale, PhoneNumber, Profile,
    RecipientCommand, TimeZoneName,
};
use crate::domain::UserId;
use crate::eventlog::{Db, WriteTx};
use crate::{on_reader, on_tx};

/// One person's entry in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Entry", into = "Entry")]
pub struct Recipient {
    pub user_id: UserId,
    pub profile: Profile,
    pub updated_at: DateTime<Utc>,
}

/// [`Recipient`] as JSON (an export line): every field beside the others, each value parsed
/// as input is, and no field it does not know.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    user_id: UserId,
    display_name: Option<DisplayName>,
    email: Option<EmailAddress>,
    phone: Option<PhoneNumber>,
    locale: Option<Locale>,
    time_zone: Option<TimeZoneName>,
    updated_at: DateTime<Utc>,
}

impl From<Entry> for Recipient {
    fn from(e: Entry) -> Self {
        Recipient {
            user_id: e.user_id,
            profile: Profile {
                display_name: e.display_name,
                email: e.email,
                phone: e.phone,
                locale: e.locale,
                time_zone: e.time_zone,
            },
            updated_at: e.updated_at,
        }
    }
}

impl From<Recipient> for Entry {
    fn from(r: Recipient) -> Self {
        let p = r.profile;
        Entry {
            user_id: r.user_id,
            display_name: p.display_name,
            email: p.email,
            phone: p.phone,
            locale: p.locale,
            time_zone: p.time_zone,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "user_id, display_name, email, phone, locale, time_zone, updated_at";

/// People looked up, or rows written, per statement.
const CHUNK: usize = 200;

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);

/// A stored row, parsed as input is: a row that would not parse is reported, not passed on.
fn parse_row(row: Row) -> anyhow::Result<Recipient> {
    let (user, display_name, email, phone, locale, time_zone, updated_at) = row;
    let stored = |e: crate::domain::InputError| anyhow::anyhow!("stored recipient {user:?}: {e}");
    Ok(Recipient {
        user_id: UserId::parse(&user).map_err(stored)?,
        profile: Profile {
            display_name: display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(stored)?,
            email: email
                .as_deref()
                .map(EmailAddress::parse)
                .transpose()
                .map_err(stored)?,
            phone: phone
                .as_deref()
                .map(PhoneNumber::parse)
                .transpose()
                .map_err(stored)?,
            locale: locale
                .as_deref()
                .map(Locale::parse)
                .transpose()
                .map_err(stored)?,
            time_zone: time_zone
                .as_deref()
                .map(TimeZoneName::parse)
                .transpose()
                .map_err(stored)?,
        },
        updated_at,
    })
}

/// The rows of `users` people, bound as `$1` to `$users`.
fn select_sql(users: usize) -> String {
    let list: Vec<String> = (1..=users).map(|i| format!("${i}")).collect();
    format!(
        "SELECT {COLUMNS} FROM recipients WHERE user_id IN ({})",
        list.join(", ")
    )
}

fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plans a directory command against the stored profiles of the people it names, makes its
/// writes in `tx` and returns its events, for the appender to append in the same transaction.
pub(crate) async fn decide_in(
    tx: &mut WriteTx,
    cmd: &RecipientCommand,
) -> anyhow::Result<Vec<Event>> {
    let directory = profiles_in(tx, &cmd.users()).await?;
    let plan = cmd.plan(&directory);
    let at = match cmd {
        RecipientCommand::Upsert(c) => c.at,
        RecipientCommand::Erase(c) => c.at,
    };
    write_in(tx, &plan.writes, at).await?;
    Ok(plan.events)
}

/// The stored profiles of `users` (those with none are absent), read inside `tx`.
async fn profiles_in(tx: &mut WriteTx, users: &[UserId]) -> anyhow::Result<Directory> {
    let mut directory = Directory::new();
    for chunk in users.chunks(CHUNK) {
        let sql = select_sql(chunk.len());
        let rows: Vec<Row> = on_tx!(tx, |c| {
            let mut query = sqlx::query_as(&sql);
            for user in chunk {
                query = query.bind(user.as_str());
            }
            query.fetch_all(&mut **c).await
        })
        .context("Failed to read recipient profiles")?;
        for row in rows {
            let recipient = parse_row(row)?;
            directory.insert(recipient.user_id, recipient.profile);
        }
    }
    Ok(directory)
}

/// Makes `writes` in `tx`, stamping what it stores with `at`.
async fn write_in(
    tx: &mut WriteTx,
    writes: &[DirectoryWrite],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    secure_delete(tx).await?;
    let mut puts = Vec::new();
    for write in writes {
        match write {
            DirectoryWrite::Put(user, profile) => puts.push(Recipient {
                user_id: user.clone(),
                profile: profile.clone(),
                updated_at: at,
            }),
            DirectoryWrite::Remove(user) => {
                on_tx!(tx, |c| sqlx::query(
                    "DELETE FROM recipients WHERE user_id = $1"
                )
                .bind(user.as_str())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
                .with_context(|| format!("Failed to erase recipient {user}"))?;
            }
        }
    }
    insert_in(tx, &puts, true).await
}

/// On SQLite, has this connection overwrite what it deletes or replaces with zeros, so an
/// erased address is gone from the database file, not only unreachable (the page would
/// otherwise keep it until reused). Postgres keeps a dead row version until vacuum.
async fn secure_delete(tx: &mut WriteTx) -> anyhow::Result<()> {
    if let WriteTx::Sqlite(c) = tx {
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut **c)
            .await
            .context("Failed to turn on SQLite's secure_delete")?;
    }
    Ok(())
}

/// Inserts `rows`; `replace`: an existing row of the same person is replaced, otherwise it is
/// an error (import into an empty directory).
async fn insert_in(tx: &mut WriteTx, rows: &[Recipient], replace: bool) -> anyhow::Result<()> {
    let on_conflict = if replace {
        " ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name, \
          email = excluded.email, phone = excluded.phone, locale = excluded.locale, \
          time_zone = excluded.time_zone, updated_at = excluded.updated_at"
    } else {
        ""
    };
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO recipients ({COLUMNS}) VALUES {}{on_conflict}",
            placeholders(chunk.len(), 7)
        );
        on_tx!(tx, |c| {
            let mut query = sqlx::query(&sql);
            for r in chunk {
                let p = &r.profile;
                query = query
                    .bind(r.user_id.as_str())
                    .bind(p.display_name.as_ref().map(DisplayName::as_str))
                    .bind(p.email.as_ref().map(EmailAddress::as_str))
                    .bind(p.phone.as_ref().map(PhoneNumber::as_str))
                    .bind(p.locale.as_ref().map(Locale::as_str))
                    .bind(p.time_zone.as_ref().map(TimeZoneName::as_str))
                    .bind(r.updated_at);
            }
            query.execute(&mut **c).await.map(|r| r.rows_affected())
        })
        .context("Failed to store recipient profiles")?;
    }
    Ok(())
}

/// Loads exported entries into the directory inside an import's transaction; a person
/// already in the directory is an error.
pub(crate) async fn import_in(tx: &mut WriteTx, rows: &[Recipient]) -> anyhow::Result<()> {
    if !rows.is_empty() {
        secure_delete(tx).await?;
    }
    insert_in(tx, rows, false).await
}

/// One person's entry, if the directory has one.
pub async fn get(db: &Db, user: &UserId) -> anyhow::Result<Option<Recipient>> {
    Ok(get_many(db, std::slice::from_ref(user)).await?.pop())
}

/// The entries of `users` that the directory has, in the order of `users` (each once).
pub async fn get_many(db: &Db, users: &[UserId]) -> anyhow::Result<Vec<Recipient>> {
    let mut found = std::collections::HashMap::new();
    for chunk in users.chunks(CHUNK) {
        let sql = select_sql(chunk.len());
        let rows: Vec<Row> = on_reader!(db, |p| {
            let mut query = sqlx::query_as(&sql);
            for user in chunk {
                query = query.bind(user.as_str());
            }
            query.fetch_all(p).await
        })
        .context("Failed to read recipient profiles")?;
        for row in rows {
            let recipient = parse_row(row)?;
            found.insert(recipient.user_id.clone(), recipient);
        }
    }
    Ok(users.iter().filter_map(|u| found.remove(u)).collect())
}

/// Where the delivery layer can reach `user`: their contact points, or `None` when the
/// directory has no entry for them.
pub async fn contact(db: &Db, user: &UserId) -> anyhow::Result<Option<Contact>> {
    Ok(get(db, user).await?.map(|r| {
        let p = r.profile;
        Contact {
            display_name: p.display_name.map(String::from),
            email: p.email.map(String::from),
            phone: p.phone.map(String::from),
            locale: p.locale.map(String::from),
            time_zone: p.time_zone.map(String::from),
        }
    }))
}

/// Up to `limit` entries after the person `after`, in user id order: a page of the whole
/// directory, for export.
pub async fn page_after(
    db: &Db,
    after: Option<&UserId>,
    limit: i64,
) -> anyhow::Result<Vec<Recipient>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recipients WHERE $1 IS NULL OR user_id > $1 ORDER BY user_id LIMIT $2"
    );
    let rows: Vec<Row> = on_reader!(db, |p| sqlx::query_as(&sql)
        .bind(after.map(UserId::as_str))
        .bind(limit)
        .fetch_all(p)
        .await)
    .context("Failed to read the recipient directory")?;
    rows.into_iter().map(parse_row).collect()
}
