//! Fault injection on both transports: server errors, hangs (client timeout and nginx
//! 504), dropped connections and latency.

mod truenas_support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use ktd_sim::Faults;
use ktd_sim::world::Personality;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use truenas_support::*;

fn only(f: impl FnOnce(&mut Faults)) -> Faults {
    let mut faults = Faults::default();
    f(&mut faults);
    faults
}

#[tokio::test]
async fn rest_errors_hangs_drops_and_latency() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    // Errors: a middleware exception (500 with traceback) and nginx without middleware (503).
    server.faults().set(only(|f| f.error_rate = 1.0));
    let (status, body) = rest_get(&server, "/pool/dataset").await;
    assert_eq!(status, 500);
    assert!(
        body["traceback"].is_string() && body["message"].is_string(),
        "{body}"
    );
    let (status, _) = rest_get(&server, "/pool/dataset").await;
    assert_eq!(status, 503);

    // Hang: the client gives up first...
    server.faults().set(only(|f| f.timeout_rate = 1.0));
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let err = short
        .get(format!("{}/api/v2.0/core/ping", server.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect_err("hangs");
    assert!(err.is_timeout(), "{err}");
    // ...or nginx answers 504 after its proxy_read_timeout.
    server.set_gateway_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let (status, body) = rest_get(&server, "/core/ping").await;
    assert_eq!(status, 504);
    assert!(
        body.as_str()
            .expect("html")
            .contains("504 Gateway Time-out")
    );
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Drop: the connection dies mid-response.
    server.faults().set(only(|f| f.drop_rate = 1.0));
    let resp = http()
        .get(format!("{}/api/v2.0/core/ping", server.url()))
        .bearer_auth(KEY)
        .send()
        .await;
    let failed = match resp {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed, "a dropped response cannot be read");

    // Latency.
    server.faults().set(only(|f| f.latency_ms = 250));
    let started = Instant::now();
    let (status, _) = rest_get(&server, "/core/ping").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn jsonrpc_errors_hangs_and_drops() {
    let (server, _token) = start(fixture(Personality::V25_10)).await;
    let mut rpc = Rpc::login(&server).await;
    server.faults().set(only(|f| f.error_rate = 1.0));
    let r = rpc.call("pool.dataset.query", json!([])).await;
    assert_eq!(r["error"]["code"], -32603);
    assert_eq!(r["error"]["data"]["errname"], "EFAULT");

    // Hang: no reply at all, the client times out; the connection stays usable.
    server.faults().set(only(|f| f.timeout_rate = 1.0));
    rpc.send(&json!({"jsonrpc": "2.0", "method": "core.ping", "params": []}))
        .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rpc.ws.next())
            .await
            .is_err(),
        "no reply to a hung call"
    );
    server.faults().set(Faults::default());
    assert_eq!(rpc.ok("core.ping", json!([])).await, "pong");

    // Drop: the socket closes without a reply.
    server.faults().set(only(|f| f.drop_rate = 1.0));
    rpc.send(&json!({"jsonrpc": "2.0", "method": "core.ping", "params": []}))
        .await;
    let next = tokio::time::timeout(Duration::from_secs(5), rpc.ws.next())
        .await
        .expect("socket ends in time");
    match next {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {}
        Some(Ok(other)) => panic!("expected the socket to drop, got {other:?}"),
    }
    // New connections work once the fault is gone.
    server.faults().set(Faults::default());
    let mut again = Rpc::login(&server).await;
    let v: Value = again.ok("core.ping", json!([])).await;
    assert_eq!(v, "pong");
}
