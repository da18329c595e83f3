//! Digests: a person reads and sets their own; a service (an API key with the `send` or
//! `admin` scope) reads and sets anyone's by `userId`.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::quiet::{subject, time_zone, Weekday};
use super::types::{AuditEvent, Channel};
use super::{api, metadata, service, ApiError};
use crate::auth::Scope;
use crate::domain::digest::{digest_stream, DigestId, DigestSchedule, SetDigest};
use crate::domain::quiet::LocalTime;
use crate::domain::{Category, Command, InputError, UserId};

/// How often a digest closes.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestFrequency {
    /// On the hour, every hour.
    Hourly,
    /// Every day at `at`.
    Daily,
    /// Every week on `day` at `at`.
    Weekly,
}

/// When a digest closes: every hour on the hour, daily at `at`, or weekly on `day` at `at`
/// (`HH:MM`, in the person's time zone).
#[derive(InputObject)]
pub struct DigestScheduleInput {
    pub frequency: DigestFrequency,
    pub at: Option<String>,
    pub day: Option<Weekday>,
}

impl DigestScheduleInput {
    fn parse(self) -> Result<DigestSchedule, InputError> {
        let at = |at: Option<String>| {
            let raw = at.ok_or_else(|| {
                InputError::new("schedule.at", "a daily or weekly digest needs `at` (HH:MM)")
            })?;
            LocalTime::parse(&raw).map_err(|_| {
                InputError::new("schedule.at", format!("{raw:?} is not a time like 09:00"))
            })
        };
        match self.frequency {
            DigestFrequency::Hourly => Ok(DigestSchedule::Hourly),
            DigestFrequency::Daily => Ok(DigestSchedule::Daily { at: at(self.at)? }),
            DigestFrequency::Weekly => {
                let day = self.day.ok_or_else(|| {
                    InputError::new("schedule.day", "a weekly digest needs `day`")
                })?;
                Ok(DigestSchedule::Weekly {
                    day: day.into(),
                    at: at(self.at)?,
                })
            }
        }
    }
}

/// A digest's schedule, as set.
#[derive(SimpleObject)]
#[graphql(name = "DigestSchedule")]
pub struct DigestScheduleView {
    pub frequency: DigestFrequency,
    /// `HH:MM`, for a daily or weekly digest.
    pub at: Option<String>,
    /// For a weekly digest.
    pub day: Option<Weekday>,
}

impl From<DigestSchedule> for DigestScheduleView {
    fn from(s: DigestSchedule) -> Self {
        match s {
            DigestSchedule::Hourly => DigestScheduleView {
                frequency: DigestFrequency::Hourly,
                at: None,
                day: None,
            },
            DigestSchedule::Daily { at } => DigestScheduleView {
                frequency: DigestFrequency::Daily,
                at: Some(at.to_string()),
                day: None,
            },
            DigestSchedule::Weekly { day, at } => DigestScheduleView {
                frequency: DigestFrequency::Weekly,
                at: Some(at.to_string()),
                day: Some(day.into()),
            },
        }
    }
}

/// A person's digest for one category on one channel.
#[derive(SimpleObject)]
pub struct DigestSetting {
    pub category: String,
    pub channel: Channel,
    pub schedule: DigestScheduleView,
    /// When the next digest for it closes.
    pub next_at: DateTime<Utc>,
}

/// A person's digests: deliveries of these categories on these channels join one message per
/// hour, day or week instead of going out one by one. `urgent` and `critical` sends go out
/// at once, as they go through quiet hours.
#[derive(SimpleObject)]
pub struct Digests {
    /// None when every notification goes out on its own.
    pub settings: Vec<DigestSetting>,
    /// The time zone the schedules are read in: the person's profile's (`timeZone`), else `UTC`.
    pub time_zone: String,
}

async fn view(ctx: &Context<'_>, user: &UserId) -> Result<Digests, ApiError> {
    let api = api(ctx);
    let db = api.engine.db();
    let (settings, profile) = tokio::try_join!(
        crate::projections::read::digest_settings(db, user),
        crate::recipients::get(db, user),
    )
    .map_err(ApiError::internal)?;
    let (zone_name, zone) = time_zone(profile);
    let now = api.clock.now();
    Ok(Digests {
        settings: settings
            .into_iter()
            .map(|(category, channel, schedule)| DigestSetting {
                category: category.as_str().to_owned(),
                channel: channel.into(),
                next_at: schedule.closes_after(zone, now),
                schedule: schedule.into(),
            })
            .collect(),
        time_zone: zone_name,
    })
}

#[derive(Default)]
pub struct DigestQuery;

#[Object]
impl DigestQuery {
    /// The viewer's digests; a service names the person by `userId`.
    async fn digests(&self, ctx: &Context<'_>, user_id: Option<String>) -> Result<Digests> {
        let user = subject(ctx, user_id, "digests")?;
        Ok(view(ctx, &user).await?)
    }

    /// Every event of one digest, oldest first: its `digest.closed` (the notifications it
    /// covers, newest first, and how many were left out as read or expired), then its
    /// delivery's planning, attempts and outcome (API keys with the `admin` scope). A
    /// delivery that joined a digest names it in its `digestId`.
    async fn digest_history(&self, ctx: &Context<'_>, id: ID) -> Result<Vec<AuditEvent>> {
        service(ctx, Scope::Admin)?;
        let id = uuid::Uuid::parse_str(&id)
            .map(DigestId::from_uuid)
            .map_err(|_| ApiError::bad_input("id", "a digest's id is a UUID"))?;
        let events = api(ctx)
            .engine
            .log()
            .read_stream(&digest_stream(id))
            .await
            .map_err(ApiError::internal)?;
        if events.is_empty() {
            return Err(ApiError::NotFound(format!(
                "digest {id} has not closed (or does not exist)"
            ))
            .into());
        }
        Ok(events.into_iter().map(AuditEvent::from).collect())
    }
}

#[derive(Default)]
pub struct DigestMutation;

#[Object]
impl DigestMutation {
    /// Sets the viewer's digest for `category` on `channel` (an external one); a null
    /// `schedule` turns it off. A service names the person by `userId`. A digest open now
    /// still closes at its time; later deliveries follow the new setting.
    async fn set_digest(
        &self,
        ctx: &Context<'_>,
        user_id: Option<String>,
        category: String,
        channel: Channel,
        schedule: Option<DigestScheduleInput>,
    ) -> Result<Digests> {
        let user = subject(ctx, user_id, "digests")?;
        let api = api(ctx);
        let command = Category::parse(&category)
            .and_then(|category| {
                let schedule = schedule.map(DigestScheduleInput::parse).transpose()?;
                SetDigest::new(
                    user.clone(),
                    category,
                    channel.into(),
                    schedule,
                    api.clock.now(),
                )
            })
            .map_err(ApiError::from)?;
        api.engine
            .execute(Command::SetDigest(command), metadata(ctx))
            .await
            .map_err(ApiError::from)?;
        Ok(view(ctx, &user).await?)
    }
}
