//! `belfry serve` as a client sees it: health and readiness on a real listener (port 0).

use belfry::app::Application;
use belfry::config::Settings;
use secrecy::SecretString;
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
    let settings = Settings {
        database_url: Some(SecretString::from(store.url.clone())),
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Settings::default()
    };
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

crate::on_both_backends!(the_server_reports_health_with_the_log_head_and_stops_cleanly);
