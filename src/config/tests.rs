#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::{Overrides, Settings};

/// The settings `toml` holds, loaded as `belfry` loads its configuration file.
fn load(toml: &str) -> anyhow::Result<Settings> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("belfry.toml");
    std::fs::write(&file, toml).unwrap();
    Settings::load(Some(Path::new(&file)), &Overrides::default())
}

fn refused(toml: &str) -> String {
    format!("{:#}", load(toml).expect_err(toml))
}

#[test]
fn a_preferences_url_is_kept_as_given_and_none_is_the_default() {
    let url = "https://app.example.com/settings/notifications?tab=email";
    let settings = load(&format!("preferences_url = {url:?}")).unwrap();
    assert_eq!(settings.preferences_url.as_deref(), Some(url));
    let local = load("preferences_url = \"http://localhost:3000/prefs\"").unwrap();
    assert_eq!(
        local.preferences_url.as_deref(),
        Some("http://localhost:3000/prefs")
    );
    assert_eq!(load("").unwrap().preferences_url, None);
}

#[test]
fn a_preferences_url_that_is_not_an_absolute_http_url_is_refused_naming_the_setting() {
    for bad in [
        "/settings/notifications",
        "app.example.com/settings",
        "ftp://app.example.com/settings",
        "mailto:help@example.com",
        "https://",
        "https://app.example.com/settings notifications",
        " https://app.example.com/settings",
        "",
    ] {
        let error = refused(&format!("preferences_url = {bad:?}"));
        assert!(
            error.contains(&format!(
                "preferences_url = {bad:?} is not an absolute http(s) URL"
            )),
            "{bad:?}: {error}"
        );
    }
}
