//! Ingest benchmark: `cargo bench -p ktd-log --bench ingest`.
//!
//! Builds the events of a full initial sync of a simulated world (`ktd-sim`, 10,000 volumes
//! × 10 snapshots, 2 clusters: `ObjectApplied` for every Kubernetes object,
//! `DatasetObserved` and `SnapshotObserved` for every dataset and snapshot), then appends
//! them in batches to the embedded log (a redb file in a temporary directory) and to
//! JetStream (a nats-server spawned for the run), and prints events/s and peak RSS.
//!
//! Environment: `KTD_BENCH_VOLUMES` (default 10000), `KTD_BENCH_BATCH` (default 1000),
//! `KTD_NATS_SERVER` (nats-server binary, default from PATH).

#[path = "../tests/common/nats.rs"]
#[allow(dead_code)]
mod nats;

use ktd_sim::procstat::{cpu_seconds, memory_mib, reset_peak};
use std::time::{Duration, Instant};

use ktd_log::embedded::RedbLog;
use ktd_log::jetstream::{JetStreamConfig, JetStreamLog};
use ktd_log::{EventLog, Stream};
use ktd_model::truenas::{
    Dataset, DatasetType, PropertySource, Snapshot, UserProperties, UserProperty,
};
use ktd_model::{Envelope, Event, SourceId, Timestamp};
use ktd_sim::{GenerateOptions, generate};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn local(props: &std::collections::BTreeMap<String, String>) -> UserProperties {
    props
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                UserProperty {
                    value: v.clone(),
                    source: PropertySource::Local,
                    inherited_from: None,
                },
            )
        })
        .collect()
}

/// The observations of a first full sync of the world.
fn build(volumes: usize) -> (Vec<Envelope>, [usize; 3]) {
    let world = generate(&GenerateOptions {
        volumes,
        snapshots_per_volume: 10,
        clusters: 2,
        seed: 42,
        ..GenerateOptions::default()
    });
    let at = Timestamp::from_unix_secs(world.now);
    let mut out = Vec::new();
    let mut counts = [0usize; 3];
    for cluster in &world.clusters {
        let source = SourceId::kubernetes(&cluster.name);
        for raw in &cluster.objects {
            let Ok(object) = ktd_model::normalize::kube::normalize_object(raw, None) else {
                continue;
            };
            let version = raw
                .pointer("/metadata/resourceVersion")
                .and_then(|v| v.as_str())
                .unwrap_or("0")
                .to_owned();
            out.push(Envelope::new(
                source.clone(),
                at,
                Event::ObjectApplied { object },
                version.as_bytes(),
            ));
            counts[0] += 1;
        }
    }
    let nas = SourceId::truenas("nas01");
    let poll = 1u64.to_le_bytes();
    for d in &world.nas.datasets {
        let dataset = Dataset {
            pool: d.name.split('/').next().unwrap_or_default().to_owned(),
            kind: match d.kind {
                ktd_sim::world::DatasetType::Filesystem => DatasetType::Filesystem,
                ktd_sim::world::DatasetType::Volume => DatasetType::Volume,
            },
            mountpoint: None,
            used: Some(d.used_by_dataset + d.used_by_snapshots),
            available: Some(1 << 40),
            used_by_dataset: Some(d.used_by_dataset),
            used_by_snapshots: Some(d.used_by_snapshots),
            used_by_children: Some(0),
            used_by_refreservation: Some(0),
            volsize: d.volsize,
            volblocksize: d.volblocksize,
            quota: None,
            refquota: d.refquota,
            reservation: None,
            refreservation: d.refreservation,
            origin: d.origin.clone(),
            creation: Some(Timestamp::from_unix_secs(d.creation)),
            compressratio: Some("1.37".into()),
            encrypted: d.encrypted,
            locked: false,
            readonly: Some(false),
            snapshot_count: None,
            user_properties: local(&d.user_properties),
            name: d.name.clone(),
        };
        let digest = ktd_model::content_digest(&dataset);
        out.push(Envelope::new(
            nas.clone(),
            at,
            Event::DatasetObserved { dataset },
            &[poll.as_slice(), &digest].concat(),
        ));
        counts[1] += 1;
    }
    for s in &world.nas.snapshots {
        let snapshot = Snapshot {
            name: s.full_name(),
            dataset: s.dataset.clone(),
            snapshot_name: s.name.clone(),
            pool: s.dataset.split('/').next().unwrap_or_default().to_owned(),
            createtxg: Some(s.createtxg),
            creation: Some(Timestamp::from_unix_secs(s.creation)),
            used: Some(s.used),
            referenced: Some(s.referenced),
            clones: Vec::new(),
            defer_destroy: s.defer_destroy,
            holds: Some(u64::from(s.holds)),
            user_properties: local(&s.user_properties),
        };
        let digest = ktd_model::content_digest(&snapshot);
        out.push(Envelope::new(
            nas.clone(),
            at,
            Event::SnapshotObserved { snapshot },
            &[poll.as_slice(), &digest].concat(),
        ));
        counts[2] += 1;
    }
    (out, counts)
}

