//! Scheduled sends, for operators (API keys with the `admin` scope): list them and cancel one
//! before its time, by its id or by the idempotency key it was sent with.

use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{api, metadata, service, ApiError};
use crate::auth::Scope;
use crate::domain::event::Event;
use crate::domain::schedule::{
    schedule_stream, CancelScheduled, ScheduleEvent, ScheduleId, ScheduleStatus, ScheduleTarget,
};
use crate::domain::{Command, IdempotencyKey};
use crate::projections::scheduled_sends::{self, ScheduledRow};

/// The most scheduled sends one page lists.
const PAGE_MAX: i32 = 500;

/// Where a scheduled send stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledSendStatus {
    /// Waiting for its time.
    Pending,
    /// Its time came: its notifications were created then.
    Published,
    /// Called off before its time.
    Cancelled,
}

impl From<ScheduledSendStatus> for ScheduleStatus {
    fn from(s: ScheduledSendStatus) -> Self {
        match s {
            ScheduledSendStatus::Pending => ScheduleStatus::Pending,
            ScheduledSendStatus::Published => ScheduleStatus::Published,
            ScheduledSendStatus::Cancelled => ScheduleStatus::Cancelled,
        }
    }
}

fn status_of(stored: &str) -> ScheduledSendStatus {
    match ScheduleStatus::parse(stored) {
        Some(ScheduleStatus::Published) => ScheduledSendStatus::Published,
        Some(ScheduleStatus::Cancelled) => ScheduledSendStatus::Cancelled,
        _ => ScheduledSendStatus::Pending,
    }
}

/// One recipient of a scheduled send and the id their notification has (from its time).
#[derive(SimpleObject)]
pub struct ScheduledRecipient {
    pub recipient: String,
    pub notification_id: ID,
}

/// A send made later: nothing of it is in any inbox, counter or live subscription until
/// `sendAt`, when its notifications are created (with the ids in `recipients`) and its
/// deliveries planned from then.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ScheduledSend {
    pub id: ID,
    pub send_at: DateTime<Utc>,
    pub status: ScheduledSendStatus,
    pub category: String,
    pub title: String,
    /// How many people it goes to.
    pub recipient_count: i32,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it was last scheduled, published or cancelled.
    pub updated_at: DateTime<Utc>,
}

impl From<ScheduledRow> for ScheduledSend {
    fn from(r: ScheduledRow) -> Self {
        ScheduledSend {
            id: ID(r.schedule_id.to_string()),
            send_at: r.send_at,
            status: status_of(&r.status),
            category: r.category,
            title: r.title,
            recipient_count: r.recipients,
            idempotency_key: r.idempotency_key,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[ComplexObject]
impl ScheduledSend {
    /// Each recipient and the id their notification has, from the `send.scheduled` fact.
    async fn recipients(&self, ctx: &Context<'_>) -> Result<Vec<ScheduledRecipient>> {
        let id = parse_schedule_id(&self.id)?;
        let events = api(ctx)
            .engine
            .log()
            .read_stream_first(&schedule_stream(id))
            .await
            .map_err(ApiError::internal)?;
        let scheduled = match events.map(|e| e.decode()).transpose() {
            Ok(Some(Some(Event::Schedule(ScheduleEvent::Scheduled(e))))) => e,
            Ok(_) => return Ok(Vec::new()),
            Err(e) => return Err(ApiError::internal(anyhow::Error::from(e)).into()),
        };
        Ok(scheduled
            .recipients
            .into_iter()
            .map(|r| ScheduledRecipient {
                recipient: r.recipient.as_str().to_owned(),
                notification_id: ID(r.notification_id.to_string()),
            })
            .collect())
    }
}

fn parse_schedule_id(id: &ID) -> Result<ScheduleId, ApiError> {
    ScheduleId::parse(id).map_err(|e| ApiError::bad_input("id", e.message))
}

/// The scheduled send `id` as the table has it now.
pub(super) async fn load(ctx: &Context<'_>, id: ScheduleId) -> Result<ScheduledSend, ApiError> {
    scheduled_sends::by_id(api(ctx).engine.db(), id)
        .await
        .map_err(ApiError::internal)?
        .map(ScheduledSend::from)
        .ok_or_else(|| ApiError::NotFound(format!("no scheduled send {id}")))
}

#[derive(Default)]
pub struct ScheduledQuery;

#[Object]
impl ScheduledQuery {
    /// Scheduled sends, soonest first: those in `status` (every one without it), up to
    /// `first` (at most 500), after the one whose id is `after` (API keys with the `admin`
    /// scope).
    async fn scheduled_sends(
        &self,
        ctx: &Context<'_>,
        status: Option<ScheduledSendStatus>,
        #[graphql(default = 100)] first: i32,
        after: Option<ID>,
    ) -> Result<Vec<ScheduledSend>> {
        service(ctx, Scope::Admin)?;
        if !(1..=PAGE_MAX).contains(&first) {
            return Err(ApiError::bad_input("first", format!("give 1 to {PAGE_MAX}")).into());
        }
        let db = api(ctx).engine.db();
        let after = match after {
            Some(id) => {
                let id = parse_schedule_id(&id)?;
                let row = scheduled_sends::by_id(db, id)
                    .await
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| {
                        ApiError::bad_input("after", format!("no scheduled send {id}"))
                    })?;
                Some((row.send_at, id))
            }
            None => None,
        };
        let rows = scheduled_sends::list(db, status.map(Into::into), after, i64::from(first))
            .await
            .map_err(ApiError::internal)?;
        Ok(rows.into_iter().map(ScheduledSend::from).collect())
    }

    /// One scheduled send (API keys with the `admin` scope).
    async fn scheduled_send(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ScheduledSend>> {
        service(ctx, Scope::Admin)?;
        let id = parse_schedule_id(&id)?;
        Ok(scheduled_sends::by_id(api(ctx).engine.db(), id)
            .await
            .map_err(ApiError::internal)?
            .map(ScheduledSend::from))
    }
}

#[derive(Default)]
pub struct ScheduledMutation;

#[Object]
impl ScheduledMutation {
    /// Calls a pending scheduled send off, named by its `id` or by the `idempotencyKey` it was
    /// sent with (one of them), API keys with the `admin` scope. Cancelling one cancelled
    /// already changes nothing; one published already is a CONFLICT.
    async fn cancel_scheduled_send(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        idempotency_key: Option<String>,
    ) -> Result<ScheduledSend> {
        service(ctx, Scope::Admin)?;
        let target = match (id, idempotency_key) {
            (Some(id), None) => ScheduleTarget::Id(parse_schedule_id(&id)?),
            (None, Some(key)) => {
                ScheduleTarget::Key(IdempotencyKey::parse(&key).map_err(ApiError::from)?)
            }
            _ => {
                return Err(ApiError::bad_input(
                    "id",
                    "name the scheduled send by its id or by its idempotency key, one of them",
                )
                .into())
            }
        };
        let api = api(ctx);
        api.engine
            .execute(
                Command::CancelScheduled(CancelScheduled {
                    target: target.clone(),
                    at: api.clock.now(),
                }),
                metadata(ctx),
            )
            .await
            .map_err(ApiError::from)?;
        let row = match target {
            ScheduleTarget::Id(id) => scheduled_sends::by_id(api.engine.db(), id).await,
            ScheduleTarget::Key(key) => scheduled_sends::by_key(api.engine.db(), &key).await,
        };
        row.map_err(ApiError::internal)?
            .map(ScheduledSend::from)
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("the cancelled send is not in the table")).into()
            })
    }
}
