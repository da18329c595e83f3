//! The embedded browser side: the component's modules, the demo page and CORS, as a browser
//! meets them. The component itself is tested in a browser by `scripts/e2e`.

use belfry::app::Application;
use serde_json::{json, Value};

use crate::app::{spawn_app, spawn_app_with, test_settings, SEND};
use crate::helpers::{Backend, TestStore};

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

async fn get(http: &reqwest::Client, port: u16, path: &str) -> reqwest::Response {
    http.get(url(port, path)).send().await.expect("get")
}

/// The modules a script names by relative path (`from './x.js'`, `import('./x.js')`).
fn relative_imports(script: &str) -> Vec<String> {
    script
        .split("'./")
        .skip(1)
        .filter_map(|rest| rest.split_once('\''))
        .map(|(name, _)| name.to_owned())
        .collect()
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const TYPESCRIPT: &str = "application/typescript; charset=utf-8";

/// Fetches the module `/sdk/<name>` as a browser does; see `fetch_sdk_file`.
async fn fetch_module(http: &reqwest::Client, port: u16, name: &str) -> (String, String) {
    fetch_sdk_file(http, port, name, JAVASCRIPT, belfry::web::SDK).await
}

/// Fetches `/sdk/<name>`, checks its headers, that it is the file embedded in `table` and that
/// it revalidates with its ETag; returns the body and the ETag.
async fn fetch_sdk_file(
    http: &reqwest::Client,
    port: u16,
    name: &str,
    content_type: &str,
    table: &[(&str, &str)],
) -> (String, String) {
    let response = http
        .get(url(port, &format!("/sdk/{name}")))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "{name}");
    let header = |key: &str| {
        response
            .headers()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some(content_type),
        "{name}"
    );
    assert_eq!(
        header("cache-control").as_deref(),
        Some("no-cache"),
        "{name}"
    );
    let etag = header("etag").expect("an ETag");
    let body = response.text().await.expect("body");
    let embedded = table
        .iter()
        .find(|(path, _)| *path == name)
        .map(|(_, content)| *content);
    assert_eq!(Some(body.as_str()), embedded, "{name} is the embedded file");

    let again = http
        .get(url(port, &format!("/sdk/{name}")))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(
        again.status(),
        304,
        "a browser with the same {name} revalidates"
    );
    assert!(again.text().await.expect("body").is_empty());
    (body, etag)
}

async fn the_component_modules_are_served_from_the_binary(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let http = crate::app::http();
    let (entry, entry_etag) = fetch_module(&http, app.port(), "belfry-inbox.js").await;
    assert!(
        entry.contains("customElements.define"),
        "the entry point defines the element"
    );

    // Everything the entry point imports, and what those import, is served beside it.
    let mut etags = vec![entry_etag];
    let mut fetched = vec!["belfry-inbox.js".to_owned()];
    let mut pending = relative_imports(&entry);
    while let Some(name) = pending.pop() {
        if fetched.contains(&name) {
            continue;
        }
        let (body, etag) = fetch_module(&http, app.port(), &name).await;
        pending.extend(relative_imports(&body));
        etags.push(etag);
        fetched.push(name);
    }
    fetched.sort();
    let mut served: Vec<String> = belfry::web::SDK
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    served.sort();
    assert_eq!(
        fetched, served,
        "every module served is reached from the entry"
    );
    etags.sort();
    etags.dedup();
    assert_eq!(etags.len(), served.len(), "each module has its own ETag");

    for unknown in [
        "/sdk/",
        "/sdk/nope.js",
        "/sdk/BELFRY-INBOX.JS",
        "/sdk/belfry%2Dinbox.js",
        "/sdk/belfry-inbox.js/more",
        "/sdk/demo.html",
        "/sdk/belfry-store.d.ts",
        "/sdk/types/belfry-inbox.d.ts",
    ] {
        let response = get(&http, app.port(), unknown).await;
        assert_eq!(response.status(), 404, "{unknown}");
    }
}

