//! Measures end-to-end live delivery against a running `belfry serve`: one WebSocket
//! subscriber, sends through the GraphQL API one after another, and for each the time from
//! starting the send to the change arriving on the socket (and to the send's acknowledgement).
//!
//! ```sh
//! cargo run --release --example live_latency -- http://127.0.0.1:8080 <service key> <user token> demo 500
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<10} n={} p50={:.2?} p95={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, key, token, user, count] = &args[..] else {
        eprintln!("usage: live_latency <server url> <service key> <user token> <user id> <count>");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("count");
    let ws_url = format!("{}/graphql", url.replacen("http", "ws", 1));
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send_text = |v: Value| Message::text(v.to_string());
    ws.send(send_text(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await
        .unwrap();
    ws.next().await.unwrap().unwrap();
    ws.send(send_text(
        json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { inbox { cursor added { id } counts { unread } } }" } }),
    ))
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let query = "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { deliveries { notificationId } } }";
    let (mut acks, mut deliveries) = (Vec::new(), Vec::new());
    for i in 0..count {
        let started = Instant::now();
        let response: Value = http
            .post(format!("{url}/graphql"))
            .bearer_auth(key)
            .json(&json!({ "query": query, "variables": { "input": { "recipients": [user], "title": format!("latency {i}") } } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        acks.push(started.elapsed());
        let id = response["data"]["sendNotification"]["deliveries"][0]["notificationId"].clone();
        loop {
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                continue;
            };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["payload"]["data"]["inbox"]["added"][0]["id"] == id {
                deliveries.push(started.elapsed());
                break;
            }
        }
    }
    report("ack", acks);
    report("delivered", deliveries);
}
