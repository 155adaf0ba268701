//! Renders the NAS: pools, datasets with democratic-csi's local properties, snapshots,
//! shares, iSCSI assets, services and an API key.

use std::collections::BTreeMap;

use rand::Rng;

use super::Gen;
use super::model::Proto;
use super::names;
use crate::world::{
    ApiKey, Dataset, DatasetType, IscsiExtent, IscsiTarget, IscsiTargetExtent, Nas, NfsShare, Pool,
    Service, Snapshot,
};

/// IP the NAS serves NFS and iSCSI on (`nfs.shareHost`, `iscsi.targetPortal`).
pub(super) const NAS_IP: &str = "192.168.10.20";
const BASENAME: &str = "iqn.2005-10.org.freenas.ctl";
const P: &str = "democratic-csi:";

/// Share ids of one volume.
#[derive(Clone, Copy, Default)]
struct ShareIds {
    nfs: Option<u32>,
    target: Option<u32>,
    extent: Option<u32>,
    targetextent: Option<u32>,
}

fn plain_dataset(name: &str, kind: DatasetType, creation: i64) -> Dataset {
    Dataset {
        name: name.to_owned(),
        kind,
        used_by_dataset: 196_608,
        used_by_snapshots: 0,
        volsize: None,
        volblocksize: None,
        refquota: None,
        refreservation: None,
        origin: None,
        creation,
        encrypted: false,
        user_properties: BTreeMap::new(),
        received_properties: BTreeMap::new(),
    }
}

/// The JSON democratic-csi stores in `csi_share_volume_context` (its key order).
pub(super) fn share_context(proto: Proto, dataset: &str, vid: &str) -> String {
    match proto {
        Proto::Nfs => format!(
            r#"{{"node_attach_driver":"nfs","server":"{NAS_IP}","share":"/mnt/{dataset}"}}"#
        ),
        Proto::Iscsi => format!(
            r#"{{"node_attach_driver":"iscsi","portal":"{NAS_IP}:3260","portals":"","interface":"","iqn":"{BASENAME}:{}","lun":0}}"#,
            vid.to_lowercase()
        ),
    }
}

fn kind_of(proto: Proto) -> DatasetType {
    match proto {
        Proto::Nfs => DatasetType::Filesystem,
        Proto::Iscsi => DatasetType::Volume,
    }
}

fn set(props: &mut BTreeMap<String, String>, key: &str, value: impl Into<String>) {
    props.insert(format!("{P}{key}"), value.into());
}

