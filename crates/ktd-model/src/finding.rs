//! Findings: what ktd tells people. The kinds and their ids are a public contract
//! (PRODUCT.md, "The finding catalogue").

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::FindingId;
use crate::time::Timestamp;

/// Which side of the storage stack a resource lives on.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// A Kubernetes / OpenShift cluster.
    Kubernetes,
    /// A TrueNAS SCALE system.
    Truenas,
    /// ktd itself (derived events, its own pipeline).
    Ktd,
}

impl System {
    /// The lower-case name used in subjects and output.
    pub const fn as_str(self) -> &'static str {
        match self {
            System::Kubernetes => "kubernetes",
            System::Truenas => "truenas",
            System::Ktd => "ktd",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource a finding is about, or one of its evidence.
///
/// `name` is the Kubernetes object name, the full dataset name, `dataset@snapshot`,
/// the NFS share path / SMB share name, or the iSCSI target/extent name.
#[derive(
    Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
pub struct ResourceRef {
    /// Where the resource lives.
    pub system: System,
    /// Resource type: a Kubernetes kind (`PersistentVolume`) or a TrueNAS type
    /// (`dataset`, `zvol`, `snapshot`, `nfs-share`, `smb-share`, `iscsi-target`,
    /// `iscsi-extent`, `iscsi-targetextent`, `pool`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Name as described above.
    pub name: String,
    /// Namespace of namespaced Kubernetes objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ResourceRef {
    /// A cluster-scoped Kubernetes object.
    pub fn kube(kind: &str, name: &str) -> Self {
        ResourceRef {
            system: System::Kubernetes,
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: None,
        }
    }

    /// A namespaced Kubernetes object.
    pub fn kube_ns(kind: &str, namespace: &str, name: &str) -> Self {
        ResourceRef {
            system: System::Kubernetes,
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
        }
    }

    /// A TrueNAS resource.
    pub fn truenas(kind: &str, name: &str) -> Self {
        ResourceRef {
            system: System::Truenas,
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: None,
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} {}/{}", self.system, self.kind, ns, self.name),
            None => write!(f, "{}/{} {}", self.system, self.kind, self.name),
        }
    }
}

/// How bad a finding or a failed check is.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, nothing to do.
    Info,
    /// Minor waste or hygiene issue.
    Low,
    /// Wastes space or will cause trouble; act this week.
    Medium,
    /// Breaks or endangers workloads; act today.
    High,
    /// Data at risk or an outage in progress.
    Critical,
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            other => {
                return Err(format!(
                    "unknown severity `{other}` (expected info, low, medium, high or critical)"
                ));
            }
        })
    }
}

macro_rules! finding_kinds {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// The finding catalogue (PRODUCT.md). The kebab-case names are stable.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema)]
        pub enum FindingKind {
            $($(#[$doc])* #[serde(rename = $text)] $variant,)*
        }

        impl FindingKind {
            /// Every kind, in catalogue order.
            pub const ALL: &'static [FindingKind] = &[$(FindingKind::$variant,)*];

            /// The stable kebab-case name.
            pub const fn as_str(self) -> &'static str {
                match self { $(FindingKind::$variant => $text,)* }
            }
        }

        impl FromStr for FindingKind {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(FindingKind::$variant),)*
                    other => Err(format!("unknown finding kind `{other}`")),
                }
            }
        }
    };
}

