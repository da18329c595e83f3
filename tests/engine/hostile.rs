//! Hostile documents: each request a black-box probe found could crash, stall or bloat the
//! server is refused as bad input, and the server goes on serving.

use serde_json::{json, Value};

use crate::app::{code, spawn_app, spawn_app_with, TestApp, Ws};
use crate::helpers::Backend;

/// `open` repeated `depth` times around `inner`, closed by `close`.
fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// Documents nested 1,600 levels deep through every place a value can stand.
fn deep_documents() -> Vec<(&'static str, String)> {
    let list = nested("[", "\"x\"", "]", 1_600);
    let object = nested("{a: ", "1", "}", 1_600);
    vec![
        (
            "a list argument",
            format!("{{ notification(id: {list}) {{ id }} }}"),
        ),
        (
            "an object argument",
            format!("{{ notification(id: {object}) {{ id }} }}"),
        ),
        (
            "an unknown field's argument",
            format!("{{ nope(x: {list}) }}"),
        ),
        (
            "a variable's default",
            format!("query($v: [String] = {list}) {{ viewerId }}"),
        ),
        (
            "a @skip argument",
            format!("{{ viewerId @skip(if: {list}) }}"),
        ),
        (
            "selections",
            format!("{{ {} }}", nested("a { ", "b", " }", 1_600)),
        ),
    ]
}

/// `{ ...F0 }` with each fragment spreading the next one twice, `levels` deep.
fn fragment_bomb(levels: usize) -> String {
    let mut doc = String::from("{ ...F0 }");
    for i in 0..levels {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    doc.push_str(&format!(" fragment F{levels} on Query {{ viewerId }}"));
    doc
}

async fn assert_healthy(app: &TestApp) {
    let health = crate::app::http_get(format!("http://127.0.0.1:{}/healthz", app.port()))
        .await
        .expect("the server still answers");
    assert_eq!(health.status(), 200);
}

fn assert_refused(body: &Value, what: &str, says: &str) {
    assert_eq!(code(body), "BAD_USER_INPUT", "{what}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{what}: {message}");
    assert!(body["data"].is_null(), "{what}: {body}");
}

async fn deeply_nested_documents_are_refused_over_http_and_websocket(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for (what, query) in deep_documents() {
        let body = app.graphql(None, &query, json!({})).await;
        assert_refused(&body, what, "nested deeper than 64");
    }
    let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
    ws.init(json!({})).await;
    for (i, (what, query)) in deep_documents().into_iter().enumerate() {
        let id = i.to_string();
        ws.subscribe(&id, &query, json!({})).await;
        let message = ws.next().await;
        assert_eq!(
            (message["type"].as_str(), message["id"].as_str()),
            (Some("error"), Some(id.as_str())),
            "{what}: {message}"
        );
        assert_eq!(
            message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{what}: {message}"
        );
    }
    ws.close().await;
    assert_healthy(&app).await;
}

async fn a_document_nested_up_to_the_limit_is_parsed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // `{`, `(` and 62 brackets: 64 levels, the default limit. It parses and is then refused
    // by validation for what it says, not for its depth.
    let query = format!(
        "{{ notification(id: {}) {{ id }} }}",
        nested("[", "\"x\"", "]", 62)
    );
    let body = app
        .graphql(Some(&app.token("ann")), &query, json!({}))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("nested deeper"), "{message}");
    let one_more = format!(
        "{{ notification(id: {}) {{ id }} }}",
        nested("[", "\"x\"", "]", 63)
    );
    let body = app.graphql(None, &one_more, json!({})).await;
    assert_refused(&body, "65 levels", "nested deeper than 64");
    assert_healthy(&app).await;
}

