//! The single writer: everything the sources observe goes through one channel into the
//! log, in batches (one durable append per batch).

use std::sync::Arc;
use std::time::Duration;

use ktd_log::{EventLog, LogError, Stream};
use ktd_model::Envelope;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How the writer batches.
#[derive(Clone, Copy, Debug)]
pub struct BatchOptions {
    /// Largest batch appended at once.
    pub max_events: usize,
    /// How long the first event of a batch may wait for others.
    pub linger: Duration,
    /// Longest pause between retries of a retryable append failure.
    pub max_backoff: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_events: 2_000,
            linger: Duration::from_millis(20),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// What the writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Events appended.
    pub appended: u64,
    /// Events the log already had (re-observations after a restart or relist).
    pub duplicates: u64,
    /// Append calls.
    pub batches: u64,
    /// Retried append failures.
    pub retries: u64,
}

/// Appends everything received on `rx` until every sender is gone, then returns.
///
/// A retryable failure (log server unreachable) is retried with backoff — the same batch,
/// so the same ids: nothing is lost or doubled. A non-retryable one (disk full, read-only
/// store) ends the writer with the error; the events of that batch are not acknowledged to
/// anyone and will be re-observed on the next start. `abort` (a second Ctrl-C) stops retrying.
pub async fn run<L: EventLog>(
    log: Arc<L>,
    mut rx: mpsc::Receiver<Envelope>,
    options: BatchOptions,
    abort: CancellationToken,
) -> Result<WriterStats, LogError> {
    let mut stats = WriterStats::default();
    let mut batch = Vec::with_capacity(options.max_events);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = Instant::now() + options.linger;
        while batch.len() < options.max_events {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(env)) => batch.push(env),
                Ok(None) | Err(_) => break,
            }
        }
        append(&*log, &mut batch, &mut stats, &options, &abort).await?;
    }
    Ok(stats)
}

async fn append<L: EventLog>(
    log: &L,
    batch: &mut Vec<Envelope>,
    stats: &mut WriterStats,
    options: &BatchOptions,
    abort: &CancellationToken,
) -> Result<(), LogError> {
    // Sources only observe; a derived event here would be a wiring bug, and the log
    // refuses mixed batches, so split by stream.
    let events = std::mem::take(batch);
    let (observed, derived): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| Stream::of(&e.event) == Stream::Observations);
    for (stream, events) in [(Stream::Observations, observed), (Stream::Derived, derived)] {
        if events.is_empty() {
            continue;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match log.append(stream, events.clone()).await {
                Ok(outcome) => {
                    stats.appended += outcome.appended;
                    stats.duplicates += outcome.duplicates;
                    stats.batches += 1;
                    break;
                }
                // Only an unreachable log server is worth waiting for; a local write failure
                // (disk full, read-only store) ends the daemon with a clear error.
                Err(e @ LogError::Unavailable(_)) if !abort.is_cancelled() => {
                    stats.retries += 1;
                    tracing::warn!(error = %e, retry_in = ?backoff, events = events.len(), "append failed; retrying the same batch");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = abort.cancelled() => return Err(e),
                    }
                    backoff = (backoff * 2).min(options.max_backoff);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
