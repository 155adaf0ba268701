//! Normalized TrueNAS resources: the properties views need, and user properties *with
//! their source* (only a LOCAL `democratic-csi:managed_resource=true` makes a resource
//! democratic-csi's). Built from raw API JSON of any supported release by
//! [`crate::normalize::truenas`].

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Where a ZFS property's value comes from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PropertySource {
    /// Set on this dataset/snapshot itself.
    Local,
    /// Inherited from an ancestor (or, for snapshots, from their dataset).
    Inherited,
    /// Set by `zfs receive`.
    Received,
    /// The default value.
    Default,
    /// Temporary (mount option).
    Temporary,
    /// No source (read-only native properties).
    None,
}

impl PropertySource {
    /// Parses TrueNAS's upper-case source names (`LOCAL`, `INHERITED`, ...) and `zfs get`'s
    /// lower-case ones, including `inherited from X`.
    pub fn parse(s: &str) -> PropertySource {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "local" => PropertySource::Local,
            "received" => PropertySource::Received,
            "default" => PropertySource::Default,
            "temporary" => PropertySource::Temporary,
            "none" | "-" | "" => PropertySource::None,
            l if l.starts_with("inherited") => PropertySource::Inherited,
            _ => PropertySource::None,
        }
    }

    /// Whether the value was set on the resource itself (locally or by receive), which is
    /// what ownership needs.
    pub fn is_own(self) -> bool {
        matches!(self, PropertySource::Local | PropertySource::Received)
    }
}

/// A ZFS user property (`module:name`) and its source.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UserProperty {
    /// Value (always a string in ZFS).
    pub value: String,
    /// Where it comes from.
    pub source: PropertySource,
    /// The ancestor it is inherited from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherited_from: Option<String>,
}

/// User properties by name.
pub type UserProperties = BTreeMap<String, UserProperty>;

/// democratic-csi's user property names.
pub mod props {
    /// `true` on everything democratic-csi created (own value only counts).
    pub const MANAGED_RESOURCE: &str = "democratic-csi:managed_resource";
    /// The CSI volume name (= PV name).
    pub const CSI_VOLUME_NAME: &str = "democratic-csi:csi_volume_name";
    /// `true` once CreateVolume/CreateSnapshot finished.
    pub const PROVISION_SUCCESS: &str = "democratic-csi:provision_success";
    /// The democratic-csi driver (`freenas-api-nfs`, ...).
    pub const PROVISIONER_DRIVER: &str = "democratic-csi:volume_context_provisioner_driver";
    /// The configured `instance_id`, when set.
    pub const PROVISIONER_INSTANCE_ID: &str =
        "democratic-csi:volume_context_provisioner_instance_id";
    /// The CSI snapshot name (`snapshot-<VolumeSnapshot uid>`).
    pub const CSI_SNAPSHOT_NAME: &str = "democratic-csi:csi_snapshot_name";
    /// The snapshot's source volume id.
    pub const CSI_SNAPSHOT_SOURCE_VOLUME_ID: &str = "democratic-csi:csi_snapshot_source_volume_id";
    /// `snapshot` or `volume` for clones/restores.
    pub const CONTENT_SOURCE_TYPE: &str = "democratic-csi:csi_volume_content_source_type";
    /// The clone/restore source id.
    pub const CONTENT_SOURCE_ID: &str = "democratic-csi:csi_volume_content_source_id";
    /// JSON of the share volume context.
    pub const SHARE_VOLUME_CONTEXT: &str = "democratic-csi:csi_share_volume_context";
    /// The NFS share id.
    pub const NFS_SHARE_ID: &str = "democratic-csi:freenas_nfs_share_id";
    /// The SMB share id.
    pub const SMB_SHARE_ID: &str = "democratic-csi:freenas_smb_share_id";
    /// The iSCSI target id.
    pub const ISCSI_TARGET_ID: &str = "democratic-csi:freenas_iscsi_target_id";
    /// The iSCSI extent id.
    pub const ISCSI_EXTENT_ID: &str = "democratic-csi:freenas_iscsi_extent_id";
    /// The iSCSI target-extent id.
    pub const ISCSI_TARGETEXTENT_ID: &str = "democratic-csi:freenas_iscsi_targettoextent_id";
    /// The name of the iSCSI target and extent.
    pub const ISCSI_ASSETS_NAME: &str = "democratic-csi:freenas_iscsi_assets_name";
}

