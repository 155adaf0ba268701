//! The simulated world: what exists on each Kubernetes cluster and on the TrueNAS box,
//! plus the ground truth (the findings a correct ktd must report, and nothing else).
//!
//! A world is plain data (serde), written to and read from `world.json` by
//! `ktd sim generate` / `ktd sim serve --world`. The servers in [`crate::kube`] and
//! [`crate::truenas`] render it in the wire shapes of the real systems; they never
//! invent state of their own beyond what the real system would add (resource versions,
//! uids, inherited properties, `available` bytes).
//!
//! Conventions:
//! - Kubernetes objects are kept as the JSON the real apiserver would return (with
//!   `apiVersion` and `kind`), so the fake apiserver and bundles need no translation.
//! - TrueNAS resources are typed; only **local** user properties are stored. Inherited
//!   values (children inherit user properties; snapshots inherit from their dataset) are
//!   computed when rendering, with `source: INHERITED`, exactly as ZFS reports them.
//! - Times are Unix seconds (what ZFS stores), Kubernetes times are RFC 3339 inside the JSON.

use std::collections::BTreeMap;

use ktd_model::{FindingKind, ResourceRef};
use serde::{Deserialize, Serialize};

/// A whole simulated environment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Seed the generator used (0 for hand-made worlds).
    #[serde(default)]
    pub seed: u64,
    /// "Now" for this world, Unix seconds: ages in the ground truth are relative to it.
    pub now: i64,
    /// The Kubernetes clusters; several may share the one TrueNAS.
    pub clusters: Vec<Cluster>,
    /// The TrueNAS system.
    pub nas: Nas,
    /// What a correct ktd must report.
    #[serde(default)]
    pub truth: GroundTruth,
}

/// One Kubernetes cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Cluster name (also the kubeconfig context name `ktd sim serve` prints).
    pub name: String,
    /// Objects as the apiserver returns them (`apiVersion`, `kind`, `metadata`, ...).
    /// Kinds: PersistentVolume, PersistentVolumeClaim, StorageClass, VolumeAttachment,
    /// CSIDriver, CSINode, Node, Pod, Event, VolumeSnapshot, VolumeSnapshotContent,
    /// VolumeSnapshotClass (and Namespace).
    pub objects: Vec<serde_json::Value>,
    /// Whether the snapshot.storage.k8s.io CRDs are installed (absent → 404 on their paths).
    #[serde(default = "yes")]
    pub snapshot_crds: bool,
    /// RBAC of the identity ktd uses: denied `(verb, group, resource)` triples, `*` = any.
    /// SelfSubjectAccessReview and list/watch honour it (403 Forbidden).
    #[serde(default)]
    pub denied: Vec<Denied>,
}

fn yes() -> bool {
    true
}

/// A permission the cluster refuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denied {
    /// Verb (`list`, `watch`, `get`, `create`, `delete`, or `*`).
    pub verb: String,
    /// API group (`""` for core, `storage.k8s.io`, `snapshot.storage.k8s.io`, or `*`).
    pub group: String,
    /// Resource plural (`persistentvolumes`, or `*`).
    pub resource: String,
}

/// TrueNAS release whose API shapes the simulator reproduces.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Personality {
    /// 22.12 Bluefin: REST v2.0 only (plus legacy DDP websocket), `zfs.snapshot.query`,
    /// `TrueNAS-SCALE-` version string, pool `encrypt` fields.
    #[serde(rename = "22.12")]
    V22_12,
    /// 24.10 Electric Eel: REST v2.0, `zfs.snapshot.query`, `TrueNAS-SCALE-` version string.
    #[serde(rename = "24.10")]
    V24_10,
    /// 25.04 Fangtooth: REST + JSON-RPC 2.0 (`/api/current`), `auth.login_ex`, user-linked
    /// API keys revoked on plain-HTTP non-loopback login, version string without `SCALE`.
    #[serde(rename = "25.04")]
    #[default]
    V25_04,
    /// 25.10 Goldeye: `pool.snapshot.query` replaces `zfs.snapshot.query` (REST route gone),
    /// SMB share schema overhaul, `legacy_jobs` option.
    #[serde(rename = "25.10")]
    V25_10,
}

impl Personality {
    /// Every personality, oldest first.
    pub const ALL: [Personality; 4] = [
        Personality::V22_12,
        Personality::V24_10,
        Personality::V25_04,
        Personality::V25_10,
    ];

    /// `system.version` as this release prints it.
    pub fn version_string(self) -> &'static str {
        match self {
            Personality::V22_12 => "TrueNAS-SCALE-22.12.4.2",
            Personality::V24_10 => "TrueNAS-SCALE-24.10.2.4",
            Personality::V25_04 => "TrueNAS-25.04.2.6",
            Personality::V25_10 => "TrueNAS-25.10.1",
        }
    }

    /// `system.version_short`.
    pub fn version_short(self) -> &'static str {
        self.version_string()
            .rsplit('-')
            .next()
            .expect("version strings contain a dash")
    }

    /// Whether JSON-RPC 2.0 over WebSocket (`/api/current`, `/api/versions`) exists.
    pub fn has_jsonrpc(self) -> bool {
        self >= Personality::V25_04
    }

    /// The public snapshot query method of this release.
    pub fn snapshot_query_method(self) -> &'static str {
        if self >= Personality::V25_10 {
            "pool.snapshot.query"
        } else {
            "zfs.snapshot.query"
        }
    }
}

