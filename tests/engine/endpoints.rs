//! A webhook endpoint that answers 410 Gone is disabled, as a fact in the log: its later
//! deliveries fail without a request, admins see it in `webhookEndpoints`, and once one
//! enables it again a retried delivery goes out.

use serde_json::{json, Value};

use crate::app::spawn_app_with;
use crate::deliver::{send, settled};
use crate::helpers::Backend;
use crate::webhook::{secret, Receiver};

const ENDPOINTS: &str = "{ webhookEndpoints { name origin categories enabled disabledAt \
    disabledByDelivery disabledError } }";

const DELIVERIES: &str = "query($id: ID!) { deliveries(notificationId: $id) { id status \
    attempts lastError } }";

async fn first_delivery(app: &crate::app::TestApp, id: &str) -> Value {
    app.data(&app.key, DELIVERIES, json!({ "id": id })).await["deliveries"][0].clone()
}

async fn a_webhook_endpoint_that_answers_gone_is_disabled_until_an_admin_enables_it(
    backend: Backend,
) {
    // The first request is answered 410 Gone; any later one, 200.
    let receiver = Receiver::start_with(&[&secret(30)], &["--faults", "1"]);
    let url = receiver.url("/gone");
    let Some(app) = spawn_app_with(backend, |s| {
        s.webhooks = vec![serde_json::from_value(json!({
            "name": "ops-hooks", "url": url, "secrets": [secret(30)], "timeout_ms": 2000
        }))
        .expect("an endpoint")];
    })
    .await
    else {
        return;
    };
    let listed = app.data(&app.key, ENDPOINTS, json!({})).await;
    assert_eq!(listed["webhookEndpoints"][0]["name"], "ops-hooks");
    assert_eq!(listed["webhookEndpoints"][0]["enabled"], true);
    assert_eq!(
        listed["webhookEndpoints"][0]["origin"],
        url.trim_end_matches("/gone"),
        "the origin only: a path can hold a token"
    );

    let first = send(
        &app,
        &["ann"],
        "Stock low",
        json!([{ "channel": "WEBHOOK" }]),
    )
    .await;
    receiver.next();
    let gone = settled(&app, &first[0], "failed").await;
    assert_eq!(gone["attempts"], 1);
    let listed = app.data(&app.key, ENDPOINTS, json!({})).await;
    let hook = &listed["webhookEndpoints"][0];
    assert_eq!(hook["enabled"], false, "{hook}");
    assert_eq!(hook["disabledByDelivery"], gone["id"], "{hook}");
    assert!(
        hook["disabledError"]
            .as_str()
            .is_some_and(|e| e.contains("410")),
        "{hook}"
    );

    // Disabled: the next delivery fails at once, and nothing reaches the endpoint.
    let second = send(
        &app,
        &["bob"],
        "Stock low",
        json!([{ "channel": "WEBHOOK" }]),
    )
    .await;
    let refused = settled(&app, &second[0], "failed").await;
    assert_eq!(refused["attempts"], 0, "no attempt was made: {refused}");
    assert!(
        refused["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("ops-hooks is disabled")),
        "{refused}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(receiver.try_next().is_none(), "nothing was sent to it");

    // Only admins see or change endpoints.
    let sender = app.key_with(&[belfry::auth::Scope::Send]).await;
    let (_, body) = app.post(Some(&sender), json!({ "query": ENDPOINTS })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );

    let enable = "mutation($name: String!) { enableWebhookEndpoint(name: $name) { name enabled \
        disabledAt } }";
    let (_, body) = app
        .post(
            Some(&app.key),
            json!({ "query": enable, "variables": { "name": "nope" } }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
    let enabled = app
        .data(&app.key, enable, json!({ "name": "ops-hooks" }))
        .await;
    assert_eq!(enabled["enableWebhookEndpoint"]["enabled"], true);
    assert!(enabled["enableWebhookEndpoint"]["disabledAt"].is_null());
    let again = app
        .data(&app.key, enable, json!({ "name": "ops-hooks" }))
        .await;
    assert_eq!(
        again["enableWebhookEndpoint"]["enabled"], true,
        "enabling twice changes nothing"
    );

    // The delivery refused while it was disabled goes out when retried.
    app.data(
        &app.key,
        "mutation($id: ID!) { retryDelivery(id: $id) { status } }",
        json!({ "id": refused["id"] }),
    )
    .await;
    let got = receiver.next();
    assert_eq!(got["verified"], json!([true]), "{got}");
    assert_eq!(got["id"], refused["id"], "{got}");
    settled(&app, &second[0], "succeeded").await;
    assert_eq!(first_delivery(&app, &second[0]).await["attempts"], 1);

    // From the shell: list shows it enabled; after another 410 it is disabled again, and
    // `enable` turns it back on.
    let config = app.store.dir().join("hooks.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"ops-hooks\"\nurl = \"{url}\"\nsecrets = [\"{}\"]\n",
            secret(30)
        ),
    )
    .expect("write the config");
    let config = config.to_str().expect("a path");
    let listed =
        crate::cli::belfry(&app.store.url, &["--config", config, "webhooks", "list"]).await;
    assert_eq!(listed.code(), Some(0), "{}", listed.stderr);
    let line: Value = serde_json::from_str(listed.stdout.trim()).expect("one JSON line");
    assert_eq!(line["name"], "ops-hooks");
    assert_eq!(line["enabled"], true);
    let unknown = crate::cli::belfry(
        &app.store.url,
        &["--config", config, "webhooks", "enable", "x"],
    )
    .await;
    assert_eq!(unknown.code(), Some(2), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no webhook endpoint named \"x\""),
        "{}",
        unknown.stderr
    );
    let enabled = crate::cli::belfry(
        &app.store.url,
        &["--config", config, "webhooks", "enable", "ops-hooks"],
    )
    .await;
    assert_eq!(enabled.code(), Some(0), "{}", enabled.stderr);
    assert!(
        enabled.stdout.contains("was enabled already"),
        "{}",
        enabled.stdout
    );

    // The facts of the endpoint are in its own stream, in the log.
    let types: Vec<String> = app
        .store
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.stream_id == "webhook-ops-hooks")
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["webhook.disabled", "webhook.enabled"]);
}

