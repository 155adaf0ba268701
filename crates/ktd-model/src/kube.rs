//! Normalized Kubernetes resources: only what views need, no managedFields, no status
//! noise. Built from raw API JSON by [`crate::normalize::kube`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

macro_rules! kube_kinds {
    ($($(#[$doc:meta])* $variant:ident => ($kind:literal, $group:literal, $version:literal, $plural:literal, $namespaced:literal),)*) => {
        /// The Kubernetes kinds ktd watches.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema)]
        pub enum KubeKind {
            $($(#[$doc])* $variant,)*
        }

        impl KubeKind {
            /// Every watched kind.
            pub const ALL: &'static [KubeKind] = &[$(KubeKind::$variant,)*];

            /// The `kind` string.
            pub const fn as_str(self) -> &'static str {
                match self { $(KubeKind::$variant => $kind,)* }
            }
            /// API group (`""` for core).
            pub const fn group(self) -> &'static str {
                match self { $(KubeKind::$variant => $group,)* }
            }
            /// API version within the group.
            pub const fn version(self) -> &'static str {
                match self { $(KubeKind::$variant => $version,)* }
            }
            /// Resource plural used in URLs and RBAC.
            pub const fn plural(self) -> &'static str {
                match self { $(KubeKind::$variant => $plural,)* }
            }
            /// Whether objects of this kind live in a namespace.
            pub const fn namespaced(self) -> bool {
                match self { $(KubeKind::$variant => $namespaced,)* }
            }
            /// `apiVersion` as written in objects (`v1`, `storage.k8s.io/v1`).
            pub fn api_version(self) -> String {
                if self.group().is_empty() {
                    self.version().to_owned()
                } else {
                    format!("{}/{}", self.group(), self.version())
                }
            }
            /// The kind for a `kind` string (case-sensitive, as in API objects).
            pub fn from_kind(kind: &str) -> Option<KubeKind> {
                match kind { $($kind => Some(KubeKind::$variant),)* _ => None }
            }
        }
    };
}

kube_kinds! {
    /// `v1` PersistentVolume.
    PersistentVolume => ("PersistentVolume", "", "v1", "persistentvolumes", false),
    /// `v1` PersistentVolumeClaim.
    PersistentVolumeClaim => ("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", true),
    /// `storage.k8s.io/v1` StorageClass.
    StorageClass => ("StorageClass", "storage.k8s.io", "v1", "storageclasses", false),
    /// `storage.k8s.io/v1` VolumeAttachment.
    VolumeAttachment => ("VolumeAttachment", "storage.k8s.io", "v1", "volumeattachments", false),
    /// `storage.k8s.io/v1` CSIDriver.
    CsiDriver => ("CSIDriver", "storage.k8s.io", "v1", "csidrivers", false),
    /// `storage.k8s.io/v1` CSINode.
    CsiNode => ("CSINode", "storage.k8s.io", "v1", "csinodes", false),
    /// `v1` Node.
    Node => ("Node", "", "v1", "nodes", false),
    /// `v1` Pod (CSI driver pods only).
    Pod => ("Pod", "", "v1", "pods", true),
    /// `v1` Event (storage-related only).
    Event => ("Event", "", "v1", "events", true),
    /// `snapshot.storage.k8s.io/v1` VolumeSnapshot.
    VolumeSnapshot => ("VolumeSnapshot", "snapshot.storage.k8s.io", "v1", "volumesnapshots", true),
    /// `snapshot.storage.k8s.io/v1` VolumeSnapshotContent.
    VolumeSnapshotContent => ("VolumeSnapshotContent", "snapshot.storage.k8s.io", "v1", "volumesnapshotcontents", false),
    /// `snapshot.storage.k8s.io/v1` VolumeSnapshotClass.
    VolumeSnapshotClass => ("VolumeSnapshotClass", "snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", false),
}

impl fmt::Display for KubeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KubeKind {
    type Err = String;
    /// Accepts the kind (`PersistentVolume`), its plural (`persistentvolumes`) or
    /// the usual short names (`pv`, `pvc`, `sc`, `va`, `vs`, `vsc`, `vsclass`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(k) = KubeKind::from_kind(s) {
            return Ok(k);
        }
        let lower = s.to_ascii_lowercase();
        let short = match lower.as_str() {
            "pv" => Some(KubeKind::PersistentVolume),
            "pvc" => Some(KubeKind::PersistentVolumeClaim),
            "sc" => Some(KubeKind::StorageClass),
            "va" => Some(KubeKind::VolumeAttachment),
            "vs" => Some(KubeKind::VolumeSnapshot),
            "vsc" => Some(KubeKind::VolumeSnapshotContent),
            "vsclass" | "vsclasses" => Some(KubeKind::VolumeSnapshotClass),
            _ => None,
        };
        short
            .or_else(|| {
                KubeKind::ALL
                    .iter()
                    .copied()
                    .find(|k| k.plural() == lower || k.as_str().eq_ignore_ascii_case(&lower))
            })
            .ok_or_else(|| format!("unknown Kubernetes kind `{s}`"))
    }
}

