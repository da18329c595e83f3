//! Mutations: sends (API keys with the `send` scope) and the viewer's own changes. Each
//! returns after its events are committed, and its result is read back from the read model,
//! so it already reflects its own write.

use async_graphql::{Context, InputObject, Object, Result, ID};

use super::query::{parse_id, preferences};
use super::types::{
    Channel, ChannelDelivery, Counts, Cursor, Delivery, MarkAllResult, Notification, Preference,
    Priority, SendResult, Unless,
};
use super::{api, metadata, service, viewer, ApiError};
use crate::auth::Scope;
use crate::clock::{notification_id, ordered_id};
use crate::domain::delivery::{RecordDelivery, Step};
use crate::domain::event::Event;
use crate::domain::inbox::{Mark, MarkAll};
use crate::domain::notification::{Change, ChangeNotification, SendNotification};
use crate::domain::preferences::SetPreferences;
use crate::domain::schedule::{ScheduleId, ScheduleSend};
use crate::domain::send_input::{RouteInput as DomainRoute, ThrottleInput as DomainThrottle};
use crate::domain::DeliveryId;
use crate::domain::{Category, Command, SendInput, UserId};
use crate::projections::deliveries;
use crate::projections::read;
use chrono::{DateTime, Utc};

/// A notification to send to one or many people.
#[derive(InputObject)]
pub struct SendNotificationInput {
    /// User ids (the `sub` of their tokens); duplicates are sent once.
    pub recipients: Vec<String>,
    /// A lowercase slug such as `billing`; `general` when left out.
    pub category: Option<String>,
    pub priority: Option<Priority>,
    /// Deliver even to people who muted the category, and past its throttle.
    #[graphql(default)]
    pub critical: bool,
    pub title: String,
    pub body: Option<String>,
    /// Any JSON object, for the app to use (at most 16 KiB).
    pub data: Option<async_graphql::Json<serde_json::Value>>,
    /// Where clicking it leads: `https://...` or an app path `/...`.
    pub action_url: Option<String>,
    pub icon: Option<String>,
    /// External deliveries besides the in-app one, e.g. email at once and a webhook ten
    /// minutes later unless read (at most 8). Left out: the category's default routing from
    /// the server's configuration (none when it has none); `[]`: none.
    pub routes: Option<Vec<RouteInput>>,
    /// This send's own throttle for its recipients, instead of its category's configured one
    /// (`{ max: 3, perSeconds: 86400 }`, or `{ off: true }` for none). Critical sends are
    /// never throttled.
    pub throttle: Option<ThrottleInput>,
    /// Retrying with the same key returns the first send's result and sends nothing new;
    /// the same key with a different request is a CONFLICT.
    pub idempotency_key: Option<String>,
    /// Send it then rather than now (at most 365 days ahead): until that time nothing of it
    /// is in any inbox, counter or live subscription, and an admin may cancel it
    /// (`cancelScheduledSend`); the answer's `scheduled` names it and `deliveries` is empty.
    /// A time not in the future sends at once.
    pub send_at: Option<DateTime<Utc>>,
    /// When its notifications leave the inbox and the counters (`notification.expired`), and
    /// their deliveries still waiting are skipped as `expired`: a flash sale that means
    /// nothing tomorrow. At most one of this and `ttlSeconds`.
    pub expires_at: Option<DateTime<Utc>>,
    /// The same as a time after the send (after its `sendAt` for a scheduled one), 1 second to
    /// 365 days.
    pub ttl_seconds: Option<i64>,
}

/// One external delivery a send asks for.
#[derive(InputObject)]
pub struct RouteInput {
    /// `EMAIL` or `WEBHOOK` (in-app delivery always happens).
    pub channel: Channel,
    /// Seconds after the send before it falls due (at most 30 days); 0 is at once.
    #[graphql(default)]
    pub after_seconds: i64,
    /// Called off if the notification is read (or seen) in the app before it falls due.
    pub unless: Option<Unless>,
}

