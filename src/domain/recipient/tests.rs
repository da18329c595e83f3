//! The contact values' parsers, and given / when / then for the directory's commands.

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .expect("valid time")
}

fn user(s: &str) -> UserId {
    UserId::parse(s).expect("valid user")
}

fn update(json: &str) -> ProfileUpdate {
    serde_json::from_str::<RecipientInput>(json)
        .expect("an input line")
        .parse()
        .expect("a valid update")
}

fn upsert(lines: &[&str]) -> RecipientCommand {
    RecipientCommand::Upsert(UpsertRecipients {
        updates: lines.iter().map(|l| update(l)).collect(),
        at: at(),
    })
}

fn changed(who: &str, fields: &[ProfileField]) -> Event {
    Event::Recipient(RecipientEvent::ProfileChanged(ProfileChanged {
        user: user(who),
        fields: fields.to_vec(),
        at: at(),
    }))
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("valid email")
}

#[test]
fn an_email_address_is_kept_with_its_domain_lowercased() {
    assert_eq!(
        email(" Ann.Lee+bell@Example.COM ").as_str(),
        "Ann.Lee+bell@example.com"
    );
    let longest = format!("{}@{}.example.com", "a".repeat(64), "b".repeat(63));
    assert!(EmailAddress::parse(&longest).is_ok());
    let too_long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
    assert!(too_long.len() > 254);
    assert!(EmailAddress::parse(&too_long).is_err());
    for bad in [
        "",
        "ann",
        "@example.com",
        "ann@",
        "ann@@example.com",
        "ann lee@example.com",
        "Ann <ann@example.com>",
        "ann@exa mple.com",
        "ann@[127.0.0.1]",
        "ann@127.0.0.1",
        "ann@-example.com",
        "ann@example..com",
        "ann\u{0}@example.com",
    ] {
        let err = EmailAddress::parse(bad).expect_err(bad);
        assert_eq!(err.field, "email", "{bad}");
    }
}

#[test]
fn a_phone_number_is_e164_with_separators_dropped() {
    let phone = |s: &str| PhoneNumber::parse(s).map(|p| p.as_str().to_owned());
    assert_eq!(phone("+4915112345678").expect("valid"), "+4915112345678");
    assert_eq!(phone("+49 151 1234-5678").expect("valid"), "+4915112345678");
    assert_eq!(phone("+12345678").expect("8 digits"), "+12345678");
    assert_eq!(
        phone("+123456789012345").expect("15 digits"),
        "+123456789012345"
    );
    for bad in [
        "4915112345678",
        "+1234567",
        "+1234567890123456",
        "+049151123456",
        "+49 (151) 12345678",
        "+49151123456x",
        "+ 4915112345678",
        "+4915112345678 -",
        "+",
    ] {
        assert_eq!(
            PhoneNumber::parse(bad).expect_err(bad).field,
            "phone",
            "{bad}"
        );
    }
}

#[test]
fn a_locale_is_a_bcp47_tag_in_its_conventional_case() {
    let locale = |s: &str| Locale::parse(s).map(|l| l.as_str().to_owned());
    assert_eq!(locale("de").expect("language"), "de");
    assert_eq!(locale("de-DE").expect("region"), "de-DE");
    assert_eq!(locale("de_de").expect("underscore"), "de-DE");
    assert_eq!(locale("ZH-hant-tw").expect("script"), "zh-Hant-TW");
    assert_eq!(locale("es-419").expect("numeric region"), "es-419");
    assert_eq!(locale("sl-rozaj").expect("variant"), "sl-rozaj");
    assert_eq!(locale("de-CH-1996").expect("digit variant"), "de-CH-1996");
    assert_eq!(locale("fil").expect("three letters"), "fil");
    for bad in [
        "",
        "d",
        "deutsch",
        "de-",
        "de--DE",
        "de-DE-Latn",
        "de-DE-DE",
        "12",
        "de-D",
        "en-US-x-private",
        "de DE",
    ] {
        assert_eq!(Locale::parse(bad).expect_err(bad).field, "locale", "{bad}");
    }
}