/// Namespace (for namespaced kinds) and name: the identity of an object within its kind.
#[derive(
    Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
pub struct ObjectKey {
    /// Namespace of namespaced objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// A cluster-scoped key.
    pub fn cluster(name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: None,
            name: name.into(),
        }
    }
    /// A namespaced key.
    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The parts of `metadata` ktd keeps. `managedFields` and
/// `kubectl.kubernetes.io/last-applied-configuration` are dropped.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Meta {
    /// Object name.
    pub name: String,
    /// Namespace of namespaced objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.uid`.
    #[serde(default)]
    pub uid: String,
    /// `metadata.resourceVersion` (opaque).
    #[serde(default)]
    pub resource_version: String,
    /// `metadata.creationTimestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    /// `metadata.deletionTimestamp`: deletion requested, finalizers pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleting: Option<Timestamp>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (minus last-applied-configuration).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Finalizers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// Owner references as `Kind/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
}

impl Meta {
    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// A reference to another object (claimRef, volumeSnapshotRef, involvedObject).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRef {
    /// Kind, when the reference carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// UID, when the reference carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// A persistent volume's CSI source.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct CsiVolumeSource {
    /// CSIDriver name (`spec.csi.driver`).
    pub driver: String,
    /// The CSI volume id; for democratic-csi the dataset leaf name.
    pub volume_handle: String,
    /// `fsType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// `volumeAttributes` (democratic-csi: `provisioner_driver`, `share`, `iqn`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_attributes: BTreeMap<String, String>,
}

/// `status.phase` of a PersistentVolume.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
pub enum PvPhase {
    /// Being provisioned.
    Pending,
    /// Free, not yet bound.
    Available,
    /// Bound to a claim.
    Bound,
    /// The claim was deleted; the volume is not yet reclaimed.
    Released,
    /// Automatic reclamation failed.
    Failed,
    /// A phase this version does not know.
    #[serde(other)]
    Unknown,
}

/// A PersistentVolume.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PersistentVolume {
    /// Metadata.
    pub meta: Meta,
    /// `spec.capacity.storage` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
    /// `spec.accessModes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    /// `spec.persistentVolumeReclaimPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<String>,
    /// `spec.storageClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// `spec.volumeMode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    /// `spec.csi`, for CSI volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi: Option<CsiVolumeSource>,
    /// `spec.claimRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ObjectRef>,
    /// `status.phase`.
    pub phase: PvPhase,
    /// `status.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `status.lastPhaseTransitionTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<Timestamp>,
}

/// `status.phase` of a PersistentVolumeClaim.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
pub enum PvcPhase {
    /// Not yet bound.
    Pending,
    /// Bound to a volume.
    Bound,
    /// The bound volume no longer exists.
    Lost,
    /// A phase this version does not know.
    #[serde(other)]
    Unknown,
}

/// A PersistentVolumeClaim.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PersistentVolumeClaim {
    /// Metadata.
    pub meta: Meta,
    /// `spec.storageClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// `spec.volumeName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
    /// `spec.resources.requests.storage` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_bytes: Option<u64>,
    /// `status.capacity.storage` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
    /// `spec.accessModes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    /// `spec.dataSource` (`Kind/name`), for clones and restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<ObjectRef>,
    /// `status.phase`.
    pub phase: PvcPhase,
}

/// A StorageClass.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct StorageClass {
    /// Metadata.
    pub meta: Meta,
    /// `provisioner` (CSIDriver name).
    pub provisioner: String,
    /// `parameters`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// `reclaimPolicy` (default `Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<String>,
    /// `volumeBindingMode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_binding_mode: Option<String>,
    /// `allowVolumeExpansion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_volume_expansion: Option<bool>,
    /// `mountOptions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_options: Vec<String>,
    /// Annotated `storageclass.kubernetes.io/is-default-class: "true"`.
    #[serde(default)]
    pub is_default: bool,
}

/// An attach or detach error.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct VolumeError {
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// A VolumeAttachment.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct VolumeAttachment {
    /// Metadata.
    pub meta: Meta,
    /// `spec.attacher` (CSIDriver name).
    pub attacher: String,
    /// `spec.nodeName`.
    pub node_name: String,
    /// `spec.source.persistentVolumeName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pv_name: Option<String>,
    /// `status.attached`.
    #[serde(default)]
    pub attached: bool,
    /// `status.attachError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_error: Option<VolumeError>,
    /// `status.detachError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach_error: Option<VolumeError>,
}

