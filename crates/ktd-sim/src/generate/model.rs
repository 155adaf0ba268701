//! The generator's intermediate model: volumes and snapshots as *states* (which pieces exist
//! on which side), before they are rendered into Kubernetes JSON and TrueNAS resources.
//!
//! Faults are planted by flipping these states, so one place ([`super::kube_objects`],
//! [`super::nas_objects`]) decides how every state looks on the wire.

use super::names::IdStyle;

/// Storage protocol of a democratic-csi deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    /// `freenas(-api)-nfs`: one filesystem dataset + one NFS share per volume.
    Nfs,
    /// `freenas(-api)-iscsi`: one zvol + target/extent/target-extent per volume.
    Iscsi,
}

impl Proto {
    /// Both protocols.
    pub const ALL: [Proto; 2] = [Proto::Nfs, Proto::Iscsi];

    /// `nfs` / `iscsi`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Nfs => "nfs",
            Proto::Iscsi => "iscsi",
        }
    }
}

/// One democratic-csi deployment's parent datasets (volumes + detached snapshots).
#[derive(Clone, Debug)]
pub struct Parent {
    /// `datasetParentName`, e.g. `tank/k8s/prod-a/nfs`.
    pub name: String,
    /// `detachedSnapshotsDatasetParentName`, e.g. `tank/k8s/prod-a/nfs-snapshots`.
    pub detached: String,
    /// Owning cluster (index into the plan); `None` for a retired cluster nobody observes.
    pub cluster: Option<usize>,
    /// Protocol of the deployment.
    pub proto: Proto,
}

/// A cluster as planned, before rendering.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    /// Cluster name.
    pub name: String,
    /// CSIDriver names per protocol (`org.democratic-csi.nfs`, ...).
    pub nfs_driver: String,
    /// CSIDriver name of the iSCSI deployment.
    pub iscsi_driver: String,
    /// `freenas-api-*` (true) or the SSH `freenas-*` drivers (false).
    pub api_drivers: bool,
    /// democratic-csi `instance_id`, when the operator set one.
    pub instance_id: Option<String>,
    /// Schedulable, existing nodes.
    pub nodes: Vec<String>,
    /// Index of the cordoned node, if any.
    pub unschedulable: Option<usize>,
    /// Application namespaces.
    pub namespaces: Vec<String>,
    /// Parent indexes per protocol.
    pub nfs_parent: usize,
    /// Parent index of the iSCSI deployment.
    pub iscsi_parent: usize,
    /// Cluster creation, Unix seconds.
    pub created: i64,
}

impl ClusterPlan {
    /// CSIDriver name for `proto`.
    pub fn driver(&self, proto: Proto) -> &str {
        match proto {
            Proto::Nfs => &self.nfs_driver,
            Proto::Iscsi => &self.iscsi_driver,
        }
    }

    /// democratic-csi driver (`provisioner_driver`) for `proto`.
    pub fn provisioner_driver(&self, proto: Proto) -> String {
        let api = if self.api_drivers { "api-" } else { "" };
        format!("freenas-{api}{}", proto.as_str())
    }

    /// Parent index for `proto`.
    pub fn parent(&self, proto: Proto) -> usize {
        match proto {
            Proto::Nfs => self.nfs_parent,
            Proto::Iscsi => self.iscsi_parent,
        }
    }
}

/// Kubernetes state of a PV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvState {
    /// Bound to its claim.
    Bound,
    /// Claim deleted; `since` = `lastPhaseTransitionTime`.
    Released {
        /// Unix seconds.
        since: i64,
    },
    /// No PV object.
    Absent,
}

/// Kubernetes state of a PVC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvcState {
    /// Bound.
    Bound,
    /// Unbound, provisioning not done.
    Pending,
    /// Its PV is gone.
    Lost,
    /// No PVC object.
    Absent,
}

/// A VolumeAttachment of the volume's PV.
#[derive(Clone, Debug)]
pub struct Attach {
    /// Object name (`csi-<sha256 hex>`).
    pub name: String,
    /// `spec.nodeName`.
    pub node: String,
    /// `status.attached`.
    pub attached: bool,
    /// `status.attachError` (time, message).
    pub error: Option<(i64, String)>,
}

