//! A send as a caller writes it, and the one place it is checked: the GraphQL input and the
//! command line's flags both become a [`SendInput`], and [`SendNotification::parse`] turns it
//! into the command, or refuses it with the field at fault before anything is decided.

use chrono::{DateTime, Utc};

use super::notification::{Expiry, SendNotification, TTL_MAX_SECONDS};
use super::quiet::QuietPolicy;
use super::values::limits;
use super::{
    Body, Category, Channel, Content, IdempotencyKey, InputError, Link, NotificationId, Payload,
    Priority, Route, Routing, Throttle, Throttles, Title, Unless, UserId,
};

/// The fields of a send, unchecked but for their types.
#[derive(Debug, Clone, Default)]
pub struct SendInput {
    pub recipients: Vec<String>,
    pub category: Option<String>,
    pub priority: Option<Priority>,
    pub critical: bool,
    pub title: String,
    pub body: Option<String>,
    pub data: Option<serde_json::Value>,
    pub action_url: Option<String>,
    pub icon: Option<String>,
    /// `None`: the category's default routing; empty: none.
    pub routes: Option<Vec<RouteInput>>,
    /// `None`: the category's configured throttle (or none).
    pub throttle: Option<ThrottleInput>,
    pub idempotency_key: Option<String>,
    /// When its notifications leave the inbox; at most one of this and `ttl_seconds`.
    pub expires_at: Option<DateTime<Utc>>,
    /// How long after it is sent its notifications leave the inbox.
    pub ttl_seconds: Option<i64>,
}

/// A send's own throttle for its recipients, unchecked: `max` per `per_seconds`, or `off`
/// (not throttled, whatever its category's configured throttle).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleInput {
    pub max: Option<i64>,
    pub per_seconds: Option<i64>,
    pub off: bool,
}

impl ThrottleInput {
    /// The send's throttle: `None` when it asks for none.
    fn parse(self) -> Result<Option<Throttle>, InputError> {
        match self {
            ThrottleInput {
                max: None,
                per_seconds: None,
                off: true,
            } => Ok(None),
            ThrottleInput {
                max: Some(max),
                per_seconds: Some(per_seconds),
                off: false,
            } => Throttle::new(max, per_seconds).map(Some),
            _ => Err(InputError::new(
                "throttle",
                "name both max and perSeconds, or only off",
            )),
        }
    }
}

/// What a send that leaves them out gets: the server's configured defaults per category.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendDefaults {
    pub routing: Routing,
    pub throttles: Throttles,
    /// What quiet hours hold back.
    pub quiet: QuietPolicy,
}

/// One route of a send, unchecked: a channel, a delay in seconds, and what calls it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInput {
    pub channel: Channel,
    pub delay_secs: i64,
    pub unless: Option<Unless>,
}

impl RouteInput {
    fn parse(self) -> Result<Route, InputError> {
        let delay = u32::try_from(self.delay_secs)
            .map_err(|_| InputError::new("routes", "a delay is a number of seconds from 0"))?;
        Route::new(self.channel, delay, self.unless)
    }
}

impl SendNotification {
    /// Checks every field of `input`; each distinct recipient gets an id from `new_id`. A
    /// send that names no routes gets none, and one that names no throttle is not throttled.
    pub fn parse(
        input: SendInput,
        at: DateTime<Utc>,
        new_id: impl FnMut() -> NotificationId,
    ) -> Result<SendNotification, InputError> {
        Self::parse_with_defaults(input, &SendDefaults::default(), at, new_id)
    }

