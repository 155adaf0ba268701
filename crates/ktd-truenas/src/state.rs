//! What the poller last told the log, rebuilt by folding the log: the last completed poll
//! and the content digest of every known dataset, snapshot, share, pool and the system.
//!
//! The poller changes its state only by applying the envelopes it returns, so a state
//! rebuilt from the log is exactly the live one.

use std::collections::{BTreeMap, HashMap};

use ktd_model::truenas::{Dataset, ShareKey};
use ktd_model::{Envelope, Event, System, UsageSample, content_digest};

/// A 128-bit content digest.
pub type Digest = [u8; 16];

/// Space figures of a dataset: `used`, `available`, `usedbysnapshots`.
pub(crate) type Usage = (u64, u64, u64);

/// The digest deciding whether a dataset *changed*: everything but the space figures
/// (`used*`, `available`, `compressratio`, `snapshot_count`), which move all the time and
/// travel in `UsageSampled` instead.
pub fn dataset_digest(d: &Dataset) -> Digest {
    let mut stable = d.clone();
    stable.used = None;
    stable.available = None;
    stable.used_by_dataset = None;
    stable.used_by_snapshots = None;
    stable.used_by_children = None;
    stable.used_by_refreservation = None;
    stable.compressratio = None;
    stable.snapshot_count = None;
    content_digest(&stable)
}

/// The space figures sampled for capacity history (None without `used`/`available`).
pub(crate) fn usage(d: &Dataset) -> Option<Usage> {
    Some((d.used?, d.available?, d.used_by_snapshots.unwrap_or(0)))
}

/// A known dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownDataset {
    pub digest: Digest,
    pub usage: Option<Usage>,
}

/// A known snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownSnapshot {
    pub digest: Digest,
    /// Its `createtxg`: the newest per pool is where the next incremental read starts.
    pub createtxg: Option<u64>,
}

/// The pool of a dataset or snapshot name (`tank/a@s` → `tank`).
pub(crate) fn pool_of(name: &str) -> &str {
    name.split(['/', '@']).next().unwrap_or(name)
}

/// The dataset of a snapshot name (`tank/a@s` → `tank/a`).
pub(crate) fn dataset_of(snapshot: &str) -> &str {
    snapshot.split_once('@').map_or(snapshot, |(d, _)| d)
}

/// The poller's memory, a fold of its own events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollerState {
    pub(crate) last_completed: u64,
    pub(crate) datasets: BTreeMap<String, KnownDataset>,
    pub(crate) snapshots: BTreeMap<String, KnownSnapshot>,
    pub(crate) shares: BTreeMap<ShareKey, Digest>,
    pub(crate) pools: BTreeMap<String, Digest>,
    pub(crate) system: Option<Digest>,
}

impl PollerState {
    /// Folds the TrueNAS events of `instance` from a log (other sources are skipped).
    pub fn rebuild<'a>(instance: &str, log: impl IntoIterator<Item = &'a Envelope>) -> Self {
        let mut state = PollerState::default();
        for env in log {
            if env.source.system == System::Truenas && env.source.instance == instance {
                state.apply(env);
            }
        }
        state
    }

    /// Applies one event of this source.
    pub fn apply(&mut self, env: &Envelope) {
        match &env.event {
            Event::DatasetObserved { dataset } | Event::DatasetChanged { dataset } => {
                self.datasets.insert(
                    dataset.name.clone(),
                    KnownDataset {
                        digest: dataset_digest(dataset),
                        usage: usage(dataset),
                    },
                );
            }
            Event::DatasetRemoved { name } => {
                self.datasets.remove(name);
            }
            Event::UsageSampled { samples } => {
                for UsageSample {
                    dataset,
                    used,
                    available,
                    used_by_snapshots,
                } in samples
                {
                    if let Some(d) = self.datasets.get_mut(dataset) {
                        d.usage = Some((*used, *available, *used_by_snapshots));
                    }
                }
            }
            Event::SnapshotObserved { snapshot } => {
                self.snapshots.insert(
                    snapshot.name.clone(),
                    KnownSnapshot {
                        digest: content_digest(snapshot),
                        createtxg: snapshot.createtxg,
                    },
                );
            }
            Event::SnapshotRemoved { name } => {
                self.snapshots.remove(name);
            }
            Event::ShareObserved { share } => {
                self.shares.insert(share.key(), content_digest(share));
            }
            Event::ShareRemoved { share } => {
                self.shares.remove(share);
            }
            Event::PoolObserved { pool } => {
                self.pools.insert(pool.name.clone(), content_digest(pool));
            }
            Event::PoolRemoved { name } => {
                self.pools.remove(name);
            }
            Event::SystemObserved { system } => self.system = Some(content_digest(system)),
            Event::PollCompleted { poll, .. } => {
                self.last_completed = self.last_completed.max(*poll);
            }
            _ => {}
        }
    }

    /// The number the next poll runs under: the last completed one + 1 (a failed or
    /// interrupted poll is redone under the same number, so its events de-duplicate).
    pub fn next_poll(&self) -> u64 {
        self.last_completed + 1
    }

    /// The last completed poll (0 = none).
    pub fn last_completed(&self) -> u64 {
        self.last_completed
    }

    /// Known dataset names.
    pub fn datasets(&self) -> impl Iterator<Item = &str> {
        self.datasets.keys().map(String::as_str)
    }

    /// Known snapshot names.
    pub fn snapshots(&self) -> impl Iterator<Item = &str> {
        self.snapshots.keys().map(String::as_str)
    }

    /// Known shares.
    pub fn shares(&self) -> impl Iterator<Item = &ShareKey> {
        self.shares.keys()
    }

    /// Known pool names.
    pub fn pools(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }

    /// The known snapshots of `dataset` (its own, not its children's).
    pub(crate) fn snapshots_of<'a>(&'a self, dataset: &str) -> impl Iterator<Item = &'a str> {
        let prefix = format!("{dataset}@");
        self.snapshots
            .range(prefix.clone()..)
            .map(|(name, _)| name.as_str())
            .take_while(move |name| name.starts_with(&prefix))
    }

    /// How many snapshots are known per dataset.
    pub(crate) fn snapshot_counts(&self) -> HashMap<&str, u64> {
        let mut counts = HashMap::new();
        for name in self.snapshots.keys() {
            *counts.entry(dataset_of(name)).or_insert(0) += 1;
        }
        counts
    }

    /// Per pool with known snapshots: the newest known `createtxg` (None when no known
    /// snapshot of the pool has one).
    pub(crate) fn snapshot_watermarks(&self) -> BTreeMap<&str, Option<u64>> {
        let mut marks: BTreeMap<&str, Option<u64>> = BTreeMap::new();
        for (name, known) in &self.snapshots {
            let mark = marks.entry(pool_of(name)).or_insert(None);
            *mark = (*mark).max(known.createtxg);
        }
        marks
    }
}
