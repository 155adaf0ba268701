//! `ktd demo`: a simulated world served on loopback, observed through the real wire
//! protocols (Kubernetes list API, TrueNAS REST v2.0) and turned into ktd events.
//!
//! Until the ingest daemon lands, the demo reads each side once; it shows what ktd sees
//! and which findings the world holds (its ground truth).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ktd_model::normalize::{kube as nk, truenas as nt};
use ktd_model::truenas::Share;
use ktd_model::{Envelope, Event, KubeKind, SourceId, Timestamp, codec, content_digest};
use ktd_sim::serve::{Bind, SimServers};
use ktd_sim::{GenerateOptions, Personality};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cli::DemoArgs;
use crate::output::{self, Format, Table};

/// What the demo saw.
#[derive(Debug, Default, Serialize)]
struct Report {
    cluster: String,
    truenas_version: String,
    /// Objects observed per kind / method.
    observed: BTreeMap<String, u64>,
    /// Objects rejected by the normalizers, with the reason.
    rejected: Vec<String>,
    /// Events built from the observations.
    events: u64,
    /// Their msgpack size.
    encoded_bytes: u64,
    /// Findings the world holds for this cluster, per kind.
    expected_findings: BTreeMap<String, usize>,
    /// False-positive traps in the world.
    traps: usize,
    /// Wall time of the observation.
    elapsed_ms: u128,
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
    let shutdown = CancellationToken::new();
    let servers = SimServers::start(world, Bind::default(), shutdown.clone())
        .await
        .context("cannot start the simulated servers on loopback")?;
    let (cluster, kube) = servers
        .clusters
        .first()
        .context("the generated world has no cluster")?;
    let api_key = servers
        .api_key
        .clone()
        .context("the generated world has no API key")?;

    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut report = Report {
        cluster: cluster.clone(),
        truenas_version: personality.version_string().to_owned(),
        ..Report::default()
    };
    let mut events = Vec::new();
    let now = Timestamp::now();
    observe_kubernetes(&http, &kube.url(), cluster, now, &mut report, &mut events).await?;
    observe_truenas(
        &http,
        &servers.truenas.url(),
        &api_key,
        personality,
        now,
        &mut report,
        &mut events,
    )
    .await?;
    report.elapsed_ms = started.elapsed().as_millis();
    report.events = events.len() as u64;
    for env in &events {
        report.encoded_bytes += codec::encode(env)?.len() as u64;
    }
    for f in truth.findings.iter().filter(|f| &f.cluster == cluster) {
        *report
            .expected_findings
            .entry(f.kind.as_str().to_owned())
            .or_default() += 1;
    }
    report.traps = truth.traps.len();

    output::print(format, &report, |out| {
        print_report(out, &report, kube.url(), servers.truenas.url())
    })?;

    if args.serve {
        eprintln!(
            "\nserving: kubectl --server {} get pv,pvc,volumesnapshots -A   (TrueNAS {} with API key {api_key}); Ctrl-C to stop",
            kube.url(),
            servers.truenas.url()
        );
        tokio::signal::ctrl_c().await?;
    }
    shutdown.cancel();
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
        "Observed through the real protocols and normalized into ktd's model:"
    )?;
    let mut t = Table::new(["RESOURCE", "OBSERVED"]);
    for (what, n) in &r.observed {
        t.row([what.clone(), n.to_string()]);
    }
    t.write(&mut *out)?;
    writeln!(
        out,
        "\n{} events ({} KiB msgpack) in {} ms; {} objects rejected.",
        r.events,
        r.encoded_bytes / 1024,
        r.elapsed_ms,
        r.rejected.len()
    )?;
    for reason in &r.rejected {
        writeln!(out, "  rejected: {reason}")?;
    }
    writeln!(
        out,
        "\nFindings this world holds for cluster {} (its ground truth):",
        r.cluster
    )?;
    let mut t = Table::new(["KIND", "COUNT"]);
    for (kind, n) in &r.expected_findings {
        t.row([kind.clone(), n.to_string()]);
    }
    t.write(&mut *out)?;
    writeln!(
        out,
        "plus {} false-positive traps that must not be reported.",
        r.traps
    )
}

fn collection_path(kind: KubeKind) -> String {
    if kind.group().is_empty() {
        format!("/api/{}/{}", kind.version(), kind.plural())
    } else {
        format!(
            "/apis/{}/{}/{}",
            kind.group(),
            kind.version(),
            kind.plural()
        )
    }
}