impl From<SendNotificationInput> for SendInput {
    fn from(input: SendNotificationInput) -> Self {
        SendInput {
            recipients: input.recipients,
            category: input.category,
            priority: input.priority.map(Into::into),
            critical: input.critical,
            title: input.title,
            body: input.body,
            data: input.data.map(|d| d.0),
            action_url: input.action_url,
            icon: input.icon,
            routes: input.routes.map(|routes| {
                routes
                    .into_iter()
                    .map(|r| DomainRoute {
                        channel: r.channel.into(),
                        delay_secs: r.after_seconds,
                        unless: r.unless.map(Into::into),
                    })
                    .collect()
            }),
            throttle: input.throttle.map(|t| DomainThrottle {
                max: t.max,
                per_seconds: t.per_seconds,
                off: t.off,
            }),
            idempotency_key: input.idempotency_key,
            expires_at: input.expires_at,
            ttl_seconds: input.ttl_seconds,
        }
    }
}

/// A send's own throttle: `max` and `perSeconds`, or only `off`.
#[derive(InputObject)]
pub struct ThrottleInput {
    /// At most this many notifications of the send's category reach each recipient per window
    /// (those throttled do not count).
    pub max: Option<i64>,
    /// The window, in seconds (1 to 30 days), ending at the send.
    pub per_seconds: Option<i64>,
    /// Not throttled at all, whatever the category's configured throttle.
    #[graphql(default)]
    pub off: bool,
}

/// One switch to set.
#[derive(InputObject)]
pub struct PreferenceInput {
    pub category: String,
    pub channel: Channel,
    pub enabled: bool,
}

/// The most switches one `updatePreferences` may set.
const PREFERENCE_CHANGES_MAX: usize = 200;

pub struct Mutation;

// Merged into the root `Mutation` with the directory's (`MutationRoot`), which takes the name.
#[Object(name = "BaseMutation")]
impl Mutation {
    /// Sends a notification to every recipient.
    async fn send_notification(
        &self,
        ctx: &Context<'_>,
        input: SendNotificationInput,
    ) -> Result<SendResult> {
        service(ctx, Scope::Send)?;
        let send_at = input.send_at;
        let command = SendNotification::parse_with_defaults(
            input.into(),
            &api(ctx).defaults,
            api(ctx).clock.now(),
            notification_id,
        )
        .map_err(ApiError::from)?;
        let scheduled = match send_at {
            Some(at) => ScheduleSend::new(ScheduleId::from_uuid(ordered_id()), at, command.clone())
                .map_err(ApiError::from)?,
            None => None,
        };
        if let Some(scheduled) = scheduled {
            let outcome = api(ctx)
                .engine
                .execute(Command::Schedule(scheduled), metadata(ctx))
                .await
                .map_err(ApiError::from)?;
            let id = outcome
                .scheduled
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a schedule without an id")))?;
            return Ok(SendResult {
                replayed: outcome.replayed,
                deliveries: Vec::new(),
                scheduled: Some(super::scheduled::load(ctx, id).await?),
            });
        }
        let outcome = api(ctx)
            .engine
            .execute(Command::Send(command), metadata(ctx))
            .await
            .map_err(ApiError::from)?;
        Ok(SendResult {
            replayed: outcome.replayed,
            deliveries: outcome
                .deliveries
                .into_iter()
                .map(|d| Delivery {
                    recipient: d.recipient.as_str().to_owned(),
                    notification_id: ID(d.notification_id.to_string()),
                    suppressed: d.suppressed,
                    throttled: d.throttled,
                    cursor: Cursor(d.position),
                })
                .collect(),
            scheduled: None,
        })
    }

    /// Marks one of the viewer's notifications seen.
    async fn mark_seen(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        change(ctx, id, Change::MarkSeen).await
    }

    /// Marks one of the viewer's notifications read (and seen).
    async fn mark_read(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        change(ctx, id, Change::MarkRead).await
    }

    /// Marks one of the viewer's notifications unread again.
    async fn mark_unread(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        change(ctx, id, Change::MarkUnread).await
    }

    /// Moves one of the viewer's notifications to the archive.
    async fn archive(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        change(ctx, id, Change::Archive).await
    }

    /// Brings one of the viewer's notifications back from the archive.
    async fn unarchive(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        change(ctx, id, Change::Unarchive).await
    }

    /// Marks every notification in the viewer's inbox read, optionally only one category and
    /// only those up to `upTo` (a notification's cursor), so one arriving meanwhile stays unread.
    async fn mark_all_read(
        &self,
        ctx: &Context<'_>,
        category: Option<String>,
        up_to: Option<Cursor>,
    ) -> Result<MarkAllResult> {
        mark_all(ctx, Mark::Read, category, up_to).await
    }

