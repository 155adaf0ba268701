//! The poller: a few bulk queries per poll, normalized, diffed against what the log
//! already says ([`PollerState`]), turned into change events with exactly-once ids.
//!
//! Rules (see `docs/adr/0002-event-ids-and-idempotency.md`):
//! - ids: version = poll number + content digest; removals: poll number + key. A poll
//!   runs under [`PollerState::next_poll`] (last `PollCompleted` + 1), so a poll redone
//!   after a crash or a failure produces the same ids for the same observations.
//! - a poll that fails (any query) emits one `PollFailed` and **nothing else**: a partial
//!   view would look like removals.
//! - a single object that cannot be read does not fail the poll: it is listed in
//!   `PollCompleted.rejected` and its previous state stands (it is neither changed nor
//!   removed). When not even its name/id can be read, no object of its kind is removed by
//!   that poll (the unreadable one might be any of them); everything else goes on.
//! - answers are read element by element and compared with the state as they arrive;
//!   snapshots are read in full on the first poll of a process and every
//!   `snapshot_full_read_every` polls, incrementally in between (see `crate::snapshots`:
//!   a snapshot's `used`, holds and later-edited properties wait for the full read);
//! - datasets change (`DatasetChanged`) when anything but their space figures changes;
//!   space figures go into `UsageSampled` every `usage_sample_every` polls, for the datasets
//!   whose `used`/`available`/`usedbysnapshots` moved since their last sample.
//! - snapshots, shares, pools and the system are re-emitted (`*Observed`) on any change.
//! - a failed poll does not advance the poll number; `PollFailed`'s version is the poll
//!   number + a digest of the error and method, so the same failure of the same poll
//!   appended twice (a crash between append and ack) is stored once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::Stream;
use ktd_model::{Envelope, Event, PollCounts, SourceId, Timestamp, UsageSample, content_digest};
use tokio_util::sync::CancellationToken;

use crate::client::TrueNasClient;
use crate::fetch::{Failure, Kind, SnapshotPlan, View, fetch};
use crate::state::PollerState;

pub use crate::fetch::{DATASET_PROPERTIES, SNAPSHOT_PROPERTIES, SNAPSHOT_USER_PROPERTIES};

/// Polls one TrueNAS system.
pub struct Poller {
    client: TrueNasClient,
    source: SourceId,
    state: PollerState,
    /// Whether a poll of this process completed (until then, snapshots are read in full).
    synced: bool,
    /// The clones' origins the last completed poll saw.
    origins: HashMap<String, String>,
}

impl Poller {
    /// A poller for `instance` continuing from `state` (rebuilt from the log, or default).
    pub fn new(client: TrueNasClient, instance: impl Into<String>, state: PollerState) -> Self {
        Poller {
            client,
            source: SourceId::truenas(instance),
            state,
            synced: false,
            origins: HashMap::new(),
        }
    }

    /// What the poller knows.
    pub fn state(&self) -> &PollerState {
        &self.state
    }

    /// The client.
    pub fn client(&self) -> &TrueNasClient {
        &self.client
    }

    /// One poll at `now`: the changes since the last completed poll and `PollCompleted`,
    /// or a single `PollFailed`.
    pub async fn poll_once(&mut self, now: Timestamp) -> Vec<Envelope> {
        let poll = self.state.next_poll();
        let span = tracing::info_span!("truenas.poll", instance = %self.source.instance, poll);
        let started = Instant::now();
        let every = self.client.config().snapshot_full_read_every.max(1);
        let plan = SnapshotPlan {
            full: !self.synced || poll.is_multiple_of(every) || self.state.snapshots.is_empty(),
            previous_origins: &self.origins,
        };
        let fetched =
            tracing::Instrument::instrument(fetch(&self.client, &self.state, plan), span.clone())
                .await;
        let envelopes = match fetched {
            Ok(mut view) => {
                self.origins = std::mem::take(&mut view.origins);
                self.synced = true;
                self.diff(poll, now, view, started.elapsed())
            }
            Err(Failure { method, error }) => {
                span.in_scope(|| tracing::warn!(method, error = %error, "TrueNAS poll failed"));
                let retryable = error.retryable();
                let error = error.to_string();
                let version = versioned(poll, &content_digest(&(&error, &method)));
                vec![Envelope::new(
                    self.source.clone(),
                    now,
                    Event::PollFailed {
                        poll,
                        error,
                        method: Some(method),
                        retryable,
                    },
                    &version,
                )]
            }
        };
        for env in &envelopes {
            self.state.apply(env);
        }
        envelopes
    }

