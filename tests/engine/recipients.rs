//! The recipient directory: contact points set and read by services, bulk and partial
//! updates, erasure that leaves no address behind, the CLI import, and export/import.

use belfry::delivery::Contact;
use belfry::eventlog::Db;
use serde_json::{json, Value};

use crate::app::{code, spawn_app, TestApp};
use crate::cli::belfry;
use crate::helpers::{assert_replay_finds_no_differences, user, Backend, TestStore};

const FIELDS: &str = "userId displayName email phone locale timeZone updatedAt";

fn upsert_query() -> String {
    format!(
        "mutation($r: [RecipientInput!]!) {{ upsertRecipients(recipients: $r) {{ {FIELDS} }} }}"
    )
}

fn get_query() -> String {
    format!("query($u: String!) {{ recipient(userId: $u) {{ {FIELDS} }} }}")
}

const DELETE: &str = "mutation($u: String!) { deleteRecipient(userId: $u) }";
const HISTORY: &str =
    "query($u: String!) { recipientHistory(userId: $u) { type streamId data metadata } }";

async fn upsert(app: &TestApp, recipients: Value) -> Value {
    app.data(&app.key, &upsert_query(), json!({ "r": recipients }))
        .await["upsertRecipients"]
        .clone()
}

async fn get(app: &TestApp, who: &str) -> Value {
    app.data(&app.key, &get_query(), json!({ "u": who })).await["recipient"].clone()
}

/// Every event of the log and every line of an export, as text.
async fn log_and_export(store: &TestStore) -> String {
    let mut text: String = store
        .all_events()
        .await
        .iter()
        .map(|e| format!("{} {:?} {:?}\n", e.event_type, e.data, e.metadata))
        .collect();
    let mut export = Vec::new();
    belfry::transfer::export(&store.db, &mut export)
        .await
        .expect("export");
    text.push_str(&String::from_utf8(export).expect("utf-8"));
    text
}

async fn a_service_sets_contact_points_and_reads_them_back(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let stored = upsert(
        &app,
        json!([{
            "userId": "ann",
            "displayName": "  Ann Lee ",
            "email": "Ann.Lee@Example.COM",
            "phone": "+49 151 1234-5678",
            "locale": "de_de",
            "timeZone": "Europe/Berlin",
        }]),
    )
    .await;
    let ann = &stored[0];
    assert_eq!(ann["userId"], "ann");
    assert_eq!(ann["displayName"], "Ann Lee");
    assert_eq!(
        ann["email"], "Ann.Lee@example.com",
        "the domain is lowercased"
    );
    assert_eq!(ann["phone"], "+4915112345678");
    assert_eq!(ann["locale"], "de-DE");
    assert_eq!(ann["timeZone"], "Europe/Berlin");
    assert_eq!(get(&app, "ann").await, *ann, "read back as stored");
    assert_eq!(get(&app, "bob").await, Value::Null, "nobody set bob's");

    // The key with only the `admin` scope may do the same; the delivery layer reads it too.
    let admin = app.key_with(&[belfry::auth::Scope::Admin]).await;
    let read = app.data(&admin, &get_query(), json!({ "u": "ann" })).await;
    assert_eq!(read["recipient"]["email"], "Ann.Lee@example.com");
    let contact = belfry::recipients::contact(&app.store.db, &user("ann"))
        .await
        .expect("contact");
    assert_eq!(
        contact,
        Some(Contact {
            display_name: Some("Ann Lee".into()),
            email: Some("Ann.Lee@example.com".into()),
            phone: Some("+4915112345678".into()),
            locale: Some("de-DE".into()),
            time_zone: Some("Europe/Berlin".into()),
        })
    );
    assert_eq!(
        belfry::recipients::contact(&app.store.db, &user("bob"))
            .await
            .expect("contact"),
        None
    );
    assert_replay_finds_no_differences(&app.store.db).await;
}

