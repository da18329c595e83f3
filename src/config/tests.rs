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

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn webhook(url: &str, timeout_ms: u64) -> String {
    format!("[[webhooks]]\nurl = {url:?}\nsecrets = [{SECRET:?}]\ntimeout_ms = {timeout_ms}\n")
}

#[test]
fn a_lease_longer_than_every_channels_timeout_is_accepted() {
    let settings = load(&format!(
        "delivery_lease_secs = 31\n[smtp]\nfrom = \"a@example.com\"\ntimeout_secs = 30\n{}{}",
        webhook("https://a.example.com/in", 10_000),
        webhook("https://b.example.com/in", 30_999)
    ))
    .unwrap();
    assert_eq!(settings.delivery_lease_secs, 31);
    // The defaults agree with each other: a 60 s lease, 30 s for SMTP, 10 s for a webhook.
    load(&format!(
        "[smtp]\nfrom = \"a@example.com\"\n{}",
        webhook("https://a.example.com/in", 10_000)
    ))
    .unwrap();
}

#[test]
fn a_lease_no_longer_than_the_smtp_timeout_is_refused_naming_both() {
    for lease in [10, 30] {
        let error = refused(&format!(
            "delivery_lease_secs = {lease}\n[smtp]\nfrom = \"a@example.com\"\ntimeout_secs = 30\n"
        ));
        assert!(
            error.contains(&format!(
                "delivery_lease_secs ({lease}) must be longer than smtp.timeout_secs (30)"
            )),
            "{error}"
        );
    }
}

#[test]
fn a_lease_no_longer_than_a_webhook_timeout_is_refused_naming_the_endpoint_by_its_origin() {
    let error = refused(&format!(
        "delivery_lease_secs = 10\n{}{}",
        webhook("https://fast.example.com/in", 2_000),
        webhook(
            "https://bot:pa55@hooks.example.com:8443/services/T0/B0/tok3n?key=s3cret",
            30_000
        )
    ));
    assert!(
        error.contains(
            "delivery_lease_secs (10) must be longer than the webhook endpoint \
             https://hooks.example.com:8443 timeout_ms (30000)"
        ),
        "{error}"
    );
    assert!(
        ["tok3n", "s3cret", "pa55", "whsec_"]
            .iter()
            .all(|secret| !error.contains(secret)),
        "{error}"
    );
    let equal = refused(&format!(
        "delivery_lease_secs = 10\n{}",
        webhook("https://hooks.example.com/in", 10_000)
    ));
    assert!(equal.contains("timeout_ms (10000)"), "{equal}");
}

#[test]
fn a_throttle_table_sets_each_categorys_limit_and_none_is_the_default() {
    use crate::domain::{Category, Throttle};
    let settings = load(
        "[throttle]\nmarketing = { max = 3, per_seconds = 86400 }\nsocial = { max = 10, per_seconds = 3600 }",
    )
    .unwrap();
    let throttles = settings.throttles().unwrap();
    let of = |c: &str| throttles.for_category(&Category::parse(c).unwrap());
    assert_eq!(of("marketing"), Throttle::new(3, 86_400).ok());
    assert_eq!(of("social"), Throttle::new(10, 3_600).ok());
    assert_eq!(of("billing"), None);
    let none = load("").unwrap().throttles().unwrap();
    assert_eq!(
        none.for_category(&Category::parse("marketing").unwrap()),
        None
    );
}

#[test]
fn a_throttle_out_of_bounds_is_refused_naming_the_category() {
    for (bad, says) in [
        ("marketing = { max = 0, per_seconds = 60 }", "max"),
        ("marketing = { max = 3, per_seconds = 0 }", "seconds"),
        ("marketing = { max = 3, per_seconds = 99999999 }", "30 days"),
        (
            "\"Not A Slug\" = { max = 3, per_seconds = 60 }",
            "throttle.Not A Slug",
        ),
    ] {
        let err = refused(&format!("[throttle]\n{bad}"));
        assert!(err.contains("throttle."), "{err}");
        assert!(err.contains(says), "{bad}: {err}");
    }
    let unknown = refused("[throttle]\nmarketing = { max = 3, per_second = 60 }");
    assert!(unknown.contains("per_second"), "{unknown}");
}
