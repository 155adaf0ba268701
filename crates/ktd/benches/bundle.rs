//! Reading a large bundle: a 10,000-volume world (10 snapshots per volume) collected with
//! `ktd collect`'s code from the simulator, then read by `read_bundle` in a fresh process, so
//! that the peak memory is the reader's alone.
//!
//! `cargo bench -p ktd --bench bundle`. `KTD_BENCH_VOLUMES` changes the size,
//! `KTD_BENCH_TRUENAS` the release (default 25.04); `KTD_BENCH_BUNDLE=DIR` reads that bundle
//! instead (collected once, then reused: the default is `$TMPDIR/ktd-bench-bundle-<volumes>`).
//!
//! Three reads: the events dropped as they come (the reader's own footprint), the events
//! kept (the normalized state, what a view folding the bundle holds at most), and the
//! dropped-events read on one thread (what the parallelism buys).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ktd::bundle::{CollectRequest, ReadOptions, collect_bundle, read_bundle_with};
use ktd_kube::KubeSourceConfig;
use ktd_model::Envelope;
use ktd_sim::procstat::{cpu_seconds, memory_mib};
use ktd_sim::serve::{Bind, SimServers};
use ktd_sim::{GenerateOptions, Personality};
use ktd_truenas::{SecretSource, TrueNasConfig};
use tokio_util::sync::CancellationToken;

fn main() {
    if let Ok(dir) = std::env::var("KTD_BENCH_READ") {
        read_child(Path::new(&dir));
        return;
    }
    let volumes: usize = std::env::var("KTD_BENCH_VOLUMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let personality: Personality = std::env::var("KTD_BENCH_TRUENAS")
        .ok()
        .map(|v| v.parse().expect("a TrueNAS release the simulator knows"))
        .unwrap_or(Personality::V25_04);
    let dir = std::env::var_os("KTD_BENCH_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ktd-bench-bundle-{volumes}")));
    if !dir.join("bundle.json").is_file() {
        collect(&dir, volumes, personality);
    }
    let mut size = 0u64;
    let mut files = vec![dir.clone()];
    while let Some(path) = files.pop() {
        for entry in std::fs::read_dir(&path).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                files.push(entry.path());
            } else {
                size += meta.len();
            }
        }
    }
    println!(
        "bundle {} ({:.1} MB of JSON)",
        dir.display(),
        size as f64 / 1e6
    );
    for (mode, threads) in [("drop", 0), ("keep", 0), ("drop", 1)] {
        let out = Command::new(std::env::current_exe().unwrap())
            .env("KTD_BENCH_READ", &dir)
            .env("KTD_BENCH_MODE", mode)
            .env("KTD_BENCH_THREADS", threads.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

/// Serves a generated world and collects it with `ktd collect`'s code.
fn collect(dir: &Path, volumes: usize, personality: Personality) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let world = ktd_sim::generate(&GenerateOptions {
            volumes,
            snapshots_per_volume: 10,
            clusters: 1,
            personality,
            ..GenerateOptions::default()
        });
        println!(
            "collecting {volumes} volumes: {} Kubernetes objects, {} datasets, {} snapshots (TrueNAS {})",
            world.clusters[0].objects.len(),
            world.nas.datasets.len(),
            world.nas.snapshots.len(),
            personality.version_string()
        );
        let shutdown = CancellationToken::new();
        let servers = SimServers::start(world, Bind::default(), shutdown.clone())
            .await
            .unwrap();
        let keys = tempfile::tempdir().unwrap();
        let key_file = keys.path().join("api-key");
        std::fs::write(&key_file, servers.api_key.clone().unwrap()).unwrap();
        let (cluster, kube) = &servers.clusters[0];
        let kube = KubeSourceConfig {
            instance: cluster.clone(),
            url: Some(kube.url()),
            ..KubeSourceConfig::default()
        };
        let mut nas = TrueNasConfig {
            instance: "nas".into(),
            url: servers.truenas.url(),
            api_key: SecretSource::File { file: key_file },
            username: Some("truenas_admin".into()),
            ..TrueNasConfig::default()
        };
        nas.timeouts.call = Duration::from_secs(900);
        let started = Instant::now();
        let report = collect_bundle(CollectRequest {
            dir,
            kubernetes: Some(&kube),
            truenas: Some(&nas),
        })
        .await
        .unwrap();
        assert!(report.left_out.is_empty(), "{:?}", report.left_out);
        println!("collected in {:.1} s", started.elapsed().as_secs_f64());
        shutdown.cancel();
    });
}

/// One read in this (fresh) process; prints one line.
fn read_child(dir: &Path) {
    let keep = std::env::var("KTD_BENCH_MODE").as_deref() == Ok("keep");
    let threads: usize = std::env::var("KTD_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let (_, before) = memory_mib("self");
    let mut kept: Vec<Envelope> = Vec::new();
    let mut events = 0u64;
    let (cpu, started) = (cpu_seconds(), Instant::now());
    let info = read_bundle_with(
        dir,
        &ReadOptions {
            threads,
            ..ReadOptions::default()
        },
        &mut |env| {
            events += 1;
            if keep {
                kept.push(env);
            }
        },
    )
    .unwrap();
    let elapsed = started.elapsed();
    let (peak, _) = memory_mib("self");
    assert!(
        info.rejected.is_empty(),
        "{:?}",
        &info.rejected[..3.min(info.rejected.len())]
    );
    let label = format!(
        "events {}, {} thread(s)",
        if keep { "kept" } else { "dropped" },
        if threads == 0 {
            "auto".to_owned()
        } else {
            threads.to_string()
        }
    );
    println!(
        "{label:<30} {:>7.2} s wall  {:>6.2} s CPU  {events:>8} events  peak RSS {peak:>6.0} MiB (before: {before:.0})",
        elapsed.as_secs_f64(),
        cpu_seconds() - cpu,
    );
    drop(kept);
}
