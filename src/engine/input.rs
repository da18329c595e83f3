//! Raw input from the API and the CLI, parsed into commands. Bad input is refused with the
//! field at fault, before anything reaches the appender.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::notification::SendNotification;
use crate::domain::values::limits;
use crate::domain::{
    Body, Category, Content, IdempotencyKey, InputError, Link, NotificationId, Payload, Priority,
    Title, UserId,
};

/// A send as a caller writes it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SendInput {
    pub recipients: Vec<String>,
    pub category: Option<String>,
    pub priority: Option<String>,
    #[serde(default)]
    pub critical: bool,
    pub title: String,
    pub body: Option<String>,
    pub data: Option<serde_json::Value>,
    pub action_url: Option<String>,
    pub icon: Option<String>,
    pub idempotency_key: Option<String>,
}

impl SendInput {
    /// Parses every field; each recipient gets a fresh time-ordered notification id.
    pub fn parse(self, at: DateTime<Utc>) -> Result<SendNotification, InputError> {
        if self.recipients.is_empty() {
            return Err(InputError::new("recipients", "name at least one recipient"));
        }
        if self.recipients.len() > limits::RECIPIENTS_MAX {
            return Err(InputError::new(
                "recipients",
                format!("at most {} recipients per send", limits::RECIPIENTS_MAX),
            ));
        }
        let recipients = self
            .recipients
            .iter()
            .map(|r| UserId::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let content = Content {
            category: self
                .category
                .as_deref()
                .map(Category::parse)
                .transpose()?
                .unwrap_or_default(),
            priority: self
                .priority
                .as_deref()
                .map(Priority::parse)
                .transpose()?
                .unwrap_or_default(),
            critical: self.critical,
            title: Title::parse(&self.title)?,
            body: self
                .body
                .as_deref()
                .map(Body::parse)
                .transpose()?
                .unwrap_or_default(),
            data: self
                .data
                .map(Payload::parse)
                .transpose()?
                .unwrap_or_default(),
            action_url: self
                .action_url
                .as_deref()
                .map(|u| Link::parse("action url", u))
                .transpose()?,
            icon: self
                .icon
                .as_deref()
                .map(|u| Link::parse("icon", u))
                .transpose()?,
        };
        let key = self
            .idempotency_key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()?;
        Ok(SendNotification::new(recipients, content, key, at, || {
            NotificationId::from_uuid(crate::clock::ordered_id())
        }))
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

    #[test]
    fn defaults_fill_what_a_send_leaves_out() {
        let cmd = input().parse(Utc::now()).expect("valid");
        assert_eq!(cmd.content.category.as_str(), "general");
        assert_eq!(cmd.content.priority, Priority::Normal);
        assert!(!cmd.content.critical);
        assert_eq!(cmd.deliveries.len(), 1);
    }

    #[test]
    fn a_send_without_recipients_names_the_field() {
        let err = SendInput {
            recipients: vec![],
            ..input()
        }
        .parse(Utc::now())
        .unwrap_err();
        assert_eq!(err.field, "recipients");
    }

    #[test]
    fn the_first_bad_field_is_reported() {
        let err = SendInput {
            priority: Some("loud".into()),
            ..input()
        }
        .parse(Utc::now())
        .unwrap_err();
        assert_eq!(err.field, "priority");
        let err = SendInput {
            body: Some("b".repeat(5_001)),
            ..input()
        }
        .parse(Utc::now())
        .unwrap_err();
        assert_eq!(err.field, "body");
    }
}
