//! Identity through the real server: people only ever see and change their own
//! notifications, and bad credentials are refused with the right code.

use belfry::auth::Scope;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use crate::app::{code, spawn_app, spawn_app_with, Ws, SECRET};
use crate::helpers::Backend;
use crate::live::{COUNTS, INBOX};

async fn a_person_cannot_see_or_change_anyone_elses_notifications(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (ann, bob) = (app.token("ann"), app.token("bob"));
    let mut bobs_inbox = app.ws("bob").await;
    crate::live::subscribe_inbox(&app, &mut bobs_inbox, "1", "bob").await;
    let mut bobs_counts = app.ws("bob").await;
    bobs_counts.subscribe("c", COUNTS, json!({})).await;
    bobs_counts.next_payload("c").await;

    let sent = app.send(&["ann"], "for ann only").await;
    let id = sent[0]["notificationId"].as_str().unwrap();
    let looked_up = app
        .graphql(
            Some(&bob),
            "query($id: ID!) { notification(id: $id) { title } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&looked_up), "NOT_FOUND", "{looked_up}");
    let listed = app
        .data(
            &bob,
            "{ notifications { edges { node { id } } } counts { unread unseen } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["notifications"]["edges"], json!([]));
    assert_eq!(listed["counts"], json!({ "unread": 0, "unseen": 0 }));
    for mutation in ["markSeen", "markRead", "markUnread", "archive", "unarchive"] {
        let query = format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}");
        let response = app.graphql(Some(&bob), &query, json!({ "id": id })).await;
        assert_eq!(code(&response), "NOT_FOUND", "{mutation}: {response}");
    }
    let marked = app
        .data(
            &bob,
            "mutation { markAllRead { changed } markAllSeen { changed } }",
            json!({}),
        )
        .await;
    assert_eq!(
        marked,
        json!({ "markAllRead": { "changed": 0 }, "markAllSeen": { "changed": 0 } })
    );
    app.data(
        &bob,
        "mutation { updatePreferences(changes: [{ category: \"marketing\", channel: IN_APP, enabled: false }]) { enabled } }",
        json!({}),
    )
    .await;

    let ann_view = app
        .data(
            &ann,
            "query($id: ID!) { notification(id: $id) { seen read archived } counts { unread } preferences { enabled } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        ann_view,
        json!({ "notification": { "seen": false, "read": false, "archived": false },
                "counts": { "unread": 1 }, "preferences": [] }),
        "nothing bob did reached ann's inbox"
    );
    // Bob's subscriptions saw nothing of ann's: their next messages are bob's own.
    app.send(&["bob"], "for bob").await;
    let payload = bobs_inbox.next_payload("1").await;
    assert_eq!(payload["data"]["inbox"]["added"][0]["title"], "for bob");
    assert_eq!(
        bobs_counts.next_payload("c").await["data"]["unreadCount"]["unread"],
        1,
        "bob's counts moved only for his own notification"
    );
}

async fn bad_credentials_are_refused_with_the_right_code(backend: Backend) {
    // No key cache: a revoked key is refused on the very next request.
    let Some(app) = spawn_app_with(backend, |s| s.api_key_cache_secs = 0).await else {
        return;
    };
    let query = "{ counts { unread } }";
    let none = app.graphql(None, query, json!({})).await;
    assert_eq!(code(&none), "UNAUTHENTICATED");
    let none_send = app.post(None, json!({ "query": crate::app::SEND, "variables": { "input": { "recipients": ["ann"], "title": "t" } } })).await;
    assert_eq!(code(&none_send.1), "UNAUTHENTICATED");

    let forged = encode(
        &Header::default(),
        &json!({ "sub": "ann", "exp": chrono::Utc::now().timestamp() + 600 }),
        &EncodingKey::from_secret(b"another-secret-another-secret-another"),
    )
    .unwrap();
    let (status, body) = app.post(Some(&forged), json!({ "query": query })).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("signature"));

    let expired = encode(
        &Header::default(),
        &json!({ "sub": "ann", "exp": chrono::Utc::now().timestamp() - 3_600 }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let (status, body) = app.post(Some(&expired), json!({ "query": query })).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    let admin_only = app.key_with(&[Scope::Admin]).await;
    let send_only = app.key_with(&[Scope::Send]).await;
    let input = json!({ "input": { "recipients": ["ann"], "title": "t" } });
    let refused = app
        .graphql(Some(&admin_only), crate::app::SEND, input.clone())
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let refused = app
        .graphql(Some(&app.token("ann")), crate::app::SEND, input.clone())
        .await;
    assert_eq!(
        code(&refused),
        "FORBIDDEN",
        "a person cannot send: {refused}"
    );
    let refused = app
        .graphql(Some(&send_only), "{ projections { name } }", json!({}))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let refused = app.graphql(Some(&send_only), query, json!({})).await;
    assert_eq!(code(&refused), "FORBIDDEN", "a key has no inbox: {refused}");
    let sent = app
        .graphql(Some(&send_only), crate::app::SEND, input.clone())
        .await;
    assert!(sent.get("errors").is_none(), "{sent}");

    let id = send_only.split('_').nth(1).unwrap();
    assert!(belfry::auth::ApiKeys::new(app.store.db.clone())
        .revoke(id)
        .await
        .unwrap());
    let (status, body) = app
        .post(
            Some(&send_only),
            json!({ "query": crate::app::SEND, "variables": input }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, "UNAUTHENTICATED"),
        "a revoked key: {body}"
    );

    // Subscriptions: no credential is refused per operation, a bad one closes the socket.
    let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
    ws.init(json!({})).await;
    ws.subscribe("1", INBOX, json!({})).await;
    let error = ws.next().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "UNAUTHENTICATED");
    for (token, why) in [
        (forged.as_str(), "signature"),
        (expired.as_str(), "expired"),
    ] {
        let mut ws = Ws::connect(app.port(), "graphql-transport-ws").await;
        ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let closed = ws.closed().await;
        assert_eq!(closed.code, 4403, "{closed:?}");
        assert!(closed.reason.contains(why), "{closed:?}");
    }
}

async fn tokens_signed_with_an_rsa_or_ec_key_are_verified_with_its_public_key(backend: Backend) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    for (kind, algorithm) in [
        ("rs256", jsonwebtoken::Algorithm::RS256),
        ("es256", jsonwebtoken::Algorithm::ES256),
    ] {
        let public = format!("{fixtures}/{kind}-public.pem");
        let Some(app) = spawn_app_with(backend, |s| s.jwt_public_key = Some(public.into())).await
        else {
            return;
        };
        let private = std::fs::read(format!("{fixtures}/{kind}-private.pem")).unwrap();
        let key = match algorithm {
            jsonwebtoken::Algorithm::RS256 => EncodingKey::from_rsa_pem(&private).unwrap(),
            _ => EncodingKey::from_ec_pem(&private).unwrap(),
        };
        let claims =
            |exp: i64| json!({ "sub": "ann", "exp": chrono::Utc::now().timestamp() + exp });
        let good = encode(&Header::new(algorithm), &claims(600), &key).unwrap();
        let viewer = app.data(&good, "{ viewerId }", json!({})).await;
        assert_eq!(viewer["viewerId"], "ann", "{kind}");
        let expired = encode(&Header::new(algorithm), &claims(-3_600), &key).unwrap();
        let (status, body) = app
            .post(Some(&expired), json!({ "query": "{ viewerId }" }))
            .await;
        assert_eq!(
            (status, code(&body)),
            (401, "UNAUTHENTICATED"),
            "{kind}: {body}"
        );
        // An HS256 token is not accepted where a public key is configured.
        let hs = encode(
            &Header::default(),
            &claims(600),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let (status, _) = app
            .post(Some(&hs), json!({ "query": "{ viewerId }" }))
            .await;
        assert_eq!(status, 401, "{kind}");
    }
}

async fn a_verified_key_is_trusted_for_the_cache_time_and_no_other_key_is(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.api_key_cache_secs = 3_600).await else {
        return;
    };
    let input = json!({ "input": { "recipients": ["ann"], "title": "t" } });
    let send = |key: String| {
        let input = input.clone();
        let app = &app;
        async move {
            app.post(
                Some(&key),
                json!({ "query": crate::app::SEND, "variables": input }),
            )
            .await
        }
    };
    let keys = belfry::auth::ApiKeys::new(app.store.db.clone());
    let id_of = |key: &str| key.split('_').nth(1).unwrap().to_owned();

    let used = app.key_with(&[Scope::Send]).await;
    let (status, body) = send(used.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert!(keys.revoke(&id_of(&used)).await.unwrap());
    let (status, body) = send(used.clone()).await;
    assert!(
        status == 200 && body.get("errors").is_none(),
        "a key verified moments ago is trusted until api_key_cache_secs pass: {body}"
    );

    let never_used = app.key_with(&[Scope::Send]).await;
    assert!(keys.revoke(&id_of(&never_used)).await.unwrap());
    let (status, body) = send(never_used).await;
    assert_eq!(
        (status, code(&body)),
        (401, "UNAUTHENTICATED"),
        "a key revoked before the server verified it: {body}"
    );

    let live = app.key_with(&[Scope::Send]).await;
    assert_eq!(send(live.clone()).await.0, 200);
    let forged = format!("{}0", &live[..live.len() - 1]);
    let forged = if forged == live {
        format!("{}1", &live[..live.len() - 1])
    } else {
        forged
    };
    let (status, body) = send(forged).await;
    assert_eq!(
        (status, code(&body)),
        (401, "UNAUTHENTICATED"),
        "the id of a cached key with another secret: {body}"
    );
}

crate::on_both_backends!(
    a_verified_key_is_trusted_for_the_cache_time_and_no_other_key_is,
    a_person_cannot_see_or_change_anyone_elses_notifications,
    bad_credentials_are_refused_with_the_right_code,
    tokens_signed_with_an_rsa_or_ec_key_are_verified_with_its_public_key,
);
