//! Per-user changes derived from events: what a live subscriber is told, with the log
//! position that serves as its cursor and the exact change to the counts.

use std::collections::BTreeMap;

use crate::domain::event::{Event, Flags};
use crate::domain::{NotificationId, UserId};
use crate::eventlog::RecordedEvent;
use crate::projections::read::{Counts, InboxEntry};

/// The flags of one notification after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationState {
    pub id: NotificationId,
    pub category: String,
    pub flags: Flags,
}

/// What happened in a person's inbox.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// A new notification, in full.
    Added(Box<InboxEntry>),
    /// Notifications whose flags changed: one for a single mark, many for "mark all".
    Changed(Vec<NotificationState>),
    /// Notifications that left the inbox for good (expired).
    Removed(Vec<NotificationId>),
}

/// One event's effect on one person's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct UserChange {
    pub user: UserId,
    /// The event's log position: resuming after it continues with the next change.
    pub position: i64,
    pub kind: ChangeKind,
    /// (category, unread delta, unseen delta), exact because events carry flags before and after.
    pub delta: Vec<(String, i64, i64)>,
}

/// The inbox change an event makes, if any (suppressed sends and preferences make none).
pub fn derive(recorded: &RecordedEvent) -> anyhow::Result<Option<UserChange>> {
    let Some(event) = recorded.decode()? else {
        return Ok(None);
    };
    let position = recorded.position;
    let change = match &event {
        Event::NotificationSent(e) => UserChange {
            user: e.recipient.clone(),
            position,
            kind: ChangeKind::Added(Box::new(InboxEntry::sent(e, position))),
            delta: vec![(e.content.category.as_str().to_owned(), 1, 1)],
        },
        Event::NotificationSeen(e)
        | Event::NotificationRead(e)
        | Event::NotificationUnread(e)
        | Event::NotificationArchived(e)
        | Event::NotificationUnarchived(e) => {
            let (du, ds) = Flags::delta(e.before, e.after);
            UserChange {
                user: e.recipient.clone(),
                position,
                kind: ChangeKind::Changed(vec![NotificationState {
                    id: e.notification_id,
                    category: e.category.as_str().to_owned(),
                    flags: e.after,
                }]),
                delta: vec![(e.category.as_str().to_owned(), du, ds)],
            }
        }
        Event::InboxMarked(mark, e) => {
            let mut per_category: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            let states = e
                .items
                .iter()
                .map(|item| {
                    let after = mark.apply(item.before);
                    let (du, ds) = Flags::delta(item.before, after);
                    let d = per_category
                        .entry(item.category.as_str().to_owned())
                        .or_default();
                    d.0 += du;
                    d.1 += ds;
                    NotificationState {
                        id: item.notification_id,
                        category: item.category.as_str().to_owned(),
                        flags: after,
                    }
                })
                .collect();
            UserChange {
                user: e.recipient.clone(),
                position,
                kind: ChangeKind::Changed(states),
                delta: per_category
                    .into_iter()
                    .map(|(c, (u, s))| (c, u, s))
                    .collect(),
            }
        }
        Event::NotificationExpired(e) => {
            let (du, ds) = Flags::delta(e.before, Flags::GONE);
            UserChange {
                user: e.recipient.clone(),
                position,
                kind: ChangeKind::Removed(vec![e.notification_id]),
                delta: vec![(e.category.as_str().to_owned(), du, ds)],
            }
        }
        Event::NotificationSuppressed(_)
        | Event::PreferenceChanged(_)
        | Event::QuietHoursSet(_)
        | Event::DigestSet(_)
        | Event::DigestClosed(_)
        | Event::Schedule(_)
        | Event::Recipient(_)
        | Event::Delivery(_)
        | Event::Endpoint(_) => return Ok(None),
    };
    Ok(Some(change))
}

/// A subscriber's running counts: the snapshot's, plus every live delta after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveCounts {
    by_category: BTreeMap<String, (i64, i64)>,
}

impl LiveCounts {
    pub fn from_counts(counts: &Counts) -> Self {
        Self {
            by_category: counts
                .by_category
                .iter()
                .map(|(c, u, s)| (c.clone(), (*u, *s)))
                .collect(),
        }
    }

    /// Applies a change's delta; `true` when any count moved.
    pub fn apply(&mut self, change: &UserChange) -> bool {
        let mut moved = false;
        for (category, du, ds) in &change.delta {
            if *du == 0 && *ds == 0 {
                continue;
            }
            moved = true;
            let entry = self.by_category.entry(category.clone()).or_default();
            entry.0 += du;
            entry.1 += ds;
        }
        moved
    }

    pub fn counts(&self) -> Counts {
        let by_category: Vec<(String, i64, i64)> = self
            .by_category
            .iter()
            .filter(|(_, (u, s))| *u != 0 || *s != 0)
            .map(|(c, (u, s))| (c.clone(), *u, *s))
            .collect();
        Counts {
            unread: by_category.iter().map(|c| c.1).sum(),
            unseen: by_category.iter().map(|c| c.2).sum(),
            by_category,
        }
    }
}
