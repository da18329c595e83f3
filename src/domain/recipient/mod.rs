//! The `recipient-{user}` stream and the recipient directory it speaks for: a person's contact
//! points, set by services. The points themselves are personal data and live only in the
//! directory, which can forget them; the events record that (and which fields of) a profile
//! changed, or that it was erased, never what it held (a "forgettable payload", decision 0033).
//!
//! A command is planned against the current profiles ([`RecipientCommand::plan`]): the events
//! to append and the directory writes to make in the same transaction.

mod contact;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::{to_raw_value, RawValue};

use super::event::Event;
use super::values::{InputError, UserId};
use super::{Decide, DomainError};
pub use contact::{DisplayName, EmailAddress, Locale, PhoneNumber, TimeZoneName};

/// The most profiles one upsert may set (an API call; the CLI writes a file in such batches).
pub const UPSERT_MAX: usize = 1_000;

/// One field of a profile, as the events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileField {
    DisplayName,
    Email,
    Phone,
    Locale,
    TimeZone,
}

/// A person's contact points; each may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub display_name: Option<DisplayName>,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    pub locale: Option<Locale>,
    pub time_zone: Option<TimeZoneName>,
}

/// What an update does to one field: an absent field is left as it is, `null` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

/// Reads a present field: `null` is [`Patch::Clear`]. An absent one takes the default
/// ([`Patch::Keep`]) when the field is marked `#[serde(default)]`.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(value) => Patch::Set(value),
            None => Patch::Clear,
        })
    }
}

impl<T> Patch<T> {
    fn parse<U>(
        self,
        parse: impl FnOnce(T) -> Result<U, InputError>,
    ) -> Result<Patch<U>, InputError> {
        Ok(match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(raw) => Patch::Set(parse(raw)?),
        })
    }

    /// Applies the patch to `slot`; whether that changed it.
    fn apply(self, slot: &mut Option<T>) -> bool
    where
        T: PartialEq,
    {
        let next = match self {
            Patch::Keep => return false,
            Patch::Clear => None,
            Patch::Set(value) => Some(value),
        };
        let changed = *slot != next;
        *slot = next;
        changed
    }
}

/// One person's profile update as a caller gives it (the GraphQL input, or one NDJSON line of
/// `belfry recipients import`), before parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecipientInput {
    pub user_id: String,
    #[serde(default)]
    pub display_name: Patch<String>,
    #[serde(default)]
    pub email: Patch<String>,
    #[serde(default)]
    pub phone: Patch<String>,
    #[serde(default)]
    pub locale: Patch<String>,
    #[serde(default)]
    pub time_zone: Patch<String>,
}

/// A parsed update of one person's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub user: UserId,
    pub display_name: Patch<DisplayName>,
    pub email: Patch<EmailAddress>,
    pub phone: Patch<PhoneNumber>,
    pub locale: Patch<Locale>,
    pub time_zone: Patch<TimeZoneName>,
}

impl RecipientInput {
    /// Parses every given field; the error names the field by its input name (`email`,
    /// `timeZone`, ...).
    pub fn parse(self) -> Result<ProfileUpdate, InputError> {
        let user =
            UserId::parse(&self.user_id).map_err(|e| InputError::new("userId", e.message))?;
        Ok(ProfileUpdate {
            user,
            display_name: self.display_name.parse(|s| DisplayName::parse(&s))?,
            email: self.email.parse(|s| EmailAddress::parse(&s))?,
            phone: self.phone.parse(|s| PhoneNumber::parse(&s))?,
            locale: self.locale.parse(|s| Locale::parse(&s))?,
            time_zone: self.time_zone.parse(|s| TimeZoneName::parse(&s))?,
        })
    }
}

impl Profile {
    /// The profile after `update`, and the fields that changed, in a fixed order.
    pub fn updated(&self, update: ProfileUpdate) -> (Profile, Vec<ProfileField>) {
        let mut next = self.clone();
        let mut fields = Vec::new();
        let mut note = |changed: bool, field| {
            if changed {
                fields.push(field);
            }
        };
        note(
            update.display_name.apply(&mut next.display_name),
            ProfileField::DisplayName,
        );
        note(update.email.apply(&mut next.email), ProfileField::Email);
        note(update.phone.apply(&mut next.phone), ProfileField::Phone);
        note(update.locale.apply(&mut next.locale), ProfileField::Locale);
        note(
            update.time_zone.apply(&mut next.time_zone),
            ProfileField::TimeZone,
        );
        (next, fields)
    }
}

