//! World generator: realistic Kubernetes clusters sharing one TrueNAS, with planted faults
//! for every finding kind, false-positive traps, and the ground truth.
//!
//! [`generate`] is deterministic: the same [`GenerateOptions`] give a byte-identical world
//! (ChaCha8 seeded from `seed`, no wall clock, no hash-map iteration). To look at one:
//! `cargo run -p ktd-sim --example dump_world -- 100 2 1 > world.json` (volumes, clusters,
//! seed).
//!
//! # Shape of a world
//! Each cluster `c` runs two democratic-csi deployments (NFS and iSCSI, `freenas-api-*` or
//! the SSH `freenas-*` drivers) with parents `tank/k8s/<c>/{nfs,iscsi}` and detached-snapshot
//! parents `tank/k8s/<c>/{nfs,iscsi}-snapshots`. With several clusters the CSIDriver names are
//! unique per cluster (`org.democratic-csi.nfs-<c>`). `volumes` volume slots are spread
//! round-robin over the clusters; the first NFS and iSCSI volume of every cluster are always
//! healthy, so every parent is *discoverable* (it holds one of the cluster's PVs). Each volume
//! gets `snapshots_per_volume` VolumeSnapshots (some volumes use the detached class). Natural
//! features present even without faults: hashed (`crc32`) and truncated volume ids, clones
//! from snapshots and from volumes (with their `volume-source-for-volume-*` origin), TrueNAS
//! periodic snapshots `auto-*`, attached iSCSI volumes, unrelated datasets outside `tank/k8s`.
//!
//! # Truth rules (what a correct ktd reports, for the cluster `C` it observes + the NAS)
//! Times are compared with `opts.now`. Grace `15 min`; PVC pending threshold `24 h`;
//! VolumeSnapshot not-ready threshold `1 h`. Planted evidence is far from every threshold
//! (≥ 48 h pending, ≥ 6 h not ready, ≥ 1 h past grace; traps ≤ 5 min old), so any threshold
//! between the two gives the same truth.
//!
//! *Ownership.* A volume parent is owned by `C` when it holds a dataset whose leaf is the
//! `volumeHandle` of one of `C`'s democratic-csi PVs (PVs with `volumeAttributes.
//! provisioner_driver`). A detached parent is owned when it holds a container named after
//! such a volume handle that holds a detached snapshot dataset. Only datasets with **local** `democratic-csi:managed_resource=true`
//! count as managed. Managed datasets under a parent no cluster owns are `truth.unowned`.
//!
//! | kind | subject | rule |
//! |---|---|---|
//! | `pv-backing-missing` | PV | democratic-csi PV (any phase) for which no dataset `<owned parent>/<volumeHandle>` exists |
//! | `pv-released` | PV | phase `Released` for longer than the grace (either reclaim policy); never also `dataset-orphaned` |
//! | `pvc-pending` | PVC | phase `Pending`, created more than 24 h ago |
//! | `pvc-lost` | PVC | phase `Lost` |
//! | `dataset-orphaned` | `dataset`/`zvol` | managed, `provision_success=true`, directly under an owned parent, no PV of `C` with that `volumeHandle` or `csi_volume_name`; its share/iSCSI assets are evidence, not findings |
//! | `dataset-provision-incomplete` | `dataset`/`zvol` | managed, no `provision_success`, under an owned parent, older than the grace |
//! | `volumeattachment-stale` | VolumeAttachment | its PV does not exist, or its node does not exist, or `attachError`/`detachError` older than the grace |
//! | `snapshot-orphaned` | `snapshot` (`ds@snap`) or detached `dataset`/`zvol` | local `managed_resource=true` + `csi_snapshot_name`, under an owned (detached) parent, no `defer_destroy`, and no VSC of `C` whose `snapshotHandle` names it |
//! | `snapshotcontent-backing-missing` | VolumeSnapshotContent | has a `snapshotHandle` (status or `spec.source`) and nothing on the NAS has that name (`<parent>/<vol>@<snap>` or `<detached parent>/<vol>/<snap>`) |
//! | `snapshotcontent-orphaned` | VolumeSnapshotContent | `deletionPolicy: Retain`, not being deleted, and its `volumeSnapshotRef` (namespace, name, uid) matches no VolumeSnapshot |
//! | `volumesnapshot-not-ready` | VolumeSnapshot | `readyToUse` not true and (created more than 1 h ago, or `status.error` set) |
//! | `snapshot-helper-leftover` | `snapshot` | on a dataset under an owned (detached) parent, older than the grace: `volume-source-for-snapshot-*` always; `volume-source-for-volume-*` when no dataset has it as `origin` |
//! | `clone-blocks-delete` | `snapshot` or `dataset`/`zvol` | a pending delete blocked by an existing clone: (a) a snapshot with `defer_destroy=on` that is not a `volume-source-for-*` helper and is some dataset's `origin`; (b) a volume dataset whose PV is `Released` with reclaim policy `Delete` and one of whose snapshots is some dataset's `origin` (also `pv-released` for the PV); (c) a detached snapshot dataset whose VSC is being deleted (`deletionTimestamp`, policy `Delete`) while a clone's origin is one of its snapshots |
//! | `share-orphaned` | `nfs-share` (path) / `smb-share` (name) | share path `/mnt/<owned parent>/<leaf>` whose dataset does not exist |
//! | `iscsi-orphaned` | `iscsi-extent` (name) | extent with `disk = zvol/<owned parent>/<leaf>` whose zvol does not exist, or whose id is claimed (`freenas_iscsi_extent_id`) by a different zvol than its `disk`; the extent's target and target-extent are evidence; a target without any extent is never a finding (nothing ties it to a zvol) |
//!
//! Deliberate exclusions (one finding per problem): a managed dataset without
//! `provision_success` is only `dataset-provision-incomplete`, never also `dataset-orphaned`;
//! a CSI snapshot with `defer_destroy=on` is already deleted from the CSI side and is only
//! `clone-blocks-delete` (if cloned), never `snapshot-orphaned`; `volume-source-for-*`
//! snapshots carry no democratic-csi properties and are never `snapshot-orphaned`.
//! Subjects use [`ResourceRef`] naming: Kubernetes object name (+ namespace), full dataset
//! name, `dataset@snapshot`, NFS share path, SMB share name, iSCSI extent name.
//!
//! Why these rules: `clone-blocks-delete` needs both a *pending delete* (something already
//! asked for the deletion: `zfs destroy -d`, a Released PV with policy `Delete` whose
//! DeleteVolume the provisioner retries, a VSC with a `deletionTimestamp`) and a *live
//! clone*, because a clone alone is normal. A clone-from-volume's `volume-source-for-volume-*`
//! origin (and the deferred-destroyed helper of a clone from a detached snapshot) is the
//! normal state of a live clone, never a finding. `volumeattachment-stale` takes only
//! evidence that cannot be in flight: a missing PV or node, or an error older than the grace.
//!
//! Consequences are planted on purpose only: a dataset removed for `pv-backing-missing` goes
//! with its snapshots and shares (TrueNAS deletes a dataset's shares with it), a PVC made
//! `Lost` either lost its dataset too or leaves a recorded `dataset-orphaned`.

