//! The `preferences-{user}` stream: per category x channel switches (everything on by default).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::event::{Event, PreferenceChanged};
use super::values::{Category, Channel, UserId};
use super::{Decide, DomainError};

/// One person's switches. Anything never switched is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    switches: BTreeMap<(Category, Channel), bool>,
}

impl Preferences {
    pub fn from_switches(switches: impl IntoIterator<Item = (Category, Channel, bool)>) -> Self {
        Self {
            switches: switches
                .into_iter()
                .map(|(cat, ch, on)| ((cat, ch), on))
                .collect(),
        }
    }

    pub fn enabled(&self, category: &Category, channel: Channel) -> bool {
        self.switches
            .get(&(category.clone(), channel))
            .copied()
            .unwrap_or(true)
    }
}

/// Switch channels on or off for categories, in order (a later change to the same switch wins).
#[derive(Debug, Clone, PartialEq)]
pub struct SetPreferences {
    pub user: UserId,
    pub changes: Vec<(Category, Channel, bool)>,
    pub at: DateTime<Utc>,
}

/// One `preference.changed` per switch that actually changes.
impl Decide for SetPreferences {
    type State = Preferences;

    fn decide(&self, state: &Preferences) -> Result<Vec<Event>, DomainError> {
        let cmd = self;
        let mut current = state.clone();
        let mut events = Vec::new();
        for (category, channel, enabled) in &cmd.changes {
            if current.enabled(category, *channel) == *enabled {
                continue;
            }
            let event = Event::PreferenceChanged(PreferenceChanged {
                user: cmd.user.clone(),
                category: category.clone(),
                channel: *channel,
                enabled: *enabled,
                at: cmd.at,
            });
            current = evolve(current, &event);
            events.push(event);
        }
        Ok(events)
    }
}

pub fn evolve(mut state: Preferences, event: &Event) -> Preferences {
    if let Event::PreferenceChanged(e) = event {
        state
            .switches
            .insert((e.category.clone(), e.channel), e.enabled);
    }
    state
}
