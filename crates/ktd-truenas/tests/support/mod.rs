//! Shared helpers: simulated worlds, servers, configs, and event summaries.
#![allow(dead_code, missing_docs)]

pub mod proxy;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use ktd_model::{Envelope, Event, Timestamp};
use ktd_sim::{GenerateOptions, Nas, Personality, TrueNasServer, World};
use ktd_truenas::{
    ApiKey, CircuitBreakerConfig, Poller, PollerState, RetryConfig, Timeouts, TransportChoice,
    TrueNasClient, TrueNasConfig,
};
use tokio_util::sync::CancellationToken;

pub const INSTANCE: &str = "nas01";

/// A test must not hang: every wait is bounded.
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 60 s"))
}

pub fn world(personality: Personality) -> World {
    ktd_sim::generate(&GenerateOptions {
        volumes: 12,
        snapshots_per_volume: 2,
        clusters: 2,
        seed: 7,
        personality,
        ..GenerateOptions::default()
    })
}

pub struct Sim {
    pub server: TrueNasServer,
    pub key: ApiKey,
    pub shutdown: CancellationToken,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(nas: Nas) -> Sim {
    let key = ApiKey::new(nas.api_keys[0].key.clone());
    let shutdown = CancellationToken::new();
    let server = TrueNasServer::start(nas, "127.0.0.1:0".parse().unwrap(), shutdown.clone())
        .await
        .unwrap();
    Sim {
        server,
        key,
        shutdown,
    }
}

/// Short timeouts, no retries, a breaker that does not get in the way, usage every poll.
pub fn config(url: &str, transport: TransportChoice) -> TrueNasConfig {
    TrueNasConfig {
        instance: INSTANCE.into(),
        url: url.into(),
        username: Some("truenas_admin".into()),
        transport,
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            call: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
        },
        usage_sample_every: 1,
        retry: RetryConfig {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        circuit_breaker: CircuitBreakerConfig {
            failure_threshold: 1000,
            cool_down: Duration::from_secs(1),
        },
        ..TrueNasConfig::default()
    }
}

pub async fn connect(sim: &Sim, transport: TransportChoice) -> TrueNasClient {
    connect_with(sim, config(&sim.server.url(), transport)).await
}

pub async fn connect_with(sim: &Sim, config: TrueNasConfig) -> TrueNasClient {
    bounded(
        "connect",
        TrueNasClient::connect_with_key(config, sim.key.clone()),
    )
    .await
    .expect("connects")
}

pub async fn poller(sim: &Sim, transport: TransportChoice) -> Poller {
    Poller::new(
        connect(sim, transport).await,
        INSTANCE,
        PollerState::default(),
    )
}

pub fn at(poll: u64) -> Timestamp {
    Timestamp::from_unix_ms(1_795_305_600_000 + poll as i64 * 60_000)
}

pub async fn poll(p: &mut Poller) -> Vec<Envelope> {
    let n = p.state().next_poll();
    bounded("poll", p.poll_once(at(n))).await
}

/// `(event type, key)` of every change event (not `UsageSampled`/`PollCompleted`).
pub fn changes(events: &[Envelope]) -> BTreeSet<(String, String)> {
    events
        .iter()
        .filter_map(|e| {
            let key = match &e.event {
                Event::DatasetObserved { dataset } | Event::DatasetChanged { dataset } => {
                    dataset.name.clone()
                }
                Event::DatasetRemoved { name }
                | Event::SnapshotRemoved { name }
                | Event::PoolRemoved { name } => name.clone(),
                Event::SnapshotObserved { snapshot } => snapshot.name.clone(),
                Event::ShareObserved { share } => share.key().to_string(),
                Event::ShareRemoved { share } => share.to_string(),
                Event::PoolObserved { pool } => pool.name.clone(),
                Event::SystemObserved { system } => system.hostname.clone(),
                Event::PollFailed { error, .. } => error.clone(),
                _ => return None,
            };
            Some((e.event.type_name().to_owned(), key))
        })
        .collect()
}

pub fn set(items: &[(&str, String)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(t, k)| ((*t).to_owned(), k.clone()))
        .collect()
}

/// The one `PollCompleted` that must end a successful poll.
pub fn completed(events: &[Envelope]) -> (u64, Vec<String>) {
    let last = events.last().expect("a poll emits something");
    match &last.event {
        Event::PollCompleted { poll, rejected, .. } => (*poll, rejected.clone()),
        other => panic!("expected PollCompleted last, got {other:?}"),
    }
}

pub fn types(events: &[Envelope]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.type_name()).collect()
}

/// A leaf dataset (no children, not a clone, no clones of its snapshots) matching `pred`.
pub fn leaf(nas: &Nas, pred: impl Fn(&ktd_sim::world::Dataset) -> bool) -> String {
    let origins: BTreeSet<&str> = nas
        .datasets
        .iter()
        .filter_map(|d| d.origin.as_deref())
        .collect();
    nas.datasets
        .iter()
        .filter(|d| d.origin.is_none() && d.name.matches('/').count() >= 2)
        .filter(|d| {
            !nas.datasets
                .iter()
                .any(|c| c.name.starts_with(&format!("{}/", d.name)))
        })
        .filter(|d| {
            !origins
                .iter()
                .any(|o| o.starts_with(&format!("{}@", d.name)))
        })
        .find(|d| pred(d))
        .map(|d| d.name.clone())
        .expect("the world has such a leaf dataset")
}

pub fn snapshots_of(nas: &Nas, dataset: &str) -> Vec<String> {
    nas.snapshots
        .iter()
        .filter(|s| s.dataset == dataset)
        .map(|s| s.full_name())
        .collect()
}