mod base;
mod faults;
mod kube_infra;
mod kube_objects;
mod model;
mod names;
mod nas_faults;
mod nas_objects;
mod traps;

#[cfg(test)]
mod checker;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use ktd_model::{FindingKind, ResourceRef};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::world::{
    Dataset, ExpectedFinding, GroundTruth, Personality, SmbShare, Trap, TrapKind, World,
};
use model::{ClusterPlan, EventSpec, Helper, Parent, Proto, Volume};

/// Grace period for in-flight work (provisioning, helper snapshots, errors), seconds.
pub const GRACE_SECS: i64 = 15 * 60;
/// PVC `Pending` threshold, seconds.
pub const PVC_PENDING_SECS: i64 = 24 * 3600;
/// VolumeSnapshot not-ready threshold, seconds.
pub const SNAPSHOT_NOT_READY_SECS: i64 = 3600;

/// What to generate (also readable from YAML/JSON; missing fields take the defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateOptions {
    /// Healthy-shaped volume slots over all clusters (planted faults add their own volumes).
    pub volumes: usize,
    /// VolumeSnapshots per volume slot.
    pub snapshots_per_volume: usize,
    /// Clusters sharing the NAS, each with its own parent datasets (0 is treated as 1).
    pub clusters: usize,
    /// RNG seed.
    pub seed: u64,
    /// TrueNAS release to imitate.
    pub personality: Personality,
    /// "Now", Unix seconds: every creation time lies before it.
    pub now: i64,
    /// Plant findings and traps (and record them in the truth).
    pub faults: bool,
}

