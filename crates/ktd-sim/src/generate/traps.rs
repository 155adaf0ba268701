//! False-positive traps: resources a careless detector would report, recorded in
//! `truth.traps` (none of them may be a finding subject).

use ktd_model::ResourceRef;
use rand::Rng;

use super::model::{Helper, Parent, Proto, PvState, PvcState};
use super::names::{self, IdStyle};
use super::{Gen, ds_type};
use crate::world::{Dataset, DatasetType, TrapKind as T};

impl Gen<'_> {
    /// Traps planted with the faults.
    pub(super) fn plant_traps(&mut self) {
        for c in 0..self.clusters.len() {
            self.in_flight(c);
            self.young_snapshot(c);
            self.unmanaged(c);
            self.rebound(c);
            // At least one hashed and one truncated id per cluster (natural_traps records them).
            self.fresh_styled(c, Proto::Iscsi, IdStyle::Hashed);
            self.fresh_styled(c, Proto::Nfs, IdStyle::Truncated);
        }
        self.retired_parent();
        self.other_cluster();
    }

    fn in_flight(&mut self, c: usize) {
        for proto in Proto::ALL {
            let Some(v) = self.fresh(c, proto) else {
                continue;
            };
            let created = self.now - self.rng.random_range(60..300);
            let vol = &mut self.vols[v];
            vol.created = created;
            vol.pvc = PvcState::Pending;
            vol.pv = PvState::Absent;
            vol.provisioned = false;
            vol.share = false;
            vol.share_context = false;
            let (ds, pvc) = (self.dataset_ref(v), self.pvc_ref(v));
            self.trap(
                T::InFlightProvisioning,
                ds,
                "CreateVolume running: zfs create done seconds ago, no provision_success yet",
            );
            self.trap(
                T::YoungPendingPvc,
                pvc,
                "Pending for a few minutes while its dataset is being created",
            );
        }
        if let Some(proto) = Proto::ALL.into_iter().find(|&p| self.anchored(c, p)) {
            let Some(v) = self.fresh(c, proto) else {
                return;
            };
            let vol = &mut self.vols[v];
            vol.created = self.now - 40;
            vol.pvc = PvcState::Pending;
            vol.pv = PvState::Absent;
            vol.dataset = false;
            vol.share = false;
            let pvc = self.pvc_ref(v);
            self.trap(
                T::YoungPendingPvc,
                pvc,
                "created 40 s ago, waiting for the provisioner",
            );
        }
    }

    fn young_snapshot(&mut self, c: usize) {
        for detached in [false, true] {
            let Some(v) = self.pick_live(c, None) else {
                return;
            };
            let t = self.now - self.rng.random_range(20..120);
            let mut s = self.new_snap(v, t, detached);
            s.ready = false;
            s.zfs = false;
            let vs = ResourceRef::kube_ns("VolumeSnapshot", &self.vols[v].ns, &s.name);
            let helper = format!("volume-source-for-snapshot-{}", s.csi_name());
            self.vols[v].snaps.push(s);
            self.trap(
                T::YoungSnapshotNotReady,
                vs,
                "CreateSnapshot started seconds ago",
            );
            if detached {
                let dataset = self.dataset_name(v);
                let subject = ResourceRef::truenas("snapshot", &format!("{dataset}@{helper}"));
                self.helpers.push(Helper {
                    dataset,
                    name: helper,
                    created: t + 2,
                    defer_destroy: false,
                });
                self.trap(T::YoungSnapshotNotReady, subject, "temporary snapshot of a detached snapshot being created right now (younger than the grace)");
            }
        }
    }

    fn unmanaged(&mut self, c: usize) {
        let (nfs, iscsi) = (self.clusters[c].nfs_parent, self.clusters[c].iscsi_parent);
        let created = self.now - self.rng.random_range(10..200) * 86_400;
        let manual = format!("{}/manual-backup", self.parents[nfs].name);
        self.push_unmanaged(
            &manual,
            DatasetType::Filesystem,
            created,
            "hand-made dataset under the parent, no democratic-csi properties",
        );
        let zvol = format!("{}/legacy-vm-disk", self.parents[iscsi].name);
        self.push_unmanaged(
            &zvol,
            DatasetType::Volume,
            created,
            "hand-made zvol under the parent, no democratic-csi properties",
        );
        if let Some(v) = self.pick_live(c, Some(Proto::Nfs)) {
            let child = format!("{}/scratch", self.dataset_name(v));
            let t = self.time_after(v, 3600);
            self.push_unmanaged(&child, DatasetType::Filesystem, t, "child of a CSI volume: inherits managed_resource=true and csi_volume_name (source inherited)");
        }
    }

    fn push_unmanaged(&mut self, name: &str, kind: DatasetType, creation: i64, note: &str) {
        let used = self.rng.random_range(1u64..2000) << 20;
        self.extra_datasets.push(Dataset {
            name: name.to_owned(),
            kind,
            used_by_dataset: used,
            used_by_snapshots: 0,
            volsize: (kind == DatasetType::Volume).then_some(20 << 30),
            volblocksize: (kind == DatasetType::Volume).then_some(16_384),
            refquota: None,
            refreservation: None,
            origin: None,
            creation,
            encrypted: false,
            user_properties: Default::default(),
            received_properties: Default::default(),
        });
        let t = if kind == DatasetType::Volume {
            "zvol"
        } else {
            "dataset"
        };
        self.trap(T::UnmanagedDataset, ResourceRef::truenas(t, name), note);
    }

    fn rebound(&mut self, c: usize) {
        let Some(v) = self.fresh(c, Proto::Nfs) else {
            return;
        };
        let new_uid = names::uuid(&mut self.rng);
        self.vols[v].pvc_uid = new_uid;
        let pv = self.pv_ref(v);
        self.trap(
            T::ReboundPv,
            pv,
            "PV re-bound by hand to a new PVC: its name is not pvc-<claimRef.uid>",
        );
    }

    /// A parent left behind by a decommissioned cluster: no cluster owns it.
    fn retired_parent(&mut self) {
        self.parents.push(Parent {
            name: "tank/k8s/retired/nfs".into(),
            detached: "tank/k8s/retired/nfs-snapshots".into(),
            cluster: None,
            proto: Proto::Nfs,
        });
        let parent = self.parents.len() - 1;
        for _ in 0..3 {
            let created = self.now - self.rng.random_range(300..700) * 86_400;
            let mut vol = self.new_volume(None, parent, IdStyle::Plain, created);
            vol.pv = PvState::Absent;
            vol.pvc = PvcState::Absent;
            self.vols.push(vol);
            let v = self.vols.len() - 1;
            let name = self.dataset_name(v);
            self.truth.unowned.push(name.clone());
            self.trap(
                T::OtherClusterParent,
                ResourceRef::truenas("dataset", &name),
                "managed dataset under a parent no observed cluster owns: unowned, not orphaned",
            );
        }
    }

    /// Live datasets of cluster `c+1` are not orphans for cluster `c`.
    fn other_cluster(&mut self) {
        let n = self.clusters.len();
        if n < 2 {
            return;
        }
        for c in 0..n {
            let other = (c + 1) % n;
            for _ in 0..2 {
                let Some(v) = self.pick_live(other, None) else {
                    break;
                };
                let ds = self.dataset_ref(v);
                let note = format!(
                    "belongs to cluster {}; cluster {} has no PV for it",
                    self.clusters[other].name, self.clusters[c].name
                );
                self.trap(T::OtherClusterParent, ds, &note);
            }
        }
    }

    /// Traps that exist in every world (natural features), recorded even without faults.
    pub(super) fn natural_traps(&mut self) {
        let mut traps = Vec::new();
        for (v, vol) in self.vols.iter().enumerate() {
            if vol.cluster.is_none() || !vol.dataset {
                continue;
            }
            let ds = self.dataset_name(v);
            for &t in &vol.autos {
                let name = format!("{ds}@{}", names::auto_snapshot_name(t));
                traps.push((
                    T::InheritedManagedSnapshot,
                    ResourceRef::truenas("snapshot", &name),
                    "periodic-task snapshot: managed_resource=true only inherited",
                ));
            }
            if vol.style != IdStyle::Plain && vol.pv != PvState::Absent {
                let note = match vol.style {
                    IdStyle::Hashed => {
                        "volume id is the crc32 of the PV name (idHash): volumeHandle != PV name"
                    }
                    _ => {
                        "truncated CSI name (--volume-name-uuid-length=16): PV name != pvc-<claim uid>"
                    }
                };
                traps.push((
                    T::HashedVolumeId,
                    ResourceRef::kube("PersistentVolume", &vol.pv_name),
                    note,
                ));
                traps.push((
                    T::HashedVolumeId,
                    ResourceRef::truenas(ds_type(vol.proto), &ds),
                    note,
                ));
            }
        }
        for h in &self.helpers {
            let full = format!("{}@{}", h.dataset, h.name);
            if h.name.starts_with("volume-source-for-volume-")
                && self
                    .vols
                    .iter()
                    .any(|v| v.origin.as_deref() == Some(full.as_str()))
            {
                traps.push((
                    T::CloneOriginHelper,
                    ResourceRef::truenas("snapshot", &full),
                    "origin of a live clone",
                ));
            }
        }
        for (kind, resource, note) in traps {
            self.trap(kind, resource, note);
        }
    }
}
