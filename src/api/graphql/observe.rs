//! A schema extension that gives every error an `extensions.code` (parse, validation and
//! input-coercion errors from the GraphQL layer become BAD_USER_INPUT), records requests
//! and errors per operation in the metrics, and keeps the parsed form of documents it has
//! seen, since clients send the same few operations over and over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
    NextSubscribe,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::futures_util::StreamExt;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Request, Response, ServerResult, Variables};

use super::super::error::code;
use crate::metrics::Metrics;

/// Creates one [`ObserveRequest`] per request.
pub struct Observe {
    metrics: Metrics,
    documents: Arc<Documents>,
}

impl Observe {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            documents: Arc::new(Documents::default()),
        }
    }
}

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveRequest {
            metrics: self.metrics.clone(),
            documents: self.documents.clone(),
            operation_name: Mutex::new(None),
            label: Arc::new(Mutex::new(None)),
        })
    }
}

/// Documents that parsed (and passed the depth and directive checks that come with parsing),
/// by their text. Only parsing is skipped: every request is still validated against its own
/// variables. When full, the cache starts over, so many distinct documents cost what they
/// cost without it.
#[derive(Default)]
struct Documents {
    parsed: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// Distinct documents kept; an application has a few dozen.
    const MAX_ENTRIES: usize = 512;
    /// Longer documents are parsed every time.
    const MAX_LEN: usize = 16 * 1024;

    fn get(&self, query: &str) -> Option<ExecutableDocument> {
        let found = lock(&self.parsed).get(query).cloned();
        found.map(|doc| (*doc).clone())
    }

    fn put(&self, query: &str, doc: &ExecutableDocument) {
        if query.len() > Self::MAX_LEN {
            return;
        }
        let mut parsed = lock(&self.parsed);
        if parsed.len() >= Self::MAX_ENTRIES {
            parsed.clear();
        }
        parsed.insert(query.to_owned(), Arc::new(doc.clone()));
    }
}

struct ObserveRequest {
    metrics: Metrics,
    documents: Arc<Documents>,
    operation_name: Mutex<Option<String>>,
    /// `query.notifications`, `mutation.sendNotification`, ...: set once the query parsed.
    label: Arc<Mutex<Option<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Names an operation by its type and first root field, so labels stay few.
fn label(doc: &ExecutableDocument, operation_name: Option<&str>) -> String {
    let op = doc
        .operations
        .iter()
        .find(|(name, _)| operation_name.is_none() || name.map(|n| n.as_str()) == operation_name)
        .map(|(_, op)| op);
    let Some(op) = op else {
        return "unknown".to_owned();
    };
    let kind = match op.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let field = op
        .node
        .selection_set
        .node
        .items
        .first()
        .map(|s| match &s.node {
            Selection::Field(f) => f.node.name.node.to_string(),
            _ => "fragment".to_owned(),
        })
        .unwrap_or_default();
    format!("{kind}.{field}")
}

/// Fills in a code where the GraphQL layer produced an error without one, and counts errors.
fn finish(response: &mut Response, label: &str, metrics: &Metrics) {
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
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
        let doc = match self.documents.get(query) {
            Some(doc) => doc,
            None => {
                let doc = next.run(ctx, query, variables).await?;
                self.documents.put(query, &doc);
                doc
            }
        };
        let name = lock(&self.operation_name).clone();
        *lock(&self.label) = Some(label(&doc, name.as_deref()));
        Ok(doc)
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let label = lock(&self.label)
            .clone()
            .unwrap_or_else(|| "invalid".to_owned());
        self.metrics.request(&label);
        finish(&mut response, &label, &self.metrics);
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
        let mut counted = false;
        next.run(ctx, stream)
            .map(move |mut response| {
                let label = lock(&label).clone().unwrap_or_else(|| "invalid".to_owned());
                if !counted {
                    counted = true;
                    metrics.request(&label);
                }
                finish(&mut response, &label, &metrics);
                response
            })
            .boxed()
    }
}