/// Read access to user properties shared by datasets and snapshots.
pub trait HasUserProperties {
    /// The user properties.
    fn user_properties(&self) -> &UserProperties;

    /// A property's value, whatever its source.
    fn user_prop(&self, name: &str) -> Option<&str> {
        self.user_properties().get(name).map(|p| p.value.as_str())
    }

    /// A property's value only when set on this resource itself (LOCAL or RECEIVED).
    fn own_prop(&self, name: &str) -> Option<&str> {
        self.user_properties()
            .get(name)
            .filter(|p| p.source.is_own())
            .map(|p| p.value.as_str())
    }

    /// democratic-csi owns it: its own `managed_resource` is `true`. Inherited values
    /// (children, periodic snapshots) do not count.
    fn is_managed(&self) -> bool {
        self.own_prop(props::MANAGED_RESOURCE) == Some("true")
    }
}

/// `FILESYSTEM` or `VOLUME`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatasetType {
    /// A filesystem.
    Filesystem,
    /// A zvol.
    Volume,
}

/// A dataset or zvol.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Dataset {
    /// Full name, `pool/a/b`.
    pub name: String,
    /// Pool name.
    pub pool: String,
    /// Filesystem or zvol.
    #[serde(rename = "type")]
    pub kind: DatasetType,
    /// Mount point (filesystems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
    /// `used` bytes (dataset + snapshots + children + refreservation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// `available` bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// `usedbydataset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by_dataset: Option<u64>,
    /// `usedbysnapshots`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by_snapshots: Option<u64>,
    /// `usedbychildren`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by_children: Option<u64>,
    /// `usedbyrefreservation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by_refreservation: Option<u64>,
    /// `volsize` (zvols).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volsize: Option<u64>,
    /// `volblocksize` (zvols).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volblocksize: Option<u64>,
    /// `quota` (None = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    /// `refquota` (None = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refquota: Option<u64>,
    /// `reservation` (None = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<u64>,
    /// `refreservation` (None = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreservation: Option<u64>,
    /// `origin` snapshot of a clone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `creation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation: Option<Timestamp>,
    /// `compressratio`, e.g. `1.37`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressratio: Option<String>,
    /// Native encryption on.
    #[serde(default)]
    pub encrypted: bool,
    /// Encrypted and key not loaded.
    #[serde(default)]
    pub locked: bool,
    /// `readonly=on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// Number of snapshots, when the query asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_count: Option<u64>,
    /// User properties with their source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_properties: UserProperties,
}

impl HasUserProperties for Dataset {
    fn user_properties(&self) -> &UserProperties {
        &self.user_properties
    }
}

impl Dataset {
    /// The parent dataset's name (None for a pool root).
    pub fn parent(&self) -> Option<&str> {
        self.name.rsplit_once('/').map(|(p, _)| p)
    }
    /// The last path component.
    pub fn leaf(&self) -> &str {
        self.name.rsplit_once('/').map_or(&self.name, |(_, l)| l)
    }
}

/// A ZFS snapshot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot {
    /// Full name, `pool/ds@snap`.
    pub name: String,
    /// Dataset part.
    pub dataset: String,
    /// Snapshot part (after `@`).
    pub snapshot_name: String,
    /// Pool.
    pub pool: String,
    /// Creation transaction group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub createtxg: Option<u64>,
    /// `creation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation: Option<Timestamp>,
    /// `used` bytes (unique to the snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// `referenced` bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced: Option<u64>,
    /// Clones that depend on it (`clones` property).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clones: Vec<String>,
    /// `defer_destroy=on`: destroy requested, waiting for clones to go.
    #[serde(default)]
    pub defer_destroy: bool,
    /// Number of user holds, when queried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds: Option<u64>,
    /// User properties with their source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_properties: UserProperties,
}

impl HasUserProperties for Snapshot {
    fn user_properties(&self) -> &UserProperties {
        &self.user_properties
    }
}