#[test]
fn a_time_zone_is_a_name_the_zone_database_knows() {
    for good in [
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "America/Port-au-Prince",
        "Asia/Calcutta",
        "Asia/Kolkata",
        "Etc/GMT+5",
        "Etc/GMT-14",
        "UTC",
        "EST5EDT",
    ] {
        let zone = TimeZoneName::parse(good).expect(good);
        assert_eq!(zone.as_str(), good);
        assert_eq!(zone.tz().name(), good);
    }
    let padded = TimeZoneName::parse("  Europe/Berlin\n").expect("a padded name");
    assert_eq!(padded.as_str(), "Europe/Berlin");
    assert_eq!(padded.tz(), chrono_tz::Europe::Berlin);
    // A link keeps the name it was given and reads times as its target does.
    let link = TimeZoneName::parse("Asia/Calcutta").expect("a link");
    let noon = Utc
        .with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .expect("valid time");
    assert_eq!(
        noon.with_timezone(&link.tz()).naive_local(),
        noon.with_timezone(&chrono_tz::Asia::Kolkata).naive_local()
    );
    for bad in [
        "",
        "Mars/Olympus_Mons",
        "Europe/Atlantis",
        "europe/berlin",
        "EUROPE/BERLIN",
        "Europe/",
        "/Berlin",
        "Europe//Berlin",
        "Europe/Berlin/Mitte/Nord",
        "Europe/../../etc/passwd",
        "Europe/Berlin Mitte",
        "+01:00",
        "Europe/Abcdefghijklmno",
    ] {
        let error = TimeZoneName::parse(bad).expect_err(bad);
        assert_eq!(error.field, "timeZone", "{bad}");
        assert_eq!(
            error.message, "must be an IANA time zone name such as Europe/Berlin or UTC",
            "{bad}"
        );
    }
}

#[test]
fn a_display_name_is_trimmed_and_has_no_control_characters() {
    assert_eq!(
        DisplayName::parse("  Ann Lee ").expect("valid").as_str(),
        "Ann Lee"
    );
    assert!(DisplayName::parse(&"é".repeat(200)).is_ok());
    for bad in ["", "   ", "Ann\nLee", "Ann\u{7}"] {
        assert_eq!(DisplayName::parse(bad).expect_err(bad).field, "displayName");
    }
    assert!(DisplayName::parse(&"é".repeat(201)).is_err());
}