impl std::str::FromStr for Personality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "22.12" => Ok(Personality::V22_12),
            "24.10" => Ok(Personality::V24_10),
            "25.04" => Ok(Personality::V25_04),
            "25.10" => Ok(Personality::V25_10),
            other => Err(format!(
                "unknown TrueNAS version `{other}` (the simulator knows 22.12, 24.10, 25.04, 25.10)"
            )),
        }
    }
}

/// The TrueNAS system.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nas {
    /// Which release's API to reproduce.
    pub personality: Personality,
    /// `system.info.hostname`.
    pub hostname: String,
    /// API keys accepted by REST bearer auth and the WebSocket logins.
    pub api_keys: Vec<ApiKey>,
    /// Pools (each has a root dataset of the same name in `datasets`).
    pub pools: Vec<Pool>,
    /// Every dataset and zvol, parents before children.
    pub datasets: Vec<Dataset>,
    /// Every ZFS snapshot.
    pub snapshots: Vec<Snapshot>,
    /// `sharing.nfs` entries.
    #[serde(default)]
    pub nfs_shares: Vec<NfsShare>,
    /// `sharing.smb` entries.
    #[serde(default)]
    pub smb_shares: Vec<SmbShare>,
    /// `iscsi.target` entries.
    #[serde(default)]
    pub iscsi_targets: Vec<IscsiTarget>,
    /// `iscsi.extent` entries.
    #[serde(default)]
    pub iscsi_extents: Vec<IscsiExtent>,
    /// `iscsi.targetextent` entries.
    #[serde(default)]
    pub iscsi_targetextents: Vec<IscsiTargetExtent>,
    /// `iscsi.global.config` `basename`.
    #[serde(default = "default_basename")]
    pub iscsi_basename: String,
    /// `service.query` entries (`nfs`, `cifs`, `iscsitarget`, ...).
    #[serde(default)]
    pub services: Vec<Service>,
    /// Boot time, Unix seconds.
    #[serde(default)]
    pub boottime: i64,
}

fn default_basename() -> String {
    "iqn.2005-10.org.freenas.ctl".to_owned()
}

/// An API key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Numeric id (the part before the dash of the key string).
    pub id: u32,
    /// Display name.
    pub name: String,
    /// The full key string, `<id>-<64 chars>`.
    pub key: String,
    /// Owner (25.04+ user-linked keys).
    #[serde(default = "default_user")]
    pub username: String,
    /// Revoked keys are refused (25.04+ revokes keys used over plain HTTP from non-loopback).
    #[serde(default)]
    pub revoked: bool,
    /// Read-only keys are refused write methods (403 / EACCES).
    #[serde(default)]
    pub readonly: bool,
}

fn default_user() -> String {
    "truenas_admin".to_owned()
}

/// A ZFS pool.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// DB id.
    pub id: u32,
    /// Pool name.
    pub name: String,
    /// `ONLINE`, `DEGRADED`, `FAULTED`, ...
    pub status: String,
    /// Raw size in bytes (incl. parity).
    pub size: u64,
    /// Allocated bytes.
    pub allocated: u64,
    /// Last scrub end, Unix seconds (None = never scrubbed).
    #[serde(default)]
    pub last_scrub: Option<i64>,
}

/// `FILESYSTEM` or `VOLUME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DatasetType {
    /// A filesystem dataset.
    Filesystem,
    /// A zvol.
    Volume,
}

/// A dataset or zvol.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Full name, `pool/a/b`.
    pub name: String,
    /// Filesystem or zvol.
    #[serde(rename = "type")]
    pub kind: DatasetType,
    /// Bytes used by the dataset itself (`usedbydataset`).
    #[serde(default)]
    pub used_by_dataset: u64,
    /// Bytes used by its snapshots (`usedbysnapshots`).
    #[serde(default)]
    pub used_by_snapshots: u64,
    /// `volsize` (zvols only).
    #[serde(default)]
    pub volsize: Option<u64>,
    /// `volblocksize` (zvols only).
    #[serde(default)]
    pub volblocksize: Option<u64>,
    /// `refquota` (None = none).
    #[serde(default)]
    pub refquota: Option<u64>,
    /// `refreservation` (None = none).
    #[serde(default)]
    pub refreservation: Option<u64>,
    /// `origin` snapshot (`pool/ds@snap`) for clones.
    #[serde(default)]
    pub origin: Option<String>,
    /// Creation, Unix seconds.
    pub creation: i64,
    /// Native encryption on.
    #[serde(default)]
    pub encrypted: bool,
    /// Local user properties (`democratic-csi:managed_resource` → `true`, ...).
    #[serde(default)]
    pub user_properties: BTreeMap<String, String>,
    /// User properties received by `zfs recv` (source `RECEIVED`).
    #[serde(default)]
    pub received_properties: BTreeMap<String, String>,
}

