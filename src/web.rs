//! The browser side, embedded in the binary: the `<belfry-inbox>` web component's ES modules
//! under `/sdk/` (apps import `/sdk/belfry-inbox.js`, which imports the others beside it) and
//! the page at `/` (the demo when it is on, a short pointer to the API otherwise). Nothing is
//! fetched from elsewhere at run time.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::api::demo::DemoCredentials;
use crate::api::ApiState;

/// `(name, content)` of files in `web/`, embedded.
macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../web/", $name)))),*]
    };
}

/// The browser SDK, served at `/sdk/<name>`: plain ES modules, no build step (see
/// `web/README.md`). `belfry-inbox.js` is the entry point; every module it imports is listed.
pub const SDK: &[(&str, &str)] = embed![
    "belfry-inbox.js",
    "belfry-client.js",
    "belfry-store.js",
    "belfry-view.js",
    "belfry-toasts.js",
    "belfry-element.js",
];
const DEMO_HTML: &str = include_str!("../web/demo.html");
const LANDING_HTML: &str = include_str!("../web/landing.html");
/// Where `web/demo.html` wants the demo's credentials, as JSON.
const DEMO_SLOT: &str = "{\"belfry\":\"demo-credentials\"}";

/// The routes of the embedded pages and scripts.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/sdk/{file}", get(sdk))
}

/// A strong ETag per module (in `SDK` order), so browsers revalidate cheaply after an upgrade.
fn sdk_etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        SDK.iter()
            .map(|(_, content)| {
                let digest = Sha256::digest(content.as_bytes());
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// One SDK module, by its name in `SDK`; any other name is 404. The raw path is matched, not
/// a decoded one, so there is exactly one URL per module.
async fn sdk(uri: Uri, headers: HeaderMap) -> Response {
    let name = uri.path().strip_prefix("/sdk/").unwrap_or_default();
    let Some(((_, content), etag)) = SDK
        .iter()
        .zip(sdk_etags())
        .find(|((path, _), _)| *path == name)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
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
        *content,
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
    fn every_module_in_web_is_served() {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut files: Vec<String> = std::fs::read_dir(web)
            .expect("web/")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".js"))
            .collect();
        files.sort();
        let mut served: Vec<&str> = SDK.iter().map(|(name, _)| *name).collect();
        served.sort_unstable();
        assert_eq!(files, served);
    }

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
