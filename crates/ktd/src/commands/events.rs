//! `ktd events tail`: the log, human-readably or as JSON lines.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use ktd_log::embedded::RedbLog;
use ktd_log::jetstream::JetStreamLog;
use ktd_log::{EventLog, Record, Stream};
use ktd_model::{Envelope, Event, Timestamp};

use crate::cli::{EventsTailArgs, From};
use crate::config::{LogConfig, RunConfig};
use crate::output::Format;

/// Runs `ktd events tail`.
pub async fn tail(
    args: EventsTailArgs,
    config: Option<&std::path::Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let cfg = RunConfig::load(config)?;
    match &cfg.log {
        LogConfig::Embedded { path } => {
            if !path.exists() {
                anyhow::bail!(
                    "no event log at {} (run `ktd run` first, or point --config at its configuration)",
                    path.display()
                );
            }
            // Read-only: works beside the `ktd run` that writes the log, and `--follow`
            // sees its new events.
            let log = RedbLog::open_read_only(path)
                .await
                .context("cannot read the embedded event log")?;
            tail_with(Arc::new(log), args, format).await
        }
        LogConfig::Nats(js) => {
            let log = JetStreamLog::connect(js.clone())
                .await
                .context("cannot connect to NATS JetStream")?;
            tail_with(Arc::new(log), args, format).await
        }
    }
}