/// A pool's last scan (scrub/resilver).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PoolScan {
    /// `SCRUB` or `RESILVER`.
    #[serde(default)]
    pub function: String,
    /// `SCANNING`, `FINISHED`, `CANCELED`.
    #[serde(default)]
    pub state: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// Errors found.
    #[serde(default)]
    pub errors: u64,
}

/// A ZFS pool.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Pool {
    /// DB id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `ONLINE`, `DEGRADED`, ...
    pub status: String,
    /// Healthy according to TrueNAS.
    pub healthy: bool,
    /// Raw size in bytes (incl. parity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Allocated bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated: Option<u64>,
    /// Free bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<u64>,
    /// Fragmentation percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragmentation: Option<u64>,
    /// Last scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<PoolScan>,
}

/// Which kind of share/export.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ShareKind {
    /// `sharing.nfs`.
    Nfs,
    /// `sharing.smb`.
    Smb,
    /// `iscsi.target`.
    IscsiTarget,
    /// `iscsi.extent`.
    IscsiExtent,
    /// `iscsi.targetextent`.
    IscsiTargetExtent,
}

impl ShareKind {
    /// The resource type name used in findings (`nfs-share`, `iscsi-extent`, ...).
    pub const fn resource_type(self) -> &'static str {
        match self {
            ShareKind::Nfs => "nfs-share",
            ShareKind::Smb => "smb-share",
            ShareKind::IscsiTarget => "iscsi-target",
            ShareKind::IscsiExtent => "iscsi-extent",
            ShareKind::IscsiTargetExtent => "iscsi-targetextent",
        }
    }
}

/// Identity of a share: its kind and TrueNAS id.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
pub struct ShareKey {
    /// Kind.
    pub kind: ShareKind,
    /// TrueNAS DB id.
    pub id: i64,
}

impl fmt::Display for ShareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.resource_type(), self.id)
    }
}

/// An NFS export.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct NfsShare {
    /// DB id.
    pub id: i64,
    /// Exported path (`path`, or the first of pre-22.12 `paths`).
    pub path: String,
    /// Further paths (pre-22.12 `paths` beyond the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_paths: Vec<String>,
    /// Comment.
    #[serde(default)]
    pub comment: String,
    /// Allowed networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// Allowed hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Read-only.
    #[serde(default)]
    pub readonly: bool,
    /// Enabled.
    #[serde(default)]
    pub enabled: bool,
}

/// An SMB share.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SmbShare {
    /// DB id.
    pub id: i64,
    /// Share name.
    pub name: String,
    /// Shared path.
    pub path: String,
    /// Comment.
    #[serde(default)]
    pub comment: String,
    /// Read-only (`ro` up to 25.04, `readonly` from 25.10).
    #[serde(default)]
    pub readonly: bool,
    /// Enabled.
    #[serde(default)]
    pub enabled: bool,
    /// Purpose preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// An iSCSI target.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct IscsiTarget {
    /// DB id.
    pub id: i64,
    /// Name (IQN suffix).
    pub name: String,
    /// Alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Portal group ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portals: Vec<i64>,
}

/// An iSCSI extent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct IscsiExtent {
    /// DB id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `DISK` or `FILE`.
    #[serde(default)]
    pub extent_type: String,
    /// `zvol/<pool>/<zvol>` for DISK extents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    /// File path for FILE extents (or the zvol path for DISK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Comment.
    #[serde(default)]
    pub comment: String,
    /// Enabled.
    #[serde(default)]
    pub enabled: bool,
    /// Read-only.
    #[serde(default)]
    pub readonly: bool,
}

impl IscsiExtent {
    /// The zvol this DISK extent exports (`disk` without the `zvol/` prefix).
    pub fn zvol(&self) -> Option<&str> {
        self.disk
            .as_deref()
            .or(self.path.as_deref())
            .and_then(|d| d.strip_prefix("zvol/"))
    }
}

/// An iSCSI target-to-extent association.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct IscsiTargetExtent {
    /// DB id.
    pub id: i64,
    /// Target id.
    pub target: i64,
    /// Extent id.
    pub extent: i64,
    /// LUN id.
    #[serde(default)]
    pub lunid: i64,
}

