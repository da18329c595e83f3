//! GraphiQL, the in-browser playground, at `/graphiql` (and on `GET /graphql` for a browser).
//!
//! Everything the page loads comes from the binary: pinned, unmodified copies of GraphiQL,
//! React and ReactDOM (`assets/graphiql/`, made and checked by `scripts/graphiql-assets`) and
//! our start script (`web/graphiql/start.js`). So the playground works with no internet access,
//! and under its own Content-Security-Policy, which allows scripts from this origin only
//! (decision 0031).

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::ApiState;

/// Where the playground's files are served, under their versioned names.
const PREFIX: &str = "/graphiql/";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// What the page may load: its own origin's scripts and connections (`'self'` covers `ws:` and
/// `wss:` to the same host), the fonts GraphiQL's stylesheet carries as `data:` URLs, and
/// inline styles, which GraphiQL's dialogs inject.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'";

/// A file the page loads.
struct Asset {
    /// `<stem>-<hash>.<ext>`: a changed file is a new URL, so every one can be cached for good.
    name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// The page's files in the order it loads them: stem, extension, content type, content.
const FILES: [(&str, &str, &str, &[u8]); 5] = [
    (
        "graphiql",
        "css",
        CSS,
        include_bytes!("../../assets/graphiql/graphiql/graphiql.min.css"),
    ),
    (
        "react",
        "js",
        JS,
        include_bytes!("../../assets/graphiql/react/umd/react.production.min.js"),
    ),
    (
        "react-dom",
        "js",
        JS,
        include_bytes!("../../assets/graphiql/react-dom/umd/react-dom.production.min.js"),
    ),
    (
        "graphiql",
        "js",
        JS,
        include_bytes!("../../assets/graphiql/graphiql/graphiql.min.js"),
    ),
    (
        "belfry-graphiql",
        "js",
        JS,
        include_bytes!("../../web/graphiql/start.js"),
    ),
];

/// The licences of the copies, served beside them at `/graphiql/licenses/<package>`.
const LICENSES: [(&str, &str); 3] = [
    (
        "graphiql",
        include_str!("../../assets/graphiql/graphiql/LICENSE"),
    ),
    ("react", include_str!("../../assets/graphiql/react/LICENSE")),
    (
        "react-dom",
        include_str!("../../assets/graphiql/react-dom/LICENSE"),
    ),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(stem, ext, content_type, bytes)| Asset {
            name: format!("{stem}-{}.{ext}", short_hash(bytes)),
            content_type,
            bytes,
        })
        .collect()
});

static PAGE: LazyLock<String> = LazyLock::new(|| render(&ASSETS));

/// The first 16 hex digits of the SHA-256 of `bytes`.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn render(assets: &[Asset]) -> String {
    let mut head = String::new();
    let mut body = String::new();
    for asset in assets {
        let src = format!("{PREFIX}{}", asset.name);
        if asset.content_type == CSS {
            head.push_str(&format!("    <link rel=\"stylesheet\" href=\"{src}\">\n"));
        } else {
            body.push_str(&format!("    <script src=\"{src}\"></script>\n"));
        }
    }
    let licenses: Vec<String> = LICENSES
        .iter()
        .map(|(package, _)| format!("{PREFIX}licenses/{package}"))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <title>Belfry GraphiQL</title>
    <link rel="icon" href="data:,">
    <!-- GraphiQL, React and ReactDOM, MIT licensed: {licenses} -->
{head}    <style>
      body {{ margin: 0; height: 100%; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
  </head>
  <body>
    <div id="graphiql" data-endpoint="/graphql" data-subscription-endpoint="/graphql" data-schema="/schema.graphql">Loading…</div>
{body}  </body>
</html>
"#,
        licenses = licenses.join(" "),
    )
}

/// The playground's routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/graphiql", get(page))
        .route("/graphiql/{name}", get(asset))
        .route("/graphiql/licenses/{package}", get(license))
}

/// The playground's page.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            // The page names the current files; asking again each time picks up an upgrade.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from(asset.bytes),
    )
        .into_response()
}

async fn license(Path(package): Path<String>) -> Response {
    let Some((_, text)) = LICENSES.iter().find(|(name, _)| *name == package) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *text,
    )
        .into_response()
}
