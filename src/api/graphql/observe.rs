//! A schema extension that parses documents within the [`guard`] bounds, gives every error
//! an `extensions.code` (parse, validation and input-coercion errors from the GraphQL layer
//! become BAD_USER_INPUT), records requests and errors per operation in the metrics, and
//! keeps the parsed form of documents it has seen, since clients send the same few
//! operations over and over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextSubscribe,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::futures_util::StreamExt;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::registry::Registry;
use async_graphql::{Request, Response, ServerError, ServerResult, Variables};

use super::super::error::code;
use super::super::request_id::RequestId;
use super::guard::{self, DocumentLimits};
use crate::metrics::Metrics;

/// What a transport learns of a request it passes in (as request data): whether execution
/// began (a request that fails to parse or validate never gets there), and, for a transport
/// that takes only queries (HTTP GET), whether it was refused for being something else.
#[derive(Debug, Default)]
pub struct Exchange {
    queries_only: bool,
    executed: AtomicBool,
    not_a_query: AtomicBool,
}

impl Exchange {
    /// For a transport that must not run mutations (or subscriptions).
    pub fn queries_only() -> Self {
        Self {
            queries_only: true,
            ..Self::default()
        }
    }

    pub fn executed(&self) -> bool {
        self.executed.load(Ordering::Relaxed)
    }

    /// The operation was a mutation or a subscription, on a transport that takes only queries.
    pub fn not_a_query(&self) -> bool {
        self.not_a_query.load(Ordering::Relaxed)
    }
}

/// Creates one [`ObserveRequest`] per request.
pub struct Observe {
    metrics: Metrics,
    limits: DocumentLimits,
    documents: Arc<Documents>,
}

impl Observe {
    pub fn new(metrics: Metrics, limits: DocumentLimits) -> Self {
        Self {
            metrics,
            limits,
            documents: Arc::new(Documents::default()),
        }
    }
}

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveRequest {
            metrics: self.metrics.clone(),
            limits: self.limits,
            documents: self.documents.clone(),
            operation_name: Mutex::new(None),
            label: Arc::new(Mutex::new(None)),
            request_id: Arc::new(Mutex::new(None)),
        })
    }
}

/// Documents that parsed within the guard's bounds, by their text. Only parsing and those
/// checks are skipped: every request is still validated against its own variables. The
/// cache holds at most [`Documents::MAX_TOKENS`] tokens in all (a parsed document's size
/// follows its token count) and starts over when full, so many distinct documents cost what
/// they cost without it and never more memory than that.
#[derive(Default)]
struct Documents {
    parsed: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    by_text: HashMap<String, Arc<ExecutableDocument>>,
    tokens: usize,
}

impl Documents {
    /// Tokens kept in all; an application sends a few dozen documents of a few hundred.
    const MAX_TOKENS: usize = 100_000;
    /// Longer documents are parsed every time.
    const MAX_LEN: usize = 16 * 1024;

    fn get(&self, query: &str) -> Option<ExecutableDocument> {
        let found = lock(&self.parsed).by_text.get(query).cloned();
        found.map(|doc| (*doc).clone())
    }

    fn put(&self, query: &str, tokens: usize, doc: &ExecutableDocument) {
        if query.len() > Self::MAX_LEN {
            return;
        }
        let mut cache = lock(&self.parsed);
        if cache.tokens + tokens > Self::MAX_TOKENS {
            cache.by_text.clear();
            cache.tokens = 0;
        }
        cache.tokens += tokens;
        cache
            .by_text
            .insert(query.to_owned(), Arc::new(doc.clone()));
    }
}

struct ObserveRequest {
    metrics: Metrics,
    limits: DocumentLimits,
    documents: Arc<Documents>,
    operation_name: Mutex<Option<String>>,
    /// `query.notifications`, `mutation.sendNotification`, ...: set once the query parsed.
    label: Arc<Mutex<Option<String>>>,
    /// The transport's id for the request, taken from its data when parsing begins (the
    /// hooks around the whole request do not see the request's data).
    request_id: Arc<Mutex<Option<RequestId>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The operation a request selects, if the document has it.
fn selected<'d>(
    doc: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'d async_graphql::parser::types::OperationDefinition> {
    doc.operations
        .iter()
        .find(|(name, _)| operation_name.is_none() || name.map(|n| n.as_str()) == operation_name)
        .map(|(_, op)| &op.node)
}