impl Default for GenerateOptions {
    /// 100 volumes × 3 snapshots on 2 clusters, faults on, now = 2026-11-22T00:00:00Z.
    fn default() -> Self {
        GenerateOptions {
            volumes: 100,
            snapshots_per_volume: 3,
            clusters: 2,
            seed: 1,
            personality: Personality::default(),
            now: 1_795_305_600,
            faults: true,
        }
    }
}

/// Generates a world and its ground truth.
pub fn generate(opts: &GenerateOptions) -> World {
    let mut g = Gen::new(opts);
    g.plan_clusters();
    g.base_volumes();
    if opts.faults {
        g.plant_findings();
        g.plant_traps();
    }
    g.natural_traps();
    g.finish()
}

/// Generator state.
pub(crate) struct Gen<'a> {
    opts: &'a GenerateOptions,
    rng: ChaCha8Rng,
    now: i64,
    clusters: Vec<ClusterPlan>,
    parents: Vec<Parent>,
    vols: Vec<Volume>,
    helpers: Vec<Helper>,
    events: Vec<EventSpec>,
    /// Datasets without democratic-csi properties (unmanaged traps, unrelated data).
    extra_datasets: Vec<Dataset>,
    /// SMB shares made by hand (democratic-csi's SMB driver is not simulated).
    smb_shares: Vec<SmbShare>,
    /// Every volume id handed out (hashed ids must not collide).
    vids: BTreeSet<String>,
    /// Base healthy volumes per cluster and protocol (`[cluster][proto]`), for faults that
    /// add snapshots or clones to a live volume.
    live: Vec<[Vec<usize>; 2]>,
    truth: GroundTruth,
}

impl<'a> Gen<'a> {
    fn new(opts: &'a GenerateOptions) -> Self {
        Gen {
            opts,
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            now: opts.now,
            clusters: Vec::new(),
            parents: Vec::new(),
            vols: Vec::new(),
            helpers: Vec::new(),
            events: Vec::new(),
            extra_datasets: Vec::new(),
            smb_shares: Vec::new(),
            vids: BTreeSet::new(),
            live: Vec::new(),
            truth: GroundTruth::default(),
        }
    }

    /// Records a finding `cluster`'s ktd must report.
    fn expect(&mut self, cluster: usize, kind: FindingKind, subject: ResourceRef, note: &str) {
        self.truth.findings.push(ExpectedFinding {
            cluster: self.clusters[cluster].name.clone(),
            kind,
            subject,
            note: note.to_owned(),
        });
    }

    /// Records a trap.
    fn trap(&mut self, kind: TrapKind, resource: ResourceRef, note: &str) {
        self.truth.traps.push(Trap {
            kind,
            resource,
            note: note.to_owned(),
        });
    }

    /// Full dataset name of a volume.
    fn dataset_name(&self, v: usize) -> String {
        let vol = &self.vols[v];
        format!("{}/{}", self.parents[vol.parent].name, vol.vid)
    }

    /// The subject of a volume dataset (`dataset` or `zvol`).
    fn dataset_ref(&self, v: usize) -> ResourceRef {
        ResourceRef::truenas(ds_type(self.vols[v].proto), &self.dataset_name(v))
    }

    fn pv_ref(&self, v: usize) -> ResourceRef {
        ResourceRef::kube("PersistentVolume", &self.vols[v].pv_name)
    }

    fn pvc_ref(&self, v: usize) -> ResourceRef {
        let vol = &self.vols[v];
        ResourceRef::kube_ns("PersistentVolumeClaim", &vol.ns, &vol.pvc_name)
    }

    fn finish(mut self) -> World {
        self.truth.findings.sort();
        self.truth.unowned.sort();
        let nas = nas_objects::render(&mut self);
        let clusters = kube_objects::render(&mut self);
        World {
            seed: self.opts.seed,
            now: self.now,
            clusters,
            nas,
            truth: self.truth,
        }
    }
}

/// TrueNAS subject type of a volume dataset.
pub(crate) fn ds_type(proto: Proto) -> &'static str {
    match proto {
        Proto::Nfs => "dataset",
        Proto::Iscsi => "zvol",
    }
}
