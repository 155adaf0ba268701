//! Planted findings: one function per catalogue kind, each recording exactly the findings
//! its fault causes (see the truth rules in the module doc of [`super`]).
//!
//! Faults never modify the healthy base volumes except by *adding* snapshots or helper
//! snapshots to them; every other fault gets a fresh volume of its own, so two faults never
//! interact.

use ktd_model::{FindingKind as K, ResourceRef};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::model::{Attach, EventSpec, Helper, Proto, PvState, PvcState};
use super::names::{self, IdStyle};
use super::{Gen, ds_type};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

impl Gen<'_> {
    /// Plants `1 + volumes / 250` of every fault per cluster.
    pub(super) fn plant_findings(&mut self) {
        let per = 1 + self.opts.volumes / 250;
        for c in 0..self.clusters.len() {
            for k in 0..per {
                self.backing_missing(c, k);
                self.released(c, k);
                self.pending(c);
                self.lost(c, k);
                self.orphaned(c, k);
                self.provision_incomplete(c, k);
                self.stale_attachments(c);
                self.snapshot_orphans(c);
                self.snapshotcontent_backing_missing(c);
                self.snapshotcontent_orphaned(c);
                self.not_ready(c);
                self.helper_leftovers(c);
                self.clone_blocks_delete(c);
                self.share_orphaned(c);
                self.iscsi_orphaned(c);
            }
        }
    }

    /// Whether cluster `c`'s `proto` parent is discoverable (holds one of its live PVs).
    pub(super) fn anchored(&self, c: usize, proto: Proto) -> bool {
        !self.live[c][proto as usize].is_empty()
    }

    /// `preferred` if its parent is discoverable, else the other protocol, else `None`.
    fn proto_for(&self, c: usize, preferred: Proto) -> Option<Proto> {
        let other = match preferred {
            Proto::Nfs => Proto::Iscsi,
            Proto::Iscsi => Proto::Nfs,
        };
        [preferred, other]
            .into_iter()
            .find(|&p| self.anchored(c, p))
    }

    /// A fresh healthy volume of cluster `c` (not in the live list), created days ago.
    pub(super) fn fresh(&mut self, c: usize, proto: Proto) -> Option<usize> {
        self.fresh_styled(c, proto, IdStyle::Plain)
    }

    /// [`Self::fresh`] with the given volume id style.
    pub(super) fn fresh_styled(&mut self, c: usize, proto: Proto, style: IdStyle) -> Option<usize> {
        if !self.anchored(c, proto) {
            return None;
        }
        let created = self.now - self.rng.random_range(2 * DAY..120 * DAY);
        let parent = self.clusters[c].parent(proto);
        let vol = self.new_volume(Some(c), parent, style, created);
        self.vols.push(vol);
        Some(self.vols.len() - 1)
    }

    /// A random live base volume of cluster `c` (either protocol when `proto` is `None`).
    pub(super) fn pick_live(&mut self, c: usize, proto: Option<Proto>) -> Option<usize> {
        let pool: Vec<usize> = match proto {
            Some(p) => self.live[c][p as usize].clone(),
            None => self.live[c].concat(),
        };
        pool.choose(&mut self.rng).copied()
    }

    /// A time between the volume's creation (+1 h) and `now - min_age`.
    pub(super) fn time_after(&mut self, v: usize, min_age: i64) -> i64 {
        let lo = self.vols[v].created + HOUR;
        let hi = (self.now - min_age).max(lo + 1);
        self.rng.random_range(lo..hi)
    }

    fn event(&mut self, c: usize, object: (&str, Option<&str>, &str, &str), what: (&str, &str)) {
        let first = self.now - self.rng.random_range(2 * HOUR..3 * DAY);
        let count = self.rng.random_range(3..400);
        self.events.push(EventSpec {
            cluster: c,
            object: (
                object.0.to_owned(),
                object.1.map(str::to_owned),
                object.2.to_owned(),
                object.3.to_owned(),
            ),
            reason: what.0.to_owned(),
            message: what.1.to_owned(),
            warning: true,
            component: "external-provisioner".to_owned(),
            first,
            last: self.now - self.rng.random_range(30..600),
            count,
        });
    }

    fn backing_missing(&mut self, c: usize, k: usize) {
        let Some(proto) = self.proto_for(c, Proto::ALL[k % 2]) else {
            return;
        };
        let Some(v) = self.fresh(c, proto) else {
            return;
        };
        let vol = &mut self.vols[v];
        vol.dataset = false;
        vol.share = false;
        let pv = self.pv_ref(v);
        self.expect(
            c,
            K::PvBackingMissing,
            pv,
            "dataset destroyed in the TrueNAS UI (its share went with it); PV and PVC still Bound",
        );
    }

    fn released(&mut self, c: usize, k: usize) {
        let Some(proto) = self.proto_for(c, Proto::ALL[(k + 1) % 2]) else {
            return;
        };
        let Some(v) = self.fresh(c, proto) else {
            return;
        };
        let since = self.time_after(v, DAY);
        let vol = &mut self.vols[v];
        vol.retain = true;
        vol.class = format!("{}-retain", proto.as_str());
        vol.pv = PvState::Released { since };
        vol.pvc = PvcState::Absent;
        let pv = self.pv_ref(v);
        self.expect(c, K::PvReleased, pv, "PVC deleted, reclaim policy Retain: dataset and share kept (no dataset-orphaned: the PV still references it)");
    }

    fn pending(&mut self, c: usize) {
        let Some(proto) = self.proto_for(c, Proto::Nfs) else {
            return;
        };
        let Some(v) = self.fresh(c, proto) else {
            return;
        };
        let created = self.now - self.rng.random_range(2 * DAY..10 * DAY);
        let vol = &mut self.vols[v];
        vol.created = created;
        vol.pvc = PvcState::Pending;
        vol.pv = PvState::Absent;
        vol.dataset = false;
        vol.share = false;
        let (ns, name, uid, class) = (
            vol.ns.clone(),
            vol.pvc_name.clone(),
            vol.pvc_uid.clone(),
            vol.class.clone(),
        );
        let msg = format!(
            "failed to provision volume with StorageClass \"{class}\": rpc error: code = Internal desc = Error: {{\"message\":\"[EFAULT] Failed to create dataset: cannot create '{}': out of space\",\"errno\":14}}",
            self.dataset_name(v)
        );
        self.event(
            c,
            ("PersistentVolumeClaim", Some(&ns), &name, &uid),
            ("ProvisioningFailed", &msg),
        );
        let pvc = self.pvc_ref(v);
        self.expect(
            c,
            K::PvcPending,
            pvc,
            "Pending for days: CreateVolume keeps failing (out of space)",
        );
    }

    fn lost(&mut self, c: usize, k: usize) {
        let Some(proto) = self.proto_for(c, Proto::ALL[k % 2]) else {
            return;
        };
        let Some(v) = self.fresh(c, proto) else {
            return;
        };
        let keep_dataset = k % 2 == 1 || self.rng.random_bool(0.5);
        let vol = &mut self.vols[v];
        vol.pvc = PvcState::Lost;
        vol.pv = PvState::Absent;
        vol.dataset = keep_dataset;
        vol.share = keep_dataset;
        let (ns, name, uid) = (vol.ns.clone(), vol.pvc_name.clone(), vol.pvc_uid.clone());
        self.events.push(EventSpec {
            cluster: c,
            object: ("PersistentVolumeClaim".into(), Some(ns), name, uid),
            reason: "ClaimLost".into(),
            message: "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                .into(),
            warning: true,
            component: "persistentvolume-controller".into(),
            first: self.now - 5 * DAY,
            last: self.now - 5 * DAY,
            count: 1,
        });
        let pvc = self.pvc_ref(v);
        self.expect(c, K::PvcLost, pvc, "its PV was deleted by hand");
        if keep_dataset {
            let ds = self.dataset_ref(v);
            self.expect(c, K::DatasetOrphaned, ds, "consequence of the lost PVC: the PV was deleted by hand, so no DeleteVolume ran and the dataset stayed");
        }
    }

    fn orphaned(&mut self, c: usize, k: usize) {
        let Some(proto) = self.proto_for(c, Proto::ALL[k % 2]) else {
            return;
        };
        let Some(v) = self.fresh(c, proto) else {
            return;
        };
        let vol = &mut self.vols[v];
        vol.pv = PvState::Absent;
        vol.pvc = PvcState::Absent;
        let note = match proto {
            Proto::Nfs => {
                "PV (Retain) deleted by hand; the NFS share is still exported (evidence, not share-orphaned)"
            }
            Proto::Iscsi => {
                "PV (Retain) deleted by hand; target/extent still exist (evidence, not iscsi-orphaned)"
            }
        };
        let ds = self.dataset_ref(v);
        self.expect(c, K::DatasetOrphaned, ds, note);
    }

    fn provision_incomplete(&mut self, c: usize, k: usize) {
        let Some(proto) = self.proto_for(c, Proto::ALL[(k + 1) % 2]) else {
            return;
        };
        let Some(v) = self.fresh(c, proto) else {
            return;
        };
        let created = self.now - self.rng.random_range(HOUR..3 * DAY);
        let partial_share = self.rng.random_bool(0.5);
        let vol = &mut self.vols[v];
        vol.created = created;
        vol.pv = PvState::Absent;
        vol.pvc = PvcState::Absent;
        vol.provisioned = false;
        vol.share_context = false;
        vol.share = partial_share;
        vol.target_only = partial_share && proto == Proto::Iscsi;
        let ds = self.dataset_ref(v);
        self.expect(c, K::DatasetProvisionIncomplete, ds, if partial_share {
            "CreateVolume failed after creating the share/target (its id is recorded); PVC since deleted"
        } else {
            "CreateVolume failed right after zfs create; PVC since deleted"
        });
    }

    fn new_attach(&mut self, node: String, attached: bool, error: Option<(i64, String)>) -> Attach {
        Attach {
            name: format!("csi-{}", names::hex(&mut self.rng, 64)),
            node,
            attached,
            error,
        }
    }

    fn stale_attachments(&mut self, c: usize) {
        // (a) PV gone.
        if let Some(v) = self.fresh(c, Proto::Iscsi) {
            let node = self.schedulable_node(c);
            let att = self.new_attach(node, true, None);
            let name = att.name.clone();
            let vol = &mut self.vols[v];
            vol.pv = PvState::Absent;
            vol.pvc = PvcState::Absent;
            vol.dataset = false;
            vol.share = false;
            vol.attach = Some(att);
            self.expect(
                c,
                K::VolumeattachmentStale,
                ResourceRef::kube("VolumeAttachment", &name),
                "its PV was deleted (finalizer removed by hand), the attachment stayed",
            );
        }
        // (b) node gone.
        if let Some(v) = self.fresh(c, Proto::Iscsi) {
            let node = format!(
                "{}-node-{}",
                self.clusters[c].name,
                90 + self.rng.random_range(0..9)
            );
            let att = self.new_attach(node, true, None);
            let name = att.name.clone();
            self.vols[v].attach = Some(att);
            self.expect(
                c,
                K::VolumeattachmentStale,
                ResourceRef::kube("VolumeAttachment", &name),
                "its node was removed from the cluster",
            );
        }
        // (c) persistent attach error.
        if let Some(v) = self.fresh(c, Proto::Iscsi) {
            let node = self.schedulable_node(c);
            let t = self.now - self.rng.random_range(HOUR..2 * DAY);
            let msg =
                "rpc error: code = DeadlineExceeded desc = context deadline exceeded".to_owned();
            let att = self.new_attach(node, false, Some((t, msg)));
            let name = att.name.clone();
            self.vols[v].attach = Some(att);
            self.expect(
                c,
                K::VolumeattachmentStale,
                ResourceRef::kube("VolumeAttachment", &name),
                "attachError older than the grace period",
            );
        }
    }

    /// Adds a snapshot to volume `v`, shaped by `f`, and returns its index.
    fn add_snap(
        &mut self,
        v: usize,
        detached: bool,
        min_age: i64,
        f: impl FnOnce(&mut super::model::VolSnap),
    ) -> usize {
        let t = self.time_after(v, min_age);
        let mut s = self.new_snap(v, t, detached);
        f(&mut s);
        self.vols[v].snaps.push(s);
        self.vols[v].snaps.len() - 1
    }

    /// Subject of snapshot `k` of volume `v` on the NAS.
    pub(super) fn snap_ref(&self, v: usize, k: usize) -> ResourceRef {
        let vol = &self.vols[v];
        let s = &vol.snaps[k];
        if s.detached {
            let name = format!(
                "{}/{}/{}",
                self.parents[vol.parent].detached,
                vol.vid,
                s.csi_name()
            );
            ResourceRef::truenas(ds_type(vol.proto), &name)
        } else {
            ResourceRef::truenas(
                "snapshot",
                &format!("{}@{}", self.dataset_name(v), s.csi_name()),
            )
        }
    }

    fn vsc_ref(&self, v: usize, k: usize) -> ResourceRef {
        ResourceRef::kube(
            "VolumeSnapshotContent",
            &format!("snapcontent-{}", self.vols[v].snaps[k].uid),
        )
    }

    fn snapshot_orphans(&mut self, c: usize) {
        for detached in [false, true] {
            let Some(v) = self.pick_live(c, None) else {
                return;
            };
            let k = self.add_snap(v, detached, 2 * HOUR, |s| {
                s.vs = false;
                s.vsc = false;
            });
            let subject = self.snap_ref(v, k);
            self.expect(c, K::SnapshotOrphaned, subject, if detached {
                "detached snapshot dataset whose VolumeSnapshot and (Retain) content were deleted by hand"
            } else {
                "CSI snapshot whose VolumeSnapshotContent was deleted by hand (finalizer removed)"
            });
        }
    }

    fn snapshotcontent_backing_missing(&mut self, c: usize) {
        for detached in [false, true] {
            let Some(v) = self.pick_live(c, None) else {
                return;
            };
            let k = self.add_snap(v, detached, 2 * HOUR, |s| s.zfs = false);
            let subject = self.vsc_ref(v, k);
            self.expect(
                c,
                K::SnapshotcontentBackingMissing,
                subject,
                if detached {
                    "detached snapshot dataset destroyed by hand; VolumeSnapshot still readyToUse"
                } else {
                    "ZFS snapshot destroyed by hand; VolumeSnapshot still readyToUse"
                },
            );
        }
        // The master-branch leak: DeleteVolume's `zfs destroy -r` took the snapshots along.
        let Some(proto) = self.proto_for(c, Proto::Nfs) else {
            return;
        };
        let Some(v) = self.fresh(c, proto) else {
            return;
        };
        let k = self.add_snap(v, false, 3 * HOUR, |s| s.zfs = false);
        let vol = &mut self.vols[v];
        vol.pv = PvState::Absent;
        vol.pvc = PvcState::Absent;
        vol.dataset = false;
        vol.share = false;
        let subject = self.vsc_ref(v, k);
        self.expect(c, K::SnapshotcontentBackingMissing, subject, "volume deleted; DeleteVolume's recursive destroy took the snapshot (democratic-csi master)");
    }

    fn snapshotcontent_orphaned(&mut self, c: usize) {
        let Some(v) = self.pick_live(c, None) else {
            return;
        };
        let k = self.add_snap(v, false, 2 * HOUR, |s| {
            s.vs = false;
            s.retain = true;
        });
        let subject = self.vsc_ref(v, k);
        self.expect(c, K::SnapshotcontentOrphaned, subject, "deletionPolicy Retain, its VolumeSnapshot was deleted; the ZFS snapshot is still there");
    }

    fn not_ready(&mut self, c: usize) {
        let Some(v) = self.pick_live(c, None) else {
            return;
        };
        let vid = self.vols[v].vid.clone();
        let k = self.add_snap(v, false, 6 * HOUR, |s| {
            s.ready = false;
            s.zfs = false;
            s.error = Some(format!("Failed to check and update snapshot content: failed to take snapshot of the volume {vid}: \"rpc error: code = Internal desc = Error: out of space\""));
        });
        let s = &self.vols[v].snaps[k];
        let subject = ResourceRef::kube_ns("VolumeSnapshot", &self.vols[v].ns, &s.name);
        self.expect(
            c,
            K::VolumesnapshotNotReady,
            subject,
            "CreateSnapshot failed; status.error set",
        );
        let Some(v) = self.pick_live(c, None) else {
            return;
        };
        let k = self.add_snap(v, false, 6 * HOUR, |s| {
            s.ready = false;
            s.zfs = false;
            s.vsc = false;
            s.class = "fast-snapshots".into();
        });
        let s = &self.vols[v].snaps[k];
        let subject = ResourceRef::kube_ns("VolumeSnapshot", &self.vols[v].ns, &s.name);
        self.expect(c, K::VolumesnapshotNotReady, subject, "not ready for hours: its VolumeSnapshotClass does not exist, no content was ever created");
    }

    fn helper_leftovers(&mut self, c: usize) {
        for for_snapshot in [true, false] {
            let Some(v) = self.pick_live(c, None) else {
                return;
            };
            let created = self.time_after(v, 2 * HOUR);
            let uid = names::uuid(&mut self.rng);
            let name = if for_snapshot {
                format!("volume-source-for-snapshot-snapshot-{uid}")
            } else {
                format!("volume-source-for-volume-pvc-{uid}")
            };
            let dataset = self.dataset_name(v);
            let subject = ResourceRef::truenas("snapshot", &format!("{dataset}@{name}"));
            self.helpers.push(Helper {
                dataset,
                name,
                created,
                defer_destroy: false,
            });
            self.expect(c, K::SnapshotHelperLeftover, subject, if for_snapshot {
                "a detached-snapshot operation failed after taking its temporary snapshot"
            } else {
                "the clone this helper was taken for is gone (CreateVolume failed after the snapshot)"
            });
        }
    }
}
