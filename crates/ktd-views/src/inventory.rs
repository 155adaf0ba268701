//! The inventory: what both systems look like right now, folded from observations, and
//! how complete that picture is.
//!
//! The inventory keeps the latest normalized state of every object and, per Kubernetes
//! kind and per TrueNAS class, whether the view of it is *complete* (a list finished, the
//! last poll read it). Findings are only judged on complete views.

use std::collections::{BTreeMap, BTreeSet};

use ktd_model::kube::{
    PersistentVolume, PersistentVolumeClaim, StorageClass, VolumeAttachment, VolumeSnapshot,
    VolumeSnapshotClass, VolumeSnapshotContent,
};
use ktd_model::truenas::{Dataset, NasCollection, Pool, Share, ShareKey, Snapshot, SystemInfo};
use ktd_model::{Envelope, Event, KubeKind, KubeObject, ObjectKey, SourceId, System, Timestamp};

/// How complete the view of one Kubernetes kind is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindState {
    /// Listed completely; kept up to date by the watch.
    Synced,
    /// Never listed completely (yet).
    Unsynced,
    /// Watching failed (forbidden, CRD missing, apiserver gone): the view may be stale.
    Failed(String),
}

/// How complete the view of one TrueNAS class is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassState {
    /// The last poll read every object of it.
    Complete,
    /// Not read yet, or not read by the last observation (a bundle without its file).
    Missing,
    /// The last poll failed, or could not read some objects of it.
    Stale(String),
}

/// Both systems as last observed.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    now: Timestamp,
    kube_source: Option<SourceId>,
    nas_source: Option<SourceId>,
    objects: BTreeMap<KubeKind, BTreeMap<ObjectKey, KubeObject>>,
    kinds: BTreeMap<KubeKind, KindState>,
    datasets: BTreeMap<String, Dataset>,
    snapshots: BTreeMap<String, Snapshot>,
    shares: BTreeMap<ShareKey, Share>,
    pools: BTreeMap<String, Pool>,
    system: Option<SystemInfo>,
    classes: BTreeMap<NasCollection, ClassState>,
    last_poll: Option<Timestamp>,
}

/// What an observation changed, so the views know whether to look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Nothing the views read.
    Nothing,
    /// Objects changed.
    Objects,
    /// Completeness changed: a sync finished, a watch or a poll failed, a poll read what
    /// the previous one could not.
    Boundary,
    /// A natural point to look again, nothing else changed: a tick, or a list or poll that
    /// completed with the same completeness as before.
    Settled,
}

impl Inventory {
    /// Event time: the latest `observed_at` seen. Views never read the wall clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The Kubernetes source observed (the first one seen).
    pub fn kube_source(&self) -> Option<&SourceId> {
        self.kube_source.as_ref()
    }

    /// The TrueNAS source observed (the first one seen).
    pub fn nas_source(&self) -> Option<&SourceId> {
        self.nas_source.as_ref()
    }

    /// Folds one observation in. Derived events and observations of a second cluster or
    /// NAS are ignored (one views instance judges one cluster against one NAS).
    pub fn apply(&mut self, env: &Envelope) -> Applied {
        self.apply_owned(env.clone())
    }