finding_kinds! {
    /// democratic-csi PV whose dataset/zvol does not exist on TrueNAS.
    PvBackingMissing = "pv-backing-missing",
    /// PV in phase Released (Retain policy / failed delete); its dataset still uses space.
    PvReleased = "pv-released",
    /// PVC unbound longer than the threshold.
    PvcPending = "pvc-pending",
    /// PVC in phase Lost.
    PvcLost = "pvc-lost",
    /// democratic-csi-managed dataset/zvol with no PV referencing it.
    DatasetOrphaned = "dataset-orphaned",
    /// Managed dataset without `provision_success=true`, older than the grace period.
    DatasetProvisionIncomplete = "dataset-provision-incomplete",
    /// VolumeAttachment whose PV or node is gone, or whose attach/detach error persists.
    VolumeattachmentStale = "volumeattachment-stale",
    /// democratic-csi ZFS snapshot (or detached-snapshot dataset) with no VolumeSnapshotContent.
    SnapshotOrphaned = "snapshot-orphaned",
    /// VolumeSnapshotContent whose snapshotHandle does not exist on TrueNAS.
    SnapshotcontentBackingMissing = "snapshotcontent-backing-missing",
    /// VolumeSnapshotContent whose VolumeSnapshot is gone (Retain).
    SnapshotcontentOrphaned = "snapshotcontent-orphaned",
    /// VolumeSnapshot not readyToUse longer than the threshold, or with an error.
    VolumesnapshotNotReady = "volumesnapshot-not-ready",
    /// `volume-source-for-*` helper snapshot left behind by a failed operation.
    SnapshotHelperLeftover = "snapshot-helper-leftover",
    /// A snapshot/dataset whose dependent clones block a pending delete.
    CloneBlocksDelete = "clone-blocks-delete",
    /// NFS/SMB share whose dataset no longer exists.
    ShareOrphaned = "share-orphaned",
    /// iSCSI target/extent/target-extent whose zvol is gone or that maps to the wrong zvol.
    IscsiOrphaned = "iscsi-orphaned",
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FindingId {
    /// The stable id of a finding of `kind` about `subject`.
    pub fn of(kind: FindingKind, subject: &ResourceRef) -> FindingId {
        let mut h = FindingId::hasher();
        h.text(kind.as_str())
            .text(subject.system.as_str())
            .text(&subject.kind)
            .text(subject.namespace.as_deref().unwrap_or(""))
            .text(&subject.name);
        FindingId::from_hasher(&h)
    }
}

/// One piece of evidence: a resource and how it relates to the subject.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Related {
    /// The related resource.
    #[serde(flatten)]
    pub resource: ResourceRef,
    /// How it relates, e.g. `share of dataset`, `claim`, `source volume`.
    pub relation: String,
}

/// A problem ktd found, with its evidence and what to do about it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// Stable id: digest of `kind` and `subject`.
    pub id: FindingId,
    /// Catalogue kind.
    pub kind: FindingKind,
    /// How bad it is.
    pub severity: Severity,
    /// The resource the finding is about.
    pub subject: ResourceRef,
    /// Evidence chain.
    #[serde(default)]
    pub related: Vec<Related>,
    /// One sentence saying why this is a finding.
    pub reason: String,
    /// Bytes that cleaning this up would free, where space is wasted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaimable_bytes: Option<u64>,
    /// When the evidence was first seen.
    pub first_seen: Timestamp,
    /// When the evidence was last confirmed.
    pub last_seen: Timestamp,
    /// Ordered steps to resolve it.
    #[serde(default)]
    pub remediation: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in FindingKind::ALL {
            assert_eq!(kind.as_str().parse::<FindingKind>().unwrap(), *kind);
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(FindingKind::ALL.len(), 15);
    }

    #[test]
    fn finding_id_depends_on_kind_and_subject_only() {
        let pv = ResourceRef::kube("PersistentVolume", "pvc-1");
        let a = FindingId::of(FindingKind::PvReleased, &pv);
        assert_eq!(a, FindingId::of(FindingKind::PvReleased, &pv.clone()));
        assert_ne!(a, FindingId::of(FindingKind::PvBackingMissing, &pv));
        let other_ns = ResourceRef::kube_ns("PersistentVolumeClaim", "a", "x");
        let other_ns2 = ResourceRef::kube_ns("PersistentVolumeClaim", "b", "x");
        assert_ne!(
            FindingId::of(FindingKind::PvcLost, &other_ns),
            FindingId::of(FindingKind::PvcLost, &other_ns2)
        );
    }

    #[test]
    fn subject_serialises_with_type_and_without_empty_namespace() {
        let d = ResourceRef::truenas("dataset", "tank/k8s/pvc-1");
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"system": "truenas", "type": "dataset", "name": "tank/k8s/pvc-1"})
        );
    }

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert!("urgent".parse::<Severity>().is_err());
    }
}
