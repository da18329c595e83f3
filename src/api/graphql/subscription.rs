//! Subscriptions: the viewer's inbox changes (resumable with `after`) and unread counts.
//! Both register with the live hub before reading their snapshot, so the hand-over from the
//! read model to live changes has no gap and no duplicate (see `crate::live`).

use std::collections::VecDeque;
use std::sync::Arc;

use async_graphql::{Context, Result, Subscription as GqlSubscription, ID};
use futures_util::stream::{self, Stream};

use super::types::{Counts, Cursor, InboxChange, Notification, NotificationState};
use super::{api, viewer, ApiError};
use crate::live::hub::FeedItem;
use crate::live::{ChangeKind, Feed, LiveCounts, UserChange};
use crate::projections::read::{self, InboxEntry};

pub struct Subscription;

/// The next live change after the snapshot head; an error when the subscriber was dropped
/// for falling behind; `None` when the hub goes away (shutdown).
async fn next_after(
    feed: &mut Feed,
    head: i64,
) -> Option<Result<Arc<UserChange>, async_graphql::Error>> {
    loop {
        match feed.next().await {
            FeedItem::Change(change) if change.position <= head => continue,
            FeedItem::Change(change) => return Some(Ok(change)),
            FeedItem::Overflowed => {
                return Some(Err(ApiError::RateLimited {
                    message: format!(
                        "this subscription fell more than {} changes behind and was closed; \
                         subscribe again with `after` set to the last cursor you received",
                        feed.capacity()
                    ),
                    reason: "SLOW_SUBSCRIBER",
                }
                .into()))
            }
            FeedItem::Closed => return None,
        }
    }
}

fn state(entry: &InboxEntry) -> NotificationState {
    NotificationState {
        id: ID(entry.notification_id.to_string()),
        category: entry.category.clone(),
        seen: entry.seen_at.is_some(),
        read: entry.read_at.is_some(),
        archived: entry.archived_at.is_some(),
    }
}

fn live_change(change: &UserChange, counts: Counts) -> InboxChange {
    let removed = match &change.kind {
        ChangeKind::Removed(ids) => ids.iter().map(|id| ID(id.to_string())).collect(),
        _ => Vec::new(),
    };
    let (added, changed) = match &change.kind {
        ChangeKind::Removed(_) => (Vec::new(), Vec::new()),
        ChangeKind::Added(entry) => (vec![Notification((**entry).clone())], Vec::new()),
        ChangeKind::Changed(states) => (
            Vec::new(),
            states
                .iter()
                .map(|s| NotificationState {
                    id: ID(s.id.to_string()),
                    category: s.category.clone(),
                    seen: s.flags.seen,
                    read: s.flags.read,
                    archived: s.flags.archived,
                })
                .collect(),
        ),
    };
    InboxChange {
        cursor: Cursor(change.position),
        added,
        changed,
        removed,
        counts,
    }
}

/// Groups the snapshot's changed rows by the position of their last change: one change per
/// cursor, so resuming after any cursor received continues exactly where it stopped.
fn catch_up(rows: Vec<InboxEntry>, after: i64, counts: &Counts) -> VecDeque<InboxChange> {
    let mut out: VecDeque<InboxChange> = VecDeque::new();
    for row in rows {
        let position = row.last_position;
        if out.back().map(|c| c.cursor.0) != Some(position) {
            out.push_back(InboxChange {
                cursor: Cursor(position),
                added: Vec::new(),
                changed: Vec::new(),
                removed: Vec::new(),
                counts: counts.clone(),
            });
        }
        if let Some(change) = out.back_mut() {
            if row.expired_at.is_some() {
                // Gone: told only to a subscriber that may have it (sent before the cursor).
                if row.sent_position <= after {
                    change.removed.push(ID(row.notification_id.to_string()));
                }
            } else if row.sent_position > after {
                change.added.push(Notification(row));
            } else {
                change.changed.push(state(&row));
            }
        }
    }
    out
}

struct InboxState {
    feed: Feed,
    pending: VecDeque<InboxChange>,
    counts: LiveCounts,
    head: i64,
    done: bool,
}

struct CountsState {
    feed: Feed,
    first: Option<Counts>,
    counts: LiveCounts,
    head: i64,
    done: bool,
}

#[GqlSubscription]
impl Subscription {
    /// Every change to the viewer's inbox, live. With `after` (the last cursor received, or a
    /// connection's `liveCursor`), first every change since then, in order, then live.
    async fn inbox(
        &self,
        ctx: &Context<'_>,
        after: Option<Cursor>,
    ) -> Result<impl Stream<Item = Result<InboxChange>>> {
        let user = viewer(ctx)?.clone();
        let api = api(ctx);
        let feed = api.hub.subscribe(&user);
        // Boxed: the read's future is large, and an unboxed one would stay inlined in the
        // subscription's state (one per idle subscriber) long after it finished.
        let snapshot = Box::pin(read::live_snapshot(
            api.engine.db(),
            &user,
            after.map(|c| c.0),
        ))
        .await
        .map_err(ApiError::internal)?;
        if let Some(after) = after {
            if after.0 > snapshot.head {
                return Err(ApiError::bad_input("after", "this cursor is ahead of the log").into());
            }
        }
        let counts: Counts = snapshot.counts.clone().into();
        let pending = match after {
            Some(after) => catch_up(snapshot.changed, after.0, &counts),
            None => VecDeque::new(),
        };
        let state = InboxState {
            feed,
            pending,
            counts: LiveCounts::from_counts(&snapshot.counts),
            head: snapshot.head,
            done: false,
        };
        Ok(stream::unfold(state, |mut s| async move {
            if let Some(change) = s.pending.pop_front() {
                return Some((Ok(change), s));
            }
            if s.done {
                return None;
            }
            match next_after(&mut s.feed, s.head).await? {
                Ok(change) => {
                    s.counts.apply(&change);
                    let out = live_change(&change, s.counts.counts().into());
                    Some((Ok(out), s))
                }
                Err(error) => {
                    s.done = true;
                    Some((Err(error), s))
                }
            }
        }))
    }

    /// The viewer's counts: the current value at once, then again after every change.
    async fn unread_count(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Result<Counts>>> {
        let user = viewer(ctx)?.clone();
        let api = api(ctx);
        let feed = api.hub.subscribe(&user);
        let snapshot = Box::pin(read::live_snapshot(api.engine.db(), &user, None))
            .await
            .map_err(ApiError::internal)?;
        let state = CountsState {
            feed,
            first: Some(snapshot.counts.clone().into()),
            counts: LiveCounts::from_counts(&snapshot.counts),
            head: snapshot.head,
            done: false,
        };
        Ok(stream::unfold(state, |mut s| async move {
            if let Some(first) = s.first.take() {
                return Some((Ok(first), s));
            }
            if s.done {
                return None;
            }
            loop {
                match next_after(&mut s.feed, s.head).await? {
                    Ok(change) if s.counts.apply(&change) => {
                        return Some((Ok(s.counts.counts().into()), s));
                    }
                    Ok(_) => continue,
                    Err(error) => {
                        s.done = true;
                        return Some((Err(error), s));
                    }
                }
            }
        }))
    }
}