async fn observe_kubernetes(
    http: &reqwest::Client,
    url: &str,
    cluster: &str,
    now: Timestamp,
    report: &mut Report,
    events: &mut Vec<Envelope>,
) -> anyhow::Result<()> {
    let source = SourceId::kubernetes(cluster);
    for kind in KubeKind::ALL {
        let mut next: Option<String> = None;
        loop {
            let mut req = http
                .get(format!("{url}{}", collection_path(*kind)))
                .query(&[("limit", "500")]);
            if let Some(token) = &next {
                req = req.query(&[("continue", token.as_str())]);
            }
            let body = req.send().await?.error_for_status()?.bytes().await?;
            let page: Value = serde_json::from_slice(&body)?;
            next = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            nk::read_list(body.as_ref(), |r| match r {
                Ok(object) => {
                    *report
                        .observed
                        .entry(format!("kubernetes {kind}"))
                        .or_default() += 1;
                    let rv = object.meta().resource_version.clone();
                    events.push(Envelope::new(
                        source.clone(),
                        now,
                        Event::ObjectApplied { object },
                        rv.as_bytes(),
                    ));
                }
                Err(e) => report.rejected.push(e.to_string()),
            })?;
            if next.is_none() {
                break;
            }
        }
    }
    Ok(())
}

async fn observe_truenas(
    http: &reqwest::Client,
    url: &str,
    api_key: &str,
    personality: Personality,
    now: Timestamp,
    report: &mut Report,
    events: &mut Vec<Envelope>,
) -> anyhow::Result<()> {
    let source = SourceId::truenas("nas");
    let get = |path: String| {
        let req = http
            .get(format!("{url}/api/v2.0{path}"))
            .bearer_auth(api_key);
        async move {
            let resp = req.send().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            if !status.is_success() {
                anyhow::bail!(
                    "TrueNAS answered {status} for {path}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            Ok::<_, anyhow::Error>(body)
        }
    };
    let mut observe = |what: &str, event: Event, report: &mut Report| {
        *report
            .observed
            .entry(format!("truenas {what}"))
            .or_default() += 1;
        let digest = content_digest(&event);
        events.push(Envelope::new(source.clone(), now, event, &digest));
    };

    let pools: Value = serde_json::from_slice(&get("/pool".into()).await?)?;
    for r in nt::each(&pools, "pool.query", nt::pool)? {
        match r {
            Ok(pool) => observe("pool", Event::PoolObserved { pool }, report),
            Err(e) => report.rejected.push(e.to_string()),
        }
    }
    let datasets = get("/pool/dataset?extra.flat=false".into()).await?;
    let mut found = Vec::new();
    nt::read_datasets(datasets.as_ref(), |r| found.push(r))?;
    for r in found {
        match r {
            Ok(dataset) => observe("dataset", Event::DatasetObserved { dataset }, report),
            Err(e) => report.rejected.push(e.to_string()),
        }
    }
    let snapshot_path = if personality >= Personality::V25_10 {
        "/pool/snapshot"
    } else {
        "/zfs/snapshot"
    };
    let snapshots = get(snapshot_path.into()).await?;
    let mut found = Vec::new();
    nt::read_snapshots(snapshots.as_ref(), |r| found.push(r))?;
    for r in found {
        match r {
            Ok(snapshot) => observe("snapshot", Event::SnapshotObserved { snapshot }, report),
            Err(e) => report.rejected.push(e.to_string()),
        }
    }
    type Normalizer = fn(&Value) -> Result<Share, ktd_model::normalize::NormalizeError>;
    let shares: [(&str, &str, Normalizer); 5] = [
        ("/sharing/nfs", "nfs share", |v| {
            nt::nfs_share(v).map(Share::Nfs)
        }),
        ("/sharing/smb", "smb share", |v| {
            nt::smb_share(v).map(Share::Smb)
        }),
        ("/iscsi/target", "iscsi target", |v| {
            nt::iscsi_target(v).map(Share::IscsiTarget)
        }),
        ("/iscsi/extent", "iscsi extent", |v| {
            nt::iscsi_extent(v).map(Share::IscsiExtent)
        }),
        ("/iscsi/targetextent", "iscsi targetextent", |v| {
            nt::iscsi_targetextent(v).map(Share::IscsiTargetExtent)
        }),
    ];
    for (path, what, normalize) in shares {
        let list: Value = serde_json::from_slice(&get(path.into()).await?)?;
        for r in nt::each(&list, path, normalize)? {
            match r {
                Ok(share) => observe(what, Event::ShareObserved { share }, report),
                Err(e) => report.rejected.push(e.to_string()),
            }
        }
    }
    let info: Value = serde_json::from_slice(&get("/system/info".into()).await?)?;
    let global: Value = serde_json::from_slice(&get("/iscsi/global".into()).await?)?;
    let services: Value = serde_json::from_slice(&get("/service".into()).await?)?;
    let system = nt::system_info(&info, Some(&global), Some(&services))?;
    observe("system", Event::SystemObserved { system }, report);
    Ok(())
}
