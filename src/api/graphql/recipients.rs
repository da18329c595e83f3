//! The recipient directory: services (API keys with the `send` or `admin` scope) set people's
//! contact points and read them back; `admin` keys read a profile's audit trail, which says
//! when and which fields changed, never what they held.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::AuditEvent;
use super::{api, metadata, principal, service, ApiError};
use crate::auth::{Principal, Scope};
use crate::domain::recipient::{
    self as domain, EraseRecipient, Patch, RecipientCommand, UpsertRecipients, UPSERT_MAX,
};
use crate::domain::{Command, UserId};
use crate::recipients;

/// One person's contact points to set. A field left out stays as it is; a field given as
/// `null` is cleared.
#[derive(InputObject)]
pub struct RecipientInput {
    /// The person's user id (the `sub` of their tokens).
    pub user_id: String,
    /// How the person is addressed, 1 to 200 characters.
    pub display_name: MaybeUndefined<String>,
    /// An email address such as `ann@example.com` (at most 254 bytes; the domain is lowercased).
    pub email: MaybeUndefined<String>,
    /// A phone number in E.164 form, e.g. `+4915112345678` (spaces and hyphens are dropped).
    pub phone: MaybeUndefined<String>,
    /// A BCP 47 language tag, e.g. `de`, `de-DE`, `zh-Hant-TW`.
    pub locale: MaybeUndefined<String>,
    /// An IANA time zone name, e.g. `Europe/Berlin`.
    pub time_zone: MaybeUndefined<String>,
}

fn patch(value: MaybeUndefined<String>) -> Patch<String> {
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(v) => Patch::Set(v),
    }
}

impl From<RecipientInput> for domain::RecipientInput {
    fn from(input: RecipientInput) -> Self {
        domain::RecipientInput {
            user_id: input.user_id,
            display_name: patch(input.display_name),
            email: patch(input.email),
            phone: patch(input.phone),
            locale: patch(input.locale),
            time_zone: patch(input.time_zone),
        }
    }
}

/// A person's contact points as the directory holds them.
#[derive(SimpleObject)]
pub struct Recipient {
    pub user_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// When the profile last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<recipients::Recipient> for Recipient {
    fn from(r: recipients::Recipient) -> Self {
        let p = r.profile;
        Recipient {
            user_id: r.user_id.as_str().to_owned(),
            display_name: p.display_name.map(String::from),
            email: p.email.map(String::from),
            phone: p.phone.map(String::from),
            locale: p.locale.map(String::from),
            time_zone: p.time_zone.map(String::from),
            updated_at: r.updated_at,
        }
    }
}

/// The caller must be a service whose key has the `send` or the `admin` scope.
fn directory_service(ctx: &Context<'_>) -> Result<(), ApiError> {
    match principal(ctx) {
        Principal::Service(s) if s.has(Scope::Send) || s.has(Scope::Admin) => Ok(()),
        Principal::Service(_) => Err(ApiError::Forbidden(
            "this API key needs the `send` or the `admin` scope".to_owned(),
        )),
        _ => service(ctx, Scope::Send).map(|_| ()),
    }
}

fn parse_user(field: &str, raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|e| ApiError::bad_input(field, format!("{field}: {}", e.message)))
}

#[derive(Default)]
pub struct RecipientQuery;

#[Object]
impl RecipientQuery {
    /// One person's contact points; null when the directory has none (API keys with the
    /// `send` or `admin` scope).
    async fn recipient(&self, ctx: &Context<'_>, user_id: String) -> Result<Option<Recipient>> {
        directory_service(ctx)?;
        let user = parse_user("userId", &user_id)?;
        Ok(recipients::get(api(ctx).engine.db(), &user)
            .await
            .map_err(ApiError::internal)?
            .map(Into::into))
    }

    /// Every event of one person's profile, oldest first: which fields changed when, and
    /// erasures, without the values (API keys with the `admin` scope).
    async fn recipient_history(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> Result<Vec<AuditEvent>> {
        service(ctx, Scope::Admin)?;
        let user = parse_user("userId", &user_id)?;
        let events = api(ctx)
            .engine
            .log()
            .read_stream(&domain::recipient_stream(&user))
            .await
            .map_err(ApiError::internal)?;
        Ok(events.into_iter().map(AuditEvent::from).collect())
    }
}

#[derive(Default)]
pub struct RecipientMutation;

#[Object]
impl RecipientMutation {
    /// Sets the contact points of up to 1,000 people at once, all or none: one invalid entry
    /// refuses the whole call, and `extensions.field` names it (e.g. `recipients[3].email`).
    /// Entries apply in order. Returns the named people's profiles as stored afterwards (a
    /// person given only nulls who had no profile still has none). API keys with the `send`
    /// or `admin` scope.
    async fn upsert_recipients(
        &self,
        ctx: &Context<'_>,
        recipients: Vec<RecipientInput>,
    ) -> Result<Vec<Recipient>> {
        directory_service(ctx)?;
        if recipients.is_empty() || recipients.len() > UPSERT_MAX {
            return Err(ApiError::bad_input(
                "recipients",
                format!("give 1 to {UPSERT_MAX} recipients"),
            )
            .into());
        }
        let updates = recipients
            .into_iter()
            .enumerate()
            .map(|(i, input)| {
                domain::RecipientInput::from(input).parse().map_err(|e| {
                    let field = format!("recipients[{i}].{}", e.field);
                    ApiError::BadInput {
                        message: format!("{field}: {}", e.message),
                        field: Some(field),
                    }
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let mut seen = std::collections::HashSet::new();
        let users: Vec<UserId> = updates
            .iter()
            .filter(|u| seen.insert(&u.user))
            .map(|u| u.user.clone())
            .collect();
        let api = api(ctx);
        api.engine
            .execute(
                Command::Recipients(RecipientCommand::Upsert(UpsertRecipients {
                    updates,
                    at: api.clock.now(),
                })),
                metadata(ctx),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(recipients::get_many(api.engine.db(), &users)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Removes a person's contact points from the directory for good; the log records only
    /// that they were erased. False when the directory had none. API keys with the `send` or
    /// `admin` scope.
    async fn delete_recipient(&self, ctx: &Context<'_>, user_id: String) -> Result<bool> {
        directory_service(ctx)?;
        let user = parse_user("userId", &user_id)?;
        let outcome = api(ctx)
            .engine
            .execute(
                Command::Recipients(RecipientCommand::Erase(EraseRecipient {
                    user,
                    at: api(ctx).clock.now(),
                })),
                metadata(ctx),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(!outcome.events.is_empty())
    }
}
