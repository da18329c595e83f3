//! Webhook endpoints for operators (API keys with the `admin` scope): which are configured,
//! which one answered 410 Gone and is disabled, and turning one back on.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{api, metadata, service, ApiError};
use crate::auth::Scope;
use crate::delivery::endpoints;
use crate::delivery::webhook::WebhookEndpoint as Configured;
use crate::domain::endpoint::{ChangeEndpoint, EndpointChange, EndpointState};
use crate::domain::Command;

/// One configured webhook endpoint and whether it takes deliveries.
#[derive(SimpleObject)]
pub struct WebhookEndpoint {
    /// Its name: the configured `name`, or one derived from its URL.
    name: String,
    /// Scheme, host and port only: the path of a URL can hold a token.
    origin: String,
    /// The categories it takes; empty: every one.
    categories: Vec<String>,
    /// False after it answered 410 Gone: its deliveries fail without an attempt until an
    /// admin enables it again.
    enabled: bool,
    /// When it was disabled.
    disabled_at: Option<DateTime<Utc>>,
    /// The delivery it answered 410 Gone.
    disabled_by_delivery: Option<async_graphql::ID>,
    /// What it answered.
    disabled_error: Option<String>,
}

impl WebhookEndpoint {
    fn new(endpoint: &Configured, state: EndpointState) -> Self {
        let disabled = state.disabled;
        WebhookEndpoint {
            name: endpoint.name().to_string(),
            origin: endpoint.origin(),
            categories: endpoint
                .categories()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            enabled: disabled.is_none(),
            disabled_at: disabled.as_ref().map(|d| d.at),
            disabled_by_delivery: disabled
                .as_ref()
                .map(|d| async_graphql::ID(d.delivery_id.to_string())),
            disabled_error: disabled.map(|d| d.error),
        }
    }
}

async fn described(ctx: &Context<'_>, endpoint: &Configured) -> Result<WebhookEndpoint> {
    let state = endpoints::state(&api(ctx).engine.log(), endpoint.name())
        .await
        .map_err(ApiError::internal)?;
    Ok(WebhookEndpoint::new(endpoint, state))
}

#[derive(Default)]
pub struct EndpointQuery;

#[Object]
impl EndpointQuery {
    /// Every webhook endpoint configured here, in the configuration's order (API keys with
    /// the `admin` scope).
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpoint>> {
        service(ctx, Scope::Admin)?;
        let mut out = Vec::new();
        for endpoint in api(ctx).webhooks.iter() {
            out.push(described(ctx, endpoint).await?);
        }
        Ok(out)
    }
}

#[derive(Default)]
pub struct EndpointMutation;

#[Object]
impl EndpointMutation {
    /// Turns a webhook endpoint that answered 410 Gone back on (API keys with the `admin`
    /// scope); one already enabled is left as it is. Deliveries that failed while it was
    /// disabled stay failed: `retryDelivery` sends each again.
    async fn enable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<WebhookEndpoint> {
        service(ctx, Scope::Admin)?;
        let api = api(ctx);
        let endpoint = api
            .webhooks
            .iter()
            .find(|e| e.name().as_str() == name)
            .ok_or_else(|| {
                ApiError::NotFound(format!("no webhook endpoint named {name:?} is configured"))
            })?;
        let command = Command::ChangeEndpoint(ChangeEndpoint {
            endpoint: endpoint.name().clone(),
            change: EndpointChange::Enable,
            at: api.clock.now(),
        });
        api.engine
            .execute(command, metadata(ctx))
            .await
            .map_err(ApiError::from)?;
        described(ctx, endpoint).await
    }
}
