//! Checks of the settings as a whole, made when they are loaded: what serde alone cannot
//! say (a value's form beyond its type, settings that must agree with each other).

use reqwest::Url;

use super::Settings;

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
