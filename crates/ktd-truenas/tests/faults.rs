//! Faults: 5xx, timeouts and dropped connections fail a poll with one `PollFailed` and
//! nothing else; the next healthy poll emits the correct diff; the circuit breaker opens
//! after N failures and closes after the cool-down.

mod support;

use std::time::Duration;

use ktd_model::{Envelope, Event};
use ktd_sim::{Faults, Personality};
use ktd_truenas::{BreakerState, Poller, PollerState, TransportChoice};
use support::*;

/// The only event of a failed poll.
fn failed(events: &[Envelope]) -> (u64, String, Option<String>, bool) {
    assert_eq!(
        types(events),
        vec!["PollFailed"],
        "a failed poll emits nothing else"
    );
    match &events[0].event {
        Event::PollFailed {
            poll,
            error,
            method,
            retryable,
        } => (*poll, error.clone(), method.clone(), *retryable),
        _ => unreachable!(),
    }
}

/// Poll 1 healthy, a dataset removed, then `faults` fail poll 2; after clearing them, the
/// redone poll 2 emits the removal.
async fn fails_then_recovers(
    personality: Personality,
    transport: TransportChoice,
    faults: Faults,
    tune: impl FnOnce(&mut ktd_truenas::TrueNasConfig),
    expect_in_error: &str,
) {
    let sim = start(world(personality).nas).await;
    let mut config = config(&sim.server.url(), transport);
    tune(&mut config);
    let mut poller = Poller::new(
        connect_with(&sim, config).await,
        INSTANCE,
        PollerState::default(),
    );
    let first = poll(&mut poller).await;
    assert_eq!(completed(&first).0, 1);
    let known = poller.state().clone();

    let nas = sim.server.nas();
    let gone = leaf(&nas, |d| snapshots_of(&nas, &d.name).is_empty());
    sim.server.update({
        let gone = gone.clone();
        move |nas| nas.datasets.retain(|d| d.name != gone)
    });
    sim.server.faults().set(faults);
    let broken = poll(&mut poller).await;
    let (n, error, method, retryable) = failed(&broken);
    assert_eq!(n, 2);
    assert!(retryable, "{error}");
    assert_eq!(method.as_deref(), Some("pool.query"), "{error}");
    assert!(error.contains(expect_in_error), "{error}");
    assert_eq!(poller.state(), &known, "a failed poll changes nothing");

    sim.server.faults().set(Faults::default());
    let healed = poll(&mut poller).await;
    assert_eq!(
        completed(&healed),
        (2, vec![]),
        "the failed poll is redone under its number"
    );
    assert_eq!(
        changes(&healed),
        set(&[("DatasetRemoved", gone)]),
        "{:?}",
        types(&healed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_5xx_fails_the_poll_then_recovers() {
    fails_then_recovers(
        Personality::V24_10,
        TransportChoice::Auto,
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        |c| c.retry.max_attempts = 2,
        "HTTP 50",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_internal_errors_fail_the_poll_then_recover() {
    fails_then_recovers(
        Personality::V25_04,
        TransportChoice::Auto,
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        |_| {},
        "simulated middleware failure",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_timeouts_fail_the_poll_then_recover() {
    fails_then_recovers(
        Personality::V22_12,
        TransportChoice::Auto,
        Faults {
            timeout_rate: 1.0,
            ..Faults::default()
        },
        |c| c.timeouts.call = Duration::from_millis(300),
        "no answer within",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_504_fails_the_poll_then_recovers() {
    let sim_timeout = Duration::from_millis(200);
    let sim = start(world(Personality::V25_10).nas).await;
    sim.server.set_gateway_timeout(sim_timeout);
    let mut poller = poller(&sim, TransportChoice::Rest).await;
    poll(&mut poller).await;
    sim.server.faults().set(Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    });
    let (_, error, _, retryable) = failed(&poll(&mut poller).await);
    assert!(
        retryable && error.contains("504") && error.contains("60 s"),
        "{error}"
    );
    sim.server.faults().set(Faults::default());
    assert_eq!(types(&poll(&mut poller).await), vec!["PollCompleted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_timeouts_fail_the_poll_then_recover() {
    fails_then_recovers(
        Personality::V25_10,
        TransportChoice::Auto,
        Faults {
            timeout_rate: 1.0,
            ..Faults::default()
        },
        |c| c.timeouts.call = Duration::from_millis(300),
        "no answer within",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_websocket_fails_the_poll_then_reconnects() {
    fails_then_recovers(
        Personality::V25_04,
        TransportChoice::Auto,
        Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
        |_| {},
        "connection to TrueNAS lost",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_rest_response_fails_the_poll_then_recovers() {
    fails_then_recovers(
        Personality::V25_04,
        TransportChoice::Rest,
        Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
        |_| {},
        "connection to TrueNAS lost",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_opens_after_n_failures_and_recovers() {
    for transport in [TransportChoice::Rest, TransportChoice::Jsonrpc] {
        let sim = start(world(Personality::V25_10).nas).await;
        let mut config = config(&sim.server.url(), transport);
        config.circuit_breaker.failure_threshold = 3;
        config.circuit_breaker.cool_down = Duration::from_secs(2);
        let mut poller = Poller::new(
            connect_with(&sim, config).await,
            INSTANCE,
            PollerState::default(),
        );
        poll(&mut poller).await;
        sim.server.faults().set(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        for _ in 0..3 {
            let (_, error, _, _) = failed(&poll(&mut poller).await);
            assert!(!error.contains("circuit breaker"), "{error}");
        }
        assert!(matches!(
            poller.client().breaker_state(),
            BreakerState::Open { .. }
        ));
        // Open: fails fast, without calling TrueNAS (faults off, still refused).
        sim.server.faults().set(Faults::default());
        let (poll_no, error, _, retryable) = failed(&poll(&mut poller).await);
        assert_eq!(poll_no, 2);
        assert!(
            retryable && error.contains("circuit breaker open"),
            "{error}"
        );
        // After the cool-down a probe goes through and the breaker closes.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(poller.client().breaker_state(), BreakerState::HalfOpen);
        let healed = poll(&mut poller).await;
        assert_eq!(completed(&healed).0, 2, "{transport:?}");
        assert_eq!(
            poller.client().breaker_state(),
            BreakerState::Closed { failures: 0 }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_never_leave_half_a_diff_and_converge() {
    for (personality, transport) in [
        (Personality::V24_10, TransportChoice::Auto),
        (Personality::V25_10, TransportChoice::Auto),
    ] {
        let w = world(personality);
        let sim = start(w.nas.clone()).await;
        let mut config = config(&sim.server.url(), transport);
        config.timeouts.call = Duration::from_secs(1);
        config.retry.max_attempts = 2;
        let mut poller = Poller::new(
            connect_with(&sim, config).await,
            INSTANCE,
            PollerState::default(),
        );
        sim.server.faults().set(Faults {
            error_rate: 0.03,
            timeout_rate: 0.02,
            drop_rate: 0.03,
            latency_ms: 0,
        });
        let mut log = Vec::new();
        let mut completed_polls = 0;
        for _ in 0..12 {
            let batch = poll(&mut poller).await;
            match &batch.last().unwrap().event {
                Event::PollCompleted { .. } => completed_polls += 1,
                Event::PollFailed { .. } => assert_eq!(batch.len(), 1),
                other => panic!("{other:?}"),
            }
            log.extend(batch);
        }
        sim.server.faults().set(Faults::default());
        log.extend(poll(&mut poller).await);
        assert!(
            completed_polls > 0,
            "{personality:?}: some polls get through"
        );
        // Whatever failed on the way, the log describes the world exactly once.
        let state = PollerState::rebuild(INSTANCE, &log);
        assert_eq!(state.datasets().count(), w.nas.datasets.len());
        assert_eq!(state.snapshots().count(), w.nas.snapshots.len());
        let observed = log
            .iter()
            .filter(|e| matches!(e.event, Event::DatasetObserved { .. }))
            .count();
        assert_eq!(observed, w.nas.datasets.len(), "no duplicate observations");
    }
}
