//! The GraphQL schema: queries, mutations and subscriptions over the engine, the read model
//! and the live hub. It knows nothing about HTTP: transports pass the caller's
//! [`Principal`] as request data.

mod channels;
mod digest;
mod endpoints;
pub mod guard;
mod mutation;
mod observe;
mod query;
mod quiet;
mod recipients;
mod scheduled;
mod subscription;
pub mod types;

use async_graphql::{Context, MergedObject, Schema};

pub use channels::ChannelQuery;
pub use digest::{DigestMutation, DigestQuery};
pub use endpoints::{EndpointMutation, EndpointQuery};
pub use mutation::Mutation;
pub use observe::{Exchange, Observe};
pub use query::Query;
pub use quiet::{QuietMutation, QuietQuery};
pub use recipients::{RecipientMutation, RecipientQuery};
pub use scheduled::{ScheduledMutation, ScheduledQuery};
pub use subscription::Subscription;

use super::error::ApiError;
use crate::auth::{Principal, Scope, Service};
use crate::domain::{Channel, UserId};
use crate::engine::Engine;
use crate::eventlog::Metadata;
use crate::live::LiveHub;
use crate::metrics::Metrics;

/// The schema type every transport executes against.
pub type BelfrySchema = Schema<QueryRoot, MutationRoot, Subscription>;

// Every query: the inbox's and operators' (`Query`), the recipient directory's, the
// channels delivered here, the webhook endpoints', quiet hours, scheduled sends and digests. Plain
// comments, as a doc comment would become the root type's description in the schema.
#[derive(MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    Query,
    RecipientQuery,
    ChannelQuery,
    EndpointQuery,
    QuietQuery,
    ScheduledQuery,
    DigestQuery,
);

// Every mutation: sends and inbox changes (`Mutation`), the recipient directory's, the
// webhook endpoints', quiet hours, scheduled sends and digests.
#[derive(MergedObject)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    Mutation,
    RecipientMutation,
    EndpointMutation,
    QuietMutation,
    ScheduledMutation,
    DigestMutation,
);

fn roots() -> (QueryRoot, MutationRoot, Subscription) {
    (
        QueryRoot(
            Query,
            RecipientQuery,
            ChannelQuery,
            EndpointQuery,
            QuietQuery,
            ScheduledQuery,
            DigestQuery,
        ),
        MutationRoot(
            Mutation,
            RecipientMutation,
            EndpointMutation,
            QuietMutation,
            ScheduledMutation,
            DigestMutation,
        ),
        Subscription,
    )
}

/// What resolvers share.
#[derive(Clone)]
pub struct ApiContext {
    pub engine: Engine,
    pub hub: LiveHub,
    /// The largest page a connection returns.
    pub max_page: usize,
    /// The channels delivered here: in-app, and the external ones configured.
    pub channels: Vec<Channel>,
    /// The routes and throttle of each category whose sends name none.
    pub defaults: std::sync::Arc<crate::domain::send_input::SendDefaults>,
    /// The webhook endpoints configured here.
    pub webhooks: std::sync::Arc<[crate::delivery::webhook::WebhookEndpoint]>,
    /// The time every change the API makes is stamped with.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// Limits on what a single request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest field nesting.
    pub depth: usize,
    pub complexity: usize,
    /// Checked before parsing and validation (see [`guard`]).
    pub document: guard::DocumentLimits,
}

/// Builds the schema with its limits and the error/metrics extension.
pub fn build(context: ApiContext, limits: Limits, metrics: Metrics) -> BelfrySchema {
    let (query, mutation, subscription) = roots();
    Schema::build(query, mutation, subscription)
        .data(context)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .extension(Observe::new(metrics, limits.document))
        .finish()
}

/// The SDL the server serves (and `schema.graphql` holds).
pub fn sdl() -> String {
    let (query, mutation, subscription) = roots();
    Schema::build(query, mutation, subscription).finish().sdl()
}

fn api<'a>(ctx: &Context<'a>) -> &'a ApiContext {
    // Every schema is built by `build`, which always provides the context.
    ctx.data_opt::<ApiContext>()
        .unwrap_or_else(|| unreachable!("the schema is built with its ApiContext"))
}

fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    ctx.data_opt::<Principal>().unwrap_or(&Principal::Anonymous)
}

/// The signed-in person; services and anonymous callers are refused.
fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a UserId, ApiError> {
    match principal(ctx) {
        Principal::User(user) => Ok(user),
        Principal::Anonymous => Err(ApiError::Unauthenticated(
            "sign in: send a user token as `Authorization: Bearer <jwt>`".to_owned(),
        )),
        Principal::Service(_) => Err(ApiError::Forbidden(
            "this needs a user token; API keys cannot read or change an inbox".to_owned(),
        )),
    }
}

/// The calling service, if its key has `scope`.
fn service<'a>(ctx: &Context<'a>, scope: Scope) -> Result<&'a Service, ApiError> {
    match principal(ctx) {
        Principal::Service(s) if s.has(scope) => Ok(s),
        Principal::Service(_) => Err(ApiError::Forbidden(format!(
            "this API key lacks the `{scope}` scope"
        ))),
        Principal::User(_) => Err(ApiError::Forbidden(format!(
            "this needs an API key with the `{scope}` scope"
        ))),
        Principal::Anonymous => Err(ApiError::Unauthenticated(format!(
            "send an API key with the `{scope}` scope as `Authorization: Bearer <key>`"
        ))),
    }
}

fn metadata(ctx: &Context<'_>) -> Metadata {
    Metadata {
        actor: principal(ctx).actor(),
        correlation_id: Some(crate::clock::ordered_id()),
        ..Metadata::default()
    }
}