/// A CSIDriver.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CsiDriver {
    /// Metadata (the name is the driver name).
    pub meta: Meta,
    /// `spec.attachRequired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_required: Option<bool>,
    /// `spec.podInfoOnMount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_info_on_mount: Option<bool>,
    /// `spec.fsGroupPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group_policy: Option<String>,
    /// `spec.volumeLifecycleModes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_lifecycle_modes: Vec<String>,
}

/// One driver registered on a node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CsiNodeDriver {
    /// Driver name.
    pub name: String,
    /// The node's id as the driver knows it.
    #[serde(default)]
    pub node_id: String,
    /// Topology keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_keys: Vec<String>,
    /// `allocatable.count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable: Option<u64>,
}

/// A CSINode.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CsiNode {
    /// Metadata (the name is the node name).
    pub meta: Meta,
    /// Registered drivers.
    #[serde(default)]
    pub drivers: Vec<CsiNodeDriver>,
}

/// A Node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    /// Metadata.
    pub meta: Meta,
    /// `spec.unschedulable`.
    #[serde(default)]
    pub unschedulable: bool,
    /// The `Ready` condition (None when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Taints as `key=value:Effect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<String>,
    /// `status.nodeInfo.kubeletVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_version: Option<String>,
}

/// A container's state inside a Pod.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ContainerState {
    /// Container name.
    pub name: String,
    /// Image.
    #[serde(default)]
    pub image: String,
    /// Ready.
    #[serde(default)]
    pub ready: bool,
    /// Restart count.
    #[serde(default)]
    pub restart_count: u32,
    /// Waiting reason (`CrashLoopBackOff`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
}

/// A Pod (CSI driver controller and node pods).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Pod {
    /// Metadata.
    pub meta: Meta,
    /// `spec.nodeName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `status.phase`.
    #[serde(default)]
    pub phase: String,
    /// The `Ready` condition.
    #[serde(default)]
    pub ready: bool,
    /// Container states.
    #[serde(default)]
    pub containers: Vec<ContainerState>,
}

/// A core Event about storage.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct KubeEvent {
    /// Metadata.
    pub meta: Meta,
    /// `involvedObject`.
    pub involved: ObjectRef,
    /// `reason` (`ProvisioningFailed`, `FailedAttachVolume`, ...).
    #[serde(default)]
    pub reason: String,
    /// `message`.
    #[serde(default)]
    pub message: String,
    /// `type`: `Normal` or `Warning`.
    #[serde(default)]
    pub event_type: String,
    /// `count`.
    #[serde(default)]
    pub count: u32,
    /// First occurrence (`firstTimestamp` or `eventTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Timestamp>,
    /// Last occurrence (`lastTimestamp`, `series.lastObservedTime` or `eventTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Timestamp>,
    /// `source.component` or `reportingComponent`.
    #[serde(default)]
    pub component: String,
}

/// A snapshot error.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotError {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// Message.
    #[serde(default)]
    pub message: String,
}

/// A VolumeSnapshot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct VolumeSnapshot {
    /// Metadata.
    pub meta: Meta,
    /// `spec.source.persistentVolumeClaimName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_pvc: Option<String>,
    /// `spec.source.volumeSnapshotContentName` (pre-provisioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_content: Option<String>,
    /// `spec.volumeSnapshotClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// `status.boundVolumeSnapshotContentName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_content: Option<String>,
    /// `status.creationTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Timestamp>,
    /// `status.readyToUse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// `status.restoreSize` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<u64>,
    /// `status.error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SnapshotError>,
}

/// A VolumeSnapshotContent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct VolumeSnapshotContent {
    /// Metadata.
    pub meta: Meta,
    /// `spec.deletionPolicy` (`Delete` | `Retain`).
    #[serde(default)]
    pub deletion_policy: String,
    /// `spec.driver`.
    #[serde(default)]
    pub driver: String,
    /// `spec.volumeSnapshotClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// `spec.source.volumeHandle` (dynamic snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume_handle: Option<String>,
    /// `spec.source.snapshotHandle` (pre-provisioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_snapshot_handle: Option<String>,
    /// `spec.volumeSnapshotRef`.
    pub snapshot_ref: ObjectRef,
    /// `status.snapshotHandle`: `<vol>@<snap>` or detached `<vol>/<snap>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_handle: Option<String>,
    /// `status.creationTime` (ns in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Timestamp>,
    /// `status.readyToUse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// `status.restoreSize` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<u64>,
    /// `status.error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SnapshotError>,
}

