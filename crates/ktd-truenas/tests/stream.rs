//! `Poller::poll_stream`: a batch per tick, ending on shutdown.

mod support;

use std::time::Duration;

use futures::StreamExt;
use ktd_sim::Personality;
use ktd_truenas::TransportChoice;
use support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_stream_yields_a_batch_per_tick_and_stops_on_shutdown() {
    let sim = start(world(Personality::V25_04).nas).await;
    let poller = poller(&sim, TransportChoice::Auto).await;
    let shutdown = CancellationToken::new();
    let stream = poller.poll_stream(Duration::from_millis(50), shutdown.clone());
    let mut stream = Box::pin(stream);
    let first = bounded("batch 1", stream.next()).await.unwrap();
    assert_eq!(completed(&first).0, 1);
    assert!(first.len() > 10);
    for n in 2..=3 {
        let batch = bounded("batch", stream.next()).await.unwrap();
        assert_eq!(types(&batch), vec!["PollCompleted"]);
        assert_eq!(completed(&batch).0, n);
    }
    shutdown.cancel();
    // At most one batch already in the channel, then the end.
    let mut rest = 0;
    while bounded("end of stream", stream.next()).await.is_some() {
        rest += 1;
    }
    assert!(rest <= 1);
}