/// Any share/export.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub enum Share {
    /// NFS export.
    Nfs(NfsShare),
    /// SMB share.
    Smb(SmbShare),
    /// iSCSI target.
    IscsiTarget(IscsiTarget),
    /// iSCSI extent.
    IscsiExtent(IscsiExtent),
    /// iSCSI target-extent association.
    IscsiTargetExtent(IscsiTargetExtent),
}

impl Share {
    /// The share's identity.
    pub fn key(&self) -> ShareKey {
        let (kind, id) = match self {
            Share::Nfs(s) => (ShareKind::Nfs, s.id),
            Share::Smb(s) => (ShareKind::Smb, s.id),
            Share::IscsiTarget(s) => (ShareKind::IscsiTarget, s.id),
            Share::IscsiExtent(s) => (ShareKind::IscsiExtent, s.id),
            Share::IscsiTargetExtent(s) => (ShareKind::IscsiTargetExtent, s.id),
        };
        ShareKey { kind, id }
    }
}

/// A service's state (`service.query`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ServiceState {
    /// Service name (`nfs`, `cifs`, `iscsitarget`).
    pub service: String,
    /// Started at boot.
    pub enable: bool,
    /// `RUNNING` / `STOPPED`.
    pub state: String,
}

/// One class of TrueNAS resources, read by one query method. Views judge a class only when
/// it was observed completely (the last poll read it, or a bundle holds its method's file).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NasCollection {
    /// `pool.query`.
    Pools,
    /// `pool.dataset.query`.
    Datasets,
    /// `zfs.snapshot.query` / `pool.snapshot.query`.
    Snapshots,
    /// `sharing.nfs.query`.
    NfsShares,
    /// `sharing.smb.query`.
    SmbShares,
    /// `iscsi.target.query`.
    IscsiTargets,
    /// `iscsi.extent.query`.
    IscsiExtents,
    /// `iscsi.targetextent.query`.
    IscsiTargetExtents,
    /// `system.info` (+ `iscsi.global.config`, `service.query`).
    System,
}

impl NasCollection {
    /// Every class.
    pub const ALL: [NasCollection; 9] = [
        NasCollection::Pools,
        NasCollection::Datasets,
        NasCollection::Snapshots,
        NasCollection::NfsShares,
        NasCollection::SmbShares,
        NasCollection::IscsiTargets,
        NasCollection::IscsiExtents,
        NasCollection::IscsiTargetExtents,
        NasCollection::System,
    ];

    /// The query method that reads it (the snapshot method of releases before 25.10).
    pub const fn method(self) -> &'static str {
        match self {
            NasCollection::Pools => "pool.query",
            NasCollection::Datasets => "pool.dataset.query",
            NasCollection::Snapshots => "zfs.snapshot.query",
            NasCollection::NfsShares => "sharing.nfs.query",
            NasCollection::SmbShares => "sharing.smb.query",
            NasCollection::IscsiTargets => "iscsi.target.query",
            NasCollection::IscsiExtents => "iscsi.extent.query",
            NasCollection::IscsiTargetExtents => "iscsi.targetextent.query",
            NasCollection::System => "system.info",
        }
    }

    /// The class a query method reads (`pool.snapshot.query` too), if any.
    pub fn from_method(method: &str) -> Option<NasCollection> {
        match method {
            "pool.snapshot.query" | "zfs.resource.snapshot.query" => Some(NasCollection::Snapshots),
            "iscsi.global.config" | "service.query" | "system.version" => {
                Some(NasCollection::System)
            }
            m => NasCollection::ALL.into_iter().find(|c| c.method() == m),
        }
    }

    /// The class a share kind belongs to.
    pub const fn of_share(kind: ShareKind) -> NasCollection {
        match kind {
            ShareKind::Nfs => NasCollection::NfsShares,
            ShareKind::Smb => NasCollection::SmbShares,
            ShareKind::IscsiTarget => NasCollection::IscsiTargets,
            ShareKind::IscsiExtent => NasCollection::IscsiExtents,
            ShareKind::IscsiTargetExtent => NasCollection::IscsiTargetExtents,
        }
    }
}