impl VolumeSnapshotContent {
    /// The handle that names the backing snapshot: status first, then a pre-provisioned
    /// `spec.source.snapshotHandle`.
    pub fn handle(&self) -> Option<&str> {
        self.snapshot_handle
            .as_deref()
            .or(self.source_snapshot_handle.as_deref())
    }
}

/// A VolumeSnapshotClass.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct VolumeSnapshotClass {
    /// Metadata.
    pub meta: Meta,
    /// `driver`.
    pub driver: String,
    /// `parameters` (democratic-csi: `detachedSnapshots`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// `deletionPolicy`.
    #[serde(default)]
    pub deletion_policy: String,
    /// Annotated `snapshot.storage.kubernetes.io/is-default-class: "true"`.
    #[serde(default)]
    pub is_default: bool,
}

/// Any normalized Kubernetes object.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[allow(clippy::large_enum_variant)]
pub enum KubeObject {
    /// A PersistentVolume.
    PersistentVolume(PersistentVolume),
    /// A PersistentVolumeClaim.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// A StorageClass.
    StorageClass(StorageClass),
    /// A VolumeAttachment.
    VolumeAttachment(VolumeAttachment),
    /// A CSIDriver.
    CsiDriver(CsiDriver),
    /// A CSINode.
    CsiNode(CsiNode),
    /// A Node.
    Node(Node),
    /// A Pod.
    Pod(Pod),
    /// An Event.
    Event(KubeEvent),
    /// A VolumeSnapshot.
    VolumeSnapshot(VolumeSnapshot),
    /// A VolumeSnapshotContent.
    VolumeSnapshotContent(VolumeSnapshotContent),
    /// A VolumeSnapshotClass.
    VolumeSnapshotClass(VolumeSnapshotClass),
}

impl KubeObject {
    /// The object's kind.
    pub fn kind(&self) -> KubeKind {
        match self {
            KubeObject::PersistentVolume(_) => KubeKind::PersistentVolume,
            KubeObject::PersistentVolumeClaim(_) => KubeKind::PersistentVolumeClaim,
            KubeObject::StorageClass(_) => KubeKind::StorageClass,
            KubeObject::VolumeAttachment(_) => KubeKind::VolumeAttachment,
            KubeObject::CsiDriver(_) => KubeKind::CsiDriver,
            KubeObject::CsiNode(_) => KubeKind::CsiNode,
            KubeObject::Node(_) => KubeKind::Node,
            KubeObject::Pod(_) => KubeKind::Pod,
            KubeObject::Event(_) => KubeKind::Event,
            KubeObject::VolumeSnapshot(_) => KubeKind::VolumeSnapshot,
            KubeObject::VolumeSnapshotContent(_) => KubeKind::VolumeSnapshotContent,
            KubeObject::VolumeSnapshotClass(_) => KubeKind::VolumeSnapshotClass,
        }
    }

    /// The object's metadata.
    pub fn meta(&self) -> &Meta {
        match self {
            KubeObject::PersistentVolume(o) => &o.meta,
            KubeObject::PersistentVolumeClaim(o) => &o.meta,
            KubeObject::StorageClass(o) => &o.meta,
            KubeObject::VolumeAttachment(o) => &o.meta,
            KubeObject::CsiDriver(o) => &o.meta,
            KubeObject::CsiNode(o) => &o.meta,
            KubeObject::Node(o) => &o.meta,
            KubeObject::Pod(o) => &o.meta,
            KubeObject::Event(o) => &o.meta,
            KubeObject::VolumeSnapshot(o) => &o.meta,
            KubeObject::VolumeSnapshotContent(o) => &o.meta,
            KubeObject::VolumeSnapshotClass(o) => &o.meta,
        }
    }

    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        self.meta().key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_know_their_urls_and_names() {
        assert_eq!(KubeKind::PersistentVolume.api_version(), "v1");
        assert_eq!(
            KubeKind::VolumeSnapshot.api_version(),
            "snapshot.storage.k8s.io/v1"
        );
        assert!(KubeKind::VolumeSnapshot.namespaced());
        assert!(!KubeKind::VolumeSnapshotContent.namespaced());
        for k in KubeKind::ALL {
            assert_eq!(KubeKind::from_kind(k.as_str()), Some(*k));
            assert_eq!(k.plural().parse::<KubeKind>().unwrap(), *k);
        }
        assert_eq!(
            "pvc".parse::<KubeKind>().unwrap(),
            KubeKind::PersistentVolumeClaim
        );
        assert_eq!(
            "CSIDriver".parse::<KubeKind>().unwrap(),
            KubeKind::CsiDriver
        );
        assert!("deployment".parse::<KubeKind>().is_err());
    }

    #[test]
    fn unknown_phase_is_tolerated() {
        let p: PvPhase = serde_json::from_str("\"Terminating\"").unwrap();
        assert_eq!(p, PvPhase::Unknown);
    }
}
