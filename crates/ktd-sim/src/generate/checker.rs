//! An independent consistency checker for generated worlds (tests only).
//!
//! It knows nothing of the generator's model: it re-derives every finding from the world's
//! raw objects with the truth rules of the module doc of [`super`], the way a correct ktd
//! would, so `derive(world) == world.truth` proves that each planted fault has its evidence
//! and that no fault caused a finding nobody recorded.

use std::collections::{BTreeMap, BTreeSet};

use ktd_model::{FindingKind as K, ResourceRef, Timestamp};
use serde_json::Value;

use super::{GRACE_SECS, PVC_PENDING_SECS, SNAPSHOT_NOT_READY_SECS};
use crate::world::{Dataset, DatasetType, Snapshot, TrapKind, World};

/// A derived finding.
pub type Derived = (K, ResourceRef);

fn prop<'a>(d: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    d.get(&format!("democratic-csi:{key}")).map(String::as_str)
}

fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |x| x.0)
}

fn leaf(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |x| x.1)
}

fn ds_type(d: &Dataset) -> &'static str {
    match d.kind {
        DatasetType::Filesystem => "dataset",
        DatasetType::Volume => "zvol",
    }
}

fn time(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map(Timestamp::unix_secs)
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path).and_then(Value::as_str).unwrap_or("")
}

/// The NAS, indexed.
pub struct NasIndex<'a> {
    /// Datasets by name.
    pub datasets: BTreeMap<&'a str, &'a Dataset>,
    /// Snapshots by full name.
    pub snapshots: BTreeMap<String, &'a Snapshot>,
    /// Every `origin`.
    pub origins: BTreeSet<&'a str>,
    /// `<volume leaf>@<snap>` of every snapshot.
    pub snap_keys: BTreeSet<String>,
    /// `<container leaf>/<leaf>` of every dataset.
    pub det_keys: BTreeSet<String>,
}

impl<'a> NasIndex<'a> {
    /// Indexes `world.nas`.
    pub fn new(world: &'a World) -> Self {
        let datasets: BTreeMap<&str, &Dataset> = world
            .nas
            .datasets
            .iter()
            .map(|d| (d.name.as_str(), d))
            .collect();
        NasIndex {
            snapshots: world
                .nas
                .snapshots
                .iter()
                .map(|s| (s.full_name(), s))
                .collect(),
            origins: world
                .nas
                .datasets
                .iter()
                .filter_map(|d| d.origin.as_deref())
                .collect(),
            snap_keys: world
                .nas
                .snapshots
                .iter()
                .map(|s| format!("{}@{}", leaf(&s.dataset), s.name))
                .collect(),
            det_keys: datasets
                .keys()
                .map(|n| format!("{}/{}", leaf(parent(n)), leaf(n)))
                .collect(),
            datasets,
        }
    }

    fn managed(d: &Dataset) -> bool {
        prop(&d.user_properties, "managed_resource") == Some("true")
    }
}

/// One cluster's objects, indexed.
pub struct KubeIndex<'a> {
    /// Objects by kind.
    pub by_kind: BTreeMap<&'a str, Vec<&'a Value>>,
}

impl<'a> KubeIndex<'a> {
    /// Indexes one cluster.
    pub fn new(objects: &'a [Value]) -> Self {
        let mut by_kind: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for o in objects {
            by_kind.entry(s(o, "/kind")).or_default().push(o);
        }
        KubeIndex { by_kind }
    }

    /// Objects of `kind`.
    pub fn all(&self, kind: &str) -> &[&'a Value] {
        self.by_kind.get(kind).map_or(&[], Vec::as_slice)
    }

    fn dsc_pvs(&self) -> impl Iterator<Item = &&'a Value> {
        self.all("PersistentVolume").iter().filter(|pv| {
            pv.pointer("/spec/csi/volumeAttributes/provisioner_driver")
                .is_some()
        })
    }
}

/// Parents a cluster owns: (volume parents, detached parents).
pub fn owned(nas: &NasIndex<'_>, kube: &KubeIndex<'_>) -> (BTreeSet<String>, BTreeSet<String>) {
    let handles: BTreeSet<&str> = kube
        .dsc_pvs()
        .map(|pv| s(pv, "/spec/csi/volumeHandle"))
        .collect();
    let mut vol = BTreeSet::new();
    let mut det = BTreeSet::new();
    for (name, d) in &nas.datasets {
        if NasIndex::managed(d)
            && handles.contains(leaf(name))
            && prop(&d.user_properties, "csi_volume_name").is_some()
        {
            vol.insert(parent(name).to_owned());
        }
        if NasIndex::managed(d)
            && prop(&d.user_properties, "csi_snapshot_name").is_some()
            && handles.contains(leaf(parent(name)))
        {
            det.insert(parent(parent(name)).to_owned());
        }
    }
    (vol, det)
}