/// Appends everything in batches (owned batches are prepared before the clock starts, as a
/// source hands over its events); returns (elapsed, CPU seconds, appended, duplicates).
/// Prints the RSS before and the peak RSS during the ingest.
async fn ingest(
    log: &impl EventLog,
    events: &[Envelope],
    batch: usize,
) -> (Duration, f64, u64, u64) {
    let batches: Vec<Vec<Envelope>> = events.chunks(batch).map(<[Envelope]>::to_vec).collect();
    reset_peak();
    let (_, before) = memory_mib("self");
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let (mut appended, mut duplicates) = (0, 0);
    for chunk in batches {
        let out = log
            .append(Stream::Observations, chunk)
            .await
            .expect("append");
        appended += out.appended;
        duplicates += out.duplicates;
    }
    let result = (t0.elapsed(), cpu_seconds() - cpu0, appended, duplicates);
    let (peak, _) = memory_mib("self");
    println!(
        "          RSS before {before:.0} MiB (events and their batch copies in memory), peak during \
         ingest {peak:.0} MiB"
    );
    result
}

fn report(
    backend: &str,
    what: &str,
    n: usize,
    (took, cpu, appended, dups): (Duration, f64, u64, u64),
) {
    println!(
        "{backend:<9} {what:<22} {n} events in {:.2} s = {:>7.0} events/s, ktd CPU {cpu:.2} s \
         (appended {appended}, duplicates {dups})",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

fn main() {
    let volumes = env_usize("KTD_BENCH_VOLUMES", 10_000);
    let batch = env_usize("KTD_BENCH_BATCH", 1_000);
    let t0 = Instant::now();
    let (events, counts) = build(volumes);
    let t_enc = Instant::now();
    let bytes: usize = events
        .iter()
        .map(|e| ktd_model::encode(e).map_or(0, |b| b.len()))
        .sum();
    let encode_time = t_enc.elapsed();
    println!(
        "encoding all events once (msgpack, part of every append) takes {:.2} s",
        encode_time.as_secs_f64()
    );
    println!(
        "world: {volumes} volumes x 10 snapshots -> {} events ({} ObjectApplied, {} DatasetObserved, \
         {} SnapshotObserved), {:.1} MB encoded, built in {:.1} s; batch size {batch}",
        events.len(),
        counts[0],
        counts[1],
        counts[2],
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    let (hwm, rss) = memory_mib("self");
    println!("memory after building the events: VmHWM {hwm:.0} MiB, VmRSS {rss:.0} MiB");
    let n = events.len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.redb");
        let log = RedbLog::open(&path).await.expect("open");
        report(
            "embedded",
            "first ingest",
            n,
            ingest(&log, &events, batch).await,
        );
        report(
            "embedded",
            "re-ingest (all dups)",
            n,
            ingest(&log, &events, batch).await,
        );
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let (hwm, rss) = memory_mib("self");
        println!(
            "embedded  file {:.1} MB; process VmHWM {hwm:.0} MiB, VmRSS {rss:.0} MiB",
            size as f64 / 1e6
        );
    });

    if std::env::var_os("KTD_BENCH_SKIP_JETSTREAM").is_some() {
        return;
    }
    for id_index in [false, true] {
        let server = nats::NatsServer::start();
        let name = if id_index { "js+index" } else { "jetstream" };
        rt.block_on(async {
            let config = JetStreamConfig {
                id_index,
                ..JetStreamConfig::new(server.url())
            };
            let log = JetStreamLog::connect(config).await.expect("connect");
            report(name, "first ingest", n, ingest(&log, &events, batch).await);
            report(
                name,
                "re-ingest (all dups)",
                n,
                ingest(&log, &events, batch).await,
            );
            let (hwm, rss) = memory_mib("self");
            let (shwm, srss) = server
                .pid()
                .map_or((0.0, 0.0), |p| memory_mib(&p.to_string()));
            println!(
                "{name:<9} process VmHWM {hwm:.0} MiB, VmRSS {rss:.0} MiB; nats-server VmHWM \
                 {shwm:.0} MiB, VmRSS {srss:.0} MiB"
            );
        });
    }
}
