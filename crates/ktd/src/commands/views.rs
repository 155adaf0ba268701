//! `ktd orphans`, `ktd snapshots` and `ktd scan`: the views, folded from the event log or
//! from an offline bundle, printed for people or scripts.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use ktd_log::EventLog;
use ktd_log::embedded::RedbLog;
use ktd_log::jetstream::JetStreamLog;
use ktd_model::{Finding, Severity};
use ktd_views::ledger::{self, Ledger, SnapshotState, VolumeLedger};
use ktd_views::{FindingsConfig, FindingsView, Summary};
use serde::Serialize;

use super::findings::{human_bytes, print_findings, print_summary};
use crate::bundle::{BundleSummary, summarize_bundle};
use crate::cli::{OrphansArgs, ScanArgs, SnapshotsArgs, ViewSource};
use crate::config::{LogConfig, RunConfig};
use crate::output::{self, Format, Table};

/// Exit code when `--fail-on` matched a finding.
pub const EXIT_FINDINGS: u8 = 2;

/// Folds the configured event log (or a bundle) into the findings view.
pub async fn load(source: &ViewSource, config: Option<&Path>) -> anyhow::Result<FindingsView> {
    let cfg = RunConfig::load(config)?;
    if let Some(dir) = &source.bundle {
        let (view, bundle) = fold_bundle(dir.clone(), cfg.findings).await?;
        for w in &bundle.warnings {
            eprintln!("warning: {w}");
        }
        for r in &bundle.rejected {
            eprintln!("warning: not read: {r}");
        }
        return Ok(view);
    }
    match &cfg.log {
        LogConfig::Embedded { path } => {
            if !path.exists() {
                anyhow::bail!(
                    "no event log at {} (run `ktd run` first, point --config at its configuration, or analyse a bundle with --bundle DIR)",
                    path.display()
                );
            }
            // Read-only, so it works while `ktd run` writes the log.
            let log = RedbLog::open_read_only(path)
                .await
                .context("cannot read the embedded event log")?;
            fold_log(&log, cfg.findings).await
        }
        LogConfig::Nats(js) => {
            let log = JetStreamLog::connect(js.clone())
                .await
                .context("cannot connect to NATS JetStream")?;
            fold_log(&log, cfg.findings).await
        }
    }
}

/// Folds a log: its observations (the state), its derived events (when each finding was
/// first seen), then one evaluation.
pub async fn fold_log<L: EventLog>(log: &L, cfg: FindingsConfig) -> anyhow::Result<FindingsView> {
    let mut view = FindingsView::new(cfg);
    let unreadable = crate::daemon::replay_observations_owned(log, |env| view.observe_owned(env))
        .await
        .context("cannot read the event log")?;
    if unreadable > 0 {
        eprintln!("warning: {unreadable} log records could not be read and were skipped");
    }
    crate::daemon::views::restore(log, &mut view)
        .await
        .context("cannot read the event log's derived stream")?;
    view.evaluate();
    Ok(view)
}

/// Folds an offline bundle (on a blocking thread: the reader parses files in parallel).
pub async fn fold_bundle(
    dir: std::path::PathBuf,
    cfg: FindingsConfig,
) -> anyhow::Result<(FindingsView, BundleSummary)> {
    tokio::task::spawn_blocking(move || {
        let mut view = FindingsView::new(cfg);
        let summary = summarize_bundle(&dir, &mut |env| view.observe_owned(env))
            .with_context(|| format!("cannot read the bundle {}", dir.display()))?;
        // The bundle is one instant: judge everything at its collection time.
        view.evaluate();
        Ok((view, summary))
    })
    .await
    .context("the bundle reader stopped unexpectedly")?
}

/// Open findings, most severe first.
fn sorted(view: &FindingsView) -> Vec<Finding> {
    let mut out: Vec<Finding> = view.findings().cloned().collect();
    out.sort_by(|a, b| (b.severity, a.kind, &a.subject).cmp(&(a.severity, b.kind, &b.subject)));
    out
}