crate::on_both_backends!(
    a_webhook_endpoint_that_answers_gone_is_disabled_until_an_admin_enables_it,
);

/// Two endpoints under one name would share one state: the server refuses to start.
#[tokio::test]
async fn two_webhook_endpoints_with_one_name_are_refused() {
    let Some(store) = crate::helpers::TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let mut settings = crate::app::test_settings(&store);
    let hook = |url: &str| {
        serde_json::from_value(json!({ "name": "same", "url": url, "secrets": [secret(31)] }))
            .expect("an endpoint")
    };
    settings.webhooks = vec![hook("http://127.0.0.1:1/a"), hook("http://127.0.0.1:1/b")];
    let error = belfry::app::Application::build(&settings)
        .await
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("named \"same\""), "{error:#}");
}

/// A name that is not a short lowercase word is refused as the configuration is read, and an
/// endpoint without one gets a stable name from its host that does not show its path.
#[test]
fn webhook_endpoint_names_are_checked_and_derived_from_the_host() {
    let parsed = |name: Value| {
        serde_json::from_value::<belfry::delivery::webhook::WebhookEndpoint>(json!({
            "name": name, "url": "https://Hooks.Example.com/T0/B0/token", "secrets": [secret(32)]
        }))
    };
    let error = parsed(json!("Ops Hooks")).expect_err("refused").to_string();
    assert!(error.contains("name must be 1 to 64"), "{error}");
    let derived = parsed(Value::Null).expect("an endpoint");
    let name = derived.name().as_str().to_owned();
    assert!(name.starts_with("hooks.example.com-"), "{name}");
    assert_eq!(name.len(), "hooks.example.com-".len() + 8, "{name}");
    assert!(!name.contains("token"));
    assert_eq!(
        parsed(Value::Null).expect("again").name().as_str(),
        name,
        "stable"
    );
}
