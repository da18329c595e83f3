//! The browser side, embedded in the binary: the `<belfry-inbox>` web component at
//! `/sdk/belfry-inbox.js` and the page at `/` (the demo when it is on, a short pointer to the
//! API otherwise). Nothing is fetched from elsewhere at run time.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::api::demo::DemoCredentials;
use crate::api::ApiState;

/// The component and its client, one plain JavaScript module (see `web/README.md`).
pub const INBOX_JS: &str = include_str!("../web/belfry-inbox.js");
const DEMO_HTML: &str = include_str!("../web/demo.html");
const LANDING_HTML: &str = include_str!("../web/landing.html");
/// Where `web/demo.html` wants the demo's credentials, as JSON.
const DEMO_SLOT: &str = "{\"belfry\":\"demo-credentials\"}";

/// The routes of the embedded pages and scripts.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/sdk/belfry-inbox.js", get(inbox_js))
}

/// A strong ETag of the script, so browsers revalidate cheaply after an upgrade.
fn inbox_js_etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = Sha256::digest(INBOX_JS.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    })
}

async fn inbox_js(headers: HeaderMap) -> Response {
    let etag = inbox_js_etag();
    let cache = [
        (header::ETAG, HeaderValue::from_static(etag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        INBOX_JS,
    )
        .into_response()
}

async fn index(State(state): State<ApiState>) -> Html<String> {
    match &state.demo {
        Some(demo) => Html(demo_page(demo)),
        None => Html(LANDING_HTML.to_owned()),
    }
}

/// The demo page with its credentials filled in. The JSON sits in a
/// `<script type="application/json">`, so `<` is escaped to keep it from ending the element.
pub fn demo_page(demo: &DemoCredentials) -> String {
    let credentials = serde_json::json!({
        "user": demo.user.as_str(),
        "token": demo.token,
        "serviceKey": demo.service_key,
    })
    .to_string()
    .replace('<', "\\u003c");
    DEMO_HTML.replacen(DEMO_SLOT, &credentials, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    #[test]
    fn the_demo_page_has_a_slot_for_its_credentials() {
        assert_eq!(DEMO_HTML.matches(DEMO_SLOT).count(), 1);
        let page = demo_page(&DemoCredentials {
            user: UserId::parse("demo").expect("user"),
            token: "tok</script><b>".to_owned(),
            service_key: "bfk_x".to_owned(),
        });
        assert!(!page.contains(DEMO_SLOT));
        assert!(page.contains("\"serviceKey\":\"bfk_x\""));
        assert!(
            !page.contains("tok</script>"),
            "the JSON must not end the script element"
        );
    }
}