    /// [`Inventory::apply`], taking the envelope (no copy of the objects it carries).
    ///
    /// User properties that are not the resource's own (inherited from a parent, or by a
    /// snapshot from its dataset) are not kept: ownership never rests on them, and they
    /// repeat the parent's properties on every child and snapshot.
    pub fn apply_owned(&mut self, env: Envelope) -> Applied {
        if env.observed_at > self.now {
            self.now = env.observed_at;
        }
        if env.event.is_derived() {
            return Applied::Nothing;
        }
        let slot = match env.source.system {
            System::Kubernetes => &mut self.kube_source,
            System::Truenas => &mut self.nas_source,
            System::Ktd => return self.apply_ktd(&env.event),
        };
        match slot {
            Some(known) if *known != env.source => return Applied::Nothing,
            Some(_) => {}
            None => *slot = Some(env.source.clone()),
        }
        match env.event {
            Event::ObjectApplied { object } => {
                self.objects
                    .entry(object.kind())
                    .or_default()
                    .insert(object.key(), object);
                Applied::Objects
            }
            Event::ObjectDeleted { kind, key, .. } => {
                match self.objects.get_mut(&kind).and_then(|m| m.remove(&key)) {
                    Some(_) => Applied::Objects,
                    None => Applied::Nothing,
                }
            }
            Event::SyncCompleted { kind, .. } => match self.kinds.insert(kind, KindState::Synced) {
                Some(KindState::Synced) => Applied::Settled,
                _ => Applied::Boundary,
            },
            Event::SyncStarted { kind } => {
                // A relist keeps the previous (complete) picture until it ends.
                self.kinds.entry(kind).or_insert(KindState::Unsynced);
                Applied::Nothing
            }
            Event::WatchFailed { kind, error, .. } => {
                self.kinds.insert(kind, KindState::Failed(error));
                Applied::Boundary
            }
            Event::ObjectRejected { .. } => Applied::Nothing,
            Event::DatasetObserved { mut dataset } | Event::DatasetChanged { mut dataset } => {
                dataset.user_properties.retain(|_, p| p.source.is_own());
                self.datasets.insert(dataset.name.clone(), dataset);
                Applied::Objects
            }
            Event::DatasetRemoved { name } => removed(self.datasets.remove(&name)),
            Event::SnapshotObserved { mut snapshot } => {
                snapshot.user_properties.retain(|_, p| p.source.is_own());
                self.snapshots.insert(snapshot.name.clone(), snapshot);
                Applied::Objects
            }
            Event::SnapshotRemoved { name } => removed(self.snapshots.remove(&name)),
            Event::ShareObserved { share } => {
                self.shares.insert(share.key(), share);
                Applied::Objects
            }
            Event::ShareRemoved { share } => removed(self.shares.remove(&share)),
            Event::PoolObserved { pool } => {
                self.pools.insert(pool.name.clone(), pool);
                Applied::Objects
            }
            Event::PoolRemoved { name } => removed(self.pools.remove(&name)),
            Event::SystemObserved { system } => {
                self.system = Some(system);
                Applied::Objects
            }
            Event::UsageSampled { samples } => {
                for s in &samples {
                    if let Some(d) = self.datasets.get_mut(&s.dataset) {
                        d.used = Some(s.used);
                        d.available = Some(s.available);
                        d.used_by_snapshots = Some(s.used_by_snapshots);
                    }
                }
                Applied::Nothing
            }
            Event::PollCompleted {
                rejected,
                not_collected,
                ..
            } => {
                self.last_poll = Some(env.observed_at);
                let before = self.classes.clone();
                for class in NasCollection::ALL {
                    let state = if not_collected.contains(&class) {
                        ClassState::Missing
                    } else if let Some(why) =
                        rejected.iter().find(|r| rejected_class(r) == Some(class))
                    {
                        ClassState::Stale(format!("an object could not be read: {why}"))
                    } else {
                        ClassState::Complete
                    };
                    self.classes.insert(class, state);
                }
                if self.classes == before {
                    Applied::Settled
                } else {
                    Applied::Boundary
                }
            }
            Event::PollFailed { error, .. } => {
                for class in NasCollection::ALL {
                    if self.classes.get(&class) == Some(&ClassState::Complete) {
                        self.classes.insert(
                            class,
                            ClassState::Stale(format!("last poll failed: {error}")),
                        );
                    }
                }
                Applied::Boundary
            }
            Event::Tick => Applied::Settled,
            _ => Applied::Nothing,
        }
    }

    fn apply_ktd(&mut self, event: &Event) -> Applied {
        match event {
            Event::Tick => Applied::Settled,
            _ => Applied::Nothing,
        }
    }

    /// Whether a Kubernetes kind is completely observed.
    pub fn synced(&self, kind: KubeKind) -> bool {
        self.kinds.get(&kind) == Some(&KindState::Synced)
    }

    /// The state of every Kubernetes kind seen so far.
    pub fn kind_states(&self) -> &BTreeMap<KubeKind, KindState> {
        &self.kinds
    }

    /// Whether a TrueNAS class is completely observed.
    pub fn complete(&self, class: NasCollection) -> bool {
        self.classes.get(&class) == Some(&ClassState::Complete)
    }

    /// The state of every TrueNAS class seen so far.
    pub fn class_states(&self) -> &BTreeMap<NasCollection, ClassState> {
        &self.classes
    }

    /// When the last successful poll (or bundle) was observed.
    pub fn last_poll(&self) -> Option<Timestamp> {
        self.last_poll
    }

    /// Every object of a kind.
    pub fn objects(&self, kind: KubeKind) -> impl Iterator<Item = &KubeObject> {
        self.objects.get(&kind).into_iter().flat_map(|m| m.values())
    }

    /// Number of objects of a kind.
    pub fn count(&self, kind: KubeKind) -> usize {
        self.objects.get(&kind).map_or(0, BTreeMap::len)
    }

    fn object(&self, kind: KubeKind, key: &ObjectKey) -> Option<&KubeObject> {
        self.objects.get(&kind).and_then(|m| m.get(key))
    }

