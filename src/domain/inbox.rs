//! The `inbox-{user}` stream: bulk facts about one person's inbox (all read, all seen).

use chrono::{DateTime, Utc};

pub use super::event::Mark;
use super::event::{BulkItem, Event, Flags, InboxMarked};
use super::values::{Category, NotificationId, UserId};
use super::{Decide, DomainError};

/// Mark everything in a person's inbox read (or seen), optionally only one category and only
/// notifications sent at or before a position, so that one arriving meanwhile stays unread.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkAll {
    pub user: UserId,
    pub mark: Mark,
    pub category: Option<Category>,
    pub up_to_position: Option<i64>,
    pub at: DateTime<Utc>,
}

/// One notification in a person's inbox, as bulk commands see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub notification_id: NotificationId,
    pub category: Category,
    /// Log position of the notification's `sent` event.
    pub sent_position: i64,
    pub flags: Flags,
}

/// Decides a bulk mark over the person's inbox items (the caller may pre-filter them; the
/// filter is applied here again). Archived items are left alone. Nothing to change, no event.
impl Decide for MarkAll {
    type State = Vec<InboxItem>;

    fn decide(&self, items: &Vec<InboxItem>) -> Result<Vec<Event>, DomainError> {
        let cmd = self;
        let selected: Vec<BulkItem> = items
            .iter()
            .filter(|i| !i.flags.archived)
            .filter(|i| cmd.category.as_ref().is_none_or(|c| *c == i.category))
            .filter(|i| cmd.up_to_position.is_none_or(|p| i.sent_position <= p))
            .filter(|i| match cmd.mark {
                Mark::Read => !i.flags.read,
                Mark::Seen => !i.flags.seen,
            })
            .map(|i| BulkItem {
                notification_id: i.notification_id,
                category: i.category.clone(),
                before: i.flags,
            })
            .collect();
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let marked = InboxMarked {
            recipient: cmd.user.clone(),
            category: cmd.category.clone(),
            up_to_position: cmd.up_to_position,
            items: selected,
            at: cmd.at,
        };
        Ok(vec![Event::InboxMarked(cmd.mark, marked)])
    }
}

/// Folds one event (at its log position) into one person's inbox items.
pub fn evolve(mut items: Vec<InboxItem>, position: i64, event: &Event) -> Vec<InboxItem> {
    let mut set = |id: NotificationId, f: &dyn Fn(Flags) -> Flags| {
        if let Some(i) = items.iter_mut().find(|i| i.notification_id == id) {
            i.flags = f(i.flags);
        }
    };
    match event {
        Event::NotificationSent(e) => items.push(InboxItem {
            notification_id: e.notification_id,
            category: e.content.category.clone(),
            sent_position: position,
            flags: Flags::default(),
        }),
        Event::NotificationSeen(e)
        | Event::NotificationRead(e)
        | Event::NotificationUnread(e)
        | Event::NotificationArchived(e)
        | Event::NotificationUnarchived(e) => set(e.notification_id, &|_| e.after),
        Event::InboxMarked(mark, e) => {
            for item in &e.items {
                set(item.notification_id, &|f| mark.apply(f));
            }
        }
        Event::NotificationExpired(e) => items.retain(|i| i.notification_id != e.notification_id),
        Event::NotificationSuppressed(_)
        | Event::PreferenceChanged(_)
        | Event::QuietHoursSet(_)
        | Event::DigestSet(_)
        | Event::DigestClosed(_)
        | Event::Schedule(_)
        | Event::Recipient(_)
        | Event::Delivery(_)
        | Event::Endpoint(_) => {}
    }
    items
}