/// What kind of API the system speaks (decided from its version).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApiTransport {
    /// REST v2.0 (22.12 – 25.10).
    RestV2,
    /// JSON-RPC 2.0 over WebSocket (25.04+; the only API from 26).
    JsonRpc,
}

/// The system as a whole.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SystemInfo {
    /// `system.version`, e.g. `TrueNAS-SCALE-24.10.2.4` or `TrueNAS-25.04.2.6`.
    pub version: String,
    /// Parsed release numbers, e.g. `[25, 4, 2, 6]`.
    #[serde(default)]
    pub release: Vec<u32>,
    /// Host name.
    #[serde(default)]
    pub hostname: String,
    /// Boot time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boottime: Option<Timestamp>,
    /// Physical memory bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physmem: Option<u64>,
    /// iSCSI global basename (`iscsi.global.config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscsi_basename: Option<String>,
    /// Service states.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceState>,
}

impl SystemInfo {
    /// Parses release numbers out of a version string, ignoring product prefixes:
    /// `TrueNAS-SCALE-22.12.4.2` → `[22, 12, 4, 2]`, `25.10.1` → `[25, 10, 1]`,
    /// `TrueNAS-25.10-RC.1` → `[25, 10]`.
    pub fn parse_release(version: &str) -> Vec<u32> {
        version
            .split('-')
            .find(|part| {
                part.split('.')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .map(|part| part.split('.').map_while(|n| n.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// `(major, minor)`, e.g. `(25, 4)`.
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        match self.release.as_slice() {
            [major, minor, ..] => Some((*major, *minor)),
            [major] => Some((*major, 0)),
            [] => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(value: &str, source: PropertySource) -> UserProperty {
        UserProperty {
            value: value.into(),
            source,
            inherited_from: None,
        }
    }

    #[test]
    fn inherited_managed_resource_does_not_count() {
        let mut snap = Snapshot {
            name: "tank/v/pvc-1@auto-2024".into(),
            dataset: "tank/v/pvc-1".into(),
            snapshot_name: "auto-2024".into(),
            pool: "tank".into(),
            createtxg: None,
            creation: None,
            used: None,
            referenced: None,
            clones: vec![],
            defer_destroy: false,
            holds: None,
            user_properties: UserProperties::new(),
        };
        snap.user_properties.insert(
            props::MANAGED_RESOURCE.into(),
            prop("true", PropertySource::Inherited),
        );
        assert!(!snap.is_managed());
        assert_eq!(snap.user_prop(props::MANAGED_RESOURCE), Some("true"));
        snap.user_properties.insert(
            props::MANAGED_RESOURCE.into(),
            prop("true", PropertySource::Local),
        );
        assert!(snap.is_managed());
    }

    #[test]
    fn release_numbers_ignore_product_prefixes() {
        assert_eq!(
            SystemInfo::parse_release("TrueNAS-SCALE-22.12.4.2"),
            vec![22, 12, 4, 2]
        );
        assert_eq!(
            SystemInfo::parse_release("TrueNAS-25.04.2.6"),
            vec![25, 4, 2, 6]
        );
        assert_eq!(SystemInfo::parse_release("25.10.1"), vec![25, 10, 1]);
        assert_eq!(
            SystemInfo::parse_release("TrueNAS-25.10-RC.1"),
            vec![25, 10]
        );
        assert!(SystemInfo::parse_release("unknown").is_empty());
    }

    #[test]
    fn sources_parse_from_api_and_cli_forms() {
        assert_eq!(PropertySource::parse("LOCAL"), PropertySource::Local);
        assert_eq!(
            PropertySource::parse("inherited from tank/k8s"),
            PropertySource::Inherited
        );
        assert_eq!(PropertySource::parse("RECEIVED"), PropertySource::Received);
        assert_eq!(PropertySource::parse("-"), PropertySource::None);
    }

    #[test]
    fn extent_knows_its_zvol() {
        let e = IscsiExtent {
            id: 1,
            name: "pvc-1".into(),
            extent_type: "DISK".into(),
            disk: Some("zvol/tank/k8s/iscsi/pvc-1".into()),
            path: None,
            comment: String::new(),
            enabled: true,
            readonly: false,
        };
        assert_eq!(e.zvol(), Some("tank/k8s/iscsi/pvc-1"));
    }
}