async fn an_update_sets_the_given_fields_clears_the_null_ones_and_keeps_the_rest(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    upsert(
        &app,
        json!([{ "userId": "ann", "displayName": "Ann", "email": "ann@example.com", "locale": "en" }]),
    )
    .await;
    let before = app.log_len().await;
    let after = upsert(
        &app,
        json!([{ "userId": "ann", "email": null, "phone": "+4915112345678" }]),
    )
    .await;
    assert_eq!(after[0]["displayName"], "Ann", "left out: kept");
    assert_eq!(after[0]["locale"], "en", "left out: kept");
    assert_eq!(after[0]["email"], Value::Null, "null: cleared");
    assert_eq!(after[0]["phone"], "+4915112345678");
    assert_eq!(app.log_len().await, before + 1);

    // The same values again change nothing, and nothing is recorded.
    let again = upsert(
        &app,
        json!([{ "userId": "ann", "phone": "+4915112345678", "email": null }]),
    )
    .await;
    assert_eq!(again, after);
    assert_eq!(app.log_len().await, before + 1);
}

async fn one_bad_entry_refuses_the_whole_call_and_names_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let entries = json!([
        { "userId": "ann", "email": "ann@example.com" },
        { "userId": "bob", "timeZone": "Europe/Berlin" },
        { "userId": "carol", "locale": "de" },
        { "userId": "dave", "email": "dave at example.com" },
    ]);
    let body = app
        .graphql(Some(&app.key), &upsert_query(), json!({ "r": entries }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "recipients[3].email"
    );
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(app.log_len().await, 0, "nothing was recorded");
    for who in ["ann", "bob", "carol", "dave"] {
        assert_eq!(get(&app, who).await, Value::Null, "{who} was stored");
    }

    let body = app
        .graphql(
            Some(&app.key),
            &upsert_query(),
            json!({ "r": [{ "userId": "ann" }, { "userId": "bob", "timeZone": "Mars/Olympus Mons" }] }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "recipients[1].timeZone"
    );

    let many: Vec<Value> = (0..1_001)
        .map(|i| json!({ "userId": format!("u{i}"), "locale": "en" }))
        .collect();
    let body = app
        .graphql(Some(&app.key), &upsert_query(), json!({ "r": many }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "recipients");

    // A call of exactly the limit goes through, all in one.
    let many: Vec<Value> = (0..1_000)
        .map(|i| json!({ "userId": format!("u{i}"), "locale": "en" }))
        .collect();
    let stored = upsert(&app, Value::Array(many)).await;
    assert_eq!(stored.as_array().map(Vec::len), Some(1_000));
    assert_eq!(app.log_len().await, 1_000);
}

async fn a_user_token_cannot_read_or_change_the_directory(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    upsert(
        &app,
        json!([{ "userId": "ann", "email": "ann@example.com" }]),
    )
    .await;
    let token = app.token("ann");
    for (query, variables) in [
        (get_query(), json!({ "u": "ann" })),
        (
            upsert_query(),
            json!({ "r": [{ "userId": "ann", "email": null }] }),
        ),
        (DELETE.to_owned(), json!({ "u": "ann" })),
    ] {
        let body = app.graphql(Some(&token), &query, variables.clone()).await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
        let body = app.graphql(None, &query, variables).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    assert_eq!(get(&app, "ann").await["email"], "ann@example.com");
}

async fn the_audit_trail_says_which_fields_changed_and_never_their_values(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    upsert(
        &app,
        json!([{ "userId": "ann", "email": "ann.secret@example.com", "phone": "+4915199999999" }]),
    )
    .await;
    upsert(
        &app,
        json!([{ "userId": "ann", "phone": null, "displayName": "Ann Secretname" }]),
    )
    .await;
    let history = app.data(&app.key, HISTORY, json!({ "u": "ann" })).await;
    let events = history["recipientHistory"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{history}");
    for event in events {
        assert_eq!(event["type"], "recipient.profile_changed");
        assert_eq!(event["streamId"], "recipient-ann");
        assert_eq!(event["data"]["user"], "ann");
        assert!(event["metadata"]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("service:")));
    }
    assert_eq!(events[0]["data"]["fields"], json!(["email", "phone"]));
    assert_eq!(
        events[1]["data"]["fields"],
        json!(["display_name", "phone"])
    );
    let logged = log_and_export(&app.store).await;
    assert!(logged.contains("recipient.profile_changed"));
    let events_only = &logged[..logged.find("{\"recipient\"").expect("a directory line")];
    for secret in ["ann.secret", "4915199999999", "Secretname"] {
        assert!(
            !events_only.contains(secret),
            "{secret} is in the log: {events_only}"
        );
    }
    // The admin scope is needed for the trail.
    let sender = app.key_with(&[belfry::auth::Scope::Send]).await;
    let body = app
        .graphql(Some(&sender), HISTORY, json!({ "u": "ann" }))
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
}

/// Whether the store's files hold `needle`: the SQLite database and its write-ahead log,
/// after a checkpoint has moved every committed page into the database.
async fn sqlite_files_hold(store: &TestStore, needle: &str) -> bool {
    store
        .execute_raw("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .expect("checkpoint");
    let mut held = false;
    for entry in std::fs::read_dir(store.dir()).expect("store dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read a store file");
        held |= bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    }
    held
}

async fn deleting_a_recipient_erases_their_contact_points_for_good(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    upsert(
        &app,
        json!([
            { "userId": "ann", "email": "ann.erasable@example.com", "phone": "+4915188888888" },
            { "userId": "bob", "email": "bob@example.com" },
        ]),
    )
    .await;
    let store = &app.store;
    if backend == Backend::Sqlite {
        assert!(
            sqlite_files_hold(store, "ann.erasable").await,
            "the check finds an address that is stored"
        );
    }
    let deleted = app.data(&app.key, DELETE, json!({ "u": "ann" })).await;
    assert_eq!(deleted["deleteRecipient"], true);
    assert_eq!(get(&app, "ann").await, Value::Null);
    assert_eq!(
        get(&app, "bob").await["email"],
        "bob@example.com",
        "bob's stays"
    );
    let again = app.data(&app.key, DELETE, json!({ "u": "ann" })).await;
    assert_eq!(again["deleteRecipient"], false, "nothing left to erase");

    let history = app.data(&app.key, HISTORY, json!({ "u": "ann" })).await;
    let types: Vec<&str> = history["recipientHistory"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types, ["recipient.profile_changed", "recipient.erased"]);

    let logged = log_and_export(store).await;
    assert!(
        logged.contains("bob@example.com"),
        "the export carries bob's"
    );
    for gone in ["ann.erasable", "4915188888888"] {
        assert!(!logged.contains(gone), "{gone} is still in: {logged}");
        if backend == Backend::Sqlite {
            assert!(
                !sqlite_files_hold(store, gone).await,
                "{gone} is still in the database files"
            );
        }
    }
    assert_replay_finds_no_differences(&store.db).await;
}

async fn the_cli_imports_an_ndjson_file_all_or_nothing_and_gets_and_deletes(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let file = store.dir().join("people.ndjson");
    let path = file.to_str().expect("utf-8 path");
    std::fs::write(
        &file,
        concat!(
            "{\"userId\":\"ann\",\"email\":\"ann@example.com\",\"timeZone\":\"Europe/Berlin\"}\n",
            "\n",
            "{\"userId\":\"bob\",\"phone\":\"+4915112345678\"}\n",
            "{\"userId\":\"carol\",\"locale\":\"klingon-tlh\"}\n",
            "{\"userId\":\"dave\",\"emial\":\"dave@example.com\"}\n",
        ),
    )
    .expect("write the file");
    let refused = belfry(&store.url, &["recipients", "import", path]).await;
    refused.assert_failure();
    assert!(
        refused
            .stderr
            .contains("refused 2 of its lines; nothing was imported"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("line 4: locale:"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("line 5: not a recipient") && refused.stderr.contains("emial"),
        "{}",
        refused.stderr
    );
    assert!(
        store.all_events().await.is_empty(),
        "a refused import wrote events"
    );
    assert_eq!(
        belfry::recipients::get(&store.db, &user("ann"))
            .await
            .expect("read"),
        None
    );

    let mut lines: Vec<String> = (0..1_500)
        .map(|i| format!("{{\"userId\":\"u{i}\",\"locale\":\"en\"}}"))
        .collect();
    lines.push("{\"userId\":\"ann\",\"email\":\"ann@example.com\",\"displayName\":\"Ann\"}".into());
    lines.push("{\"userId\":\"ann\",\"displayName\":null}".into());
    std::fs::write(&file, lines.join("\n")).expect("write the file");
    let imported = belfry(&store.url, &["recipients", "import", path]).await;
    imported.assert_success();
    assert!(
        imported.stdout.contains("imported 1502 recipients")
            && imported.stdout.contains("1502 profiles changed"),
        "{}",
        imported.stdout
    );
    // Again: the same values change nothing, but ann's two lines still set and then clear
    // her name, in order.
    let again = belfry(&store.url, &["recipients", "import", path]).await;
    again.assert_success();
    assert!(
        again.stdout.contains("(2 profiles changed)"),
        "{}",
        again.stdout
    );

    let got = belfry(&store.url, &["recipients", "get", "ann"]).await;
    got.assert_success();
    let json: Value = serde_json::from_str(got.stdout.trim()).expect("JSON");
    assert_eq!(json["userId"], "ann");
    assert_eq!(json["email"], "ann@example.com");
    assert_eq!(
        json["displayName"],
        Value::Null,
        "the later line cleared it"
    );
    let got = belfry(&store.url, &["recipients", "get", "u1499"]).await;
    got.assert_success();
    assert!(got.stdout.contains("\"locale\":\"en\""), "{}", got.stdout);

    let deleted = belfry(&store.url, &["recipients", "delete", "ann"]).await;
    deleted.assert_success();
    assert!(deleted.stdout.contains("erased"), "{}", deleted.stdout);
    let missing = belfry(&store.url, &["recipients", "get", "ann"]).await;
    missing.assert_failure();
    assert!(
        missing.stderr.contains("no profile for ann"),
        "{}",
        missing.stderr
    );
    assert_replay_finds_no_differences(&store.db).await;
}

/// Every entry of the directory, through the export's own reader.
async fn directory(db: &Db) -> Vec<belfry::recipients::Recipient> {
    belfry::recipients::page_after(db, None, 10_000)
        .await
        .expect("read the directory")
}

async fn set_profiles(store: &TestStore) {
    let engine = store.engine().await;
    let update = |line: &str| {
        serde_json::from_str::<belfry::domain::recipient::RecipientInput>(line)
            .expect("input")
            .parse()
            .expect("valid")
    };
    let command = |lines: &[&str]| {
        belfry::domain::Command::Recipients(belfry::domain::recipient::RecipientCommand::Upsert(
            belfry::domain::recipient::UpsertRecipients {
                updates: lines.iter().map(|l| update(l)).collect(),
                at: belfry::clock::now(),
            },
        ))
    };
    engine.send(&["ann", "bob"], "builds", "Build failed").await;
    engine
        .run(command(&[
            r#"{"userId":"ann","email":"ann@example.com","displayName":"Ann Lee","phone":"+4915112345678","locale":"de-DE","timeZone":"Europe/Berlin"}"#,
            r#"{"userId":"bob","email":"bob@example.org"}"#,
            r#"{"userId":"erin","locale":"en-GB"}"#,
        ]))
        .await
        .expect("upsert");
    engine
        .run(belfry::domain::Command::Recipients(
            belfry::domain::recipient::RecipientCommand::Erase(
                belfry::domain::recipient::EraseRecipient {
                    user: user("erin"),
                    at: belfry::clock::now(),
                },
            ),
        ))
        .await
        .expect("erase");
    engine.stop().await;
}

async fn export(db: &Db) -> Vec<u8> {
    let mut bytes = Vec::new();
    belfry::transfer::export(db, &mut bytes)
        .await
        .expect("export");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_survive_an_export_and_import_from_sqlite_to_postgres_and_back() {
    let Some(pg) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let Some(sqlite) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    set_profiles(&sqlite).await;
    let profiles = directory(&sqlite.db).await;
    assert_eq!(profiles.len(), 2, "ann and bob; erin was erased");

    let bytes = export(&sqlite.db).await;
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let events = sqlite.all_events().await.len();
    assert_eq!(
        text.lines().count(),
        events + 2,
        "one line per event and per profile"
    );
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["recipient"]["user_id"], "bob");
    assert_eq!(last["recipient"]["email"], "bob@example.org");
    assert_eq!(last["recipient"]["phone"], Value::Null);

    belfry::transfer::import(&pg.db, &bytes[..], |_| {})
        .await
        .expect("import into postgres");
    assert_eq!(directory(&pg.db).await, profiles);
    assert_eq!(pg.all_events().await, sqlite.all_events().await);
    assert_replay_finds_no_differences(&pg.db).await;

    let Some(back) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    belfry::transfer::import(&back.db, &export(&pg.db).await[..], |_| {})
        .await
        .expect("import back into sqlite");
    assert_eq!(directory(&back.db).await, profiles);
    assert_eq!(back.all_events().await, sqlite.all_events().await);
}

async fn an_export_without_directory_lines_still_imports_and_a_bad_line_is_named(backend: Backend) {
    let Some(source) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    set_profiles(&source).await;
    let text = String::from_utf8(export(&source.db).await).expect("utf-8");
    let events: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("{\"recipient\""))
        .collect();
    assert_eq!(events.len(), text.lines().count() - 2);

    let Some(target) = TestStore::new(backend).await else {
        return;
    };
    let bad_email = text.replace("bob@example.org", "bob at example.org");
    let err = belfry::transfer::import(&target.db, bad_email.as_bytes(), |_| {})
        .await
        .expect_err("an invalid address");
    let message = format!("{err:#}");
    let line = text.lines().count();
    assert!(
        message.contains(&format!("line {line} holds an invalid recipient"))
            && message.contains("email"),
        "{message}"
    );
    let repeated = format!("{text}{}\n", text.lines().last().expect("a line"));
    let err = belfry::transfer::import(&target.db, repeated.as_bytes(), |_| {})
        .await
        .expect_err("a repeated recipient");
    assert!(
        format!("{err:#}").contains("repeats the recipient bob"),
        "{err:#}"
    );
    assert!(
        target.all_events().await.is_empty(),
        "a refused import wrote events"
    );

    // An export made before the directory existed: events alone.
    let old = events.join("\n") + "\n";
    let imported = belfry::transfer::import(&target.db, old.as_bytes(), |_| {})
        .await
        .expect("import an export of events alone");
    assert_eq!(imported as usize, events.len());
    assert!(directory(&target.db).await.is_empty());
    assert_replay_finds_no_differences(&target.db).await;
}

crate::on_both_backends!(
    a_service_sets_contact_points_and_reads_them_back,
    an_update_sets_the_given_fields_clears_the_null_ones_and_keeps_the_rest,
    one_bad_entry_refuses_the_whole_call_and_names_it,
    a_user_token_cannot_read_or_change_the_directory,
    the_audit_trail_says_which_fields_changed_and_never_their_values,
    deleting_a_recipient_erases_their_contact_points_for_good,
    the_cli_imports_an_ndjson_file_all_or_nothing_and_gets_and_deletes,
    an_export_without_directory_lines_still_imports_and_a_bad_line_is_named,
);