/// A ZFS snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Dataset the snapshot belongs to.
    pub dataset: String,
    /// Name after the `@`.
    pub name: String,
    /// Creation transaction group.
    pub createtxg: u64,
    /// Creation, Unix seconds.
    pub creation: i64,
    /// `used` bytes (unique to this snapshot).
    #[serde(default)]
    pub used: u64,
    /// `referenced` bytes.
    #[serde(default)]
    pub referenced: u64,
    /// Local user properties (democratic-csi sets them on CSI snapshots only).
    #[serde(default)]
    pub user_properties: BTreeMap<String, String>,
    /// `zfs destroy -d` was issued while clones exist (`defer_destroy=on`).
    #[serde(default)]
    pub defer_destroy: bool,
    /// User holds count.
    #[serde(default)]
    pub holds: u32,
}

impl Snapshot {
    /// `dataset@name`.
    pub fn full_name(&self) -> String {
        format!("{}@{}", self.dataset, self.name)
    }
}

/// An NFS share.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NfsShare {
    /// DB id.
    pub id: u32,
    /// Exported path (`/mnt/<dataset>`).
    pub path: String,
    /// Comment (democratic-csi default: `democratic-csi (<csi name>): <dataset>`).
    #[serde(default)]
    pub comment: String,
    /// Allowed networks.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Allowed hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// An SMB share.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmbShare {
    /// DB id.
    pub id: u32,
    /// Share name.
    pub name: String,
    /// Shared path.
    pub path: String,
    /// Comment.
    #[serde(default)]
    pub comment: String,
    /// Enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// An iSCSI target.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IscsiTarget {
    /// DB id.
    pub id: u32,
    /// Target name (IQN suffix).
    pub name: String,
    /// Portal group id.
    #[serde(default = "one")]
    pub portal: u32,
    /// Initiator group id.
    #[serde(default = "one")]
    pub initiator: u32,
}

fn one() -> u32 {
    1
}

/// An iSCSI extent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IscsiExtent {
    /// DB id.
    pub id: u32,
    /// Extent name.
    pub name: String,
    /// `zvol/<pool>/<zvol>` for DISK extents.
    pub disk: String,
    /// Comment.
    #[serde(default)]
    pub comment: String,
    /// Enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// An iSCSI target-to-extent association.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IscsiTargetExtent {
    /// DB id.
    pub id: u32,
    /// Target id.
    pub target: u32,
    /// Extent id.
    pub extent: u32,
    /// LUN id.
    #[serde(default)]
    pub lunid: u32,
}

/// A TrueNAS service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Service name (`nfs`, `cifs`, `iscsitarget`, `ssh`).
    pub service: String,
    /// Started at boot.
    pub enable: bool,
    /// `RUNNING` or `STOPPED`.
    pub state: String,
}

/// What a correct ktd reports for this world, per observing cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruth {
    /// Findings that must come out (and nothing else).
    pub findings: Vec<ExpectedFinding>,
    /// Resources planted to tempt a careless detector: none may appear as a finding subject.
    pub traps: Vec<Trap>,
    /// Managed datasets under parents no observed cluster owns (reported as unowned).
    #[serde(default)]
    pub unowned: Vec<String>,
}

/// A finding that must be reported.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFinding {
    /// The cluster whose ktd must report it (ktd observes one cluster and the NAS).
    pub cluster: String,
    /// Catalogue kind.
    pub kind: FindingKind,
    /// The finding's subject.
    pub subject: ResourceRef,
    /// Why the generator planted it (for humans reading a failed accuracy run).
    #[serde(default)]
    pub note: String,
}

/// A false-positive trap (reference/democratic-csi.md): must never be a finding subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trap {
    /// Which trap.
    pub kind: TrapKind,
    /// The tempting resource.
    pub resource: ResourceRef,
    /// Human explanation.
    #[serde(default)]
    pub note: String,
}

/// The kinds of false-positive traps the generator plants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapKind {
    /// A periodic-task snapshot of a CSI volume: inherits `managed_resource=true`.
    InheritedManagedSnapshot,
    /// A dataset being provisioned right now (no `provision_success` yet, younger than grace).
    InFlightProvisioning,
    /// A dataset without democratic-csi properties under (or beside) the parent.
    UnmanagedDataset,
    /// A live clone's `volume-source-for-volume-*` origin snapshot.
    CloneOriginHelper,
    /// A PV whose volume id is hashed or truncated (volumeHandle != PV name).
    HashedVolumeId,
    /// A managed dataset under a parent that belongs to another cluster.
    OtherClusterParent,
    /// A PVC that is Pending but younger than the threshold.
    YoungPendingPvc,
    /// A VolumeSnapshot not yet ready but younger than the threshold.
    YoungSnapshotNotReady,
    /// A re-bound PV whose name no longer matches `pvc-<claim uid>`.
    ReboundPv,
}
