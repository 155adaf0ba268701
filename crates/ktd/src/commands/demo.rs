//! `ktd demo`: ktd's main job on the embedded default, against a simulated world.
//!
//! A generated world (two clusters sharing one TrueNAS) is served on loopback by the fake
//! kube-apiserver and the TrueNAS simulator; the same pipeline as `ktd run` — the
//! Kubernetes source, the TrueNAS poller, ticks, the batching writer — ingests it into an
//! embedded log in a temporary directory until both sides are completely observed. The
//! demo then prints what the log holds and which findings the world contains.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use ktd_kube::{KnownObjects, KubeSource, KubeSourceConfig};
use ktd_log::embedded::RedbLog;
use ktd_log::{EventLog, Stream};
use ktd_model::{Event, Finding, KubeKind, SourceId, Timestamp};
use ktd_sim::serve::{Bind, SimServers};
use ktd_sim::{GenerateOptions, Personality};
use ktd_truenas::{Poller, PollerState, SecretSource, TrueNasClient, TrueNasConfig};
use ktd_views::{FindingsConfig, FindingsView, Summary};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::accuracy::Accuracy;
use crate::cli::DemoArgs;
use crate::daemon::{BatchOptions, Ingest};
use crate::output::{self, Format, Table};

/// What the demo's log holds.
#[derive(Debug, Default, Serialize)]
struct Report {
    cluster: String,
    truenas_version: String,
    /// Where the log was written.
    log: String,
    /// Events in the log per subject kind (`persistentvolume`, `dataset`, …).
    events_by_subject: BTreeMap<String, u64>,
    /// Events in the log per event type.
    events_by_type: BTreeMap<String, u64>,
    /// Total events appended.
    events: u64,
    /// Objects the sources could not read (named, with the reason).
    rejected: Vec<String>,
    /// Time until both sides were completely observed.
    elapsed_ms: u128,
    /// The findings ktd derived, most severe first.
    findings: Vec<Finding>,
    /// Their totals, and what could not be judged.
    summary: Option<Summary>,
    /// Derived events appended to the log (`FindingOpened`, ...).
    derived_events: u64,
    /// Time spent folding the log into the findings (the cold reconcile).
    views_ms: u128,
    /// The findings compared with the world's ground truth.
    accuracy: Accuracy,
}