    /// PersistentVolumes.
    pub fn pvs(&self) -> impl Iterator<Item = &PersistentVolume> {
        self.objects(KubeKind::PersistentVolume)
            .filter_map(|o| match o {
                KubeObject::PersistentVolume(pv) => Some(pv),
                _ => None,
            })
    }

    /// A PersistentVolume by name.
    pub fn pv(&self, name: &str) -> Option<&PersistentVolume> {
        match self.object(KubeKind::PersistentVolume, &ObjectKey::cluster(name)) {
            Some(KubeObject::PersistentVolume(pv)) => Some(pv),
            _ => None,
        }
    }

    /// PersistentVolumeClaims.
    pub fn pvcs(&self) -> impl Iterator<Item = &PersistentVolumeClaim> {
        self.objects(KubeKind::PersistentVolumeClaim)
            .filter_map(|o| match o {
                KubeObject::PersistentVolumeClaim(pvc) => Some(pvc),
                _ => None,
            })
    }

    /// A PersistentVolumeClaim by namespace and name.
    pub fn pvc(&self, namespace: &str, name: &str) -> Option<&PersistentVolumeClaim> {
        match self.object(
            KubeKind::PersistentVolumeClaim,
            &ObjectKey::namespaced(namespace, name),
        ) {
            Some(KubeObject::PersistentVolumeClaim(pvc)) => Some(pvc),
            _ => None,
        }
    }

    /// StorageClasses.
    pub fn storage_classes(&self) -> impl Iterator<Item = &StorageClass> {
        self.objects(KubeKind::StorageClass)
            .filter_map(|o| match o {
                KubeObject::StorageClass(sc) => Some(sc),
                _ => None,
            })
    }

    /// VolumeAttachments.
    pub fn attachments(&self) -> impl Iterator<Item = &VolumeAttachment> {
        self.objects(KubeKind::VolumeAttachment)
            .filter_map(|o| match o {
                KubeObject::VolumeAttachment(va) => Some(va),
                _ => None,
            })
    }

    /// Whether a Node exists.
    pub fn has_node(&self, name: &str) -> bool {
        self.object(KubeKind::Node, &ObjectKey::cluster(name))
            .is_some()
    }

    /// VolumeSnapshots.
    pub fn volume_snapshots(&self) -> impl Iterator<Item = &VolumeSnapshot> {
        self.objects(KubeKind::VolumeSnapshot)
            .filter_map(|o| match o {
                KubeObject::VolumeSnapshot(vs) => Some(vs),
                _ => None,
            })
    }

    /// A VolumeSnapshot by namespace and name.
    pub fn volume_snapshot(&self, namespace: &str, name: &str) -> Option<&VolumeSnapshot> {
        match self.object(
            KubeKind::VolumeSnapshot,
            &ObjectKey::namespaced(namespace, name),
        ) {
            Some(KubeObject::VolumeSnapshot(vs)) => Some(vs),
            _ => None,
        }
    }

    /// VolumeSnapshotContents.
    pub fn snapshot_contents(&self) -> impl Iterator<Item = &VolumeSnapshotContent> {
        self.objects(KubeKind::VolumeSnapshotContent)
            .filter_map(|o| match o {
                KubeObject::VolumeSnapshotContent(c) => Some(c),
                _ => None,
            })
    }

    /// A VolumeSnapshotContent by name.
    pub fn snapshot_content(&self, name: &str) -> Option<&VolumeSnapshotContent> {
        match self.object(KubeKind::VolumeSnapshotContent, &ObjectKey::cluster(name)) {
            Some(KubeObject::VolumeSnapshotContent(c)) => Some(c),
            _ => None,
        }
    }

    /// VolumeSnapshotClasses.
    pub fn snapshot_classes(&self) -> impl Iterator<Item = &VolumeSnapshotClass> {
        self.objects(KubeKind::VolumeSnapshotClass)
            .filter_map(|o| match o {
                KubeObject::VolumeSnapshotClass(c) => Some(c),
                _ => None,
            })
    }

    /// Datasets and zvols by name.
    pub fn datasets(&self) -> &BTreeMap<String, Dataset> {
        &self.datasets
    }

    /// Snapshots by full name.
    pub fn snapshots(&self) -> &BTreeMap<String, Snapshot> {
        &self.snapshots
    }