/// `{findings, summary, bundle?}`: the JSON/YAML shape of `ktd scan` and `ktd orphans`
/// (`schemas/scan.schema.json`).
#[derive(Serialize, schemars::JsonSchema)]
pub struct Report<'a> {
    /// Open findings, most severe first.
    pub findings: &'a [Finding],
    /// Totals, and what could not be judged.
    pub summary: &'a Summary,
    /// What the bundle held (`ktd scan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<&'a BundleSummary>,
}

/// The JSON Schema of [`Report`].
pub fn report_schema() -> schemars::Schema {
    schemars::schema_for!(Report<'static>)
}

fn exit_for(findings: &[Finding], fail_on: Option<Severity>) -> ExitCode {
    match fail_on {
        Some(min) if findings.iter().any(|f| f.severity >= min) => ExitCode::from(EXIT_FINDINGS),
        _ => ExitCode::SUCCESS,
    }
}

/// `ktd orphans`.
pub async fn orphans(
    args: OrphansArgs,
    config: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let view = load(&args.source, config).await?;
    let now = view.inventory().now();
    let findings: Vec<Finding> = sorted(&view)
        .into_iter()
        .filter(|f| args.kind.is_empty() || args.kind.contains(&f.kind))
        .filter(|f| {
            args.namespace.as_ref().is_none_or(|ns| {
                f.subject.namespace.as_ref() == Some(ns)
                    || f.related
                        .iter()
                        .any(|r| r.resource.namespace.as_ref() == Some(ns))
            })
        })
        .filter(|f| {
            args.older_than
                .is_none_or(|age| now.unix_ms() - f.first_seen.unix_ms() >= age.as_millis())
        })
        .filter(|f| args.severity.is_none_or(|min| f.severity >= min))
        .collect();
    let summary = view.summary();
    output::print(
        format,
        &Report {
            findings: &findings,
            summary: &summary,
            bundle: None,
        },
        |out| {
            print_findings(out, &findings)?;
            print_summary(out, &summary)
        },
    )?;
    Ok(exit_for(&findings, args.fail_on))
}

/// `ktd scan`.
pub async fn scan(
    args: ScanArgs,
    config: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let cfg = RunConfig::load(config)?;
    let (view, bundle) = fold_bundle(args.bundle.clone(), cfg.findings).await?;
    let findings = sorted(&view);
    let summary = view.summary();
    output::print(
        format,
        &Report {
            findings: &findings,
            summary: &summary,
            bundle: Some(&bundle),
        },
        |out| {
            bundle.write_table(&mut *out)?;
            writeln!(out)?;
            print_findings(out, &findings)?;
            print_summary(out, &summary)
        },
    )?;
    Ok(exit_for(&findings, args.fail_on))
}

/// `ktd snapshots`.
pub async fn snapshots(
    args: SnapshotsArgs,
    config: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let view = load(&args.source, config).await?;
    if let Some(p) = &args.policy
        && !view.config().retention.iter().any(|r| &r.name == p)
    {
        let known: Vec<&str> = view
            .config()
            .retention
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        anyhow::bail!(
            "no retention policy named `{p}` in the configuration (findings.retention){}",
            if known.is_empty() {
                String::new()
            } else {
                format!("; known: {}", known.join(", "))
            }
        );
    }
    let mut ledger = ledger::build(view.inventory(), view.config());
    select(&mut ledger, &args);
    output::print(format, &ledger, |out| {
        print_ledger(out, &ledger, args.detail)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn select(ledger: &mut Ledger, args: &SnapshotsArgs) {
    if let Some(v) = &args.volume {
        ledger.volumes.retain(|l| {
            l.volume == *v
                || l.pv.as_ref() == Some(v)
                || l.dataset.as_ref() == Some(v)
                || l.claim.as_ref() == Some(v)
        });
    }
    if let Some(p) = &args.policy {
        ledger
            .volumes
            .retain(|l| l.retention.as_ref().is_some_and(|c| &c.policy == p));
    }
    let t = &mut ledger.totals;
    t.volumes = ledger.volumes.len();
    t.snapshots = ledger.volumes.iter().map(|v| v.count).sum();
    t.not_ready = ledger.volumes.iter().map(|v| v.not_ready).sum();
    t.snapshot_bytes = ledger.volumes.iter().map(|v| v.snapshot_bytes).sum();
    t.non_compliant = ledger
        .volumes
        .iter()
        .filter(|v| v.retention.as_ref().is_some_and(|c| !c.compliant))
        .count();
}

fn print_ledger(out: &mut dyn Write, ledger: &Ledger, detail: bool) -> std::io::Result<()> {
    let mut t = Table::new([
        "VOLUME",
        "CLAIM",
        "SNAPSHOTS",
        "NOT READY",
        "NEWEST",
        "OLDEST",
        "LAST 7D",
        "SPACE",
        "RETENTION",
    ]);
    for v in &ledger.volumes {
        t.row([
            v.pv.clone()
                .unwrap_or_else(|| format!("{} (no PV)", v.volume)),
            v.claim.clone().unwrap_or_default(),
            v.count.to_string(),
            v.not_ready.to_string(),
            age(ledger, v.newest),
            age(ledger, v.oldest),
            v.created_last_7d.to_string(),
            human_bytes(v.snapshot_bytes),
            retention(v),
        ]);
    }
    t.write(&mut *out)?;
    let totals = &ledger.totals;
    writeln!(
        out,
        "{} volumes, {} snapshots ({} not ready), {} held by snapshots, {} volumes outside their retention policy.",
        totals.volumes,
        totals.snapshots,
        totals.not_ready,
        human_bytes(totals.snapshot_bytes),
        totals.non_compliant
    )?;
    if detail {
        for v in &ledger.volumes {
            writeln!(
                out,
                "\n{} ({})",
                v.pv.as_deref().unwrap_or(&v.volume),
                v.dataset.as_deref().unwrap_or("no dataset")
            )?;
            let mut t = Table::new([
                "STATE",
                "VOLUMESNAPSHOT",
                "CONTENT",
                "TRUENAS",
                "AGE",
                "USED",
                "CLONES",
            ]);
            for s in &v.snapshots {
                t.row([
                    state(s.state).to_owned(),
                    s.volume_snapshot.clone().unwrap_or_else(|| "-".into()),
                    s.content.clone().unwrap_or_else(|| "-".into()),
                    s.truenas.clone().unwrap_or_else(|| "-".into()),
                    age(ledger, s.created),
                    s.used.map(human_bytes).unwrap_or_default(),
                    s.clones.len().to_string(),
                ]);
            }
            t.write(&mut *out)?;
            if let Some(c) = &v.retention {
                for violation in &c.violations {
                    writeln!(out, "  retention {}: {violation}", c.policy)?;
                }
            }
        }
    }
    Ok(())
}

fn state(s: SnapshotState) -> &'static str {
    match s {
        SnapshotState::Ready => "ready",
        SnapshotState::Pending => "pending",
        SnapshotState::Error => "error",
        SnapshotState::Deleting => "deleting",
        SnapshotState::BackingMissing => "backing-missing",
        SnapshotState::NasOnly => "truenas-only",
    }
}

fn retention(v: &VolumeLedger) -> String {
    match &v.retention {
        None => String::new(),
        Some(c) if c.compliant => format!("{}: ok", c.policy),
        Some(c) => format!("{}: {} violations", c.policy, c.violations.len()),
    }
}

/// `3d`, `5h`, `12m` before the ledger's time.
fn age(ledger: &Ledger, t: Option<ktd_model::Timestamp>) -> String {
    let Some(t) = t else { return String::new() };
    let secs = (ledger.at.unix_ms() - t.unix_ms()).max(0) / 1000;
    [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")]
        .into_iter()
        .find(|(len, _)| secs >= *len)
        .map_or("0s".into(), |(len, unit)| format!("{}{unit}", secs / len))
}