/// Runs the demo.
pub async fn run(args: DemoArgs, format: Format) -> anyhow::Result<ExitCode> {
    let personality: Personality = args
        .truenas_version
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let world = ktd_sim::generate(&GenerateOptions {
        volumes: args.volumes,
        snapshots_per_volume: args.snapshots,
        clusters: 2,
        seed: args.seed,
        personality,
        now: Timestamp::now().unix_secs(),
        faults: true,
    });
    let truth = world.truth.clone();
    let sim_shutdown = CancellationToken::new();
    let servers = SimServers::start(world, Bind::default(), sim_shutdown.clone())
        .await
        .context("cannot start the simulated servers on loopback")?;
    let (cluster, kube) = servers
        .clusters
        .first()
        .context("the world has no cluster")?;
    let api_key = servers
        .api_key
        .clone()
        .context("the world has no API key")?;

    // The API key goes where a real deployment keeps it: a file only ktd reads.
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let key_file = dir.path().join("truenas-api-key");
    std::fs::write(&key_file, &api_key)?;
    let log_path = dir.path().join("events.redb");
    let log = Arc::new(RedbLog::open(&log_path).await?);

    let kube_cfg = KubeSourceConfig {
        instance: cluster.clone(),
        url: Some(kube.url()),
        ..KubeSourceConfig::default()
    };
    let nas_cfg = TrueNasConfig {
        instance: "nas".into(),
        url: servers.truenas.url(),
        api_key: SecretSource::File { file: key_file },
        username: Some("truenas_admin".into()),
        poll_interval: Duration::from_secs(5),
        ..TrueNasConfig::default()
    };

    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let ingest = Ingest::new(log.clone(), shutdown.clone());
    let client = kube_cfg.client().await?;
    ingest.source(
        "kubernetes",
        KubeSource::new(client, kube_cfg.clone())
            .known(KnownObjects::new(cluster.clone()))
            .stream(),
    );
    let nas = TrueNasClient::connect(nas_cfg.clone())
        .await
        .context("cannot connect to the TrueNAS simulator")?;
    let poller = Poller::new(
        nas,
        nas_cfg.instance.clone(),
        PollerState::rebuild("nas", std::iter::empty()),
    );
    ingest.source(
        "truenas",
        poller
            .stream(shutdown.clone())
            .flat_map(futures::stream::iter),
    );
    ingest.ticks("demo".into(), Duration::from_secs(1));
    let writer = tokio::spawn(ingest.run(BatchOptions::default(), CancellationToken::new()));

    // Follow the log until every kind has synced and a poll has completed.
    let mut follow = log.tail(Stream::Observations, 1);
    let mut synced = BTreeSet::new();
    let mut polled = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while synced.len() < KubeKind::ALL.len() || !polled {
        let next = tokio::time::timeout_at(deadline, follow.next())
            .await
            .context("the sources did not finish their first full observation within 2 minutes")?;
        let Some(record) = next else { break };
        match record?.map(|e| e.event) {
            Ok(Event::SyncCompleted { kind, .. }) => {
                synced.insert(kind);
            }
            Ok(Event::PollCompleted { .. }) => polled = true,
            Ok(Event::PollFailed { error, .. }) => eprintln!("warning: poll failed: {error}"),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    let stats = writer.await??;

    let mut report = Report {
        cluster: cluster.clone(),
        truenas_version: personality.version_string().to_owned(),
        log: log_path.display().to_string(),
        events: stats.appended,
        elapsed_ms: elapsed.as_millis(),
        ..Report::default()
    };
    let mut view = FindingsView::new(FindingsConfig::default());
    let views_source = SourceId::ktd("views");
    let mut views_time = Duration::ZERO;
    let mut last_env = None;
    let mut next = 1;
    loop {
        let page = log.read(Stream::Observations, next, 10_000).await?;
        let Some(last) = page.last() else { break };
        next = ktd_log::record_seq(last) + 1;
        for env in page.into_iter().flatten() {
            let started = Instant::now();
            view.observe(&env);
            views_time += started.elapsed();
            let token = env
                .subject
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            *report.events_by_subject.entry(token).or_default() += 1;
            *report
                .events_by_type
                .entry(env.event.type_name().to_owned())
                .or_default() += 1;
            match &env.event {
                Event::ObjectRejected { kind, key, error } => report.rejected.push(match key {
                    Some(key) => format!("{kind} {key}: {error}"),
                    None => format!("{kind}: {error}"),
                }),
                Event::PollCompleted { rejected, .. } => {
                    report.rejected.extend(rejected.iter().cloned())
                }
                _ => {}
            }
            last_env = Some(env);
        }
    }
    // The cold reconcile: one evaluation of the whole picture.
    if let Some(last) = &last_env {
        let started = Instant::now();
        let derived = view.evaluate_enveloped((last.id, last.observed_at), &views_source);
        views_time += started.elapsed();
        report.derived_events = derived.len() as u64;
        log.append(Stream::Derived, derived).await?;
    }
    report.views_ms = views_time.as_millis();
    report.findings = view.findings().cloned().collect();
    report
        .findings
        .sort_by(|a, b| (b.severity, a.kind, &a.subject).cmp(&(a.severity, b.kind, &b.subject)));
    let summary = view.summary();
    report.accuracy = Accuracy::measure(&truth, cluster, view.findings(), &summary.unowned);
    report.summary = Some(summary);

    output::print(format, &report, |out| {
        print_report(out, &report, kube.url(), servers.truenas.url())
    })?;

    if args.serve {
        eprintln!(
            "\nserving: kubectl --server {} get pv,pvc,volumesnapshots -A   (TrueNAS {} with API key {api_key}); Ctrl-C to stop",
            kube.url(),
            servers.truenas.url()
        );
        super::run::wait_for_signal().await;
    }
    sim_shutdown.cancel();
    Ok(ExitCode::SUCCESS)
}

fn print_report(
    out: &mut dyn Write,
    r: &Report,
    kube_url: String,
    nas_url: String,
) -> std::io::Result<()> {
    writeln!(out, "Simulated world served on loopback:")?;
    writeln!(out, "  Kubernetes cluster {:<10} {kube_url}", r.cluster)?;
    writeln!(out, "  {:<29} {nas_url}", r.truenas_version)?;
    writeln!(out)?;
    writeln!(
        out,
        "ktd ingested both sides into an embedded log in {} ms: {} events.",
        r.elapsed_ms, r.events
    )?;
    let mut t = Table::new(["SUBJECT", "EVENTS"]);
    for (what, n) in &r.events_by_subject {
        t.row([what.clone(), n.to_string()]);
    }
    t.write(&mut *out)?;
    writeln!(out, "{} objects could not be read.", r.rejected.len())?;
    for reason in &r.rejected {
        writeln!(out, "  rejected: {reason}")?;
    }
    writeln!(out, "\nFindings ({} open):", r.findings.len())?;
    crate::commands::findings::print_findings(out, &r.findings)?;
    if let Some(summary) = &r.summary {
        crate::commands::findings::print_summary(out, summary)?;
    }
    writeln!(
        out,
        "\nCompared with the world's ground truth for cluster {}:",
        r.cluster
    )?;
    let mut t = Table::new(["KIND", "EXPECTED", "REPORTED", "PRECISION", "RECALL"]);
    for (kind, s) in &r.accuracy.by_kind {
        t.row([
            kind.clone(),
            s.expected.to_string(),
            s.reported.to_string(),
            format!("{:.0}%", s.precision * 100.0),
            format!("{:.0}%", s.recall * 100.0),
        ]);
    }
    t.write(&mut *out)?;
    for fp in &r.accuracy.false_positives {
        writeln!(out, "  false positive: {fp}")?;
    }
    for m in &r.accuracy.missed {
        writeln!(out, "  missed: {m}")?;
    }
    for d in &r.accuracy.unowned_missed {
        writeln!(out, "  not listed as unowned: {d}")?;
    }
    writeln!(
        out,
        "{} false-positive traps in the world, {} reported.",
        r.accuracy.traps,
        r.accuracy.traps_hit.len()
    )
}
