//! `deliveryChannels`: the channels a person's preferences panel offers are the ones this
//! server delivers on: in-app always, email with `[smtp]`, webhooks with a `[[webhooks]]`
//! endpoint.

use belfry::delivery::email::SmtpSettings;
use belfry::delivery::webhook::WebhookEndpoint;
use serde_json::{json, Value};

use crate::app::{code, spawn_app, spawn_app_with, TestApp};
use crate::helpers::Backend;
use crate::webhook::secret;

const CHANNELS: &str = "{ deliveryChannels }";

/// SMTP settings for a server nobody connects to: nothing is sent in these tests.
fn smtp() -> SmtpSettings {
    serde_json::from_value(json!({
        "host": "127.0.0.1", "port": 2525, "tls": "none", "from": "Belfry <noreply@belfry.test>"
    }))
    .expect("valid SMTP settings")
}

fn endpoint() -> WebhookEndpoint {
    serde_json::from_value(json!({ "url": "http://127.0.0.1:9/hooks", "secrets": [secret(7)] }))
        .expect("a valid endpoint")
}

/// The channels `user` is offered, as the inbox reads them.
async fn offered(app: &TestApp, user: &str) -> Value {
    app.data(&app.token(user), CHANNELS, json!({})).await["deliveryChannels"].clone()
}

async fn a_server_without_smtp_or_webhooks_offers_only_in_app(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    assert_eq!(offered(&app, "ann").await, json!(["IN_APP"]));
    let body = app.graphql(Some(&app.key), CHANNELS, json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = app.graphql(None, CHANNELS, json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
}

async fn email_is_offered_once_smtp_is_configured(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.smtp = Some(smtp())).await else {
        return;
    };
    assert_eq!(offered(&app, "ann").await, json!(["IN_APP", "EMAIL"]));
}

async fn webhooks_are_offered_once_an_endpoint_is_configured(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.webhooks = vec![endpoint()]).await else {
        return;
    };
    assert_eq!(offered(&app, "ann").await, json!(["IN_APP", "WEBHOOK"]));
}

async fn with_both_configured_every_delivered_channel_is_offered(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.smtp = Some(smtp());
        s.webhooks = vec![endpoint()];
    })
    .await
    else {
        return;
    };
    assert_eq!(
        offered(&app, "ann").await,
        json!(["IN_APP", "EMAIL", "WEBHOOK"])
    );
}

crate::on_both_backends!(
    a_server_without_smtp_or_webhooks_offers_only_in_app,
    email_is_offered_once_smtp_is_configured,
    webhooks_are_offered_once_an_endpoint_is_configured,
    with_both_configured_every_delivered_channel_is_offered,
);
