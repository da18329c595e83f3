//! GraphiQL, the in-browser playground, at `/graphiql` (and on `GET /graphql` for a browser).

use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::ApiState;

/// The playground's routes.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/graphiql", get(page))
}

/// The playground's page.
pub async fn page() -> Response {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("Belfry GraphiQL")
            .finish(),
    )
    .into_response()
}
