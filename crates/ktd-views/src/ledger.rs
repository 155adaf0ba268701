//! The snapshot ledger: per volume, every snapshot on both sides joined
//! (VolumeSnapshot <-> VolumeSnapshotContent <-> ZFS snapshot or detached snapshot dataset),
//! with counts, growth, age, space, clones, stuck operations and retention compliance.
//!
//! Built on demand from the inventory (it is a projection, not a fold of its own).

use std::collections::{BTreeMap, HashMap};

use ktd_model::Timestamp;
use ktd_model::kube::{PersistentVolume, VolumeSnapshot, VolumeSnapshotContent};
use ktd_model::truenas::{Dataset, HasUserProperties, props};
use serde::Serialize;

use crate::config::{FindingsConfig, RetentionPolicy};
use crate::inventory::Inventory;
use crate::topology::{Topology, is_detached_snapshot, leaf, parent};

/// Where one snapshot stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotState {
    /// Ready to use on both sides.
    Ready,
    /// Being created, not ready yet.
    Pending,
    /// The snapshot controller reports an error.
    Error,
    /// Being deleted.
    Deleting,
    /// Kubernetes knows it, TrueNAS does not have it.
    BackingMissing,
    /// On TrueNAS only: no VolumeSnapshotContent names it.
    NasOnly,
}

/// One snapshot of a volume, joined across both systems.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnapshotEntry {
    /// The handle that joins both sides: `<vol>@<snap>` or `<vol>/<snap>` (detached).
    pub handle: String,
    /// `namespace/name` of the VolumeSnapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_snapshot: Option<String>,
    /// The VolumeSnapshotContent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The ZFS snapshot (`ds@snap`) or detached snapshot dataset on TrueNAS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truenas: Option<String>,
    /// A detached snapshot (a full copy, survives its volume).
    pub detached: bool,
    /// Creation time (TrueNAS first, then Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    /// Where it stands.
    pub state: SnapshotState,
    /// Bytes unique to it (`used`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Bytes it references.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referenced: Option<u64>,
    /// Datasets cloned from it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clones: Vec<String>,
    /// Labels of its VolumeSnapshot (for retention selectors).
    #[serde(skip)]
    labels: BTreeMap<String, String>,
    /// Namespace of its VolumeSnapshot.
    #[serde(skip)]
    namespace: Option<String>,
}

/// How a volume's snapshots measure against the retention policy that applies to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Compliance {
    /// The policy.
    pub policy: String,
    /// No violation.
    pub compliant: bool,
    /// What violates it: `<snapshot>: older than 7d`, `<snapshot>: beyond the 10 newest`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}

/// One volume's snapshots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VolumeLedger {
    /// The volume handle (dataset leaf).
    pub volume: String,
    /// Its PersistentVolume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pv: Option<String>,
    /// `namespace/name` of its claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// Its StorageClass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Its dataset or zvol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// CSI snapshots (either side).
    pub count: usize,
    /// Every ZFS snapshot of the dataset, CSI or not (periodic tasks, helpers).
    pub zfs_snapshots: usize,
    /// Oldest snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<Timestamp>,
    /// Newest snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<Timestamp>,
    /// Snapshots created in the last 24 hours.
    pub created_last_24h: usize,
    /// Snapshots created in the last 7 days.
    pub created_last_7d: usize,
    /// Sum of the CSI snapshots' `used` bytes.
    pub snapshot_bytes: u64,
    /// The dataset's `usedbysnapshots` (all its snapshots together).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_by_snapshots: Option<u64>,
    /// Snapshots not ready, failed, being deleted or one-sided.
    pub not_ready: usize,
    /// Retention compliance, when a policy applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Compliance>,
    /// The snapshots, oldest first.
    pub snapshots: Vec<SnapshotEntry>,
}

/// The ledger of every volume.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ledger {
    /// Event time of the picture.
    pub at: Timestamp,
    /// Volumes with at least one snapshot, or under a retention policy.
    pub volumes: Vec<VolumeLedger>,
    /// Totals.
    pub totals: LedgerTotals,
}

/// Ledger totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LedgerTotals {
    /// Volumes listed.
    pub volumes: usize,
    /// CSI snapshots.
    pub snapshots: usize,
    /// Snapshots not ready, failed, being deleted or one-sided.
    pub not_ready: usize,
    /// Bytes held by CSI snapshots.
    pub snapshot_bytes: u64,
    /// Volumes violating their retention policy.
    pub non_compliant: usize,
}

/// The volume handle a snapshot handle belongs to.
fn volume_of(handle: &str) -> &str {
    handle.split(['@', '/']).next().unwrap_or(handle)
}