/// Renders the NAS from the generator's model.
pub(super) fn render(g: &mut Gen<'_>) -> Nas {
    let mut datasets: BTreeMap<String, Dataset> = BTreeMap::new();
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let oldest = g.clusters.iter().map(|c| c.created).min().unwrap_or(g.now) - 30 * 86_400;
    for (name, t) in [
        ("tank", oldest),
        ("tank/k8s", oldest + 3600),
        ("tank/media", oldest + 7200),
        ("tank/backups", oldest + 9000),
    ] {
        datasets.insert(name.into(), plain_dataset(name, DatasetType::Filesystem, t));
    }
    for p in &g.parents {
        let t = p.cluster.map_or(oldest + 4000, |c| g.clusters[c].created);
        let cluster_ds = p.name.rsplit_once('/').map_or("tank", |x| x.0).to_owned();
        for name in [&cluster_ds, &p.name, &p.detached] {
            datasets.insert(
                name.clone(),
                plain_dataset(name, DatasetType::Filesystem, t),
            );
        }
    }

    // Shares first: their ids go into the dataset properties.
    let mut nas = Nas {
        personality: g.opts.personality,
        hostname: "truenas".into(),
        iscsi_basename: BASENAME.into(),
        ..Nas::default()
    };
    let mut ids = vec![ShareIds::default(); g.vols.len()];
    for (v, vol) in g.vols.iter().enumerate() {
        if !vol.share {
            continue;
        }
        let parent = &g.parents[vol.parent];
        let ds = format!("{}/{}", parent.name, vol.vid);
        let csi_name = vol
            .cluster
            .map_or("org.democratic-csi.nfs".to_owned(), |c| {
                g.clusters[c].driver(vol.proto).to_owned()
            });
        match vol.proto {
            Proto::Nfs => {
                let id = nas.nfs_shares.len() as u32 + 1;
                nas.nfs_shares.push(NfsShare {
                    id,
                    path: format!("/mnt/{ds}"),
                    comment: format!("democratic-csi ({csi_name}): {ds}"),
                    networks: vec!["192.168.10.0/24".into()],
                    hosts: Vec::new(),
                    enabled: true,
                });
                ids[v].nfs = Some(id);
            }
            Proto::Iscsi => {
                let name = vol.vid.to_lowercase();
                let target = nas.iscsi_targets.len() as u32 + 1;
                nas.iscsi_targets.push(IscsiTarget {
                    id: target,
                    name: name.clone(),
                    portal: 1,
                    initiator: 1,
                });
                ids[v].target = Some(target);
                if vol.target_only {
                    continue;
                }
                let extent = nas.iscsi_extents.len() as u32 + 1;
                let disk = vol
                    .extent_disk
                    .clone()
                    .unwrap_or_else(|| format!("zvol/{ds}"));
                nas.iscsi_extents.push(IscsiExtent {
                    id: extent,
                    name,
                    disk,
                    comment: String::new(),
                    enabled: true,
                });
                let te = nas.iscsi_targetextents.len() as u32 + 1;
                nas.iscsi_targetextents.push(IscsiTargetExtent {
                    id: te,
                    target,
                    extent,
                    lunid: 0,
                });
                ids[v].extent = Some(extent);
                ids[v].targetextent = Some(te);
            }
        }
    }

    for (v, vol) in g.vols.iter().enumerate() {
        let parent = &g.parents[vol.parent];
        let ds_name = format!("{}/{}", parent.name, vol.vid);
        let mut snap_used = 0;
        if vol.dataset {
            for s in vol.snaps.iter().filter(|s| s.zfs && !s.detached) {
                let mut props = BTreeMap::new();
                set(&mut props, "csi_snapshot_name", s.csi_name());
                set(&mut props, "csi_snapshot_source_volume_id", vol.vid.clone());
                set(&mut props, "managed_resource", "true");
                set(&mut props, "provision_success", "true");
                snap_used += s.used;
                snapshots.push(Snapshot {
                    dataset: ds_name.clone(),
                    name: s.csi_name(),
                    createtxg: 0,
                    creation: s.created,
                    used: s.used,
                    referenced: vol.used.saturating_sub(s.used * 3),
                    user_properties: props,
                    defer_destroy: s.defer_destroy,
                    holds: 0,
                });
            }
            for &t in &vol.autos {
                let used = vol.used / 50 / 4096 * 4096;
                snap_used += used;
                snapshots.push(Snapshot {
                    dataset: ds_name.clone(),
                    name: names::auto_snapshot_name(t),
                    createtxg: 0,
                    creation: t,
                    used,
                    referenced: vol.used,
                    user_properties: BTreeMap::new(),
                    defer_destroy: false,
                    holds: 0,
                });
            }
            let mut props = BTreeMap::new();
            set(&mut props, "csi_volume_name", vol.pv_name.clone());
            set(&mut props, "managed_resource", "true");
            set(
                &mut props,
                "volume_context_provisioner_driver",
                vol.cluster.map_or("freenas-api-nfs".to_owned(), |c| {
                    g.clusters[c].provisioner_driver(vol.proto)
                }),
            );
            if let Some(id) = vol.cluster.and_then(|c| g.clusters[c].instance_id.clone()) {
                set(&mut props, "volume_context_provisioner_instance_id", id);
            }
            if let Some((kind, id, _, _)) = &vol.content_source {
                set(&mut props, "csi_volume_content_source_type", kind.clone());
                set(&mut props, "csi_volume_content_source_id", id.clone());
            }
            let i = ids[v];
            if let Some(id) = i.nfs {
                set(&mut props, "freenas_nfs_share_id", id.to_string());
            }
            if let Some(id) = i.target {
                set(&mut props, "freenas_iscsi_target_id", id.to_string());
            }
            if let (Some(e), Some(te)) = (i.extent, i.targetextent) {
                set(&mut props, "freenas_iscsi_extent_id", e.to_string());
                set(
                    &mut props,
                    "freenas_iscsi_targettoextent_id",
                    te.to_string(),
                );
                set(
                    &mut props,
                    "freenas_iscsi_assets_name",
                    vol.vid.to_lowercase(),
                );
            }
            if vol.share_context {
                set(
                    &mut props,
                    "csi_share_volume_context",
                    share_context(vol.proto, &ds_name, &vol.vid),
                );
            }
            if vol.provisioned {
                set(&mut props, "provision_success", "true");
            }
            let zvol = vol.proto == Proto::Iscsi;
            datasets.insert(
                ds_name.clone(),
                Dataset {
                    name: ds_name.clone(),
                    kind: kind_of(vol.proto),
                    used_by_dataset: vol.used,
                    used_by_snapshots: snap_used,
                    volsize: zvol.then_some(vol.capacity),
                    volblocksize: zvol.then_some(16_384),
                    refquota: (!zvol).then_some(vol.capacity),
                    refreservation: None,
                    origin: vol.origin.clone(),
                    creation: vol.created,
                    encrypted: false,
                    user_properties: props,
                    received_properties: BTreeMap::new(),
                },
            );
        }
        // Detached snapshots: a plain container per volume, a dataset per snapshot.
        for s in vol.snaps.iter().filter(|s| s.zfs && s.detached) {
            let container = format!("{}/{}", parent.detached, vol.vid);
            let entry = datasets.entry(container.clone()).or_insert_with(|| {
                plain_dataset(&container, DatasetType::Filesystem, s.created - 2)
            });
            entry.creation = entry.creation.min(s.created - 2);
            let name = format!("{container}/{}", s.csi_name());
            let mut props = BTreeMap::new();
            set(&mut props, "csi_snapshot_name", s.csi_name());
            set(&mut props, "csi_snapshot_source_volume_id", vol.vid.clone());
            set(&mut props, "managed_resource", "true");
            set(&mut props, "provision_success", "true");
            let zvol = vol.proto == Proto::Iscsi;
            datasets.insert(
                name.clone(),
                Dataset {
                    name,
                    kind: kind_of(vol.proto),
                    used_by_dataset: vol.used.saturating_sub(s.used),
                    used_by_snapshots: 0,
                    volsize: zvol.then_some(vol.capacity),
                    volblocksize: zvol.then_some(16_384),
                    refquota: None,
                    refreservation: None,
                    origin: None,
                    creation: s.created,
                    encrypted: false,
                    user_properties: props,
                    received_properties: BTreeMap::new(),
                },
            );
        }
    }
    for d in g.extra_datasets.drain(..) {
        datasets.insert(d.name.clone(), d);
    }
    for h in &g.helpers {
        assert!(
            datasets.contains_key(&h.dataset),
            "helper snapshot on a missing dataset {}",
            h.dataset
        );
        snapshots.push(Snapshot {
            dataset: h.dataset.clone(),
            name: h.name.clone(),
            createtxg: 0,
            creation: h.created,
            used: 0,
            referenced: datasets[&h.dataset].used_by_dataset,
            user_properties: BTreeMap::new(),
            defer_destroy: h.defer_destroy,
            holds: 0,
        });
    }

    // createtxg grows with creation time (a txg commits every ~5 s).
    snapshots
        .sort_by(|a, b| (a.creation, &a.dataset, &a.name).cmp(&(b.creation, &b.dataset, &b.name)));
    for (i, s) in snapshots.iter_mut().enumerate() {
        s.createtxg = 1_000 + u64::try_from((s.creation - oldest) / 5).unwrap_or(0) + i as u64;
    }
    snapshots.sort_by(|a, b| (&a.dataset, a.createtxg).cmp(&(&b.dataset, b.createtxg)));

    let allocated: u64 = datasets
        .values()
        .map(|d| d.used_by_dataset + d.used_by_snapshots)
        .sum();
    nas.pools.push(Pool {
        id: 1,
        name: "tank".into(),
        status: "ONLINE".into(),
        size: (allocated * 3).max(48 << 40),
        allocated,
        last_scrub: Some(g.now - g.rng.random_range(1..14) * 86_400),
    });
    nas.datasets = datasets.into_values().collect();
    nas.snapshots = snapshots;
    nas.smb_shares = g.smb_shares.clone();
    let cifs = if nas.smb_shares.is_empty() {
        (false, "STOPPED")
    } else {
        (true, "RUNNING")
    };
    nas.services = [
        ("nfs", true, "RUNNING"),
        ("iscsitarget", true, "RUNNING"),
        ("cifs", cifs.0, cifs.1),
        ("ssh", true, "RUNNING"),
    ]
    .into_iter()
    .map(|(s, enable, state)| Service {
        service: s.into(),
        enable,
        state: state.into(),
    })
    .collect();
    nas.api_keys.push(ApiKey {
        id: 1,
        name: "ktd".into(),
        key: format!("1-{}", names::hex(&mut g.rng, 64)),
        username: "truenas_admin".into(),
        revoked: false,
        readonly: false,
    });
    nas.boottime = g.now - g.rng.random_range(3..60) * 86_400;
    nas
}
