//! The browser side, embedded in the binary: the `<belfry-inbox>` web component's ES modules
//! under `/sdk/` (apps import `/sdk/belfry-inbox.js`, which imports the others beside it), their
//! TypeScript declarations beside them, and the page at `/` (the demo when it is on, a short
//! pointer to the API otherwise). Nothing is fetched from elsewhere at run time.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::api::demo::DemoCredentials;
use crate::api::ApiState;

/// `(name, content)` of files in `web/` (or a folder of it), embedded.
macro_rules! embed {
    (in $dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../web/", $dir, $name)))),*]
    };
    ($($name:literal),* $(,)?) => {
        embed![in "": $($name),*]
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
/// TypeScript declarations of the modules apps import, served beside them at `/sdk/<name>`.
/// They live in `web/types/`, not beside the modules, where `tsc` would take them for the
/// modules' own types: `web/types-example/` checks them against the modules' JSDoc.
pub const DECLARATIONS: &[(&str, &str)] =
    embed![in "types/": "belfry-inbox.d.ts", "belfry-client.d.ts"];
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

/// One file under `/sdk/`, with its response headers.
struct SdkFile {
    name: &'static str,
    content: &'static str,
    content_type: &'static str,
    /// Strong, so browsers revalidate cheaply after an upgrade.
    etag: String,
    /// A module's declarations, relative to it: `X-TypeScript-Types`, which Deno reads.
    types: Option<String>,
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// TypeScript has no registered media type; this is one Deno recognises.
const TYPESCRIPT: &str = "application/typescript; charset=utf-8";

/// Every file under `/sdk/`: the modules, then the declarations.
fn sdk_files() -> &'static [SdkFile] {
    static FILES: OnceLock<Vec<SdkFile>> = OnceLock::new();
    FILES.get_or_init(|| {
        let file = |(name, content): &(&'static str, &'static str), content_type| {
            let digest = Sha256::digest(content.as_bytes());
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            SdkFile {
                name,
                content,
                content_type,
                etag: format!("\"{hex}\""),
                types: None,
            }
        };
        let modules = SDK.iter().map(|module| {
            let declarations = module.0.replace(".js", ".d.ts");
            SdkFile {
                types: DECLARATIONS
                    .iter()
                    .any(|(name, _)| *name == declarations)
                    .then(|| format!("./{declarations}")),
                ..file(module, JAVASCRIPT)
            }
        });
        let declarations = DECLARATIONS.iter().map(|d| file(d, TYPESCRIPT));
        modules.chain(declarations).collect()
    })
}

/// One file of `sdk_files()`, by its name; any other name is 404. The raw path is matched, not
/// a decoded one, so there is exactly one URL per file.
async fn sdk(uri: Uri, headers: HeaderMap) -> Response {
    let name = uri.path().strip_prefix("/sdk/").unwrap_or_default();
    let Some(file) = sdk_files().iter().find(|file| file.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == file.etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            )],
            file.content,
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, HeaderValue::from_static(&file.etag));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(types) = &file.types {
        out.insert(
            HeaderName::from_static("x-typescript-types"),
            HeaderValue::from_static(types),
        );
    }
    response
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

    /// The names of the files in a folder of the repository ending in `suffix`, sorted.
    fn files_in(folder: &str, suffix: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect(folder)
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(suffix))
            .collect();
        files.sort();
        files
    }

    fn names(table: &[(&'static str, &str)]) -> Vec<&'static str> {
        let mut names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn every_module_in_web_is_served() {
        assert_eq!(files_in("web", ".js"), names(SDK));
    }

    #[test]
    fn every_declaration_in_web_types_is_served_beside_its_module() {
        assert_eq!(files_in("web/types", ".d.ts"), names(DECLARATIONS));
        for (name, _) in DECLARATIONS {
            let module = name.replace(".d.ts", ".js");
            let file = sdk_files().iter().find(|f| f.name == module);
            assert_eq!(
                file.and_then(|f| f.types.as_deref()),
                Some(format!("./{name}").as_str()),
                "{module} points to {name}"
            );
        }
    }

    /// The quoted names in `text` (`'a'` or `"a"`), in order.
    fn quoted(text: &str) -> Vec<&str> {
        text.split(['\'', '"']).skip(1).step_by(2).collect()
    }

    /// The text from `start` to the next `end` after it.
    fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
        let from = text.find(start).map(|i| i + start.len()).expect(start);
        &text[from..from + text[from..].find(end).expect(end)]
    }

    /// The members of a TypeScript interface: `name?: type;` or `'name': type;` lines.
    fn members(body: &str) -> Vec<&str> {
        body.lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("/**") && !line.starts_with('*'))
            .filter_map(|line| match line.strip_prefix('\'') {
                Some(quoted) => quoted.split_once('\'').map(|(name, _)| name),
                None => line
                    .split_once(':')
                    .map(|(name, _)| name.trim_end_matches('?')),
            })
            .collect()
    }

    #[test]
    fn the_declarations_name_every_attribute_and_event_of_the_element() {
        let module = |name: &str| SDK.iter().find(|(n, _)| *n == name).expect(name).1;
        let element = module("belfry-element.js");
        let declared = DECLARATIONS
            .iter()
            .find(|(name, _)| *name == "belfry-inbox.d.ts")
            .expect("belfry-inbox.d.ts")
            .1;

        let mut observed = quoted(between(element, "observedAttributes = [", "]"));
        let mut attributes = members(between(
            declared,
            "interface BelfryInboxAttributes {",
            "\n}",
        ));
        observed.sort_unstable();
        attributes.sort_unstable();
        assert_eq!(observed, attributes, "BelfryInboxAttributes");

        let mut emitted: Vec<&str> = element
            .split("this.#emit(")
            .skip(1)
            .filter_map(|call| quoted(call).first().copied())
            .collect();
        emitted.sort_unstable();
        emitted.dedup();
        let mut events = members(between(
            declared,
            "interface BelfryInboxEventMap extends HTMLElementEventMap {",
            "\n}",
        ));
        events.sort_unstable();
        assert!(!emitted.is_empty());
        assert_eq!(emitted, events, "BelfryInboxEventMap");
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
