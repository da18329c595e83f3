//! Queries: the viewer's inbox, one notification, counts and preferences; for `admin` keys,
//! projection status and a notification's event history.

use async_graphql::{Context, InputObject, Object, Result, ID};
use chrono::{DateTime, Utc};

use super::types::{
    AuditEvent, ChannelDelivery, Counts, Cursor, DeliveryStatus, Notification,
    NotificationConnection, NotificationEdge, PageInfo, Preference, ProjectionStatus,
};
use super::{api, service, viewer, ApiError};
use crate::auth::Scope;
use crate::domain::event::{inbox_stream, notification_stream, Event};
use crate::domain::{Category, NotificationId};
use crate::eventlog::RecordedEvent;
use crate::projections::{self as status, read};

/// Which part of the inbox to list.
#[derive(InputObject, Default)]
pub struct NotificationFilter {
    /// Only notifications not yet read.
    #[graphql(default)]
    pub unread_only: bool,
    /// Only this category.
    pub category: Option<String>,
    /// The archive instead of the inbox.
    #[graphql(default)]
    pub archived: bool,
}

pub struct Query;

pub(super) fn parse_id(id: &ID) -> Result<NotificationId, ApiError> {
    NotificationId::parse(id).map_err(|e| ApiError::bad_input("id", e.to_string()))
}

// Merged into the root `Query` with the directory's (`QueryRoot`), which takes the name.
#[Object(name = "BaseQuery")]
impl Query {
    /// The signed-in person's user id.
    async fn viewer_id(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(viewer(ctx)?.as_str().to_owned())
    }

