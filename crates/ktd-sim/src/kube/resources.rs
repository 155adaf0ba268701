//! The kinds the fake apiserver serves: group, version, plural, scope, short names.
//!
//! One static table; everything else (routing, discovery, RBAC, tables) looks kinds up here.

/// The group of the snapshot CRDs, which can be absent from a cluster.
pub const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";

/// One served resource type.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// `PersistentVolume`.
    pub kind: &'static str,
    /// API group, `""` for core.
    pub group: &'static str,
    /// API version inside the group.
    pub version: &'static str,
    /// URL segment, `persistentvolumes`.
    pub plural: &'static str,
    /// `persistentvolume`.
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Field selector labels the real apiserver accepts beyond `metadata.name` and
    /// `metadata.namespace`, with the JSON path each one reads (dot-separated).
    pub fields: &'static [(&'static str, &'static str)],
    /// Whether this is a built-in type (list items then carry no `kind`/`apiVersion`).
    pub builtin: bool,
}

/// Verbs the fake advertises for every readable resource (as the real one does).
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source.component"),
    ("type", "type"),
];

const POD_FIELDS: &[(&str, &str)] = &[
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
];

const fn rt(
    kind: &'static str,
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        kind,
        group,
        version: "v1",
        plural,
        singular,
        namespaced,
        short_names,
        fields: &[],
        builtin: true,
    }
}

/// Every served kind, in a fixed order (indices are used as kind ids by the store).
pub static RESOURCES: &[ResourceType] = &[
    rt(
        "PersistentVolume",
        "",
        "persistentvolumes",
        "persistentvolume",
        false,
        &["pv"],
    ),
    rt(
        "PersistentVolumeClaim",
        "",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        true,
        &["pvc"],
    ),
    ResourceType {
        fields: POD_FIELDS,
        ..rt("Pod", "", "pods", "pod", true, &["po"])
    },
    ResourceType {
        fields: EVENT_FIELDS,
        ..rt("Event", "", "events", "event", true, &["ev"])
    },
    ResourceType {
        fields: &[("spec.unschedulable", "spec.unschedulable")],
        ..rt("Node", "", "nodes", "node", false, &["no"])
    },
    ResourceType {
        fields: &[("status.phase", "status.phase")],
        ..rt("Namespace", "", "namespaces", "namespace", false, &["ns"])
    },
    rt(
        "StorageClass",
        "storage.k8s.io",
        "storageclasses",
        "storageclass",
        false,
        &["sc"],
    ),
    rt(
        "VolumeAttachment",
        "storage.k8s.io",
        "volumeattachments",
        "volumeattachment",
        false,
        &[],
    ),
    rt(
        "CSIDriver",
        "storage.k8s.io",
        "csidrivers",
        "csidriver",
        false,
        &[],
    ),
    rt(
        "CSINode",
        "storage.k8s.io",
        "csinodes",
        "csinode",
        false,
        &[],
    ),
    ResourceType {
        builtin: false,
        ..rt(
            "VolumeSnapshot",
            SNAPSHOT_GROUP,
            "volumesnapshots",
            "volumesnapshot",
            true,
            &["vs"],
        )
    },
    ResourceType {
        builtin: false,
        ..rt(
            "VolumeSnapshotContent",
            SNAPSHOT_GROUP,
            "volumesnapshotcontents",
            "volumesnapshotcontent",
            false,
            &["vsc", "vscs"],
        )
    },
    ResourceType {
        builtin: false,
        ..rt(
            "VolumeSnapshotClass",
            SNAPSHOT_GROUP,
            "volumesnapshotclasses",
            "volumesnapshotclass",
            false,
            &["vsclass", "vsclasses"],
        )
    },
];

impl ResourceType {
    /// `v1` or `storage.k8s.io/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// This type's index in [`RESOURCES`].
    pub fn index(&self) -> usize {
        RESOURCES
            .iter()
            .position(|r| std::ptr::eq(r, self))
            .expect("resource types only come from RESOURCES")
    }

    /// The JSON path a field selector label reads, or `None` if the label is not supported.
    pub fn field_path(&self, label: &str) -> Option<&'static str> {
        match label {
            "metadata.name" => Some("metadata.name"),
            "metadata.namespace" => Some("metadata.namespace"),
            _ => self
                .fields
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, path)| *path),
        }
    }
}

/// The type of `kind` in `apiVersion` (as found in an object).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Looks a type up by kind, plural, singular or short name, case-insensitively.
pub fn by_name(name: &str) -> Option<&'static ResourceType> {
    let name = name.to_ascii_lowercase();
    RESOURCES.iter().find(|r| {
        r.kind.eq_ignore_ascii_case(&name)
            || r.plural == name
            || r.singular == name
            || r.short_names.contains(&name.as_str())
    })
}

/// The type served at `group`/`version`/`plural`.
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_agree() {
        for r in RESOURCES {
            assert_eq!(by_kind(&r.api_version(), r.kind), Some(r));
            assert_eq!(by_path(r.group, r.version, r.plural), Some(r));
            assert_eq!(by_name(r.kind), Some(r));
            assert_eq!(RESOURCES[r.index()].kind, r.kind);
        }
        assert_eq!(
            by_name("pvc").map(|r| r.kind),
            Some("PersistentVolumeClaim")
        );
        assert_eq!(
            by_name("vsclass").map(|r| r.kind),
            Some("VolumeSnapshotClass")
        );
        assert_eq!(
            RESOURCES[3].field_path("source"),
            Some("source.component"),
            "Event source maps to source.component"
        );
        assert_eq!(RESOURCES[0].field_path("spec.nodeName"), None);
    }
}
