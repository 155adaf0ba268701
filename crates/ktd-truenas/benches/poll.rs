//! TrueNAS poller at scale, against the simulator: the first full poll of a 10,000-volume
//! world (≈ 27k datasets, ≈ 89k ZFS snapshots), a poll with nothing changed, and a poll after
//! one change — with time, CPU and peak memory of the ktd side.
//!
//! `cargo bench -p ktd-truenas --bench poll` (`KTD_BENCH_VOLUMES` changes the size,
//! `KTD_BENCH_TRUENAS` the release, e.g. 24.10 for REST). With `KTD_BENCH_URL` and
//! `KTD_BENCH_KEY` it polls that server instead (e.g. a `ktd sim serve` in another process,
//! so that the memory figures are ktd's alone) and skips the one-change poll.

use std::time::{Duration, Instant};

use ktd_model::Timestamp;
use ktd_sim::procstat::{cpu_seconds, memory_mib, reset_peak};
use ktd_sim::{GenerateOptions, Personality, TrueNasServer};
use ktd_truenas::{ApiKey, Poller, PollerState, TrueNasClient, TrueNasConfig};
use tokio_util::sync::CancellationToken;

fn main() {
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
        let mut poller = Poller::new(client, "nas", PollerState::rebuild("nas", std::iter::empty()));
        for label in ["first poll (everything new)", "second poll (nothing changed)", "third poll (one change)"] {
            if label.starts_with("third") {
                let Some(server) = &server else { break };
                server.update(|nas| {
                    nas.snapshots.pop();
                });
            }
            reset_peak();
            let (cpu, started) = (cpu_seconds(), Instant::now());
            let events = poller.poll_once(Timestamp::now()).await;
            let elapsed = started.elapsed();
            let (peak, rss) = memory_mib("self");
            println!(
                "{label:<32} {:>8.2} s wall  {:>6.2} s CPU  {:>7} events  peak RSS {peak:>7.0} MiB (now {rss:.0})",
                elapsed.as_secs_f64(),
                cpu_seconds() - cpu,
                events.len()
            );
        }
        shutdown.cancel();
    });
}