    /// [`SendNotification::parse`], a send that names no routes (or no throttle) taking its
    /// category's from `defaults`.
    pub fn parse_with_defaults(
        input: SendInput,
        defaults: &SendDefaults,
        at: DateTime<Utc>,
        new_id: impl FnMut() -> NotificationId,
    ) -> Result<SendNotification, InputError> {
        if input.recipients.is_empty() {
            return Err(InputError::new("recipients", "name at least one recipient"));
        }
        if input.recipients.len() > limits::RECIPIENTS_MAX {
            return Err(InputError::new(
                "recipients",
                format!("at most {} recipients per send", limits::RECIPIENTS_MAX),
            ));
        }
        let recipients = input
            .recipients
            .iter()
            .map(|r| UserId::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let content = Content {
            category: input
                .category
                .as_deref()
                .map(Category::parse)
                .transpose()?
                .unwrap_or_default(),
            priority: input.priority.unwrap_or_default(),
            critical: input.critical,
            title: Title::parse(&input.title)?,
            body: input
                .body
                .as_deref()
                .map(Body::parse)
                .transpose()?
                .unwrap_or_default(),
            data: input
                .data
                .map(Payload::parse)
                .transpose()?
                .unwrap_or_default(),
            action_url: input
                .action_url
                .as_deref()
                .map(|u| Link::parse("action url", u))
                .transpose()?,
            icon: input
                .icon
                .as_deref()
                .map(|u| Link::parse("icon", u))
                .transpose()?,
        };
        let (routes, routes_by_default) = match input.routes {
            Some(routes) => (
                Route::list(
                    routes
                        .into_iter()
                        .map(RouteInput::parse)
                        .collect::<Result<Vec<_>, _>>()?,
                )?,
                false,
            ),
            None => (
                defaults.routing.for_category(&content.category).to_vec(),
                true,
            ),
        };
        let (throttle, throttle_by_default) = match input.throttle {
            Some(own) => (own.parse()?, false),
            None => (defaults.throttles.for_category(&content.category), true),
        };
        let expiry = match (input.expires_at, input.ttl_seconds) {
            (Some(_), Some(_)) => {
                return Err(InputError::new(
                    "expiresAt",
                    "give expiresAt or ttlSeconds, not both",
                ))
            }
            (Some(t), None) if t <= at => {
                return Err(InputError::new(
                    "expiresAt",
                    "must be after the send's time",
                ))
            }
            (Some(t), None) => Some(Expiry::At(t)),
            (None, Some(ttl)) => match u32::try_from(ttl) {
                Ok(s) if (1..=TTL_MAX_SECONDS).contains(&ttl) => Some(Expiry::AfterSeconds(s)),
                _ => {
                    return Err(InputError::new(
                        "ttlSeconds",
                        format!("a number of seconds from 1 to {TTL_MAX_SECONDS}"),
                    ))
                }
            },
            (None, None) => None,
        };
        let key = input
            .idempotency_key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()?;
        let mut cmd = SendNotification::new(recipients, content, routes, key, at, new_id);
        cmd.routes_by_default = routes_by_default;
        cmd.throttle = throttle;
        cmd.throttle_by_default = throttle_by_default;
        cmd.quiet_hours_hold = defaults.quiet.holds(&cmd.content);
        cmd.expiry = expiry;
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SendInput {
        SendInput {
            recipients: vec!["ann".into()],
            title: "Hello".into(),
            ..Default::default()
        }
    }

    fn parse(input: SendInput) -> Result<SendNotification, InputError> {
        let mut next = 0u128;
        SendNotification::parse(input, Utc::now(), || {
            next += 1;
            NotificationId::from_uuid(uuid::Uuid::from_u128(next))
        })
    }

    #[test]
    fn defaults_fill_what_a_send_leaves_out() {
        let cmd = parse(input()).expect("valid");
        assert_eq!(cmd.content.category.as_str(), "general");
        assert_eq!(cmd.content.priority, Priority::Normal);
        assert!(!cmd.content.critical);
        assert_eq!(cmd.deliveries.len(), 1);
    }

    #[test]
    fn a_send_without_recipients_names_the_field() {
        let err = parse(SendInput {
            recipients: vec![],
            ..input()
        })
        .unwrap_err();
        assert_eq!(err.field, "recipients");
    }

    #[test]
    fn the_first_bad_field_is_reported() {
        let err = parse(SendInput {
            category: Some("Not A Slug".into()),
            body: Some("b".repeat(5_001)),
            ..input()
        })
        .unwrap_err();
        assert_eq!(err.field, "category");
        let err = parse(SendInput {
            body: Some("b".repeat(5_001)),
            ..input()
        })
        .unwrap_err();
        assert_eq!(err.field, "body");
    }

    #[test]
    fn each_distinct_recipient_gets_the_next_id() {
        let cmd = parse(SendInput {
            recipients: vec!["ann".into(), "bob".into(), "ann".into()],
            ..input()
        })
        .expect("valid");
        let ids: Vec<u128> = cmd
            .deliveries
            .iter()
            .map(|(id, _)| id.as_uuid().as_u128())
            .collect();
        assert_eq!(ids, [1, 2]);
    }

    fn routes(routes: &[(Channel, i64, Option<Unless>)]) -> SendInput {
        SendInput {
            routes: Some(
                routes
                    .iter()
                    .map(|&(channel, delay_secs, unless)| RouteInput {
                        channel,
                        delay_secs,
                        unless,
                    })
                    .collect(),
            ),
            ..input()
        }
    }

    #[test]
    fn routes_name_external_channels_with_a_sane_delay() {
        let ok = parse(routes(&[
            (Channel::Email, 0, None),
            (Channel::Webhook, 600, Some(Unless::Read)),
        ]))
        .expect("valid");
        assert_eq!(ok.routes.len(), 2);
        for bad in [
            routes(&[(Channel::InApp, 0, None)]),
            routes(&[(Channel::Sms, 0, None)]),
            routes(&[(Channel::Email, -1, None)]),
            routes(&[(Channel::Email, 30 * 24 * 3600 + 1, None)]),
            routes(&[(Channel::Email, 0, Some(Unless::Read))]),
            routes(&[(Channel::Email, 5, None), (Channel::Email, 5, None)]),
            routes(&[(Channel::Email, 0, None); 9]),
        ] {
            let err = parse(bad.clone()).expect_err(&format!("{:?} is refused", bad.routes));
            assert_eq!(err.field, "routes", "{err}");
        }
    }

    #[test]
    fn a_send_without_routes_takes_its_categorys_and_an_empty_list_takes_none() {
        let email = Route::new(Channel::Email, 0, None).expect("a route");
        let routing = SendDefaults {
            routing: Routing::new([(Category::parse("billing").expect("a category"), vec![email])])
                .expect("a table"),
            ..Default::default()
        };
        let billing = |routes| SendInput {
            category: Some("billing".into()),
            routes,
            ..input()
        };
        let ids = || {
            let mut next = 0u128;
            move || {
                next += 1;
                NotificationId::from_uuid(uuid::Uuid::from_u128(next))
            }
        };
        let by_default =
            SendNotification::parse_with_defaults(billing(None), &routing, Utc::now(), ids())
                .expect("ok");
        assert_eq!(by_default.routes, [email]);
        assert!(by_default.routes_by_default);
        let none = SendNotification::parse_with_defaults(
            billing(Some(vec![])),
            &routing,
            Utc::now(),
            ids(),
        )
        .expect("ok");
        assert!(none.routes.is_empty());
        let general = SendNotification::parse_with_defaults(input(), &routing, Utc::now(), ids())
            .expect("ok");
        assert!(
            general.routes.is_empty(),
            "no default for the general category"
        );
        // A default does not enter the fingerprint: the configuration may change before a retry.
        let plain = SendNotification::parse(billing(None), Utc::now(), ids()).expect("ok");
        assert_eq!(by_default.fingerprint(), plain.fingerprint());
        let explicit = SendNotification::parse(
            billing(Some(vec![RouteInput {
                channel: Channel::Email,
                delay_secs: 0,
                unless: None,
            }])),
            Utc::now(),
            ids(),
        )
        .expect("ok");
        assert_ne!(explicit.fingerprint(), plain.fingerprint());
    }
}
