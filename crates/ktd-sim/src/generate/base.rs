//! The healthy part of a world: clusters, parents, volumes, snapshots, clones, periodic
//! snapshots. Everything here is consistent (no finding), whatever the seed.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::Gen;
use super::model::{
    Attach, ClusterPlan, Helper, Parent, Proto, PvState, PvcState, VolSnap, Volume,
};
use super::names::{self, IdStyle};

const GIB: u64 = 1 << 30;
const DAY: i64 = 86_400;

const CLUSTER_NAMES: [&str; 6] = ["prod-a", "prod-b", "staging", "edge-1", "edge-2", "lab"];
const NAMESPACES: [&str; 6] = ["apps", "databases", "monitoring", "gitea", "media", "ci"];
const PVC_BASES: [&str; 10] = [
    "data-postgres",
    "redis-data",
    "gitea-config",
    "prometheus-db",
    "grafana-storage",
    "minio-export",
    "jellyfin-config",
    "loki-chunks",
    "runner-cache",
    "elastic-data",
];
const SIZES_GIB: [u64; 8] = [1, 2, 5, 8, 10, 20, 50, 100];

impl Gen<'_> {
    /// Cluster `i`'s name (unique even past the list of pretty names).
    fn cluster_name(i: usize) -> String {
        match CLUSTER_NAMES.get(i) {
            Some(n) => (*n).to_owned(),
            None => format!("cluster-{i}"),
        }
    }

    /// Clusters, their parents and nodes.
    pub(super) fn plan_clusters(&mut self) {
        let n = self.opts.clusters.max(1);
        for c in 0..n {
            let name = Self::cluster_name(c);
            let suffix = if n > 1 {
                format!("-{name}")
            } else {
                String::new()
            };
            let parent = |proto: Proto, parents: &mut Vec<Parent>| {
                parents.push(Parent {
                    name: format!("tank/k8s/{name}/{}", proto.as_str()),
                    detached: format!("tank/k8s/{name}/{}-snapshots", proto.as_str()),
                    cluster: Some(c),
                    proto,
                });
                parents.len() - 1
            };
            let nfs_parent = parent(Proto::Nfs, &mut self.parents);
            let iscsi_parent = parent(Proto::Iscsi, &mut self.parents);
            let node_count = self.rng.random_range(3..=5);
            let nodes = (1..=node_count)
                .map(|k| format!("{name}-node-{k}"))
                .collect();
            let unschedulable = self
                .rng
                .random_bool(0.5)
                .then(|| self.rng.random_range(0..node_count));
            let instance_id = self
                .rng
                .random_bool(0.3)
                .then(|| names::uuid(&mut self.rng));
            let api_drivers = self.rng.random_bool(0.6);
            let created = self.now - self.rng.random_range(500..900) * DAY;
            self.clusters.push(ClusterPlan {
                name,
                nfs_driver: format!("org.democratic-csi.nfs{suffix}"),
                iscsi_driver: format!("org.democratic-csi.iscsi{suffix}"),
                api_drivers,
                instance_id,
                nodes,
                unschedulable,
                namespaces: NAMESPACES.iter().map(|s| (*s).to_owned()).collect(),
                nfs_parent,
                iscsi_parent,
                created,
            });
            self.live.push([Vec::new(), Vec::new()]);
        }
    }

    /// A schedulable node of cluster `c`.
    pub(super) fn schedulable_node(&mut self, c: usize) -> String {
        let plan = &self.clusters[c];
        let choices: Vec<&String> = plan
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != plan.unschedulable)
            .map(|(_, n)| n)
            .collect();
        (*choices
            .choose(&mut self.rng)
            .expect("clusters have 3+ nodes"))
        .clone()
    }

    /// A healthy, Bound volume of cluster `c` (or of a retired parent when `c` is `None`).
    pub(super) fn new_volume(
        &mut self,
        cluster: Option<usize>,
        parent: usize,
        style: IdStyle,
        created: i64,
    ) -> Volume {
        let proto = self.parents[parent].proto;
        let (pvc_uid, pv_name, vid) = loop {
            let pvc_uid = names::uuid(&mut self.rng);
            let (pv_name, vid) = names::volume_names(style, &pvc_uid);
            if self.vids.insert(vid.clone()) {
                break (pvc_uid, pv_name, vid);
            }
        };
        let ns = NAMESPACES.choose(&mut self.rng).expect("non-empty");
        let base = PVC_BASES.choose(&mut self.rng).expect("non-empty");
        let pvc_name = format!("{base}-{}", self.vols.len());
        let capacity = SIZES_GIB.choose(&mut self.rng).expect("non-empty") * GIB;
        let used = (capacity as f64 * self.rng.random_range(0.01..0.9)) as u64 / 4096 * 4096;
        Volume {
            parent,
            cluster,
            proto,
            style,
            pv_name,
            pv_uid: names::uuid(&mut self.rng),
            vid,
            ns: (*ns).to_owned(),
            pvc_name,
            pvc_uid,
            class: proto.as_str().to_owned(),
            retain: false,
            capacity,
            used,
            created,
            pv: PvState::Bound,
            pvc: PvcState::Bound,
            dataset: true,
            provisioned: true,
            share: true,
            share_context: true,
            target_only: false,
            extent_disk: None,
            origin: None,
            content_source: None,
            attach: None,
            snaps: Vec::new(),
            autos: Vec::new(),
            pinned: false,
        }
    }

    /// A ready CSI snapshot of volume `v` taken at `created` (not yet attached to it).
    pub(super) fn new_snap(&mut self, v: usize, created: i64, detached: bool) -> VolSnap {
        let vol = &self.vols[v];
        let proto = vol.proto;
        let k = vol.snaps.len();
        let name = format!("{}-snap-{k}", vol.pvc_name);
        let used = (vol.used / 20).max(4096) / 4096 * self.rng.random_range(1..=4) * 4096 / 4;
        VolSnap {
            uid: names::uuid(&mut self.rng),
            name,
            created,
            detached,
            class: snapshot_class(proto, detached),
            vs: true,
            vsc: true,
            zfs: true,
            retain: detached,
            ready: true,
            error: None,
            vsc_deleting: false,
            defer_destroy: false,
            used,
            pinned: false,
        }
    }

    /// The `volumes` healthy-shaped slots, with snapshots, clones and periodic snapshots.
    pub(super) fn base_volumes(&mut self) {
        let n_clusters = self.clusters.len();
        for slot in 0..self.opts.volumes {
            let c = slot % n_clusters;
            let anchor = slot < 2 * n_clusters;
            let proto = if anchor {
                Proto::ALL[(slot / n_clusters) % 2]
            } else if self.rng.random_bool(0.6) {
                Proto::Nfs
            } else {
                Proto::Iscsi
            };
            let style = if anchor {
                IdStyle::Plain
            } else {
                match self.rng.random_range(0..100) {
                    0..5 => IdStyle::Hashed,
                    5..10 => IdStyle::Truncated,
                    _ => IdStyle::Plain,
                }
            };
            let parent = self.clusters[c].parent(proto);
            let lo = self.clusters[c].created.max(self.now - 400 * DAY);
            let created = self.rng.random_range(lo..self.now - 2 * DAY);
            let mut vol = self.new_volume(Some(c), parent, style, created);
            if !anchor {
                self.maybe_clone(&mut vol, c, proto);
            }
            if proto == Proto::Iscsi && self.rng.random_bool(0.75) {
                let node = self.schedulable_node(c);
                vol.attach = Some(Attach {
                    name: format!("csi-{}", names::hex(&mut self.rng, 64)),
                    node,
                    attached: true,
                    error: None,
                });
            }
            if (anchor && proto == Proto::Nfs) || self.rng.random_bool(0.1) {
                let first = vol.created / 3600 * 3600 + 3600;
                for k in 0..self.rng.random_range(1..=3) {
                    let t = first + k * DAY;
                    if t < self.now - 3600 {
                        vol.autos.push(t);
                    }
                }
            }
            self.vols.push(vol);
            let v = self.vols.len() - 1;
            let detached = self.rng.random_bool(0.15);
            let created = self.vols[v].created;
            let spv = self.opts.snapshots_per_volume as i64;
            let span = (self.now - 1800 - created - 3600).max(spv);
            for k in 0..spv {
                let t =
                    created + 3600 + span * k / spv + self.rng.random_range(0..(span / spv).max(1));
                let t = t.min(self.now - 1800);
                let snap = self.new_snap(v, t, detached);
                self.vols[v].snaps.push(snap);
            }
            self.live[c][proto as usize].push(v);
        }
    }

    /// Turns a fresh volume into a clone of an earlier live volume (or of one of its
    /// snapshots) of the same deployment, now and then.
    fn maybe_clone(&mut self, vol: &mut Volume, c: usize, proto: Proto) {
        let roll = self.rng.random_range(0..100);
        if roll >= 7 || self.live[c][proto as usize].is_empty() {
            return;
        }
        let src = *self.live[c][proto as usize]
            .choose(&mut self.rng)
            .expect("non-empty");
        let from_snapshot = roll < 4;
        let src_ds = self.dataset_name(src);
        if from_snapshot {
            let candidates: Vec<usize> = (0..self.vols[src].snaps.len())
                .filter(|&k| {
                    let s = &self.vols[src].snaps[k];
                    !s.detached && s.created + 600 < self.now - 3 * 3600
                })
                .collect();
            let Some(&k) = candidates.choose(&mut self.rng) else {
                return;
            };
            let snap = &mut self.vols[src].snaps[k];
            snap.pinned = true;
            let (snap_name, vs_name, t) = (snap.csi_name(), snap.name.clone(), snap.created);
            vol.created = self.rng.random_range(t + 600..self.now - 3 * 3600);
            vol.origin = Some(format!("{src_ds}@{snap_name}"));
            vol.content_source = Some((
                "snapshot".into(),
                format!("{}@{snap_name}", self.vols[src].vid),
                "VolumeSnapshot".into(),
                vs_name,
            ));
        } else {
            let t = self.vols[src].created;
            if t + 600 >= self.now - 3 * 3600 {
                return;
            }
            vol.created = self.rng.random_range(t + 600..self.now - 3 * 3600);
            let helper = format!("volume-source-for-volume-{}", vol.vid);
            vol.origin = Some(format!("{src_ds}@{helper}"));
            vol.content_source = Some((
                "volume".into(),
                self.vols[src].vid.clone(),
                "PersistentVolumeClaim".into(),
                self.vols[src].pvc_name.clone(),
            ));
            self.helpers.push(Helper {
                dataset: src_ds,
                name: helper,
                created: vol.created - 5,
                defer_destroy: false,
            });
        }
        vol.ns = self.vols[src].ns.clone();
        vol.capacity = self.vols[src].capacity;
        vol.used = vol.used.min(self.vols[src].used);
        self.vols[src].pinned = true;
    }
}

/// VolumeSnapshotClass name of a deployment.
pub(super) fn snapshot_class(proto: Proto, detached: bool) -> String {
    if detached {
        format!("{}-detached", proto.as_str())
    } else {
        proto.as_str().to_owned()
    }
}
