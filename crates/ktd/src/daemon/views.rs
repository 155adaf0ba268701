//! The findings consumer: folds the observation stream through [`FindingsView`] and appends
//! what it derives (`FindingOpened`, `FindingUpdated`, `FindingResolved`) to the derived
//! stream.
//!
//! At start it folds the whole observation stream again (the view is a pure fold, so this
//! rebuilds exactly the state it had) and then follows the live tail. Derived events get
//! ids from their trigger, so what a previous run already appended is recognised and not
//! appended twice: the ids in the derived stream are read first, because JetStream only
//! de-duplicates within its duplicate window.

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

/// Ids of every event in the derived stream.
async fn recorded_ids<L: EventLog>(log: &L) -> Result<HashSet<EventId>, LogError> {
    let mut ids = HashSet::new();
    let mut next = 1;
    loop {
        let page = log.read(LogStream::Derived, next, 10_000).await?;
        let Some(last) = page.last() else { break };
        next = ktd_log::record_seq(last) + 1;
        ids.extend(page.into_iter().flatten().map(|e| e.id));
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
    let mut recorded = recorded_ids(&*log).await?;
    let source = SourceId::ktd(instance);
    let mut view = FindingsView::new(config);
    let mut stats = ViewsStats::default();
    let mut tail = log.tail(LogStream::Observations, 1).ready_chunks(4096);
    loop {
        let chunk = tokio::select! {
            () = shutdown.cancelled() => break,
            chunk = tail.next() => chunk,
        };
        let Some(chunk) = chunk else { break };
        let mut derived = Vec::new();
        for record in chunk {
            match record? {
                Ok(env) => {
                    stats.folded += 1;
                    derived.extend(view.apply_enveloped(&env, &source));
                }
                Err(unreadable) => {
                    tracing::warn!(seq = unreadable.seq, error = %unreadable.error, "findings: skipping an unreadable log record");
                }
            }
        }
        let before = derived.len();
        derived.retain(|e| !recorded.contains(&e.id));
        stats.already_recorded += (before - derived.len()) as u64;
        if derived.is_empty() {
            continue;
        }
        for e in &derived {
            tracing::info!(event = e.event.type_name(), subject = %e.subject, "finding");
        }
        recorded.extend(derived.iter().map(|e| e.id));
        stats.appended += derived.len() as u64;
        log.append(LogStream::Derived, derived).await?;
    }
    Ok(stats)
}