    /// The snapshots of one dataset (not of its children).
    pub fn snapshots_of<'a>(&'a self, dataset: &str) -> impl Iterator<Item = &'a Snapshot> + 'a {
        let from = format!("{dataset}@");
        self.snapshots
            .range(from.clone()..)
            .take_while(move |(name, _)| name.starts_with(&from))
            .map(|(_, s)| s)
    }

    /// The datasets below `parent` (children, grandchildren, ...).
    pub fn datasets_under<'a>(&'a self, parent: &str) -> impl Iterator<Item = &'a Dataset> + 'a {
        let from = format!("{parent}/");
        self.datasets
            .range(from.clone()..)
            .take_while(move |(name, _)| name.starts_with(&from))
            .map(|(_, d)| d)
    }

    /// Shares, iSCSI targets, extents and associations.
    pub fn shares(&self) -> &BTreeMap<ShareKey, Share> {
        &self.shares
    }

    /// Pools by name.
    pub fn pools(&self) -> &BTreeMap<String, Pool> {
        &self.pools
    }

    /// The system, when observed.
    pub fn system(&self) -> Option<&SystemInfo> {
        self.system.as_ref()
    }
}

fn removed<T>(old: Option<T>) -> Applied {
    match old {
        Some(_) => Applied::Objects,
        None => Applied::Nothing,
    }
}

/// The class an entry of `PollCompleted.rejected` (`<method> <name>: <why>`) is about.
fn rejected_class(entry: &str) -> Option<NasCollection> {
    let method = entry.split([' ', ':']).next()?;
    NasCollection::from_method(method)
}

/// Names of the classes and kinds a set of needs lacks, for "not judged" summaries.
pub fn lacking(inv: &Inventory, kinds: &[KubeKind], classes: &[NasCollection]) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for k in kinds {
        if !inv.synced(*k) {
            out.insert(k.as_str().to_owned());
        }
    }
    for c in classes {
        if !inv.complete(*c) {
            out.insert(c.method().to_owned());
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktd_model::event::PollCounts;
    use ktd_model::truenas::ApiTransport;

    fn env(source: SourceId, at: i64, event: Event) -> Envelope {
        Envelope::new(source, Timestamp::from_unix_secs(at), event, b"")
    }

    fn poll(rejected: Vec<String>, not_collected: Vec<NasCollection>) -> Event {
        Event::PollCompleted {
            poll: 1,
            transport: ApiTransport::JsonRpc,
            duration_ms: 1,
            counts: PollCounts::default(),
            rejected,
            not_collected,
        }
    }

    #[test]
    fn classes_are_complete_only_when_the_last_poll_read_them() {
        let nas = SourceId::truenas("nas");
        let mut inv = Inventory::default();
        assert!(!inv.complete(NasCollection::Datasets));
        inv.apply(&env(
            nas.clone(),
            1,
            poll(vec![], vec![NasCollection::SmbShares]),
        ));
        assert!(inv.complete(NasCollection::Datasets));
        assert!(!inv.complete(NasCollection::SmbShares));
        inv.apply(&env(
            nas.clone(),
            2,
            poll(vec!["pool.dataset.query tank/x: bad quota".into()], vec![]),
        ));
        assert!(!inv.complete(NasCollection::Datasets));
        assert!(inv.complete(NasCollection::Snapshots));
        inv.apply(&env(
            nas.clone(),
            3,
            Event::PollFailed {
                poll: 3,
                error: "timeout".into(),
                method: None,
                retryable: true,
            },
        ));
        assert!(!inv.complete(NasCollection::Snapshots));
        inv.apply(&env(nas, 4, poll(vec![], vec![])));
        assert!(inv.complete(NasCollection::Snapshots) && inv.complete(NasCollection::Datasets));
        assert_eq!(inv.now(), Timestamp::from_unix_secs(4));
    }

    #[test]
    fn kinds_sync_and_fail() {
        let k = SourceId::kubernetes("c");
        let mut inv = Inventory::default();
        inv.apply(&env(
            k.clone(),
            1,
            Event::SyncStarted {
                kind: KubeKind::PersistentVolume,
            },
        ));
        assert!(!inv.synced(KubeKind::PersistentVolume));
        inv.apply(&env(
            k.clone(),
            2,
            Event::SyncCompleted {
                kind: KubeKind::PersistentVolume,
                objects: 0,
            },
        ));
        assert!(inv.synced(KubeKind::PersistentVolume));
        // A relist keeps the complete picture.
        inv.apply(&env(
            k.clone(),
            3,
            Event::SyncStarted {
                kind: KubeKind::PersistentVolume,
            },
        ));
        assert!(inv.synced(KubeKind::PersistentVolume));
        inv.apply(&env(
            k.clone(),
            4,
            Event::WatchFailed {
                kind: KubeKind::PersistentVolume,
                error: "forbidden".into(),
                retryable: false,
            },
        ));
        assert!(!inv.synced(KubeKind::PersistentVolume));
        // A second cluster's observations are not mixed in.
        inv.apply(&env(
            SourceId::kubernetes("other"),
            5,
            Event::SyncCompleted {
                kind: KubeKind::PersistentVolume,
                objects: 0,
            },
        ));
        assert!(!inv.synced(KubeKind::PersistentVolume));
    }
}
