//! The embedded browser side: the component script, the demo page and CORS, as a browser
//! meets them. The component itself is tested in a browser by `scripts/e2e`.

use belfry::app::Application;
use serde_json::{json, Value};

use crate::app::{spawn_app, spawn_app_with, test_settings, SEND};
use crate::helpers::{Backend, TestStore};

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

async fn the_component_script_is_served_from_the_binary(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let http = reqwest::Client::new();
    let response = http
        .get(url(app.port(), "/sdk/belfry-inbox.js"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
    let etag = header("etag").expect("an ETag");
    let body = response.text().await.expect("body");
    assert_eq!(body, belfry::web::INBOX_JS);
    assert!(
        body.contains("customElements.define"),
        "defines the element"
    );

    let again = http
        .get(url(app.port(), "/sdk/belfry-inbox.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(
        again.status(),
        304,
        "a browser with the same script revalidates"
    );
    assert!(again.text().await.expect("body").is_empty());
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
    let page = reqwest::get(url(app.port(), "/"))
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
    let response = reqwest::get(url(app.port(), "/")).await.expect("get");
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
    let http = reqwest::Client::new();
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
    let response = reqwest::Client::new()
        .post(url(open.port(), "/graphql"))
        .header("origin", "http://localhost:5173")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

crate::on_both_backends!(
    the_component_script_is_served_from_the_binary,
    the_demo_page_signs_in_the_demo_user_when_the_demo_is_on,
    without_the_demo_the_front_page_hands_out_no_credentials,
    demo_needs_a_secret_to_mint_tokens_with,
    browsers_on_other_origins_may_call_the_api,
);