    /// Marks every notification seen (opening the inbox), with the same options as `markAllRead`.
    async fn mark_all_seen(
        &self,
        ctx: &Context<'_>,
        category: Option<String>,
        up_to: Option<Cursor>,
    ) -> Result<MarkAllResult> {
        mark_all(ctx, Mark::Seen, category, up_to).await
    }

    /// One more attempt of a delivery that failed for good, due at once (API keys with the
    /// `admin` scope). Any other delivery is a CONFLICT.
    async fn retry_delivery(&self, ctx: &Context<'_>, id: ID) -> Result<ChannelDelivery> {
        service(ctx, Scope::Admin)?;
        let id = DeliveryId::parse(&id).map_err(ApiError::from)?;
        let api = api(ctx);
        let db = api.engine.db();
        let row = deliveries::by_id(db, id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::NotFound(format!("delivery {id} not found")))?;
        let command = Command::RecordDelivery(RecordDelivery {
            delivery: row.reference().map_err(ApiError::internal)?,
            step: Step::Retry,
            at: api.clock.now(),
        });
        api.engine
            .execute(command, metadata(ctx))
            .await
            .map_err(ApiError::from)?;
        let row = deliveries::by_id(db, id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::NotFound(format!("delivery {id} not found")))?;
        Ok(ChannelDelivery(row))
    }

    /// Sets switches of the viewer's preferences; returns every explicit switch.
    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        changes: Vec<PreferenceInput>,
    ) -> Result<Vec<Preference>> {
        let user = viewer(ctx)?.clone();
        if changes.is_empty() || changes.len() > PREFERENCE_CHANGES_MAX {
            return Err(ApiError::bad_input(
                "changes",
                format!("give 1 to {PREFERENCE_CHANGES_MAX} changes"),
            )
            .into());
        }
        let changes = changes
            .into_iter()
            .map(|c| Ok((Category::parse(&c.category)?, c.channel.into(), c.enabled)))
            .collect::<Result<Vec<_>, crate::domain::InputError>>()
            .map_err(ApiError::from)?;
        let api = api(ctx);
        api.engine
            .execute(
                Command::SetPreferences(SetPreferences {
                    user: user.clone(),
                    changes,
                    at: api.clock.now(),
                }),
                metadata(ctx),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(preferences(api, &user).await?)
    }
}

async fn change(ctx: &Context<'_>, id: ID, change: Change) -> Result<Notification> {
    let user = viewer(ctx)?.clone();
    let id = parse_id(&id)?;
    let api = api(ctx);
    api.engine
        .execute(
            Command::Change(ChangeNotification {
                id,
                actor: user.clone(),
                change,
                at: api.clock.now(),
            }),
            metadata(ctx),
        )
        .await
        .map_err(ApiError::from)?;
    read::notification(api.engine.db(), &user, id)
        .await
        .map_err(ApiError::internal)?
        .map(Notification)
        .ok_or_else(|| ApiError::NotFound(format!("notification {id} not found")).into())
}

async fn mark_all(
    ctx: &Context<'_>,
    mark: Mark,
    category: Option<String>,
    up_to: Option<Cursor>,
) -> Result<MarkAllResult> {
    let user: UserId = viewer(ctx)?.clone();
    let category = category
        .as_deref()
        .map(Category::parse)
        .transpose()
        .map_err(ApiError::from)?;
    let api = api(ctx);
    let outcome = api
        .engine
        .execute(
            Command::MarkAll(MarkAll {
                user: user.clone(),
                mark,
                category,
                up_to_position: up_to.map(|c| c.0),
                at: api.clock.now(),
            }),
            metadata(ctx),
        )
        .await
        .map_err(ApiError::from)?;
    let mut changed = 0;
    for recorded in outcome.events.iter() {
        if let Ok(Some(Event::InboxMarked(_, e))) = recorded.decode() {
            changed += e.items.len() as i64;
        }
    }
    let counts: Counts = read::counts(api.engine.db(), &user)
        .await
        .map_err(ApiError::internal)?
        .into();
    Ok(MarkAllResult { changed, counts })
}
