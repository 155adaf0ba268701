//! `ktd run`: the sources and the log under one shutdown token and task tracker.
//!
//! Every source sends envelopes into one bounded channel; the [`writer`] appends them in
//! batches. Shutdown: the first signal stops the sources, the writer drains the channel and
//! waits for the last append to be durable; a second signal aborts retries.

pub mod views;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use ktd_log::{EventLog, LogError, Stream as LogStream};
use ktd_model::{Envelope, Event, SourceId, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use writer::{BatchOptions, WriterStats};

/// Reads the whole observation stream once, handing every readable event to `f`
/// (how sources rebuild their memory at start-up). Unreadable records are skipped and
/// counted.
pub async fn replay_observations<L: EventLog>(
    log: &L,
    mut f: impl FnMut(&Envelope),
) -> Result<u64, LogError> {
    let mut next = 1;
    let mut unreadable = 0;
    loop {
        let page = log.read(LogStream::Observations, next, 10_000).await?;
        if page.is_empty() {
            break;
        }
        for record in &page {
            match record {
                Ok(env) => f(env),
                Err(e) => {
                    unreadable += 1;
                    tracing::warn!(seq = e.seq, error = %e.error, "skipping an unreadable log record");
                }
            }
        }
        next = page.last().map_or(next, |r| ktd_log::record_seq(r) + 1);
    }
    Ok(unreadable)
}

/// [`replay_observations`], handing each event over by value.
pub async fn replay_observations_owned<L: EventLog>(
    log: &L,
    mut f: impl FnMut(Envelope),
) -> Result<u64, LogError> {
    let mut next = 1;
    let mut unreadable = 0;
    loop {
        let page = log.read(LogStream::Observations, next, 10_000).await?;
        let Some(last) = page.last() else { break };
        next = ktd_log::record_seq(last) + 1;
        for record in page {
            match record {
                Ok(env) => f(env),
                Err(e) => {
                    unreadable += 1;
                    tracing::warn!(seq = e.seq, error = %e.error, "skipping an unreadable log record");
                }
            }
        }
    }
    Ok(unreadable)
}

/// The envelope of a `Tick` at `at` from `instance`: the same instant always has the same id.
pub fn tick(instance: &str, at: Timestamp) -> Envelope {
    Envelope::new(
        SourceId::ktd(instance),
        at,
        Event::Tick,
        &at.unix_ms().to_le_bytes(),
    )
}

/// A running ingest pipeline.
pub struct Ingest<L> {
    log: Arc<L>,
    tx: mpsc::Sender<Envelope>,
    rx: mpsc::Receiver<Envelope>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl<L: EventLog> Ingest<L> {
    /// A pipeline into `log`; sources stop when `shutdown` is cancelled.
    pub fn new(log: Arc<L>, shutdown: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(16_384);
        Ingest {
            log,
            tx,
            rx,
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    /// Adds a source: a stream of envelopes, forwarded until it ends or shutdown.
    pub fn source<S>(&self, name: &'static str, stream: S)
    where
        S: Stream<Item = Envelope> + Send + 'static,
    {
        let tx = self.tx.clone();
        let stop = self.shutdown.clone();
        self.tracker.spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => break,
                    next = stream.next() => next,
                };
                let Some(env) = next else {
                    tracing::info!(source = name, "source ended");
                    break;
                };
                if tx.send(env).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Adds a `Tick` every `interval` (aligned to multiples of it, so a restart does not
    /// produce a second tick for the same instant).
    pub fn ticks(&self, instance: String, interval: Duration) {
        let interval_ms = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let stream = futures::stream::unfold(None::<i64>, move |last| async move {
            loop {
                let now = Timestamp::now().unix_ms();
                let slot = now - now.rem_euclid(interval_ms);
                if last != Some(slot) {
                    return Some((slot, Some(slot)));
                }
                let wait = u64::try_from(slot + interval_ms - now).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        })
        .map(move |slot| tick(&instance, Timestamp::from_unix_ms(slot)));
        self.source("ticks", stream);
    }

    /// Runs until shutdown (or a fatal log error), then drains: every event a source
    /// handed over is durably appended before this returns `Ok`.
    pub async fn run(
        self,
        options: BatchOptions,
        abort: CancellationToken,
    ) -> Result<WriterStats, LogError> {
        let Ingest {
            log,
            tx,
            rx,
            tracker,
            shutdown,
        } = self;
        drop(tx);
        tracker.close();
        let mut writer = tokio::spawn(writer::run(log, rx, options, abort));
        let result = tokio::select! {
            res = &mut writer => res,
            () = shutdown.cancelled() => {
                tracker.wait().await;
                writer.await
            }
        };
        // A fatal writer error stops the sources too.
        shutdown.cancel();
        tracker.wait().await;
        match result {
            Ok(r) => r,
            Err(join) => Err(LogError::Write(format!(
                "the log writer task failed: {join}"
            ))),
        }
    }
}