async fn tail_with<L: EventLog>(
    log: Arc<L>,
    args: EventsTailArgs,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let stream = args.log_stream();
    let start = match args.from {
        None => 1,
        Some(From::Seq(seq)) => seq.max(1),
        Some(From::Time(t)) => first_at_or_after(&*log, stream, t).await?,
    };
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    let mut header = matches!(format, Format::Table);
    // Returns whether the record was printed.
    let mut emit = |record: Record| -> anyhow::Result<bool> {
        let mut out = stdout.lock();
        match record {
            Ok(env) => {
                if let Some(pattern) = &args.subject
                    && !subject_matches(pattern, &env.subject)
                {
                    return Ok(false);
                }
                if header {
                    writeln!(
                        out,
                        "{:>8}  {:<24}  {:<48}  {:<18}  WHAT",
                        "SEQ", "OBSERVED", "SUBJECT", "EVENT"
                    )?;
                    header = false;
                }
                print_envelope(&mut out, &env, format)?;
                Ok(true)
            }
            Err(e) => {
                writeln!(std::io::stderr(), "warning: {e}: {}", e.error)?;
                Ok(false)
            }
        }
    };
    if args.follow {
        let mut tail = log.tail(stream, start);
        while let Some(record) = tail.next().await {
            printed += u64::from(emit(record?)?);
            if args.limit.is_some_and(|l| printed >= l) {
                break;
            }
        }
    } else {
        let mut next = start;
        loop {
            let page = log.read(stream, next, 5_000).await?;
            let Some(last) = page.last() else { break };
            next = ktd_log::record_seq(last) + 1;
            for record in page {
                printed += u64::from(emit(record)?);
                if args.limit.is_some_and(|l| printed >= l) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Binary search by `observed_at` would be wrong (sources' clocks interleave), so scan.
async fn first_at_or_after<L: EventLog>(
    log: &L,
    stream: Stream,
    t: Timestamp,
) -> anyhow::Result<u64> {
    let mut next = 1;
    loop {
        let page = log.read(stream, next, 5_000).await?;
        let Some(last) = page.last() else {
            return Ok(next);
        };
        for record in &page {
            if let Ok(env) = record
                && env.observed_at >= t
            {
                return Ok(env.seq);
            }
        }
        next = ktd_log::record_seq(last) + 1;
    }
}

fn print_envelope(out: &mut impl Write, env: &Envelope, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, env)?;
            writeln!(out)?;
        }
        Format::Yaml => {
            writeln!(out, "---")?;
            serde_norway::to_writer(&mut *out, env)?;
        }
        Format::Table => writeln!(
            out,
            "{:>8}  {:<24}  {:<48}  {:<18}  {}",
            env.seq,
            env.observed_at.to_string(),
            env.subject,
            env.event.type_name(),
            describe(&env.event)
        )?,
    }
    Ok(())
}

/// One line about an event, for people.
pub fn describe(event: &Event) -> String {
    match event {
        Event::ObjectApplied { object } => {
            let m = object.meta();
            format!("{} {} (rv {})", object.kind(), m.key(), m.resource_version)
        }
        Event::ObjectDeleted {
            kind,
            key,
            missing_from_relist,
            ..
        } => {
            if *missing_from_relist {
                format!("{kind} {key} (missing from a relist)")
            } else {
                format!("{kind} {key}")
            }
        }
        Event::ObjectRejected { kind, key, error } => match key {
            Some(key) => format!("{kind} {key}: {error}"),
            None => format!("{kind}: {error}"),
        },
        Event::SyncStarted { kind } => kind.to_string(),
        Event::SyncCompleted { kind, objects } => format!("{kind}: {objects} objects"),
        Event::WatchFailed { kind, error, .. } => format!("{kind}: {error}"),
        Event::DatasetObserved { dataset } | Event::DatasetChanged { dataset } => {
            dataset.name.clone()
        }
        Event::DatasetRemoved { name }
        | Event::SnapshotRemoved { name }
        | Event::PoolRemoved { name } => name.clone(),
        Event::SnapshotObserved { snapshot } => snapshot.name.clone(),
        Event::ShareObserved { share } => share.key().to_string(),
        Event::ShareRemoved { share } => share.to_string(),
        Event::PoolObserved { pool } => format!("{} {}", pool.name, pool.status),
        Event::SystemObserved { system } => system.version.clone(),
        Event::UsageSampled { samples } => format!("{} datasets", samples.len()),
        Event::PollCompleted {
            poll,
            duration_ms,
            counts,
            ..
        } => format!(
            "poll {poll} in {duration_ms} ms: {} changes ({} datasets, {} snapshots)",
            counts.changes, counts.datasets, counts.snapshots
        ),
        Event::PollFailed { poll, error, .. } => format!("poll {poll}: {error}"),
        Event::Tick => String::new(),
        Event::FindingOpened { finding } | Event::FindingUpdated { finding } => {
            format!("{} {}", finding.kind, finding.subject)
        }
        Event::FindingResolved { kind, subject, .. } => format!("{kind} {subject}"),
        Event::NotificationSent { finding, sink } => format!("{finding} via {sink}"),
        Event::NotificationFailed {
            finding,
            sink,
            error,
            ..
        } => format!("{finding} via {sink}: {error}"),
        Event::RemediationProposed { remediation, .. }
        | Event::RemediationApproved { remediation, .. }
        | Event::RemediationExecuted { remediation, .. }
        | Event::RemediationUndone { remediation, .. } => remediation.clone(),
        Event::ApiCallAudited {
            principal,
            method,
            path,
            status,
            ..
        } => {
            format!("{principal} {method} {path} -> {status}")
        }
    }
}

/// NATS-style subject matching: `*` matches one token, `>` the rest.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn nats_wildcards() {
        assert!(subject_matches(
            "ktd.v1.obs.>",
            "ktd.v1.obs.prod.persistentvolume"
        ));
        assert!(subject_matches(
            "ktd.v1.obs.*.dataset",
            "ktd.v1.obs.nas.dataset"
        ));
        assert!(!subject_matches(
            "ktd.v1.obs.*.dataset",
            "ktd.v1.obs.nas.snapshot"
        ));
        assert!(!subject_matches("ktd.v1.obs", "ktd.v1.obs.nas"));
        assert!(!subject_matches("ktd.v1.obs.>", "ktd.v1.obs"));
        assert!(subject_matches(
            "ktd.v1.findings.pv-released",
            "ktd.v1.findings.pv-released"
        ));
    }
}