#[test]
fn an_absent_field_is_kept_and_a_null_one_cleared() {
    let parsed = update(r#"{"userId":"ann","email":null,"locale":"de-de"}"#);
    assert_eq!(parsed.user, user("ann"));
    assert_eq!(parsed.email, Patch::Clear);
    assert_eq!(
        parsed.locale,
        Patch::Set(Locale::parse("de-DE").expect("locale"))
    );
    assert_eq!(parsed.phone, Patch::Keep);
    assert_eq!(parsed.display_name, Patch::Keep);
    assert_eq!(parsed.time_zone, Patch::Keep);
    assert!(serde_json::from_str::<RecipientInput>(r#"{"userId":"ann","emial":"x"}"#).is_err());
    let err = serde_json::from_str::<RecipientInput>(r#"{"userId":"ann","phone":"123"}"#)
        .expect("an input line")
        .parse()
        .expect_err("a bad phone");
    assert_eq!(err.field, "phone");
    let err = serde_json::from_str::<RecipientInput>(r#"{"userId":"two words"}"#)
        .expect("an input line")
        .parse()
        .expect_err("a bad user id");
    assert_eq!(err.field, "userId");
}

#[test]
fn a_new_profile_is_one_event_naming_its_fields_and_one_write() {
    let plan =
        upsert(&[r#"{"userId":"ann","email":"ann@example.com","timeZone":"Europe/Berlin"}"#])
            .plan(&Directory::new());
    assert_eq!(
        plan.events,
        [changed(
            "ann",
            &[ProfileField::Email, ProfileField::TimeZone]
        )]
    );
    assert_eq!(plan.events[0].stream_id(), "recipient-ann");
    assert_eq!(plan.events[0].type_name(), "recipient.profile_changed");
    assert_eq!(
        plan.writes,
        [DirectoryWrite::Put(
            user("ann"),
            Profile {
                email: Some(email("ann@example.com")),
                time_zone: Some(TimeZoneName::parse("Europe/Berlin").expect("zone")),
                ..Profile::default()
            }
        )]
    );
}

#[test]
fn an_update_changes_only_the_fields_it_gives_and_names_only_those_that_differ() {
    let stored = Profile {
        display_name: Some(DisplayName::parse("Ann").expect("name")),
        email: Some(email("ann@example.com")),
        locale: Some(Locale::parse("de").expect("locale")),
        ..Profile::default()
    };
    let directory = Directory::from([(user("ann"), stored.clone())]);
    // The same email again, the locale cleared, a phone set; the name left out.
    let plan = upsert(&[
        r#"{"userId":"ann","email":"ann@EXAMPLE.com","locale":null,"phone":"+4915112345678"}"#,
    ])
    .plan(&directory);
    assert_eq!(
        plan.events,
        [changed("ann", &[ProfileField::Phone, ProfileField::Locale])]
    );
    assert_eq!(
        plan.writes,
        [DirectoryWrite::Put(
            user("ann"),
            Profile {
                phone: Some(PhoneNumber::parse("+4915112345678").expect("phone")),
                locale: None,
                ..stored.clone()
            }
        )]
    );
    // What changes nothing records nothing and writes nothing.
    let unchanged = upsert(&[
        r#"{"userId":"ann","email":"ann@example.com","phone":null}"#,
        r#"{"userId":"bob","email":null}"#,
    ])
    .plan(&directory);
    assert_eq!(unchanged, Plan::default());
}

#[test]
fn updates_of_one_person_in_one_call_apply_in_order() {
    let plan = upsert(&[
        r#"{"userId":"ann","email":"ann@example.com"}"#,
        r#"{"userId":"bob","locale":"en"}"#,
        r#"{"userId":"ann","email":"ann@example.org","displayName":"Ann"}"#,
    ])
    .plan(&Directory::new());
    assert_eq!(
        plan.events,
        [
            changed("ann", &[ProfileField::Email]),
            changed("bob", &[ProfileField::Locale]),
            changed("ann", &[ProfileField::DisplayName, ProfileField::Email]),
        ]
    );
    let writes: Vec<(&UserId, Option<&str>)> = plan
        .writes
        .iter()
        .map(|w| match w {
            DirectoryWrite::Put(u, p) => (u, p.email.as_ref().map(EmailAddress::as_str)),
            DirectoryWrite::Remove(u) => panic!("removed {u}"),
        })
        .collect();
    assert_eq!(
        writes,
        [
            (&user("ann"), Some("ann@example.org")),
            (&user("bob"), None)
        ],
        "one write per person, with the last update applied"
    );
}

#[test]
fn erasing_a_stored_profile_removes_it_and_erasing_none_does_nothing() {
    let erase = RecipientCommand::Erase(EraseRecipient {
        user: user("ann"),
        at: at(),
    });
    let directory = Directory::from([(user("ann"), Profile::default())]);
    let plan = erase.plan(&directory);
    assert_eq!(
        plan.events,
        [Event::Recipient(RecipientEvent::Erased(RecipientErased {
            user: user("ann"),
            at: at(),
        }))]
    );
    assert_eq!(plan.events[0].type_name(), "recipient.erased");
    assert_eq!(plan.writes, [DirectoryWrite::Remove(user("ann"))]);
    assert_eq!(erase.plan(&Directory::new()), Plan::default());
    assert_eq!(erase.users(), [user("ann")]);
}

#[test]
fn the_logged_event_names_fields_never_their_values_and_reads_back() {
    let plan = upsert(&[
        r#"{"userId":"ann","email":"ann@example.com","phone":"+4915112345678","displayName":"Ann Lee","locale":"de-DE","timeZone":"Europe/Berlin"}"#,
    ])
    .plan(&Directory::new());
    let event = &plan.events[0];
    let json = event.to_raw_json();
    for value in [
        "ann@example.com",
        "4915112345678",
        "Ann Lee",
        "de-DE",
        "Europe/Berlin",
    ] {
        assert!(!json.get().contains(value), "{value} is in {}", json.get());
    }
    let data: serde_json::Value = serde_json::from_str(json.get()).expect("JSON");
    assert_eq!(
        data["fields"],
        serde_json::json!(["display_name", "email", "phone", "locale", "time_zone"])
    );
    let decoded = Event::decode(event.type_name(), Event::VERSION, json.get()).expect("decodes");
    assert_eq!(decoded.as_ref(), Some(event));
    assert_eq!(decoded.and_then(|e| e.user().cloned()), Some(user("ann")));
}