/// Builds the ledger.
pub fn build(inv: &Inventory, cfg: &FindingsConfig) -> Ledger {
    let topo = Topology::build(inv, cfg);
    let now = inv.now();

    // VolumeSnapshotContents by volume handle.
    let mut contents: HashMap<&str, Vec<&VolumeSnapshotContent>> = HashMap::new();
    for c in inv.snapshot_contents() {
        let vol = c
            .source_volume_handle
            .as_deref()
            .or_else(|| c.handle().map(volume_of));
        if let Some(vol) = vol {
            contents.entry(vol).or_default().push(c);
        }
    }
    // Detached snapshot datasets by volume handle (their container's name).
    let mut detached: HashMap<&str, Vec<&Dataset>> = HashMap::new();
    for d in inv.datasets().values() {
        if is_detached_snapshot(d) && topo.is_detached_position(&d.name) {
            let container = parent(&d.name);
            detached.entry(leaf(container)).or_default().push(d);
        }
    }

    let mut volumes = Vec::new();
    let mut handles: Vec<(&str, Option<&PersistentVolume>)> = topo
        .pv_by_handle
        .iter()
        .map(|(h, pv)| (*h, Some(*pv)))
        .collect();
    // Managed volumes without a PV still hold snapshots.
    for d in inv.datasets().values() {
        if d.is_managed()
            && topo.in_volume_parent(&d.name)
            && !is_detached_snapshot(d)
            && !topo.pv_by_handle.contains_key(d.leaf())
        {
            handles.push((d.leaf(), None));
        }
    }
    handles.sort_by_key(|(h, _)| *h);
    handles.dedup_by_key(|(h, _)| *h);

    for (handle, pv) in handles {
        let dataset = topo.volume_dataset(inv, handle);
        let mut entries: BTreeMap<String, SnapshotEntry> = BTreeMap::new();
        let mut zfs_snapshots = 0;
        if let Some(d) = dataset {
            for s in inv.snapshots_of(&d.name) {
                zfs_snapshots += 1;
                if !(s.is_managed() && s.own_prop(props::CSI_SNAPSHOT_NAME).is_some()) {
                    continue;
                }
                let h = Topology::handle_of(&s.name);
                entries.insert(
                    h.clone(),
                    SnapshotEntry {
                        handle: h,
                        volume_snapshot: None,
                        content: None,
                        truenas: Some(s.name.clone()),
                        detached: false,
                        created: s.creation,
                        state: if s.defer_destroy {
                            SnapshotState::Deleting
                        } else {
                            SnapshotState::NasOnly
                        },
                        used: s.used,
                        referenced: s.referenced,
                        clones: topo
                            .origins
                            .get(s.name.as_str())
                            .map(|c| c.iter().map(|n| n.to_string()).collect())
                            .unwrap_or_default(),
                        labels: BTreeMap::new(),
                        namespace: None,
                    },
                );
            }
        }
        for d in detached.get(handle).into_iter().flatten() {
            let h = Topology::handle_of(&d.name);
            let clones = inv
                .snapshots_of(&d.name)
                .flat_map(|s| topo.origins.get(s.name.as_str()).into_iter().flatten())
                .map(|n| n.to_string())
                .collect();
            entries.insert(
                h.clone(),
                SnapshotEntry {
                    handle: h,
                    volume_snapshot: None,
                    content: None,
                    truenas: Some(d.name.clone()),
                    detached: true,
                    created: d.creation,
                    state: SnapshotState::NasOnly,
                    used: d.used,
                    referenced: None,
                    clones,
                    labels: BTreeMap::new(),
                    namespace: None,
                },
            );
        }
        for c in contents.get(handle).into_iter().flatten() {
            let vs: Option<&VolumeSnapshot> = inv.volume_snapshot(
                c.snapshot_ref.namespace.as_deref().unwrap_or(""),
                &c.snapshot_ref.name,
            );
            let Some(h) = c.handle() else {
                // Not created on TrueNAS yet.
                let key = format!("(pending) {}", c.meta.name);
                entries.insert(key.clone(), kube_entry(key, c, vs, SnapshotState::Pending));
                continue;
            };
            let state = kube_state(c, vs);
            match entries.get_mut(h) {
                Some(e) => {
                    e.content = Some(c.meta.name.clone());
                    e.volume_snapshot = vs.map(vs_name);
                    e.labels = vs.map(|v| v.meta.labels.clone()).unwrap_or_default();
                    e.namespace = vs.and_then(|v| v.meta.namespace.clone());
                    if e.state != SnapshotState::Deleting {
                        e.state = state;
                    }
                }
                None => {
                    let state = if state == SnapshotState::Ready {
                        SnapshotState::BackingMissing
                    } else {
                        state
                    };
                    entries.insert(h.to_owned(), kube_entry(h.to_owned(), c, vs, state));
                }
            }
        }
        let mut snapshots: Vec<SnapshotEntry> = entries.into_values().collect();
        snapshots.sort_by(|a, b| (a.created, &a.handle).cmp(&(b.created, &b.handle)));

        let claim = pv
            .and_then(|pv| pv.claim.as_ref())
            .map(|c| format!("{}/{}", c.namespace.as_deref().unwrap_or(""), c.name));
        let storage_class = pv.and_then(|pv| pv.storage_class.clone());
        let policy = cfg.retention.iter().find(|p| {
            p.storage_class
                .as_ref()
                .is_none_or(|sc| Some(sc) == storage_class.as_ref())
                && p.namespace.as_ref().is_none_or(|ns| {
                    claim.as_deref().and_then(|c| c.split('/').next()) == Some(ns.as_str())
                })
        });
        if snapshots.is_empty() && policy.is_none() {
            continue;
        }
        let day = 86_400_000;
        let age = |e: &SnapshotEntry| e.created.map(|t| now.unix_ms() - t.unix_ms());
        let ledger = VolumeLedger {
            volume: handle.to_owned(),
            pv: pv.map(|pv| pv.meta.name.clone()),
            claim,
            storage_class,
            dataset: dataset.map(|d| d.name.clone()),
            count: snapshots.len(),
            zfs_snapshots,
            oldest: snapshots.iter().filter_map(|e| e.created).min(),
            newest: snapshots.iter().filter_map(|e| e.created).max(),
            created_last_24h: snapshots
                .iter()
                .filter(|e| age(e).is_some_and(|a| a <= day))
                .count(),
            created_last_7d: snapshots
                .iter()
                .filter(|e| age(e).is_some_and(|a| a <= 7 * day))
                .count(),
            snapshot_bytes: snapshots.iter().filter_map(|e| e.used).sum(),
            used_by_snapshots: dataset.and_then(|d| d.used_by_snapshots),
            not_ready: snapshots
                .iter()
                .filter(|e| e.state != SnapshotState::Ready)
                .count(),
            retention: policy.map(|p| compliance(p, &snapshots, now)),
            snapshots,
        };
        volumes.push(ledger);
    }
    let totals = LedgerTotals {
        volumes: volumes.len(),
        snapshots: volumes.iter().map(|v| v.count).sum(),
        not_ready: volumes.iter().map(|v| v.not_ready).sum(),
        snapshot_bytes: volumes.iter().map(|v| v.snapshot_bytes).sum(),
        non_compliant: volumes
            .iter()
            .filter(|v| v.retention.as_ref().is_some_and(|c| !c.compliant))
            .count(),
    };
    Ledger {
        at: now,
        volumes,
        totals,
    }
}