/// `recipient.profile_changed`: these fields of a person's profile were set or cleared. Never
/// their values, which stay in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileChanged {
    pub user: UserId,
    pub fields: Vec<ProfileField>,
    pub at: DateTime<Utc>,
}

/// `recipient.erased`: a person's profile was removed from the directory for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientErased {
    pub user: UserId,
    pub at: DateTime<Utc>,
}

/// The facts of the `recipient-{user}` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientEvent {
    ProfileChanged(ProfileChanged),
    Erased(RecipientErased),
}

impl RecipientEvent {
    pub const PROFILE_CHANGED: &'static str = "recipient.profile_changed";
    pub const ERASED: &'static str = "recipient.erased";

    pub fn type_name(&self) -> &'static str {
        match self {
            RecipientEvent::ProfileChanged(_) => Self::PROFILE_CHANGED,
            RecipientEvent::Erased(_) => Self::ERASED,
        }
    }

    pub fn user(&self) -> &UserId {
        match self {
            RecipientEvent::ProfileChanged(e) => &e.user,
            RecipientEvent::Erased(e) => &e.user,
        }
    }

    pub fn to_raw_value(&self) -> serde_json::Result<Box<RawValue>> {
        match self {
            RecipientEvent::ProfileChanged(e) => to_raw_value(e),
            RecipientEvent::Erased(e) => to_raw_value(e),
        }
    }
}

/// The stream of one person's profile facts.
pub fn recipient_stream(user: &UserId) -> String {
    format!("recipient-{user}")
}

/// A change to the directory, made in the transaction that appends its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryWrite {
    /// Store this profile (inserted or replacing the one stored), stamped `at`.
    Put(UserId, Profile),
    /// Remove the person's row.
    Remove(UserId),
}

/// Set (part of) many people's profiles at once: all of them or, on a failure, none.
/// Updates apply in order: a later update of the same person applies on top of an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertRecipients {
    pub updates: Vec<ProfileUpdate>,
    pub at: DateTime<Utc>,
}

/// Remove a person's profile from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseRecipient {
    pub user: UserId,
    pub at: DateTime<Utc>,
}

/// A command on the recipient directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientCommand {
    Upsert(UpsertRecipients),
    Erase(EraseRecipient),
}

/// The stored profiles of the people a command names (a person with none is absent).
pub type Directory = BTreeMap<UserId, Profile>;

/// What a command does: the events to append and the directory writes that go with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub events: Vec<Event>,
    pub writes: Vec<DirectoryWrite>,
}

impl RecipientCommand {
    /// The people whose stored profiles the plan needs.
    pub fn users(&self) -> Vec<UserId> {
        match self {
            RecipientCommand::Upsert(cmd) => {
                let mut users: Vec<UserId> = cmd.updates.iter().map(|u| u.user.clone()).collect();
                users.sort();
                users.dedup();
                users
            }
            RecipientCommand::Erase(cmd) => vec![cmd.user.clone()],
        }
    }

    /// One `recipient.profile_changed` per update that changes something, and one write per
    /// person whose profile changed; an erase of a stored profile removes it with
    /// `recipient.erased`. Nothing for what changes nothing.
    pub fn plan(&self, directory: &Directory) -> Plan {
        let mut plan = Plan::default();
        match self {
            RecipientCommand::Upsert(cmd) => {
                let mut changed: BTreeMap<UserId, Profile> = BTreeMap::new();
                for update in &cmd.updates {
                    let user = update.user.clone();
                    let current = changed
                        .get(&user)
                        .or_else(|| directory.get(&user))
                        .cloned()
                        .unwrap_or_default();
                    let (next, fields) = current.updated(update.clone());
                    if fields.is_empty() {
                        continue;
                    }
                    plan.events
                        .push(Event::Recipient(RecipientEvent::ProfileChanged(
                            ProfileChanged {
                                user: user.clone(),
                                fields,
                                at: cmd.at,
                            },
                        )));
                    changed.insert(user, next);
                }
                plan.writes = changed
                    .into_iter()
                    .map(|(user, profile)| DirectoryWrite::Put(user, profile))
                    .collect();
            }
            RecipientCommand::Erase(cmd) => {
                if directory.contains_key(&cmd.user) {
                    plan.events
                        .push(Event::Recipient(RecipientEvent::Erased(RecipientErased {
                            user: cmd.user.clone(),
                            at: cmd.at,
                        })));
                    plan.writes.push(DirectoryWrite::Remove(cmd.user.clone()));
                }
            }
        }
        plan
    }
}

impl Decide for RecipientCommand {
    type State = Directory;

    fn decide(&self, state: &Directory) -> Result<Vec<Event>, DomainError> {
        Ok(self.plan(state).events)
    }
}
