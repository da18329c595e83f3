//! `belfry serve` as a client sees it: health and readiness on a real listener (port 0).

use belfry::app::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::helpers::{send_cmd, Backend, TestStore};

async fn get(port: u16, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

async fn the_server_reports_health_with_the_log_head_and_stops_cleanly(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let settings = crate::app::test_settings(&store);
    let app = Application::build(&settings).await.expect("build");
    let port = app.port();
    assert_ne!(port, 0);
    let engine = app.engine().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    engine
        .execute(
            belfry::domain::Command::Send(send_cmd(&["ann"], "builds", "hi", None)),
            crate::helpers::meta(),
        )
        .await
        .expect("send");
    let health = get(port, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#""head":1"#), "{health}");
    let ready = get(port, "/readyz").await;
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.contains("ready"),
        "{ready}"
    );

    shutdown.cancel();
    server.await.expect("server task").expect("stopped cleanly");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the port is released"
    );
}

async fn serve_refuses_to_start_until_a_stale_projection_is_replayed(backend: Backend) {
    let Some(store) = TestStore::new(backend).await else {
        return;
    };
    let engine = store.engine().await;
    engine.send(&["ann"], "builds", "hi").await;
    engine.stop().await;
    // As if an older build had built the inbox table.
    let sql = "UPDATE projection_status SET version = 0 WHERE name = 'inbox'";
    store.execute_raw(sql).await.expect("update");
    let settings = crate::app::test_settings(&store);
    let refused = Application::build(&settings)
        .await
        .err()
        .expect("serve refuses");
    let message = format!("{refused:#}");
    assert!(
        message.contains("inbox") && message.contains("belfry replay"),
        "{message}"
    );

    belfry::projections::replay::rebuild(
        &store.db,
        &[belfry::projections::Projection::Inbox],
        |_| {},
    )
    .await
    .expect("replay");
    let app = Application::build(&settings)
        .await
        .expect("serves after replay");
    let inbox = belfry::projections::read::inbox(
        &store.db,
        &crate::helpers::user("ann"),
        &Default::default(),
        None,
        10,
    )
    .await
    .expect("inbox");
    assert_eq!(inbox.len(), 1, "the rebuilt inbox holds the notification");
    drop(app);
}

crate::on_both_backends!(
    the_server_reports_health_with_the_log_head_and_stops_cleanly,
    serve_refuses_to_start_until_a_stale_projection_is_replayed,
);