fn vs_name(vs: &VolumeSnapshot) -> String {
    format!(
        "{}/{}",
        vs.meta.namespace.as_deref().unwrap_or(""),
        vs.meta.name
    )
}

fn kube_state(c: &VolumeSnapshotContent, vs: Option<&VolumeSnapshot>) -> SnapshotState {
    if c.meta.deleting.is_some() || vs.is_some_and(|v| v.meta.deleting.is_some()) {
        SnapshotState::Deleting
    } else if c.error.is_some() || vs.is_some_and(|v| v.error.is_some()) {
        SnapshotState::Error
    } else if c.ready_to_use == Some(true) && vs.is_none_or(|v| v.ready_to_use == Some(true)) {
        SnapshotState::Ready
    } else {
        SnapshotState::Pending
    }
}

fn kube_entry(
    handle: String,
    c: &VolumeSnapshotContent,
    vs: Option<&VolumeSnapshot>,
    state: SnapshotState,
) -> SnapshotEntry {
    SnapshotEntry {
        handle,
        volume_snapshot: vs.map(vs_name),
        content: Some(c.meta.name.clone()),
        truenas: None,
        detached: c.handle().is_some_and(|h| !h.contains('@')),
        created: c.creation_time.or(c.meta.created),
        state,
        used: None,
        referenced: None,
        clones: Vec::new(),
        labels: vs.map(|v| v.meta.labels.clone()).unwrap_or_default(),
        namespace: vs.and_then(|v| v.meta.namespace.clone()),
    }
}

/// Checks the VolumeSnapshots a policy selects (by namespace and labels) against its
/// limits. ZFS-only snapshots are not Kubernetes' to retain and are not counted.
fn compliance(p: &RetentionPolicy, snapshots: &[SnapshotEntry], now: Timestamp) -> Compliance {
    let selected: Vec<&SnapshotEntry> = snapshots
        .iter()
        .filter(|e| e.volume_snapshot.is_some())
        .filter(|e| {
            p.namespace
                .as_ref()
                .is_none_or(|ns| e.namespace.as_ref() == Some(ns))
        })
        .filter(|e| p.labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
        .collect();
    let mut violations = Vec::new();
    if let Some(max) = p.max_age {
        for e in &selected {
            if e.created
                .is_some_and(|t| now.unix_ms() - t.unix_ms() > max.as_millis())
            {
                violations.push(format!(
                    "{}: older than {max}",
                    e.volume_snapshot.as_deref().unwrap_or(&e.handle)
                ));
            }
        }
    }
    if let Some(max) = p.max_count
        && selected.len() > max
    {
        // Oldest first: the first `len - max` are the excess.
        for e in &selected[..selected.len() - max] {
            violations.push(format!(
                "{}: beyond the {max} newest",
                e.volume_snapshot.as_deref().unwrap_or(&e.handle)
            ));
        }
    }
    Compliance {
        policy: p.name.clone(),
        compliant: violations.is_empty(),
        violations,
    }
}