/// Every finding a correct ktd observing `cluster` reports.
pub fn derive(world: &World, cluster: &str) -> BTreeSet<Derived> {
    let now = world.now;
    let nas = NasIndex::new(world);
    let c = world
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .expect("cluster exists");
    let kube = KubeIndex::new(&c.objects);
    let (owned_vol, owned_det) = owned(&nas, &kube);
    let mut out = BTreeSet::new();
    let mut add = |k: K, r: ResourceRef| {
        out.insert((k, r));
    };

    let pvs = kube.all("PersistentVolume");
    let pv_names: BTreeSet<&str> = pvs.iter().map(|pv| s(pv, "/metadata/name")).collect();
    let handles: BTreeSet<&str> = kube
        .dsc_pvs()
        .map(|pv| s(pv, "/spec/csi/volumeHandle"))
        .collect();
    let dsc_names: BTreeSet<&str> = kube.dsc_pvs().map(|pv| s(pv, "/metadata/name")).collect();
    let volume_ds = |handle: &str| {
        owned_vol
            .iter()
            .map(|p| format!("{p}/{handle}"))
            .find(|n| nas.datasets.contains_key(n.as_str()))
    };

    for pv in kube.dsc_pvs() {
        let name = s(pv, "/metadata/name");
        let handle = s(pv, "/spec/csi/volumeHandle");
        if volume_ds(handle).is_none() {
            add(
                K::PvBackingMissing,
                ResourceRef::kube("PersistentVolume", name),
            );
        }
        if s(pv, "/status/phase") == "Released" {
            let since = time(&pv["status"]["lastPhaseTransitionTime"]).unwrap_or(i64::MIN);
            if since < now - GRACE_SECS {
                add(K::PvReleased, ResourceRef::kube("PersistentVolume", name));
            }
            if s(pv, "/spec/persistentVolumeReclaimPolicy") == "Delete"
                && let Some(ds) = volume_ds(handle)
            {
                let blocked = nas.snapshots.keys().any(|k| {
                    k.split_once('@').is_some_and(|(d, _)| d == ds)
                        && nas.origins.contains(k.as_str())
                });
                if blocked {
                    add(
                        K::CloneBlocksDelete,
                        ResourceRef::truenas(ds_type(nas.datasets[ds.as_str()]), &ds),
                    );
                }
            }
        }
    }
    for pvc in kube.all("PersistentVolumeClaim") {
        let r = ResourceRef::kube_ns(
            "PersistentVolumeClaim",
            s(pvc, "/metadata/namespace"),
            s(pvc, "/metadata/name"),
        );
        match s(pvc, "/status/phase") {
            "Pending"
                if time(&pvc["metadata"]["creationTimestamp"]).unwrap_or(now)
                    < now - PVC_PENDING_SECS =>
            {
                add(K::PvcPending, r)
            }
            "Lost" => add(K::PvcLost, r),
            _ => {}
        }
    }
    for (name, d) in &nas.datasets {
        if !owned_vol.contains(parent(name)) || !NasIndex::managed(d) {
            continue;
        }
        let up = &d.user_properties;
        let referenced = handles.contains(leaf(name))
            || prop(up, "csi_volume_name").is_some_and(|n| dsc_names.contains(n));
        if prop(up, "provision_success") == Some("true") {
            if !referenced {
                add(K::DatasetOrphaned, ResourceRef::truenas(ds_type(d), name));
            }
        } else if d.creation < now - GRACE_SECS {
            add(
                K::DatasetProvisionIncomplete,
                ResourceRef::truenas(ds_type(d), name),
            );
        }
    }
    let nodes: BTreeSet<&str> = kube
        .all("Node")
        .iter()
        .map(|n| s(n, "/metadata/name"))
        .collect();
    for va in kube.all("VolumeAttachment") {
        let err_old = ["attachError", "detachError"]
            .iter()
            .any(|e| time(&va["status"][*e]["time"]).is_some_and(|t| t < now - GRACE_SECS));
        if !pv_names.contains(s(va, "/spec/source/persistentVolumeName"))
            || !nodes.contains(s(va, "/spec/nodeName"))
            || err_old
        {
            add(
                K::VolumeattachmentStale,
                ResourceRef::kube("VolumeAttachment", s(va, "/metadata/name")),
            );
        }
    }
    let vscs = kube.all("VolumeSnapshotContent");
    let handle_of = |vsc: &Value| -> Option<String> {
        vsc.pointer("/status/snapshotHandle")
            .or_else(|| vsc.pointer("/spec/source/snapshotHandle"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let vsc_handles: BTreeSet<String> = vscs.iter().filter_map(|v| handle_of(v)).collect();
    for snap in nas.snapshots.values() {
        let ds = snap.dataset.as_str();
        let on_volume = owned_vol.contains(parent(ds));
        let on_detached = owned_det.contains(parent(parent(ds)));
        if !on_volume && !on_detached {
            continue;
        }
        let full = snap.full_name();
        let up = &snap.user_properties;
        let csi = prop(up, "managed_resource") == Some("true")
            && prop(up, "csi_snapshot_name").is_some_and(|n| !n.is_empty());
        if csi
            && on_volume
            && !snap.defer_destroy
            && !vsc_handles.contains(&format!("{}@{}", leaf(ds), snap.name))
        {
            add(K::SnapshotOrphaned, ResourceRef::truenas("snapshot", &full));
        }
        let helper = snap.name.starts_with("volume-source-for-");
        if snap.defer_destroy && !helper && nas.origins.contains(full.as_str()) {
            add(
                K::CloneBlocksDelete,
                ResourceRef::truenas("snapshot", &full),
            );
        }
        if helper && snap.creation < now - GRACE_SECS {
            let leftover = snap.name.starts_with("volume-source-for-snapshot-")
                || !nas.origins.contains(full.as_str());
            if leftover {
                add(
                    K::SnapshotHelperLeftover,
                    ResourceRef::truenas("snapshot", &full),
                );
            }
        }
    }
    for (name, d) in &nas.datasets {
        let up = &d.user_properties;
        if owned_det.contains(parent(parent(name)))
            && NasIndex::managed(d)
            && prop(up, "csi_snapshot_name").is_some()
        {
            let key = format!("{}/{}", leaf(parent(name)), leaf(name));
            if !vsc_handles.contains(&key) {
                add(K::SnapshotOrphaned, ResourceRef::truenas(ds_type(d), name));
            }
        }
    }
    let vs_keys: BTreeSet<(&str, &str, &str)> = kube
        .all("VolumeSnapshot")
        .iter()
        .map(|v| {
            (
                s(v, "/metadata/namespace"),
                s(v, "/metadata/name"),
                s(v, "/metadata/uid"),
            )
        })
        .collect();
    for vsc in vscs {
        let name = s(vsc, "/metadata/name");
        let r = ResourceRef::kube("VolumeSnapshotContent", name);
        let deleting = vsc.pointer("/metadata/deletionTimestamp").is_some();
        if let Some(h) = handle_of(vsc) {
            let exists = if h.contains('@') {
                nas.snap_keys.contains(&h)
            } else {
                nas.det_keys.contains(&h)
            };
            if !exists {
                add(K::SnapshotcontentBackingMissing, r.clone());
            }
            if deleting && s(vsc, "/spec/deletionPolicy") == "Delete" && !h.contains('@') {
                for (dname, d) in &nas.datasets {
                    if format!("{}/{}", leaf(parent(dname)), leaf(dname)) == h
                        && owned_det.contains(parent(parent(dname)))
                    {
                        let prefix = format!("{dname}@");
                        if nas.origins.iter().any(|o| o.starts_with(&prefix)) {
                            add(
                                K::CloneBlocksDelete,
                                ResourceRef::truenas(ds_type(d), dname),
                            );
                        }
                    }
                }
            }
        }
        let rf = (
            s(vsc, "/spec/volumeSnapshotRef/namespace"),
            s(vsc, "/spec/volumeSnapshotRef/name"),
            s(vsc, "/spec/volumeSnapshotRef/uid"),
        );
        if s(vsc, "/spec/deletionPolicy") == "Retain" && !deleting && !vs_keys.contains(&rf) {
            add(K::SnapshotcontentOrphaned, r);
        }
    }
    for vs in kube.all("VolumeSnapshot") {
        let ready = vs.pointer("/status/readyToUse").and_then(Value::as_bool) == Some(true);
        let old = time(&vs["metadata"]["creationTimestamp"]).unwrap_or(now)
            < now - SNAPSHOT_NOT_READY_SECS;
        if !ready && (old || vs.pointer("/status/error").is_some()) {
            add(
                K::VolumesnapshotNotReady,
                ResourceRef::kube_ns(
                    "VolumeSnapshot",
                    s(vs, "/metadata/namespace"),
                    s(vs, "/metadata/name"),
                ),
            );
        }
    }
    for share in &world.nas.nfs_shares {
        let ds = share.path.trim_start_matches("/mnt/");
        if owned_vol.contains(parent(ds)) && !nas.datasets.contains_key(ds) {
            add(
                K::ShareOrphaned,
                ResourceRef::truenas("nfs-share", &share.path),
            );
        }
    }
    for share in &world.nas.smb_shares {
        let ds = share.path.trim_start_matches("/mnt/");
        if owned_vol.contains(parent(ds)) && !nas.datasets.contains_key(ds) {
            add(
                K::ShareOrphaned,
                ResourceRef::truenas("smb-share", &share.name),
            );
        }
    }
    for e in &world.nas.iscsi_extents {
        let ds = e.disk.trim_start_matches("zvol/");
        if !owned_vol.contains(parent(ds)) {
            continue;
        }
        let id = e.id.to_string();
        let wrong = nas.datasets.iter().any(|(n, d)| {
            *n != ds && prop(&d.user_properties, "freenas_iscsi_extent_id") == Some(id.as_str())
        });
        if !nas.datasets.contains_key(ds) || wrong {
            add(
                K::IscsiOrphaned,
                ResourceRef::truenas("iscsi-extent", &e.name),
            );
        }
    }
    out
}

/// Managed volume datasets under parents no cluster owns.
pub fn unowned(world: &World) -> Vec<String> {
    let nas = NasIndex::new(world);
    let mut owned_all = BTreeSet::new();
    for c in &world.clusters {
        owned_all.extend(owned(&nas, &KubeIndex::new(&c.objects)).0);
    }
    nas.datasets
        .iter()
        .filter(|(n, d)| {
            NasIndex::managed(d)
                && prop(&d.user_properties, "csi_volume_name").is_some()
                && !owned_all.contains(parent(n))
        })
        .map(|(n, _)| (*n).to_owned())
        .collect()
}

/// Why a trap's resource is not in its claimed tempting state (`None` = it is).
pub fn trap_problem(world: &World, kind: TrapKind, r: &ResourceRef) -> Option<String> {
    let now = world.now;
    let nas = NasIndex::new(world);
    let obj = || {
        world.clusters.iter().flat_map(|c| &c.objects).find(|o| {
            s(o, "/kind") == r.kind
                && s(o, "/metadata/name") == r.name
                && r.namespace
                    .as_deref()
                    .is_none_or(|ns| s(o, "/metadata/namespace") == ns)
        })
    };
    let ds = || nas.datasets.get(r.name.as_str()).copied();
    let snap = || nas.snapshots.get(&r.name).copied();
    let ok = match kind {
        TrapKind::InheritedManagedSnapshot => snap().is_some_and(|sn| {
            sn.user_properties.is_empty()
                && nas
                    .datasets
                    .get(sn.dataset.as_str())
                    .is_some_and(|d| NasIndex::managed(d))
        }),
        TrapKind::InFlightProvisioning => ds().is_some_and(|d| {
            NasIndex::managed(d)
                && prop(&d.user_properties, "provision_success").is_none()
                && d.creation >= now - GRACE_SECS
        }),
        TrapKind::UnmanagedDataset => ds().is_some_and(|d| d.user_properties.is_empty()),
        TrapKind::CloneOriginHelper => {
            snap().is_some()
                && r.name.contains("@volume-source-for-volume-")
                && nas.origins.contains(r.name.as_str())
        }
        TrapKind::HashedVolumeId => match r.kind.as_str() {
            "PersistentVolume" => obj().is_some_and(|pv| {
                s(pv, "/spec/csi/volumeHandle") != r.name
                    || r.name != format!("pvc-{}", s(pv, "/spec/claimRef/uid"))
            }),
            _ => ds().is_some_and(|d| {
                prop(&d.user_properties, "csi_volume_name")
                    .is_some_and(|n| n != leaf(&d.name) || n.len() < 40)
            }),
        },
        TrapKind::OtherClusterParent => ds().is_some_and(NasIndex::managed),
        TrapKind::YoungPendingPvc => obj().is_some_and(|pvc| {
            s(pvc, "/status/phase") == "Pending"
                && time(&pvc["metadata"]["creationTimestamp"])
                    .is_some_and(|t| t >= now - GRACE_SECS)
        }),
        TrapKind::YoungSnapshotNotReady => match r.kind.as_str() {
            "VolumeSnapshot" => obj().is_some_and(|vs| {
                vs.pointer("/status/readyToUse") == Some(&Value::Bool(false))
                    && vs.pointer("/status/error").is_none()
                    && time(&vs["metadata"]["creationTimestamp"])
                        .is_some_and(|t| t >= now - GRACE_SECS)
            }),
            _ => snap().is_some_and(|sn| sn.creation >= now - GRACE_SECS),
        },
        TrapKind::ReboundPv => obj().is_some_and(|pv| {
            s(pv, "/status/phase") == "Bound"
                && r.name != format!("pvc-{}", s(pv, "/spec/claimRef/uid"))
        }),
    };
    (!ok).then(|| format!("trap {kind:?} {r} is not in its tempting state"))
}