    /// The viewer's notifications, newest first. Page on with `after: pageInfo.endCursor`.
    #[graphql(complexity = "(first.max(1) as usize) * child_complexity + 1")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<Cursor>,
        filter: Option<NotificationFilter>,
    ) -> Result<NotificationConnection> {
        let user = viewer(ctx)?;
        let api = api(ctx);
        let max = api.max_page;
        let first = usize::try_from(first)
            .ok()
            .filter(|f| (1..=max).contains(f))
            .ok_or_else(|| ApiError::bad_input("first", format!("must be 1 to {max}")))?;
        let filter = filter.unwrap_or_default();
        let filter = read::InboxFilter {
            unread_only: filter.unread_only,
            category: filter
                .category
                .as_deref()
                .map(Category::parse)
                .transpose()
                .map_err(ApiError::from)?,
            archived: filter.archived,
        };
        let (mut rows, head) = read::inbox_with_head(
            api.engine.db(),
            user,
            &filter,
            after.map(|c| c.0),
            first as i64 + 1,
        )
        .await
        .map_err(ApiError::internal)?;
        let has_next_page = rows.len() > first;
        rows.truncate(first);
        let edges: Vec<NotificationEdge> = rows
            .into_iter()
            .map(|entry| NotificationEdge {
                cursor: Cursor(entry.sent_position),
                node: Notification(entry),
            })
            .collect();
        Ok(NotificationConnection {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: after.is_some(),
                start_cursor: edges.first().map(|e| e.cursor),
                end_cursor: edges.last().map(|e| e.cursor),
            },
            edges,
            live_cursor: Cursor(head),
        })
    }

    /// One of the viewer's notifications. Someone else's is NOT_FOUND, like a missing one.
    async fn notification(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        let user = viewer(ctx)?;
        let id = parse_id(&id)?;
        read::notification(api(ctx).engine.db(), user, id)
            .await
            .map_err(ApiError::internal)?
            .map(Notification)
            .ok_or_else(|| ApiError::NotFound(format!("notification {id} not found")).into())
    }

    /// The viewer's unread and unseen counts, in total and per category.
    async fn counts(&self, ctx: &Context<'_>) -> Result<Counts> {
        let user = viewer(ctx)?;
        Ok(read::counts(api(ctx).engine.db(), user)
            .await
            .map_err(ApiError::internal)?
            .into())
    }

    /// The viewer's explicit switches; every category and channel not listed is on.
    async fn preferences(&self, ctx: &Context<'_>) -> Result<Vec<Preference>> {
        let user = viewer(ctx)?;
        Ok(preferences(api(ctx), user).await?)
    }

    /// Every projection's version, position and lag (API keys with the `admin` scope).
    async fn projections(&self, ctx: &Context<'_>) -> Result<Vec<ProjectionStatus>> {
        service(ctx, Scope::Admin)?;
        let api = api(ctx);
        let head = api.engine.log().head().await.map_err(ApiError::internal)?;
        let states = status::check(api.engine.db())
            .await
            .map_err(ApiError::internal)?;
        Ok(states
            .into_iter()
            .map(|s| ProjectionStatus {
                name: s.projection.name().to_owned(),
                version: s.projection.version(),
                built_version: s.stored_version,
                position: s.position,
                lag: (head - s.position).max(0),
            })
            .collect())
    }

    /// Every delivery of one notification on an external channel: its status, due time,
    /// attempts and outcome (API keys with the `admin` scope).
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        notification_id: ID,
    ) -> Result<Vec<ChannelDelivery>> {
        service(ctx, Scope::Admin)?;
        let id = parse_id(&notification_id)?;
        let rows = crate::projections::deliveries::of_notification(api(ctx).engine.db(), id)
            .await
            .map_err(ApiError::internal)?;
        Ok(rows.into_iter().map(ChannelDelivery).collect())
    }

    /// Deliveries in one status whose last change was at or after `since` (default: an hour
    /// ago), most recent first: e.g. every failure of the last hour (API keys with the
    /// `admin` scope).
    async fn delivery_log(
        &self,
        ctx: &Context<'_>,
        status: DeliveryStatus,
        since: Option<DateTime<Utc>>,
        #[graphql(default = 100)] first: i32,
    ) -> Result<Vec<ChannelDelivery>> {
        service(ctx, Scope::Admin)?;
        let api = api(ctx);
        let first = usize::try_from(first).unwrap_or(0).clamp(1, api.max_page);
        let since = since.unwrap_or_else(|| api.clock.now() - chrono::Duration::hours(1));
        let rows = crate::projections::deliveries::in_status(
            api.engine.db(),
            status.as_str(),
            since,
            first,
        )
        .await
        .map_err(ApiError::internal)?;
        Ok(rows.into_iter().map(ChannelDelivery).collect())
    }

    /// Every event that touched one notification, oldest first: the audit trail (API keys
    /// with the `admin` scope). Includes "mark all" events of the recipient's inbox that
    /// changed it.
    async fn notification_history(&self, ctx: &Context<'_>, id: ID) -> Result<Vec<AuditEvent>> {
        service(ctx, Scope::Admin)?;
        let id = parse_id(&id)?;
        let log = api(ctx).engine.log();
        let mut events = log
            .read_stream(&notification_stream(id))
            .await
            .map_err(ApiError::internal)?;
        let first = match events.first().map(RecordedEvent::decode) {
            Some(decoded) => decoded.map_err(|e| ApiError::internal(e.into()))?,
            None => None,
        };
        let Some(user) = first.as_ref().and_then(Event::user) else {
            return Err(ApiError::NotFound(format!("notification {id} not found")).into());
        };
        let bulk = log
            .read_stream(&inbox_stream(user))
            .await
            .map_err(ApiError::internal)?;
        for recorded in bulk {
            let touched = match recorded
                .decode()
                .map_err(|e| ApiError::internal(e.into()))?
            {
                Some(Event::InboxMarked(_, e)) => e.items.iter().any(|i| i.notification_id == id),
                _ => false,
            };
            if touched {
                events.push(recorded);
            }
        }
        events.sort_by_key(|e| e.position);
        Ok(events.into_iter().map(AuditEvent::from).collect())
    }
}

pub(super) async fn preferences(
    api: &super::ApiContext,
    user: &crate::domain::UserId,
) -> Result<Vec<Preference>, ApiError> {
    let switches = read::preferences(api.engine.db(), user)
        .await
        .map_err(ApiError::internal)?;
    Ok(switches
        .into_iter()
        .map(|(category, channel, enabled)| Preference {
            category: category.as_str().to_owned(),
            channel: channel.into(),
            enabled,
        })
        .collect())
}