async fn the_typescript_declarations_are_served_beside_the_modules(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let http = crate::app::http();
    let mut declared = Vec::new();
    let mut imports = 0;
    for (name, _) in belfry::web::DECLARATIONS {
        let (body, _) = fetch_sdk_file(
            &http,
            app.port(),
            name,
            TYPESCRIPT,
            belfry::web::DECLARATIONS,
        )
        .await;
        // `tsc` reads `./belfry-client.js` in a declaration file as `./belfry-client.d.ts`.
        for import in relative_imports(&body) {
            let types = format!("/sdk/{}", import.replace(".js", ".d.ts"));
            let response = get(&http, app.port(), &types).await;
            assert_eq!(response.status(), 200, "{name} imports {import}");
            imports += 1;
        }
        declared.push(name.replace(".d.ts", ".js"));
    }
    assert!(
        imports > 0,
        "the entry point's declarations import the client's"
    );
    assert!(
        declared.contains(&"belfry-inbox.js".to_owned()),
        "the entry point has declarations"
    );

    // Each module with declarations names them (relative to itself) for tools that ask.
    for (module, _) in belfry::web::SDK {
        let response = get(&http, app.port(), &format!("/sdk/{module}")).await;
        let types = response
            .headers()
            .get("x-typescript-types")
            .map(|v| v.to_str().expect("text").to_owned());
        if declared.iter().any(|d| d == module) {
            let expected = format!("./{}", module.replace(".js", ".d.ts"));
            assert_eq!(types.as_deref(), Some(expected.as_str()), "{module}");
        } else {
            assert_eq!(types, None, "{module} has no declarations");
        }
    }
}

/// The JSON the demo page hands to its script.
fn demo_json(page: &str) -> Option<Value> {
    let start = page.find(r#"<script type="application/json" id="belfry-demo">"#)?;
    let rest = &page[start..];
    let json = &rest[rest.find('>')? + 1..rest.find("</script>")?];
    serde_json::from_str(json).ok()
}

async fn the_demo_page_signs_in_the_demo_user_when_the_demo_is_on(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.demo = Some(true)).await else {
        return;
    };
    let page = crate::app::http_get(url(app.port(), "/"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("<belfry-inbox"),
        "the page holds the component"
    );
    assert!(
        page.contains("/sdk/belfry-inbox.js"),
        "and loads its script"
    );
    let demo = demo_json(&page).expect("the page carries credentials");
    assert_eq!(demo["user"], "demo");
    let token = demo["token"].as_str().expect("token");
    let key = demo["serviceKey"].as_str().expect("key");

    let viewer = app.graphql(Some(token), "{ viewerId }", json!({})).await;
    assert_eq!(viewer["data"]["viewerId"], "demo", "{viewer}");
    let sent = app
        .graphql(
            Some(key),
            SEND,
            json!({"input": {"recipients": ["demo"], "title": "from the demo form"}}),
        )
        .await;
    assert_eq!(
        sent["data"]["sendNotification"]["deliveries"][0]["recipient"], "demo",
        "{sent}"
    );
    let counts = app
        .graphql(Some(token), "{ counts { unread } }", json!({}))
        .await;
    assert_eq!(counts["data"]["counts"]["unread"], 1, "{counts}");
}

async fn without_the_demo_the_front_page_hands_out_no_credentials(backend: Backend) {
    // A configured secret turns the demo off unless asked for.
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let response = crate::app::http_get(url(app.port(), "/"))
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    let page = response.text().await.expect("body");
    assert!(page.contains("Belfry is running"), "{page}");
    assert!(demo_json(&page).is_none());
    assert!(!page.contains("bfk_"), "no key on the page");
}

async fn demo_needs_a_secret_to_mint_tokens_with(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let mut settings = test_settings(&store);
    settings.jwt_public_key = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rs256-public.pem"),
    );
    settings.demo = Some(true);
    let Err(error) = Application::build(&settings).await else {
        panic!("a public-key server cannot mint the demo token");
    };
    assert!(format!("{error:#}").contains("jwt_secret"), "{error:#}");
}

async fn browsers_on_other_origins_may_call_the_api(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.cors_origins = vec!["https://app.example.com".to_owned()];
    })
    .await
    else {
        return;
    };
    let http = crate::app::http();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, url(app.port(), "/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com")
        .await
        .expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let other = preflight("https://evil.example.net")
        .await
        .expect("preflight");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "an origin not listed gets no CORS grant"
    );

    // The default allows any origin: tokens travel in headers, never in cookies.
    let Some(open) = spawn_app(app.store.backend).await else {
        return;
    };
    let response = crate::app::http()
        .post(url(open.port(), "/graphql"))
        .header("origin", "http://localhost:5173")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

crate::on_both_backends!(
    the_component_modules_are_served_from_the_binary,
    the_typescript_declarations_are_served_beside_the_modules,
    the_demo_page_signs_in_the_demo_user_when_the_demo_is_on,
    without_the_demo_the_front_page_hands_out_no_credentials,
    demo_needs_a_secret_to_mint_tokens_with,
    browsers_on_other_origins_may_call_the_api,
);
