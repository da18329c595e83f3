//! `belfry serve`: the server, until a signal stops it.

use std::net::SocketAddr;
use std::process::ExitCode;

use belfry::app::Application;
use belfry::config::Settings;
use tokio_util::sync::CancellationToken;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let app = Application::build(&settings).await?;
    let addr = app.local_addr()?;
    println!(
        "Belfry is listening on http://{addr} (database: {})",
        settings.database_label()
    );
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    println!("  GraphiQL: http://{shown}/graphiql");
    println!("  health:   http://{shown}/healthz   metrics: http://{shown}/metrics");
    if let Some(demo) = app.demo() {
        println!("  demo:     http://{shown}/   (the inbox component signed in as {:?}, and a form to send to it)", demo.user.as_str());
        if !addr.ip().is_loopback() {
            println!("  warning: the demo page hands its service key to anyone who can open it; set demo = false on a reachable server");
        }
        println!("Demo credentials (set demo = false, or configure jwt_secret, to turn them off):");
        println!(
            "  user token for {:?}, valid {} days (GraphiQL headers: {{\"Authorization\": \"Bearer <token>\"}}):",
            demo.user.as_str(),
            belfry::api::demo::DEMO_TOKEN_TTL.as_secs() / 86_400
        );
        println!("    {}", demo.token);
        println!("  service key (scopes send, admin):");
        println!("    {}", demo.service_key);
    }
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });
    app.run_until_stopped(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