    fn diff(&self, poll: u64, now: Timestamp, view: View, took: Duration) -> Vec<Envelope> {
        let mut out = Vec::new();
        let mut emit = |event: Event, version: Vec<u8>| {
            out.push(Envelope::new(self.source.clone(), now, event, &version));
        };
        let state = &self.state;
        let View {
            pools,
            datasets,
            snapshots,
            shares,
            system,
            rejections,
            ..
        } = view;

        // Pools.
        let mut seen = HashSet::new();
        for pool in &pools {
            seen.insert(pool.name.as_str());
            let digest = content_digest(pool);
            if state.pools.get(&pool.name) != Some(&digest) {
                emit(
                    Event::PoolObserved { pool: pool.clone() },
                    versioned(poll, &digest),
                );
            }
        }
        for name in state.pools.keys().filter(|n| !seen.contains(n.as_str())) {
            if rejections.removable(Kind::Pool, name) {
                emit(
                    Event::PoolRemoved { name: name.clone() },
                    versioned(poll, name.as_bytes()),
                );
            }
        }

        // Datasets (only new and changed ones were kept).
        let dataset_count = datasets.len() as u64;
        let gone: Vec<String> = {
            let seen: HashSet<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
            state
                .datasets
                .keys()
                .filter(|n| !seen.contains(n.as_str()) && rejections.removable(Kind::Dataset, n))
                .cloned()
                .collect()
        };
        let mut samples = Vec::new();
        let sample = poll.is_multiple_of(self.client.config().usage_sample_every.max(1));
        for d in datasets {
            if let Some(dataset) = d.changed {
                let version = versioned(poll, &content_digest(&dataset));
                let dataset = *dataset;
                if d.new {
                    emit(Event::DatasetObserved { dataset }, version);
                } else {
                    emit(Event::DatasetChanged { dataset }, version);
                }
            } else if sample
                && let Some(now) = d.usage
                && let Some(known) = state.datasets.get(&d.name)
                && known.usage != Some(now)
            {
                samples.push(UsageSample {
                    dataset: d.name,
                    used: now.0,
                    available: now.1,
                    used_by_snapshots: now.2,
                });
            }
        }
        for name in gone {
            let version = versioned(poll, name.as_bytes());
            emit(Event::DatasetRemoved { name }, version);
        }

        // Snapshots (only new and changed ones were kept).
        let mut known_after = state.snapshots.len() as u64;
        for (snapshot, digest) in snapshots.changed {
            if !state.snapshots.contains_key(&snapshot.name) {
                known_after += 1;
            }
            emit(
                Event::SnapshotObserved { snapshot },
                versioned(poll, &digest),
            );
        }
        for name in snapshots.removed {
            if rejections.removable(Kind::Snapshot, &name) {
                known_after = known_after.saturating_sub(1);
                let version = versioned(poll, name.as_bytes());
                emit(Event::SnapshotRemoved { name }, version);
            }
        }
        let snapshot_count = if snapshots.full {
            snapshots.read
        } else {
            known_after
        };

        // Shares, targets, extents, associations.
        let mut seen = HashSet::new();
        for s in &shares {
            let key = s.key();
            seen.insert(key);
            let digest = content_digest(s);
            if state.shares.get(&key) != Some(&digest) {
                emit(
                    Event::ShareObserved { share: s.clone() },
                    versioned(poll, &digest),
                );
            }
        }
        for key in state.shares.keys().filter(|k| !seen.contains(*k)) {
            if rejections.removable(Kind::Share(key.kind), &key.to_string()) {
                emit(
                    Event::ShareRemoved { share: *key },
                    versioned(poll, key.to_string().as_bytes()),
                );
            }
        }

        // System.
        if let Some(system) = &system {
            let digest = content_digest(system);
            if state.system != Some(digest) {
                emit(
                    Event::SystemObserved {
                        system: system.clone(),
                    },
                    versioned(poll, &digest),
                );
            }
        }

        // Space figures, every `usage_sample_every` polls, of the datasets whose figures
        // moved (changed datasets carry theirs).
        if !samples.is_empty() {
            let digest = content_digest(&samples);
            emit(Event::UsageSampled { samples }, versioned(poll, &digest));
        }

        let changes = out.len() as u64;
        let counts = PollCounts {
            pools: pools.len() as u64,
            datasets: dataset_count,
            snapshots: snapshot_count,
            shares: shares.len() as u64,
            changes,
        };
        tracing::info!(
            poll,
            changes,
            rejected = rejections.rejected.len(),
            snapshots_read = snapshots.read,
            full_snapshot_read = snapshots.full,
            duration_ms = took.as_millis() as u64,
            "TrueNAS poll completed"
        );
        out.push(Envelope::new(
            self.source.clone(),
            now,
            Event::PollCompleted {
                poll,
                transport: self.client.transport(),
                duration_ms: took.as_millis() as u64,
                counts,
                rejected: rejections.rejected,
                not_collected: Vec::new(),
            },
            &poll.to_be_bytes(),
        ));
        out
    }

