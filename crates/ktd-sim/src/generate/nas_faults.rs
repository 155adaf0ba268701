//! Planted findings whose subject lives on the NAS and that need more than one volume:
//! `clone-blocks-delete`, `share-orphaned`, `iscsi-orphaned`.

use ktd_model::{FindingKind as K, ResourceRef};
use rand::Rng;

use super::Gen;
use super::model::{EventSpec, Helper, Proto, PvState, PvcState};
use crate::world::SmbShare;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

impl Gen<'_> {
    /// Makes `w` a clone created after `t` (and before `until`) with the given origin.
    fn make_clone(
        &mut self,
        w: usize,
        src: usize,
        t: i64,
        until: i64,
        origin: String,
        source: (&str, String, &str, String),
    ) {
        let created = self.rng.random_range(t + 600..until.max(t + 601));
        let ns = self.vols[src].ns.clone();
        let cap = self.vols[src].capacity;
        let vol = &mut self.vols[w];
        vol.created = created;
        vol.origin = Some(origin);
        vol.content_source = Some((source.0.into(), source.1, source.2.into(), source.3));
        vol.ns = ns;
        vol.capacity = cap;
        vol.used = vol.used.min(cap);
        vol.pinned = true;
        self.vols[src].pinned = true;
    }

    pub(super) fn clone_blocks_delete(&mut self, c: usize) {
        let Some(proto) = [Proto::Nfs, Proto::Iscsi]
            .into_iter()
            .find(|&p| self.anchored(c, p))
        else {
            return;
        };
        // (a) a CSI snapshot deleted (zfs destroy -d) while a restored clone uses it.
        if let (Some(s), Some(w)) = (self.fresh(c, proto), self.fresh(c, proto)) {
            let t = self.time_after(s, 2 * DAY);
            let mut snap = self.new_snap(s, t, false);
            snap.vs = false;
            snap.vsc = false;
            snap.defer_destroy = true;
            let (name, vs_name) = (snap.csi_name(), snap.name.clone());
            self.vols[s].snaps.push(snap);
            let k = self.vols[s].snaps.len() - 1;
            let origin = format!("{}@{name}", self.dataset_name(s));
            let id = format!("{}@{name}", self.vols[s].vid);
            self.make_clone(
                w,
                s,
                t,
                self.now - DAY,
                origin,
                ("snapshot", id, "VolumeSnapshot", vs_name),
            );
            let subject = self.snap_ref(s, k);
            self.expect(c, K::CloneBlocksDelete, subject, "VolumeSnapshot deleted: DeleteSnapshot's `zfs destroy -d` left the snapshot (defer_destroy=on) because a restored volume is cloned from it");
        }
        // (b) a Released PV (policy Delete) whose DeleteVolume fails on a clone.
        if let (Some(d), Some(w)) = (self.fresh(c, proto), self.fresh(c, proto)) {
            let since = self.time_after(d, 2 * HOUR);
            let vol = &mut self.vols[d];
            vol.pv = PvState::Released { since };
            vol.pvc = PvcState::Absent;
            let (d_created, d_vid, d_pvc) = (vol.created, vol.vid.clone(), vol.pvc_name.clone());
            let helper = format!("volume-source-for-volume-{}", self.vols[w].vid);
            let d_ds = self.dataset_name(d);
            self.make_clone(
                w,
                d,
                d_created,
                since - 600,
                format!("{d_ds}@{helper}"),
                ("volume", d_vid, "PersistentVolumeClaim", d_pvc),
            );
            let created = self.vols[w].created - 5;
            self.helpers.push(Helper {
                dataset: d_ds,
                name: helper,
                created,
                defer_destroy: false,
            });
            let (pv_name, pv_uid) = (self.vols[d].pv_name.clone(), self.vols[d].pv_uid.clone());
            self.events.push(EventSpec {
                cluster: c,
                object: ("PersistentVolume".into(), None, pv_name, pv_uid),
                reason: "VolumeFailedDelete".into(),
                message:
                    "rpc error: code = FailedPrecondition desc = filesystem has dependent clones"
                        .into(),
                warning: true,
                component: "external-provisioner".into(),
                first: since,
                last: self.now - self.rng.random_range(60..900),
                count: self.rng.random_range(20..2000),
            });
            let pv = self.pv_ref(d);
            self.expect(
                c,
                K::PvReleased,
                pv,
                "PVC deleted (policy Delete) but DeleteVolume keeps failing: dependent clone",
            );
            let ds = self.dataset_ref(d);
            self.expect(c, K::CloneBlocksDelete, ds, "its PV is Released (Delete) and a live volume is cloned from its volume-source-for-volume-* snapshot");
        }
        // (c) a detached snapshot whose content deletion fails on a clone (issue #549).
        if let (Some(s), Some(w)) = (self.fresh(c, proto), self.fresh(c, proto)) {
            let t = self.time_after(s, 2 * DAY);
            let mut snap = self.new_snap(s, t, true);
            snap.vs = false;
            snap.retain = false;
            snap.vsc_deleting = true;
            snap.error = Some("Failed to delete snapshot: rpc error: code = Internal desc = Error: cannot destroy: volume has dependent clones".into());
            let (name, vs_name) = (snap.csi_name(), snap.name.clone());
            self.vols[s].snaps.push(snap);
            let k = self.vols[s].snaps.len() - 1;
            let det = format!(
                "{}/{}/{name}",
                self.parents[self.vols[s].parent].detached, self.vols[s].vid
            );
            let helper = format!("volume-source-for-volume-{}", self.vols[w].vid);
            let id = format!("{}/{name}", self.vols[s].vid);
            self.make_clone(
                w,
                s,
                t,
                self.now - DAY,
                format!("{det}@{helper}"),
                ("snapshot", id, "VolumeSnapshot", vs_name),
            );
            let created = self.vols[w].created - 5;
            self.helpers.push(Helper {
                dataset: det,
                name: helper,
                created,
                defer_destroy: true,
            });
            let subject = self.snap_ref(s, k);
            self.expect(c, K::CloneBlocksDelete, subject, "detached snapshot being deleted (VSC deletionTimestamp) but a restored volume is cloned from it");
        }
    }

    pub(super) fn share_orphaned(&mut self, c: usize) {
        let Some(v) = self.fresh(c, Proto::Nfs) else {
            return;
        };
        let vol = &mut self.vols[v];
        vol.pv = PvState::Absent;
        vol.pvc = PvcState::Absent;
        vol.dataset = false;
        let path = format!("/mnt/{}", self.dataset_name(v));
        self.expect(c, K::ShareOrphaned, ResourceRef::truenas("nfs-share", &path), "PV deleted, then the dataset destroyed with `zfs destroy` on the shell: the share stayed");
        // Now and then an admin had also shared the volume over SMB by hand.
        if self.smb_shares.is_empty() || self.rng.random_bool(0.3) {
            let name = format!("{}-files", self.vols[v].pvc_name);
            self.smb_shares.push(SmbShare {
                id: self.smb_shares.len() as u32 + 1,
                name: name.clone(),
                path,
                comment: "hand-made share of a Kubernetes volume".into(),
                enabled: true,
            });
            self.expect(
                c,
                K::ShareOrphaned,
                ResourceRef::truenas("smb-share", &name),
                "hand-made SMB share of the same destroyed dataset",
            );
        }
    }

    pub(super) fn iscsi_orphaned(&mut self, c: usize) {
        if let Some(v) = self.fresh(c, Proto::Iscsi) {
            let vol = &mut self.vols[v];
            vol.pv = PvState::Absent;
            vol.pvc = PvcState::Absent;
            vol.dataset = false;
            let name = vol.vid.to_lowercase();
            self.expect(c, K::IscsiOrphaned, ResourceRef::truenas("iscsi-extent", &name), "zvol destroyed on the shell after its PV was deleted: target, extent and target-extent stayed");
        }
        if let (Some(x), Some(y)) = (
            self.fresh(c, Proto::Iscsi),
            self.pick_live(c, Some(Proto::Iscsi)),
        ) {
            let disk = format!("zvol/{}", self.dataset_name(y));
            self.vols[x].extent_disk = Some(disk);
            self.vols[x].pinned = true;
            let name = self.vols[x].vid.to_lowercase();
            self.expect(c, K::IscsiOrphaned, ResourceRef::truenas("iscsi-extent", &name), "the extent recorded on this zvol (freenas_iscsi_extent_id) serves another volume's zvol");
        }
    }
}
