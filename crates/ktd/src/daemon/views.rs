//! The findings consumer: folds the observation stream through [`FindingsView`] and appends
//! what it derives (`FindingOpened`, `FindingUpdated`, `FindingResolved`) to the derived
//! stream.
//!
//! At start it catches up: it folds the observation stream without evaluating, restores the
//! findings recorded in the derived stream, and evaluates once (the open findings depend
//! on the observed state only, not on the path to it), appending whatever changed while
//! ktd was down. Then it follows the live tail. Derived events get ids from their trigger,
//! so what a previous run already appended is recognised and not appended twice: the ids
//! in the derived stream are read first, because JetStream only de-duplicates within its
//! duplicate window.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use ktd_log::{EventLog, LogError, Stream as LogStream};
use ktd_model::{EventId, SourceId};
use ktd_views::{FindingsConfig, FindingsView};
use tokio_util::sync::CancellationToken;

/// What the consumer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewsStats {
    /// Observations folded.
    pub folded: u64,
    /// Derived events appended.
    pub appended: u64,
    /// Derived events a previous run had already appended.
    pub already_recorded: u64,
}

/// Folds the derived stream back into the view; returns the ids it holds.
pub async fn restore<L: EventLog>(
    log: &L,
    view: &mut FindingsView,
) -> Result<HashSet<EventId>, LogError> {
    let mut ids = HashSet::new();
    let mut next = 1;
    loop {
        let page = log.read(LogStream::Derived, next, 10_000).await?;
        let Some(last) = page.last() else { break };
        next = ktd_log::record_seq(last) + 1;
        for env in page.into_iter().flatten() {
            view.restore(&env.event);
            ids.insert(env.id);
        }
    }
    Ok(ids)
}

/// Runs the findings consumer until `shutdown`.
pub async fn run<L: EventLog>(
    log: Arc<L>,
    config: FindingsConfig,
    instance: &str,
    shutdown: CancellationToken,
) -> Result<ViewsStats, LogError> {
    let source = SourceId::ktd(instance);
    let mut view = FindingsView::new(config);
    let mut stats = ViewsStats::default();

    // Catch up on history.
    let end = log.last_seq(LogStream::Observations).await?;
    let mut next = 1;
    let mut last = None;
    while next <= end {
        let page = log.read(LogStream::Observations, next, 10_000).await?;
        let Some(tail) = page.last() else { break };
        next = ktd_log::record_seq(tail) + 1;
        for env in page.into_iter().flatten().filter(|e| e.seq <= end) {
            last = Some((env.id, env.observed_at));
            view.observe_owned(env);
            stats.folded += 1;
        }
    }
    let mut recorded = restore(&*log, &mut view).await?;
    let mut pending = match &last {
        Some(last) => view.evaluate_enveloped(*last, &source),
        None => Vec::new(),
    };
    tracing::info!(
        folded = stats.folded,
        open = view.findings().count(),
        "findings caught up"
    );

    let mut tail = log
        .tail(LogStream::Observations, end + 1)
        .ready_chunks(4096);
    loop {
        let before = pending.len();
        pending.retain(|e| !recorded.contains(&e.id));
        stats.already_recorded += (before - pending.len()) as u64;
        if !pending.is_empty() {
            for e in &pending {
                tracing::info!(event = e.event.type_name(), subject = %e.subject, "finding");
            }
            recorded.extend(pending.iter().map(|e| e.id));
            stats.appended += pending.len() as u64;
            log.append(LogStream::Derived, std::mem::take(&mut pending))
                .await?;
        }
        let chunk = tokio::select! {
            () = shutdown.cancelled() => break,
            chunk = tail.next() => chunk,
        };
        let Some(chunk) = chunk else { break };
        for record in chunk {
            match record? {
                Ok(env) => {
                    stats.folded += 1;
                    pending.extend(view.apply_enveloped(&env, &source));
                }
                Err(unreadable) => {
                    tracing::warn!(seq = unreadable.seq, error = %unreadable.error, "findings: skipping an unreadable log record");
                }
            }
        }
    }
    Ok(stats)
}
