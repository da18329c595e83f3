//! Checks of the settings as a whole, made when they are loaded: what serde alone cannot
//! say (a value's form beyond its type, settings that must agree with each other, such as
//! the delivery lease and the channels' timeouts).

use std::time::Duration;

use reqwest::Url;

use super::Settings;
use crate::domain::{Category, Throttle, Throttles};

impl Settings {
    /// Refuses settings a server could not work with, naming the setting and why.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.sqlite_synchronous.as_str(), "full" | "normal"),
            "sqlite_synchronous must be \"full\" or \"normal\""
        );
        if let Some(url) = &self.preferences_url {
            check_absolute_http_url("preferences_url", url)?;
        }
        self.throttles()?;
        for (name, days) in [
            ("read_days", self.retention.read_days),
            ("unread_days", self.retention.unread_days),
        ] {
            anyhow::ensure!(
                days <= super::RetentionSetting::MAX_DAYS,
                "retention.{name} is {days}; at most {} days (0 turns it off)",
                super::RetentionSetting::MAX_DAYS
            );
        }
        self.check_delivery_lease()
    }

    /// The `[throttle]` table, each category's checked as a send's own throttle is; errors
    /// name the category.
    pub fn throttles(&self) -> anyhow::Result<Throttles> {
        let table = self
            .throttle
            .iter()
            .map(|(category, t)| {
                let parsed = Category::parse(category)
                    .and_then(|c| Ok((c, Throttle::new(t.max, t.per_seconds)?)));
                parsed.map_err(|e| anyhow::anyhow!("throttle.{category}: {}", e.message))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Throttles::new(table))
    }

    /// The lease must outlast the slowest attempt a channel allows: one still running when its
    /// lease expires lets another worker claim the delivery and send it a second time.
    fn check_delivery_lease(&self) -> anyhow::Result<()> {
        let lease_secs = self.delivery_lease_secs;
        let lease = Duration::from_secs(lease_secs);
        if let Some(smtp) = &self.smtp {
            anyhow::ensure!(
                lease > Duration::from_secs(smtp.timeout_secs),
                "delivery_lease_secs ({lease_secs}) must be longer than smtp.timeout_secs ({}): \
                 an attempt still running when its lease expires could be sent again by another \
                 worker",
                smtp.timeout_secs
            );
        }
        for endpoint in &self.webhooks {
            // The origin, not the URL: a webhook's path or query can hold a token.
            anyhow::ensure!(
                lease > endpoint.timeout(),
                "delivery_lease_secs ({lease_secs}) must be longer than the webhook endpoint {} \
                 timeout_ms ({}): an attempt still running when its lease expires could be sent \
                 again by another worker",
                endpoint.origin(),
                endpoint.timeout().as_millis()
            );
        }
        Ok(())
    }
}

/// `url` is an absolute `http(s)` URL with a host, as a link in an email must be.
fn check_absolute_http_url(setting: &str, url: &str) -> anyhow::Result<()> {
    let usable = Url::parse(url).is_ok_and(|parsed| {
        matches!(parsed.scheme(), "http" | "https")
            && parsed.host_str().is_some_and(|h| !h.is_empty())
    });
    anyhow::ensure!(
        usable && !url.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{setting} = {url:?} is not an absolute http(s) URL such as \
         `https://app.example.com/settings/notifications`"
    );
    Ok(())
}
