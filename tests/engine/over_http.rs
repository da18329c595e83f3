//! GraphQL over HTTP as its spec has it: the media type `Accept` asks for, the status of each
//! outcome in each media type, queries over GET, and the same answer to every missing or bad
//! credential. (The spec's own audit, `graphql-http`, runs against the server in `scripts/e2e`.)

use serde_json::{json, Value};

use crate::app::{spawn_app, spawn_app_with, TestApp};
use crate::helpers::Backend;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

struct Answer {
    status: u16,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

fn url(app: &TestApp) -> String {
    format!("http://127.0.0.1:{}/graphql", app.port())
}

/// POSTs `body` as JSON, with `accept` and `auth` when given.
async fn post(app: &TestApp, accept: Option<&str>, auth: Option<&str>, body: Value) -> Answer {
    let mut request = crate::app::http().post(url(app)).json(&body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(auth) = auth {
        request = request.bearer_auth(auth);
    }
    answer(request.send().await.expect("an answer")).await
}

/// A GET with `params` in the URL.
async fn get(app: &TestApp, accept: &str, auth: Option<&str>, params: &[(&str, &str)]) -> Answer {
    let url = reqwest::Url::parse_with_params(&url(app), params).expect("a URL");
    let mut request = crate::app::http().get(url).header("accept", accept);
    if let Some(auth) = auth {
        request = request.bearer_auth(auth);
    }
    answer(request.send().await.expect("an answer")).await
}

fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

async fn each_outcome_has_its_status_in_each_media_type(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ann = app.token("ann");
    let ok = json!({ "query": "{ viewerId }" });
    // The media type follows Accept; no Accept is application/json.
    for (accept, media) in [
        (None, "application/json"),
        (Some("*/*"), "application/json"),
        (Some("application/json"), "application/json"),
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE,
        ),
    ] {
        let a = post(&app, accept, Some(&ann), ok.clone()).await;
        assert_eq!(a.status, 200, "{accept:?}: {}", a.body);
        assert_eq!(
            a.content_type,
            format!("{media}; charset=utf-8"),
            "{accept:?}"
        );
        assert_eq!(a.body, json!({ "data": { "viewerId": "ann" } }));
    }
    let a = post(&app, Some("text/html"), Some(&ann), ok.clone()).await;
    assert_eq!(a.status, 406, "{}", a.body);
    assert_eq!(first_code(&a.body), "BAD_USER_INPUT");

    // Not executed (parse, validation, variable coercion): no `data`; 400 only where the
    // media type can tell a client so.
    let requests = [
        json!({ "query": "{" }),
        json!({ "query": "{ noSuchField }" }),
        json!({
            "query": "query($first: Int) { notifications(first: $first) { totalCount } }",
            "variables": { "first": "ten" },
        }),
    ];
    for request in &requests {
        for (accept, status) in [(GRAPHQL_RESPONSE, 400), ("application/json", 200)] {
            let a = post(&app, Some(accept), Some(&ann), request.clone()).await;
            assert_eq!(a.status, status, "{accept} {request}: {}", a.body);
            assert!(a.body.get("data").is_none(), "{request}: {}", a.body);
            assert_eq!(first_code(&a.body), "BAD_USER_INPUT", "{}", a.body);
        }
    }
    // Executed with a field error: 200 with `data` in both.
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let a = post(
            &app,
            Some(accept),
            Some(&ann),
            json!({ "query": "{ viewerId projections { name } }" }),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.get("data").is_some(), "{}", a.body);
        assert_eq!(first_code(&a.body), "FORBIDDEN", "{}", a.body);
    }

    // Not a GraphQL request at all: 400, or 415 for a body that is not JSON.
    let a = post(&app, None, Some(&ann), json!({ "qeury": "{ viewerId }" })).await;
    assert_eq!(a.status, 400, "{}", a.body);
    let client = crate::app::http();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/json; charset=utf-16"),
    ] {
        let mut request = client
            .post(url(&app))
            .bearer_auth(&ann)
            .body(ok.to_string());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let a = answer(request.send().await.expect("an answer")).await;
        assert_eq!(a.status, 415, "{content_type:?}: {}", a.body);
        assert_eq!(first_code(&a.body), "BAD_USER_INPUT");
    }
}

async fn queries_travel_over_get_and_mutations_do_not(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ann = app.token("ann");
    app.send(&["ann"], "one").await;
    app.send(&["ann"], "two").await;
    let query = "query($first: Int) { notifications(first: $first) { edges { node { title } } } }";
    let variables = json!({ "first": 1 }).to_string();
    let params = [("query", query), ("variables", variables.as_str())];
    let by_get = get(&app, GRAPHQL_RESPONSE, Some(&ann), &params).await;
    assert_eq!(by_get.status, 200, "{}", by_get.body);
    let by_post = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        Some(&ann),
        json!({ "query": query, "variables": { "first": 1 } }),
    )
    .await;
    assert_eq!(by_get.body, by_post.body);
    assert_eq!(
        by_get.body["data"]["notifications"]["edges"][0]["node"]["title"],
        "two"
    );

    let before = app.log_len().await;
    let mutation = "mutation { markAllRead { count } }";
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let a = get(&app, accept, Some(&ann), &[("query", mutation)]).await;
        assert_eq!(a.status, 405, "{}", a.body);
        assert_eq!(a.headers["allow"], "GET, POST");
        assert!(a.body.get("data").is_none(), "{}", a.body);
    }
    assert_eq!(
        app.log_len().await,
        before,
        "a mutation over GET appends nothing"
    );

    for params in [
        &[("variables", "{}")][..],
        &[("query", "{ viewerId }"), ("variables", "{not json")][..],
        &[("query", "{ viewerId }"), ("query", "{ viewerId }")][..],
    ] {
        let a = get(&app, GRAPHQL_RESPONSE, Some(&ann), params).await;
        assert_eq!(a.status, 400, "{params:?}: {}", a.body);
        assert_eq!(first_code(&a.body), "BAD_USER_INPUT");
    }
    // A browser opening the URL gets the playground.
    let page = crate::app::http()
        .get(url(&app))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("an answer");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("GraphiQL"));
}

async fn a_missing_or_bad_token_gets_401_in_every_media_type(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.jwt_leeway_secs = 0).await else {
        return;
    };
    let expired = app.token_for("ann", std::time::Duration::from_secs(1));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let needs_token = json!({ "query": "{ viewerId }" });
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        for auth in [None, Some("not-a-token"), Some(expired.as_str())] {
            let a = post(&app, Some(accept), auth, needs_token.clone()).await;
            assert_eq!(a.status, 401, "{accept} {auth:?}: {}", a.body);
            assert_eq!(first_code(&a.body), "UNAUTHENTICATED", "{}", a.body);
            assert!(a.body.get("data").is_none(), "{}", a.body);
            assert_eq!(a.headers["www-authenticate"], "Bearer realm=\"belfry\"");
            assert!(a.content_type.starts_with(accept), "{}", a.content_type);
        }
        // What needs no token works without one.
        let a = post(
            &app,
            Some(accept),
            None,
            json!({ "query": "{ __typename }" }),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body, json!({ "data": { "__typename": "Query" } }));
    }
}

crate::on_both_backends!(
    each_outcome_has_its_status_in_each_media_type,
    queries_travel_over_get_and_mutations_do_not,
    a_missing_or_bad_token_gets_401_in_every_media_type,
);
