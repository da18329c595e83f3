//! Quiet hours: a person reads and sets their own; a service (an API key with the `send` or
//! `admin` scope) reads and sets anyone's by `userId`.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{api, metadata, principal, ApiError};
use crate::auth::{Principal, Scope};
use crate::domain::quiet::{self, Day, LocalTime, QuietHours, QuietWindow, SetQuietHours};
use crate::domain::{Command, UserId};

/// A day of the week.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl From<Weekday> for Day {
    fn from(d: Weekday) -> Day {
        match d {
            Weekday::Mon => Day::Mon,
            Weekday::Tue => Day::Tue,
            Weekday::Wed => Day::Wed,
            Weekday::Thu => Day::Thu,
            Weekday::Fri => Day::Fri,
            Weekday::Sat => Day::Sat,
            Weekday::Sun => Day::Sun,
        }
    }
}

impl From<Day> for Weekday {
    fn from(d: Day) -> Weekday {
        match d {
            Day::Mon => Weekday::Mon,
            Day::Tue => Weekday::Tue,
            Day::Wed => Weekday::Wed,
            Day::Thu => Weekday::Thu,
            Day::Fri => Weekday::Fri,
            Day::Sat => Weekday::Sat,
            Day::Sun => Weekday::Sun,
        }
    }
}

/// One quiet window: from `start` on each of `days` until `end`, both wall-clock times
/// (`HH:MM`) in the person's time zone. It ends the next day when `end` is not after `start`
/// (22:00 to 07:00), and lasts the whole day when they are equal.
#[derive(InputObject)]
pub struct QuietWindowInput {
    pub days: Vec<Weekday>,
    pub start: String,
    pub end: String,
}

/// One quiet window, as set.
#[derive(SimpleObject)]
#[graphql(name = "QuietWindow")]
pub struct QuietWindowView {
    pub days: Vec<Weekday>,
    pub start: String,
    pub end: String,
}

/// A person's quiet hours: deliveries on email and webhooks that fall due inside them wait
/// until they end; in-app notifications still arrive, marked `quiet` (no toast). `urgent`
/// and `critical` sends go through them unless the server says otherwise.
#[derive(SimpleObject)]
#[graphql(name = "QuietHours")]
pub struct QuietHoursView {
    /// None when the person has no quiet hours.
    pub windows: Vec<QuietWindowView>,
    /// The time zone they are read in: the person's profile's (`timeZone`), else `UTC`.
    pub time_zone: String,
    /// When the quiet time the person is in now ends; null outside quiet hours.
    pub quiet_until: Option<DateTime<Utc>>,
}

/// Whose settings (`what`: quiet hours, digests): the signed-in person's own (`userId` left
/// out or theirs), or, for a service, the person `userId` names.
pub(super) fn subject(
    ctx: &Context<'_>,
    user_id: Option<String>,
    what: &str,
) -> Result<UserId, ApiError> {
    let named = user_id
        .map(|raw| {
            UserId::parse(&raw)
                .map_err(|e| ApiError::bad_input("userId", format!("userId: {}", e.message)))
        })
        .transpose()?;
    match (principal(ctx), named) {
        (Principal::User(me), None) => Ok(me.clone()),
        (Principal::User(me), Some(named)) if named == *me => Ok(named),
        (Principal::User(_), Some(_)) => Err(ApiError::Forbidden(format!(
            "a person sets only their own {what}; leave `userId` out"
        ))),
        (Principal::Service(s), Some(named)) if s.has(Scope::Send) || s.has(Scope::Admin) => {
            Ok(named)
        }
        (Principal::Service(s), None) if s.has(Scope::Send) || s.has(Scope::Admin) => Err(
            ApiError::bad_input("userId", format!("name the person whose {what} these are")),
        ),
        (Principal::Service(_), _) => Err(ApiError::Forbidden(
            "this API key needs the `send` or the `admin` scope".to_owned(),
        )),
        (Principal::Anonymous, _) => Err(ApiError::Unauthenticated(
            "sign in: send a user token, or an API key with the `send` scope".to_owned(),
        )),
    }
}

/// The zone a person's times are read in, by name and as looked up: their profile's, else UTC.
pub(super) fn time_zone(profile: Option<crate::recipients::Recipient>) -> (String, chrono_tz::Tz) {
    let name = profile
        .and_then(|r| r.profile.time_zone)
        .map_or_else(|| "UTC".to_owned(), |z| z.as_str().to_owned());
    let zone = quiet::zone_of(Some(&name));
    (name, zone)
}

async fn view(ctx: &Context<'_>, user: &UserId) -> Result<QuietHoursView, ApiError> {
    let api = api(ctx);
    let db = api.engine.db();
    let (hours, profile) = tokio::try_join!(
        crate::projections::read::quiet_hours(db, user),
        crate::recipients::get(db, user),
    )
    .map_err(ApiError::internal)?;
    let (zone_name, zone) = time_zone(profile);
    let hours = hours.map(|(h, _)| h).unwrap_or_default();
    let quiet_until = hours.quiet_until(zone, api.clock.now());
    Ok(QuietHoursView {
        windows: hours
            .windows
            .into_iter()
            .map(|w| QuietWindowView {
                days: w.days.into_iter().map(Weekday::from).collect(),
                start: w.start.to_string(),
                end: w.end.to_string(),
            })
            .collect(),
        time_zone: zone_name,
        quiet_until,
    })
}

#[derive(Default)]
pub struct QuietQuery;

#[Object]
impl QuietQuery {
    /// The viewer's quiet hours; a service names the person by `userId`.
    async fn quiet_hours(
        &self,
        ctx: &Context<'_>,
        user_id: Option<String>,
    ) -> Result<QuietHoursView> {
        let user = subject(ctx, user_id, "quiet hours")?;
        Ok(view(ctx, &user).await?)
    }
}

#[derive(Default)]
pub struct QuietMutation;

#[Object]
impl QuietMutation {
    /// Replaces the viewer's quiet hours with `windows` (none clears them); a service names
    /// the person by `userId`. Deliveries already waiting are decided again against the new
    /// ones at once.
    async fn set_quiet_hours(
        &self,
        ctx: &Context<'_>,
        user_id: Option<String>,
        windows: Vec<QuietWindowInput>,
    ) -> Result<QuietHoursView> {
        let user = subject(ctx, user_id, "quiet hours")?;
        let windows = windows
            .into_iter()
            .map(|w| {
                Ok(QuietWindow {
                    days: w.days.into_iter().map(Day::from).collect(),
                    start: LocalTime::parse(&w.start)?,
                    end: LocalTime::parse(&w.end)?,
                })
            })
            .collect::<Result<Vec<_>, crate::domain::InputError>>()
            .and_then(QuietHours::new)
            .map_err(ApiError::from)?;
        let api = api(ctx);
        api.engine
            .execute(
                Command::SetQuietHours(SetQuietHours {
                    user: user.clone(),
                    hours: windows,
                    at: api.clock.now(),
                }),
                metadata(ctx),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(view(ctx, &user).await?)
    }
}