    /// [`poll_stream`](Self::poll_stream) at the configured `poll_interval`.
    pub fn stream(self, shutdown: CancellationToken) -> impl Stream<Item = Vec<Envelope>> {
        let interval = self.client.config().poll_interval;
        self.poll_stream(interval, shutdown)
    }

    /// Polls every `interval` (first poll at once) until `shutdown`, yielding each poll's
    /// batch. Missed ticks are skipped, not bunched.
    pub fn poll_stream(
        mut self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> impl Stream<Item = Vec<Envelope>> {
        async_stream(move |tx| async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                let batch = tokio::select! {
                    () = shutdown.cancelled() => break,
                    b = self.poll_once(Timestamp::now()) => b,
                };
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
        })
    }
}

/// A stream fed by a future through a bounded channel (the future runs inside the stream:
/// nothing is spawned, dropping the stream stops it).
fn async_stream<T, F, Fut>(f: F) -> impl Stream<Item = T>
where
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let producer = f(tx);
    futures::stream::unfold(
        (Box::pin(producer), rx, false),
        |(mut producer, mut rx, mut done)| async move {
            loop {
                if done {
                    return rx.recv().await.map(|item| (item, (producer, rx, done)));
                }
                tokio::select! {
                    item = rx.recv() => return item.map(|item| (item, (producer, rx, done))),
                    () = &mut producer => done = true,
                }
            }
        },
    )
}

/// Polls run in spawned tasks: the poll stream must be `Send` (this fails to compile
/// otherwise).
#[allow(dead_code)]
fn poll_stream_is_send(p: Poller) -> impl Stream<Item = Vec<Envelope>> + Send {
    p.stream(CancellationToken::new())
}

/// Event version: poll number + a digest or key.
fn versioned(poll: u64, tail: &[u8]) -> Vec<u8> {
    let mut v = poll.to_be_bytes().to_vec();
    v.extend_from_slice(tail);
    v
}

/// Group envelopes by type name (handy in tests and logs).
pub fn summarize(envelopes: &[Envelope]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for e in envelopes {
        *m.entry(e.event.type_name()).or_insert(0) += 1;
    }
    m
}