async fn a_fragment_bomb_is_refused_before_validation(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for levels in [26, 30, 60] {
        let body = app.graphql(None, &fragment_bomb(levels), json!({})).await;
        assert_refused(
            &body,
            "a fragment bomb",
            "selections with its fragments expanded",
        );
    }
    let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
    let body = app.graphql(None, cycle, json!({})).await;
    assert_refused(&body, "a fragment cycle", "spreads itself");
    // Fragments spread a few times are fine.
    let token = app.token("ann");
    let fine =
        "{ ...A ...A } fragment A on Query { viewerId ...B } fragment B on Query { viewerId }";
    assert_eq!(app.data(&token, fine, json!({})).await["viewerId"], "ann");
    let many = format!("{{ {} }}", "viewerId ".repeat(10_001));
    let body = app.graphql(None, &many, json!({})).await;
    assert_refused(&body, "too many tokens", "more than 10000 tokens");
    assert_healthy(&app).await;
}

async fn metrics_label_requests_only_by_operations_the_schema_defines(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let long = "y".repeat(100_000);
    for i in 0..50 {
        app.graphql(None, &format!("{{ zq{i} }}"), json!({})).await;
        app.graphql(None, &format!("mutation {{ zq{i} }}"), json!({}))
            .await;
    }
    app.graphql(None, &format!("{{ {long} }}"), json!({})).await;
    app.graphql(Some(&app.token("ann")), "{ counts { unread } }", json!({}))
        .await;
    let metrics = crate::app::http_get(format!("http://127.0.0.1:{}/metrics", app.port()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(!metrics.contains("zq"), "{metrics}");
    assert!(!metrics.contains("yyy"), "a long field name is not a label");
    assert!(
        metrics.contains(r#"belfry_graphql_requests_total{operation="invalid"} 101"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"belfry_graphql_requests_total{operation="query.counts"} 1"#),
        "{metrics}"
    );
    assert!(metrics.len() < 16 * 1024, "{} bytes", metrics.len());
}

async fn a_request_carries_few_mutations(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.mutation_fields = 3).await else {
        return;
    };
    let token = app.token("ann");
    app.send(&["ann"], "one").await;
    let before = app.log_len().await;
    let aliased = |n: usize| {
        let fields: Vec<String> = (0..n)
            .map(|i| format!("a{i}: updatePreferences(changes: [{{category: \"c{i}\", channel: IN_APP, enabled: false}}]) {{ category }}"))
            .collect();
        format!("mutation {{ {} }}", fields.join(" "))
    };
    let body = app.graphql(Some(&token), &aliased(4), json!({})).await;
    assert_refused(&body, "four mutations", "at most 3 mutation fields");
    let through_fragment = "mutation { a: markAllRead { changed } ...M } \
        fragment M on Mutation { b: markAllRead { changed } c: markAllRead { changed } d: markAllSeen { changed } }";
    let body = app.graphql(Some(&token), through_fragment, json!({})).await;
    assert_refused(
        &body,
        "mutations in a fragment",
        "at most 3 mutation fields",
    );
    assert_eq!(app.log_len().await, before, "nothing was appended");
    let body = app.graphql(Some(&token), &aliased(3), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(app.log_len().await, before + 3);
}

crate::on_both_backends!(
    deeply_nested_documents_are_refused_over_http_and_websocket,
    a_document_nested_up_to_the_limit_is_parsed,
    a_fragment_bomb_is_refused_before_validation,
    metrics_label_requests_only_by_operations_the_schema_defines,
    a_request_carries_few_mutations,
    no_request_crashes_the_server_or_goes_uncoded,
);

mod fuzz {
    //! A generator over GraphQL syntax and the shapes above, run for a bounded number of
    //! cases (`BELFRY_FUZZ_CASES`, 200 by default) against the real server.

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::{json, Value};

    const WORDS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        "...",
        ":",
        "=",
        "!",
        "$v",
        "@skip(if: true)",
        "@include(if: $v)",
        "query",
        "mutation",
        "subscription",
        "fragment F on Query",
        "fragment M on Mutation",
        "on",
        "viewerId",
        "counts",
        "unread",
        "unseen",
        "notifications(first: 5)",
        "edges",
        "node",
        "id",
        "title",
        "notification(id: \"x\")",
        "markAllRead",
        "markAllSeen",
        "changed",
        "sendNotification",
        "updatePreferences(changes: [])",
        "__typename",
        "__schema",
        "types",
        "name",
        "a:",
        "b:",
        "\"s\"",
        "\"\\u00e9\"",
        "\"\"\"block\"\"\"",
        "1",
        "-2.5e3",
        "true",
        "null",
        "ENUM",
        "#c\n",
        "\u{feff}",
        "é",
        "\"unterminated",
        "...F",
        "...M",
        "query Q($v: [String] = [\"x\"])",
    ];

    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(WORDS), 0..120).prop_map(|w| w.join(" "))
    }

    fn deep() -> impl Strategy<Value = String> {
        (
            0usize..2_500,
            prop::sample::select(&["[", "{a: ", "a { ", "("][..]),
        )
            .prop_map(|(depth, open)| {
                let close = match open {
                    "[" => "]",
                    "(" => ")",
                    _ => "}",
                };
                format!(
                    "{{ viewerId(x: {}1{}) }}",
                    open.repeat(depth),
                    close.repeat(depth)
                )
            })
    }

    fn bomb() -> impl Strategy<Value = String> {
        (0usize..40, 1usize..4).prop_map(|(levels, fan)| {
            let mut doc = String::from("{ ...F0 }");
            for i in 0..levels {
                let spread = format!(" ...F{}", i + 1).repeat(fan);
                doc.push_str(&format!(" fragment F{i} on Query {{{spread} }}"));
            }
            doc.push_str(&format!(" fragment F{levels} on Query {{ viewerId }}"));
            doc
        })
    }

    fn aliased() -> impl Strategy<Value = String> {
        (0usize..40).prop_map(|n| {
            let fields: Vec<String> = (0..n)
                .map(|i| format!("a{i}: markAllRead {{ changed }}"))
                .collect();
            format!("mutation {{ {} }}", fields.join(" "))
        })
    }

    fn variables() -> impl Strategy<Value = Value> {
        (0usize..200).prop_map(|depth| {
            let mut v = json!("x");
            for _ in 0..depth {
                v = json!([v]);
            }
            json!({ "v": v })
        })
    }

    fn request() -> impl Strategy<Value = (String, Value, bool)> {
        let document = prop_oneof![4 => soup(), 1 => deep(), 1 => bomb(), 1 => aliased()];
        (document, variables(), any::<bool>())
    }

    pub async fn no_request_crashes_the_server_or_goes_uncoded(backend: crate::helpers::Backend) {
        let Some(app) = crate::app::spawn_app(backend).await else {
            return;
        };
        let cases = std::env::var("BELFRY_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let token = app.token("ann");
        let mut runner = TestRunner::new(Config::default());
        let strategy = request();
        for case in 0..cases {
            let (query, variables, signed_in) =
                strategy.new_tree(&mut runner).expect("a case").current();
            let before = app.log_len().await;
            let auth = signed_in.then_some(token.as_str());
            let (status, body) = app
                .post(auth, json!({ "query": query, "variables": variables }))
                .await;
            // 401 is the answer to an anonymous caller asking for what needs a token.
            assert!(
                matches!(status, 200 | 400) || (status == 401 && !signed_in),
                "case {case}: {status} for {query:?}: {body}"
            );
            let errors = body["errors"].as_array().cloned().unwrap_or_default();
            for error in &errors {
                assert!(
                    error["extensions"]["code"].is_string(),
                    "case {case}: an error without a code for {query:?}: {error}"
                );
            }
            if !errors.is_empty() && body["data"].is_null() {
                assert_eq!(
                    app.log_len().await,
                    before,
                    "case {case}: a rejected request appended: {query:?}"
                );
            }
            if case % 50 == 0 {
                super::assert_healthy(&app).await;
            }
        }
        super::assert_healthy(&app).await;
    }
}

async fn no_request_crashes_the_server_or_goes_uncoded(backend: Backend) {
    fuzz::no_request_crashes_the_server_or_goes_uncoded(backend).await
}
