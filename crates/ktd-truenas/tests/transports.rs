//! On 25.04 and 25.10 both transports exist: forced REST and forced JSON-RPC must give the
//! same events (same ids), and forcing JSON-RPC on an older release fails clearly.

mod support;

use ktd_model::truenas::ApiTransport;
use ktd_model::{Envelope, Event};
use ktd_sim::Personality;
use ktd_truenas::{ClientError, TransportChoice, TrueNasClient};
use support::*;

fn without_poll_completed(events: &[Envelope]) -> Vec<(String, Event)> {
    let mut v: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e.event, Event::PollCompleted { .. }))
        .map(|e| (e.id.to_string(), e.event.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

async fn same_events(personality: Personality) {
    let w = world(personality);
    let sim = start(w.nas.clone()).await;
    let mut rest = poller(&sim, TransportChoice::Rest).await;
    let mut rpc = poller(&sim, TransportChoice::Jsonrpc).await;
    assert_eq!(rest.client().transport(), ApiTransport::RestV2);
    assert_eq!(rpc.client().transport(), ApiTransport::JsonRpc);
    let a = poll(&mut rest).await;
    let b = poll(&mut rpc).await;
    assert!(a.len() > 50);
    pretty_assertions::assert_eq!(without_poll_completed(&a), without_poll_completed(&b));
    // The PollCompleted ids agree too (poll number); only the transport field differs.
    assert_eq!(a.last().unwrap().id, b.last().unwrap().id);

    let nas = sim.server.nas();
    let gone = leaf(&nas, |_| true);
    sim.server
        .update(move |nas| nas.datasets.retain(|d| d.name != gone));
    let a = poll(&mut rest).await;
    let b = poll(&mut rpc).await;
    assert!(a.len() > 1);
    pretty_assertions::assert_eq!(without_poll_completed(&a), without_poll_completed(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_jsonrpc_agree_on_25_04() {
    same_events(Personality::V25_04).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_jsonrpc_agree_on_25_10() {
    same_events(Personality::V25_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_before_25_04_is_refused_clearly() {
    let sim = start(world(Personality::V24_10).nas).await;
    let e = TrueNasClient::connect_with_key(
        config(&sim.server.url(), TransportChoice::Jsonrpc),
        sim.key.clone(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ClientError::Config(_)), "{e}");
    assert!(e.to_string().contains("before 25.04"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_without_username_falls_back_to_login_with_api_key() {
    let sim = start(world(Personality::V25_04).nas).await;
    let mut config = config(&sim.server.url(), TransportChoice::Jsonrpc);
    config.username = None;
    let client = connect_with(&sim, config).await;
    assert_eq!(client.transport(), ApiTransport::JsonRpc);
    let pools = client.pools().await.unwrap();
    assert!(pools.as_array().is_some_and(|p| !p.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_keeps_at_most_ten_calls_in_flight() {
    // 40 concurrent calls on one connection: the server refuses the 21st in flight; the
    // client queues above 10, so every call succeeds.
    let sim = start(world(Personality::V25_10).nas).await;
    sim.server.faults().set(ktd_sim::Faults {
        latency_ms: 50,
        ..Default::default()
    });
    let client = connect(&sim, TransportChoice::Jsonrpc).await;
    let calls = (0..40).map(|_| client.call("system.info", &[]));
    let results = bounded("40 calls", futures::future::join_all(calls)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // The snapshot method of 25.10 is pool.snapshot.query.
    assert_eq!(client.snapshot_method(), "pool.snapshot.query");
}
