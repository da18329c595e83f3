//! The playground as a browser with no internet access meets it: a page that names only files
//! this server serves, those files the committed copies, and a policy that allows nothing else.
//! GraphiQL itself is driven in a browser by `web/e2e/graphiql.test.js`.

use std::path::{Path, PathBuf};

use crate::app::spawn_app;
use crate::helpers::Backend;

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The values of every `name="..."` attribute in `html`.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let marker = format!(" {name}=\"");
    html.split(marker.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(value, _)| value)
        .collect()
}

/// Every file below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(files_below(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The page at `/graphiql`.
async fn playground(http: &reqwest::Client, port: u16) -> String {
    let response = http.get(url(port, "/graphiql")).send().await.expect("get");
    assert_eq!(response.status(), 200);
    response.text().await.expect("body")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn the_playground_loads_nothing_but_the_copies_it_serves(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let http = crate::app::http();
    let response = http
        .get(url(app.port(), "/graphiql"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let policy = header(&response, "content-security-policy").expect("a CSP");
    assert_eq!(policy, belfry::api::graphiql::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    let page = response.text().await.expect("body");

    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("//unpkg"),
        "the page names no other origin:\n{page}"
    );
    let scripts = page.matches("<script").count();
    assert_eq!(
        scripts,
        attributes(&page, "src").len(),
        "no inline script, which the policy would refuse:\n{page}"
    );

    let copies: Vec<PathBuf> = files_below(&repo("assets/graphiql"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "js" || e == "css"))
        .collect();
    let ours = repo("web/graphiql/start.js");
    let mut loaded = Vec::new();
    let links = attributes(&page, "href")
        .into_iter()
        .filter(|h| *h != "data:,");
    for path in attributes(&page, "src").into_iter().chain(links) {
        assert!(
            path.starts_with("/graphiql/") && !path.starts_with("//"),
            "{path} is on this server"
        );
        let response = http.get(url(app.port(), path)).send().await.expect("get");
        assert_eq!(response.status(), 200, "{path}");
        let expected_type = if path.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            assert!(path.ends_with(".js"), "{path} is a script or a stylesheet");
            "text/javascript; charset=utf-8"
        };
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some(expected_type),
            "{path}"
        );
        assert_eq!(
            header(&response, "cache-control").as_deref(),
            Some("public, max-age=31536000, immutable"),
            "{path} has a versioned name, so it may be kept"
        );
        assert_eq!(
            header(&response, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        let body = response.bytes().await.expect("body");
        let file = copies
            .iter()
            .chain([&ours])
            .find(|file| std::fs::read(file).expect("read") == body)
            .unwrap_or_else(|| panic!("{path} is none of the committed files"));
        loaded.push(file.clone());
    }
    let mut expected = copies.clone();
    expected.push(ours);
    expected.sort();
    loaded.sort();
    assert_eq!(
        loaded, expected,
        "the page loads each copy and our start script"
    );

    // What the start script reads from the page is served here too.
    for path in ["data-endpoint", "data-subscription-endpoint", "data-schema"]
        .iter()
        .flat_map(|name| attributes(&page, name))
    {
        assert!(path.starts_with('/'), "{path} is on this server");
        let response = http
            .get(url(app.port(), path))
            .header("accept", "text/html")
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{path}");
    }
}

async fn a_browser_opening_the_endpoint_gets_the_same_playground(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let http = crate::app::http();
    let playground = playground(&http, app.port()).await;
    let response = http
        .get(url(app.port(), "/graphql"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-security-policy").as_deref(),
        Some(belfry::api::graphiql::CONTENT_SECURITY_POLICY)
    );
    assert_eq!(response.text().await.expect("body"), playground);
}

async fn the_licences_travel_with_the_copies_and_nothing_else_is_served(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let http = crate::app::http();
    let page = playground(&http, app.port()).await;
    for package in ["graphiql", "react", "react-dom"] {
        let path = format!("/graphiql/licenses/{package}");
        assert!(page.contains(&path), "the page points at {path}");
        let response = http.get(url(app.port(), &path)).send().await.expect("get");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        let licence = std::fs::read_to_string(repo(&format!("assets/graphiql/{package}/LICENSE")))
            .expect("read");
        assert_eq!(response.text().await.expect("body"), licence, "{path}");
    }

    let served = attributes(&page, "src")[0].to_owned();
    for unknown in [
        "/graphiql/",
        "/graphiql/graphiql.min.js",
        "/graphiql/react.production.min.js",
        "/graphiql/graphiql-0000000000000000.js",
        "/graphiql/licenses/",
        "/graphiql/licenses/typescript",
        "/graphiql/licenses/../LICENSE",
        &format!("{served}/more"),
        &served.to_uppercase(),
    ] {
        let response = http
            .get(url(app.port(), unknown))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 404, "{unknown}");
    }
}

crate::on_both_backends!(
    the_playground_loads_nothing_but_the_copies_it_serves,
    a_browser_opening_the_endpoint_gets_the_same_playground,
    the_licences_travel_with_the_copies_and_nothing_else_is_served,
);