/// A volume, on both sides.
#[derive(Clone, Debug)]
pub struct Volume {
    /// Parent index.
    pub parent: usize,
    /// Cluster index (`None`: a retired cluster, no Kubernetes objects).
    pub cluster: Option<usize>,
    /// Protocol.
    pub proto: Proto,
    /// How the name/id were derived.
    pub style: IdStyle,
    /// PV name = CSI name = `csi_volume_name`.
    pub pv_name: String,
    /// PV uid.
    pub pv_uid: String,
    /// Volume id = `volumeHandle` = dataset leaf.
    pub vid: String,
    /// PVC namespace.
    pub ns: String,
    /// PVC name.
    pub pvc_name: String,
    /// PVC uid (of the PVC object that exists now).
    pub pvc_uid: String,
    /// StorageClass name.
    pub class: String,
    /// `persistentVolumeReclaimPolicy: Retain`.
    pub retain: bool,
    /// Requested/provisioned bytes.
    pub capacity: u64,
    /// Bytes written (`usedbydataset`).
    pub used: u64,
    /// Creation (PVC, PV and dataset within seconds of each other), Unix seconds.
    pub created: i64,
    /// PV state.
    pub pv: PvState,
    /// PVC state.
    pub pvc: PvcState,
    /// The dataset/zvol exists.
    pub dataset: bool,
    /// `provision_success=true` was written.
    pub provisioned: bool,
    /// The share (NFS) or target+extent+target-extent (iSCSI) exists.
    pub share: bool,
    /// The share context property was written (normally with `share`).
    pub share_context: bool,
    /// iSCSI: only the target exists (provisioning failed before the extent).
    pub target_only: bool,
    /// iSCSI: the extent's `disk`, when it is not this volume's zvol.
    pub extent_disk: Option<String>,
    /// `origin` snapshot (full name) for clones.
    pub origin: Option<String>,
    /// `(csi_volume_content_source_type, _id)` and the PVC `dataSource` (kind, name).
    pub content_source: Option<(String, String, String, String)>,
    /// VolumeAttachment, if any.
    pub attach: Option<Attach>,
    /// CSI snapshots (VolumeSnapshots) of this volume.
    pub snaps: Vec<VolSnap>,
    /// TrueNAS periodic snapshot times.
    pub autos: Vec<i64>,
    /// Used as a clone source or trap: faults must leave it alone.
    pub pinned: bool,
}

/// One CSI snapshot of a volume, on both sides.
#[derive(Clone, Debug)]
pub struct VolSnap {
    /// VolumeSnapshot uid U (`snapshot-U`, `snapcontent-U`).
    pub uid: String,
    /// VolumeSnapshot name.
    pub name: String,
    /// Creation, Unix seconds.
    pub created: i64,
    /// Detached (a dataset under the detached parent) instead of a ZFS snapshot.
    pub detached: bool,
    /// VolumeSnapshotClass name.
    pub class: String,
    /// The VolumeSnapshot exists.
    pub vs: bool,
    /// The VolumeSnapshotContent exists.
    pub vsc: bool,
    /// The ZFS snapshot / detached dataset exists.
    pub zfs: bool,
    /// VSC `deletionPolicy: Retain`.
    pub retain: bool,
    /// `readyToUse` (VS and VSC).
    pub ready: bool,
    /// VS/VSC `status.error.message`.
    pub error: Option<String>,
    /// VSC is being deleted (deletionTimestamp set, finalizer kept).
    pub vsc_deleting: bool,
    /// ZFS `defer_destroy=on`.
    pub defer_destroy: bool,
    /// Bytes unique to the snapshot.
    pub used: u64,
    /// Clone source: faults must leave it alone.
    pub pinned: bool,
}

impl VolSnap {
    /// CSI snapshot name `snapshot-<uid>`.
    pub fn csi_name(&self) -> String {
        format!("snapshot-{}", self.uid)
    }
}

/// A snapshot without democratic-csi properties (`volume-source-for-*` helpers).
#[derive(Clone, Debug)]
pub struct Helper {
    /// Full dataset name.
    pub dataset: String,
    /// Snapshot name.
    pub name: String,
    /// Creation, Unix seconds.
    pub created: i64,
    /// `defer_destroy=on`.
    pub defer_destroy: bool,
}

/// A Kubernetes Event to render.
#[derive(Clone, Debug)]
pub struct EventSpec {
    /// Cluster index.
    pub cluster: usize,
    /// `(kind, namespace, name, uid)` of the involved object.
    pub object: (String, Option<String>, String, String),
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `Warning` (true) or `Normal`.
    pub warning: bool,
    /// Reporting component.
    pub component: String,
    /// First time, Unix seconds.
    pub first: i64,
    /// Last time.
    pub last: i64,
    /// Count.
    pub count: u32,
}
