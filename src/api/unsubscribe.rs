//! `/unsubscribe/{token}`: the one-click unsubscribe link of an email (RFC 8058). A mail
//! client's one-click `POST` switches that category's email off for that person at once; a
//! person who opens the link gets a page with a button that does the same, so link scanners
//! that fetch URLs change nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::ApiState;
use crate::delivery::links::Unsubscribe;
use crate::domain::preferences::SetPreferences;
use crate::domain::{Channel, Command};
use crate::eventlog::Metadata;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/unsubscribe/{token}", get(confirm).post(one_click))
}

fn checked(state: &ApiState, token: &str) -> Option<Unsubscribe> {
    state.links.as_ref()?.check(token)
}

fn not_valid() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page(
            "This link is not valid",
            "<p>It may have been copied incompletely.</p>",
        )),
    )
        .into_response()
}

/// A person opened the link: say what the button will do.
async fn confirm(State(state): State<ApiState>, Path(token): Path<String>) -> Response {
    let Some(request) = checked(&state, &token) else {
        return not_valid();
    };
    let category = escape(request.category.as_str());
    Html(page(
        "Unsubscribe",
        &format!(
            "<p>Stop emails about <strong>{category}</strong>?</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    ))
    .into_response()
}

/// The one-click POST (or the page's button): email for the category goes off.
async fn one_click(State(state): State<ApiState>, Path(token): Path<String>) -> Response {
    let Some(request) = checked(&state, &token) else {
        return not_valid();
    };
    let command = Command::SetPreferences(SetPreferences {
        user: request.user.clone(),
        changes: vec![(request.category.clone(), Channel::Email, false)],
        at: state.clock.now(),
    });
    let metadata = Metadata {
        actor: Some(format!("unsubscribe-link:{}", request.user)),
        ..Metadata::default()
    };
    match state.engine.execute(command, metadata).await {
        Ok(_) => {
            let category = escape(request.category.as_str());
            Html(page(
                "Unsubscribed",
                &format!("<p>You will get no more emails about <strong>{category}</strong>.</p>"),
            ))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(error = ?e, "an unsubscribe link could not be recorded");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(page(
                    "Please try again",
                    "<p>This did not work just now.</p>",
                )),
            )
                .into_response()
        }
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <main><h1>{title}</h1>{body}</main></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