/// Names an operation by its type and first root field, so labels stay few: a field the
/// schema does not define is `invalid`, whatever its name.
fn label(doc: &ExecutableDocument, operation_name: Option<&str>, registry: &Registry) -> String {
    let Some(op) = selected(doc, operation_name) else {
        return "unknown".to_owned();
    };
    let (kind, root) = match op.ty {
        OperationType::Query => ("query", Some(registry.query_type.as_str())),
        OperationType::Mutation => ("mutation", registry.mutation_type.as_deref()),
        OperationType::Subscription => ("subscription", registry.subscription_type.as_deref()),
    };
    let field = match op.selection_set.node.items.first().map(|s| &s.node) {
        Some(Selection::Field(f)) => {
            let name = f.node.name.node.as_str();
            let defined = name == "__typename"
                || root
                    .and_then(|root| registry.concrete_type_by_name(root))
                    .is_some_and(|ty| ty.field_by_name(name).is_some());
            if !defined {
                return "invalid".to_owned();
            }
            name
        }
        Some(_) => "fragment",
        None => "",
    };
    format!("{kind}.{field}")
}

fn refused(refused: guard::Refused) -> ServerError {
    let mut error = ServerError::new(refused.0, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code::BAD_USER_INPUT);
    error
}

/// Fills in a code where the GraphQL layer produced an error without one, adds the request's
/// id, and counts errors.
fn finish(response: &mut Response, label: &str, metrics: &Metrics, request: Option<&RequestId>) {
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
        if let Some(request) = request {
            ext.set("requestId", request.as_str());
        }
        let code = match ext.get("code") {
            Some(async_graphql::Value::String(code)) => code.clone(),
            _ => {
                ext.set("code", code::BAD_USER_INPUT);
                code::BAD_USER_INPUT.to_owned()
            }
        };
        metrics.error(label, &code);
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ObserveRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        *lock(&self.operation_name) = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // The parser is called here, between the two guard passes, instead of through `next`:
        // the checks `next` would add walk every fragment spread as often as it is reached,
        // which `guard::check` has bounded in linear time (nesting included) before that.
        let _ = (next, variables);
        *lock(&self.request_id) = ctx.data_opt::<RequestId>().cloned();
        let doc = match self.documents.get(query) {
            Some(doc) => doc,
            None => {
                let tokens = guard::scan(query, &self.limits).map_err(refused)?;
                let doc = async_graphql::parser::parse_query(query)?;
                guard::check(&doc, &self.limits).map_err(refused)?;
                self.documents.put(query, tokens, &doc);
                doc
            }
        };
        let name = lock(&self.operation_name).clone();
        *lock(&self.label) = Some(label(&doc, name.as_deref(), &ctx.schema_env.registry));
        if let Some(exchange) = ctx.data_opt::<Arc<Exchange>>() {
            let ty = selected(&doc, name.as_deref()).map(|op| op.ty);
            if exchange.queries_only && ty.is_some_and(|ty| ty != OperationType::Query) {
                exchange.not_a_query.store(true, Ordering::Relaxed);
                return Err(refused(guard::Refused(
                    "only queries may be sent with GET: send mutations with POST".to_owned(),
                )));
            }
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(exchange) = ctx.data_opt::<Arc<Exchange>>() {
            exchange.executed.store(true, Ordering::Relaxed);
        }
        next.run(ctx, operation_name).await
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let label = lock(&self.label)
            .clone()
            .unwrap_or_else(|| "invalid".to_owned());
        self.metrics.request(&label);
        let request_id = lock(&self.request_id).clone();
        finish(&mut response, &label, &self.metrics, request_id.as_ref());
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let metrics = self.metrics.clone();
        let label = self.label.clone();
        let request_id = self.request_id.clone();
        let mut counted = false;
        next.run(ctx, stream)
            .map(move |mut response| {
                let label = lock(&label).clone().unwrap_or_else(|| "invalid".to_owned());
                if !counted {
                    counted = true;
                    metrics.request(&label);
                }
                let request_id = lock(&request_id).clone();
                finish(&mut response, &label, &metrics, request_id.as_ref());
                response
            })
            .boxed()
    }
}
