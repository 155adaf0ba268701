//! TrueNAS poller at scale, against the simulator: the first full poll of a 10,000-volume
//! world (≈ 27k datasets, ≈ 89k ZFS snapshots), then polls with nothing changed (and, with
//! the simulator in this process, a last poll after one change) — with time, CPU and peak
//! memory of the ktd side per poll.
//!
//! `cargo bench -p ktd-truenas --bench poll` (`KTD_BENCH_VOLUMES` changes the size,
//! `KTD_BENCH_TRUENAS` the release, e.g. 24.10 for REST, `KTD_BENCH_POLLS` the number of
//! polls, default 10: the first and the tenth read every snapshot, the others only what
//! changed). With `KTD_BENCH_URL` and `KTD_BENCH_KEY` it polls that server instead (e.g. a
//! `ktd sim serve` in another process, so that the memory figures are ktd's alone) and
//! skips the one-change poll.

use std::time::{Duration, Instant};

use ktd_model::Timestamp;
use ktd_sim::procstat::{cpu_seconds, memory_mib, reset_peak};
use ktd_sim::{GenerateOptions, Personality, TrueNasServer};
use ktd_truenas::{ApiKey, Poller, PollerState, TrueNasClient, TrueNasConfig};
use tokio_util::sync::CancellationToken;

/// The allocator of the `ktd` binary, counting live heap bytes so that memory the allocator
/// keeps can be told from memory in use.
#[global_allocator]
static HEAP: cap::Cap<tikv_jemallocator::Jemalloc> =
    cap::Cap::new(tikv_jemallocator::Jemalloc, usize::MAX);

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let volumes: usize = std::env::var("KTD_BENCH_VOLUMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let personality: Personality = std::env::var("KTD_BENCH_TRUENAS")
        .ok()
        .map(|v| v.parse().expect("a TrueNAS release the simulator knows"))
        .unwrap_or(Personality::V25_10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let external = std::env::var("KTD_BENCH_URL").ok().zip(std::env::var("KTD_BENCH_KEY").ok());
        let (url, key, server) = match external {
            Some((url, key)) => {
                println!("polling {url} (simulator in another process)");
                (url, key, None)
            }
            None => {
                let world = ktd_sim::generate(&GenerateOptions {
                    volumes,
                    snapshots_per_volume: 10,
                    personality,
                    ..GenerateOptions::default()
                });
                let key = world.nas.api_keys[0].key.clone();
                println!(
                    "{volumes} volumes: {} datasets, {} snapshots (simulator in this process)",
                    world.nas.datasets.len(),
                    world.nas.snapshots.len()
                );
                let server = TrueNasServer::start(world.nas, "127.0.0.1:0".parse().unwrap(), shutdown.clone())
                    .await
                    .unwrap();
                (server.url(), key, Some(server))
            }
        };
        let mut config = TrueNasConfig {
            instance: "nas".into(),
            url,
            username: Some("truenas_admin".into()),
            ..TrueNasConfig::default()
        };
        config.timeouts.call = Duration::from_secs(600);
        let client = TrueNasClient::connect_with_key(config, ApiKey::new(key)).await.unwrap();
        println!("TrueNAS {:?} over {:?}", client.release(), client.transport());
        println!("RSS before the first poll: {:.0} MiB", memory_mib("self").1);
        let polls: u64 = std::env::var("KTD_BENCH_POLLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let every = client.config().snapshot_full_read_every.max(1);
        let mut poller = Poller::new(client, "nas", PollerState::rebuild("nas", std::iter::empty()));
        for n in 1..=polls {
            // With the simulator in this process, the last poll follows one change.
            let change = n == polls && polls > 2 && server.is_some();
            if change && let Some(server) = &server {
                server.update(|nas| {
                    nas.snapshots.pop();
                });
            }
            let what = match (n, change) {
                (1, _) => "everything new".to_owned(),
                (_, true) => "one snapshot removed".to_owned(),
                _ => "nothing changed".to_owned(),
            };
            let read = if n == 1 || n % every == 0 { "full" } else { "incremental" };
            let label = format!("poll {n} ({what}, {read} snapshot read)");
            reset_peak();
            let (cpu, started, churn) = (cpu_seconds(), Instant::now(), HEAP.total_allocated());
            let events = poller.poll_once(Timestamp::now()).await;
            let elapsed = started.elapsed();
            let (peak, rss) = memory_mib("self");
            let (count, live) = (events.len(), HEAP.allocated());
            drop(events);
            println!(
                "{label:<58} {:>7.2} s wall {:>6.2} s CPU {count:>7} events  peak RSS {peak:>6.0} MiB \
                 (after {rss:.0}; heap in use {:.0}, {:.0} after dropping the events; allocated {:.0})",
                elapsed.as_secs_f64(),
                cpu_seconds() - cpu,
                mib(live),
                mib(HEAP.allocated()),
                mib(HEAP.total_allocated() - churn),
            );
        }
        shutdown.cancel();
    });
}
