//! Renders each cluster's Kubernetes objects as the apiserver returns them
//! (`kubectl get -o json` items: apiVersion, kind, metadata, spec, status).

use rand::Rng;
use serde_json::{Map, Value, json};

use super::Gen;
use super::model::{ClusterPlan, EventSpec, Proto, PvState, PvcState, Volume};
use super::names::{self, quantity, rfc3339};
use super::nas_objects::NAS_IP;
use crate::world::Cluster;

pub(super) const DRIVER_NS: &str = "democratic-csi";
const BASENAME: &str = "iqn.2005-10.org.freenas.ctl";

/// Accumulates one cluster's objects and hands out resource versions.
pub(super) struct Objects {
    pub(super) items: Vec<Value>,
    pub(super) rv: u64,
}

impl Objects {
    /// `metadata` with name, namespace, uid, resourceVersion and creationTimestamp.
    pub(super) fn meta(
        &mut self,
        name: &str,
        ns: Option<&str>,
        uid: &str,
        created: i64,
    ) -> Map<String, Value> {
        self.rv += 1 + (self.rv % 7);
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        if let Some(ns) = ns {
            m.insert("namespace".into(), json!(ns));
        }
        m.insert("uid".into(), json!(uid));
        m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        m.insert("creationTimestamp".into(), json!(rfc3339(created)));
        m
    }

    pub(super) fn push(&mut self, api: &str, kind: &str, meta: Map<String, Value>, rest: Value) {
        let mut obj = Map::new();
        obj.insert("apiVersion".into(), json!(api));
        obj.insert("kind".into(), json!(kind));
        obj.insert("metadata".into(), Value::Object(meta));
        if let Value::Object(rest) = rest {
            obj.extend(rest);
        }
        self.items.push(Value::Object(obj));
    }
}

/// Helm release fullname of a deployment (`<release>-democratic-csi`).
pub(super) fn release(proto: Proto) -> String {
    format!("zfs-{}-democratic-csi", proto.as_str())
}

/// Renders every cluster.
pub(super) fn render(g: &mut Gen<'_>) -> Vec<Cluster> {
    let mut by_cluster: Vec<Vec<usize>> = vec![Vec::new(); g.clusters.len()];
    for (v, vol) in g.vols.iter().enumerate() {
        if let Some(c) = vol.cluster {
            by_cluster[c].push(v);
        }
    }
    let mut out = Vec::new();
    for (c, vols) in by_cluster.into_iter().enumerate() {
        let plan = g.clusters[c].clone();
        let mut o = Objects {
            items: Vec::new(),
            rv: 1000 + g.rng.random_range(0..100_000),
        };
        super::kube_infra::infrastructure(g, &plan, &mut o);
        let identity = |g: &mut Gen<'_>, p: Proto| {
            format!(
                "{}-{}-{}",
                (plan.created + 86_400) * 1000 + g.rng.random_range(0..1000),
                g.rng.random_range(100..9999),
                plan.driver(p)
            )
        };
        let identities = [identity(g, Proto::Nfs), identity(g, Proto::Iscsi)];
        for &v in &vols {
            let vol = g.vols[v].clone();
            volume_objects(g, &plan, &vol, &identities[vol.proto as usize], &mut o);
        }
        // A few routine events: the newest healthy volumes were provisioned.
        let mut recent: Vec<usize> = g.live[c].concat();
        recent.sort_by_key(|&v| std::cmp::Reverse(g.vols[v].created));
        for &v in recent.iter().take(3) {
            let vol = &g.vols[v];
            g.events.push(EventSpec {
                cluster: c,
                object: (
                    "PersistentVolumeClaim".into(),
                    Some(vol.ns.clone()),
                    vol.pvc_name.clone(),
                    vol.pvc_uid.clone(),
                ),
                reason: "ProvisioningSucceeded".into(),
                message: format!("Successfully provisioned volume {}", vol.pv_name),
                warning: false,
                component: "external-provisioner".into(),
                first: vol.created + 2,
                last: vol.created + 2,
                count: 1,
            });
        }
        let events: Vec<EventSpec> = g
            .events
            .iter()
            .filter(|e| e.cluster == c)
            .cloned()
            .collect();
        for e in &events {
            event(g, e, &mut o);
        }
        out.push(Cluster {
            name: plan.name.clone(),
            objects: o.items,
            snapshot_crds: true,
            denied: Vec::new(),
        });
    }
    out
}

fn volume_objects(
    g: &mut Gen<'_>,
    plan: &ClusterPlan,
    vol: &Volume,
    identity: &str,
    o: &mut Objects,
) {
    let driver = plan.driver(vol.proto);
    let dataset = format!("{}/{}", g.parents[vol.parent].name, vol.vid);
    let access = if vol.proto == Proto::Nfs {
        "ReadWriteMany"
    } else {
        "ReadWriteOnce"
    };
    let size = quantity(vol.capacity);
    let pvc_rv = (o.rv + 3).to_string();
    if vol.pv != PvState::Absent {
        let mut attrs = Map::new();
        attrs.insert("node_attach_driver".into(), json!(vol.proto.as_str()));
        attrs.insert(
            "provisioner_driver".into(),
            json!(plan.provisioner_driver(vol.proto)),
        );
        if let Some(id) = &plan.instance_id {
            attrs.insert("provisioner_driver_instance_id".into(), json!(id));
        }
        match vol.proto {
            Proto::Nfs => {
                attrs.insert("server".into(), json!(NAS_IP));
                attrs.insert("share".into(), json!(format!("/mnt/{dataset}")));
            }
            Proto::Iscsi => {
                attrs.insert("portal".into(), json!(format!("{NAS_IP}:3260")));
                attrs.insert("portals".into(), json!(""));
                attrs.insert("interface".into(), json!(""));
                attrs.insert(
                    "iqn".into(),
                    json!(format!("{BASENAME}:{}", vol.vid.to_lowercase())),
                );
                attrs.insert("lun".into(), json!("0"));
            }
        }
        attrs.insert(
            "storage.kubernetes.io/csiProvisionerIdentity".into(),
            json!(identity),
        );
        let rel = release(vol.proto);
        let secret = |key: &str| json!({"name": format!("{key}-secret-{}-{rel}", vol.class).chars().take(63).collect::<String>(), "namespace": DRIVER_NS});
        let mut m = o.meta(&vol.pv_name, None, &vol.pv_uid, vol.created + 3);
        let mut ann = json!({
            "pv.kubernetes.io/provisioned-by": driver,
            "volume.kubernetes.io/provisioner-deletion-secret-name": secret("provisioner")["name"],
            "volume.kubernetes.io/provisioner-deletion-secret-namespace": DRIVER_NS
        });
        if !vol.pv_name.ends_with(&vol.pvc_uid) && vol.style == names::IdStyle::Plain {
            ann["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        }
        m.insert("annotations".into(), ann);
        m.insert(
            "finalizers".into(),
            json!([
                "external-provisioner.volume.kubernetes.io/finalizer",
                "kubernetes.io/pv-protection"
            ]),
        );
        let mut spec = json!({
            "accessModes": [access],
            "capacity": {"storage": size},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": vol.pvc_name, "namespace": vol.ns, "resourceVersion": pvc_rv, "uid": vol.pvc_uid},
            "csi": {
                "driver": driver,
                "fsType": if vol.proto == Proto::Nfs { "nfs" } else { "ext4" },
                "volumeHandle": vol.vid,
                "volumeAttributes": attrs,
                "controllerExpandSecretRef": secret("controller-expand"),
                "controllerPublishSecretRef": secret("controller-publish"),
                "nodePublishSecretRef": secret("node-publish"),
                "nodeStageSecretRef": secret("node-stage")
            },
            "persistentVolumeReclaimPolicy": if vol.retain { "Retain" } else { "Delete" },
            "storageClassName": vol.class,
            "volumeMode": "Filesystem"
        });
        if vol.proto == Proto::Nfs {
            spec["mountOptions"] = json!(["noatime", "nfsvers=4"]);
        }
        let status = match vol.pv {
            PvState::Released { since } => {
                json!({"phase": "Released", "lastPhaseTransitionTime": rfc3339(since)})
            }
            _ => json!({"phase": "Bound", "lastPhaseTransitionTime": rfc3339(vol.created + 4)}),
        };
        o.push(
            "v1",
            "PersistentVolume",
            m,
            json!({"spec": spec, "status": status}),
        );
    }
    if vol.pvc != PvcState::Absent {
        let mut m = o.meta(&vol.pvc_name, Some(&vol.ns), &vol.pvc_uid, vol.created);
        let mut ann = json!({
            "volume.beta.kubernetes.io/storage-provisioner": driver,
            "volume.kubernetes.io/storage-provisioner": driver
        });
        if vol.pvc != PvcState::Pending {
            ann["pv.kubernetes.io/bind-completed"] = json!("yes");
            ann["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        }
        m.insert("annotations".into(), ann);
        m.insert("finalizers".into(), json!(["kubernetes.io/pvc-protection"]));
        let mut spec = json!({
            "accessModes": [access],
            "resources": {"requests": {"storage": size}},
            "storageClassName": vol.class,
            "volumeMode": "Filesystem"
        });
        if vol.pvc != PvcState::Pending {
            spec["volumeName"] = json!(vol.pv_name);
        }
        if let Some((_, _, kind, name)) = &vol.content_source {
            let group = if kind == "VolumeSnapshot" {
                Some("snapshot.storage.k8s.io")
            } else {
                None
            };
            let mut r = json!({"kind": kind, "name": name});
            if let Some(group) = group {
                r["apiGroup"] = json!(group);
            }
            spec["dataSource"] = r.clone();
            spec["dataSourceRef"] = r;
        }
        let status = match vol.pvc {
            PvcState::Bound => {
                json!({"phase": "Bound", "accessModes": [access], "capacity": {"storage": size}})
            }
            PvcState::Lost => {
                json!({"phase": "Lost", "accessModes": [access], "capacity": {"storage": size}})
            }
            _ => json!({"phase": "Pending"}),
        };
        o.push(
            "v1",
            "PersistentVolumeClaim",
            m,
            json!({"spec": spec, "status": status}),
        );
    }
    if let Some(att) = &vol.attach {
        let uid = names::uuid(&mut g.rng);
        let t = vol.created + 60 + g.rng.random_range(0..(g.now - vol.created).max(121) / 2);
        let mut m = o.meta(&att.name, None, &uid, t);
        m.insert(
            "annotations".into(),
            json!({"csi.alpha.kubernetes.io/node-id": att.node}),
        );
        m.insert(
            "finalizers".into(),
            json!([format!("external-attacher/{}", driver.replace('.', "-"))]),
        );
        let mut status = json!({"attached": att.attached});
        if let Some((t, msg)) = &att.error {
            status["attachError"] = json!({"time": rfc3339(*t), "message": msg});
        }
        let spec = json!({"attacher": driver, "nodeName": att.node, "source": {"persistentVolumeName": vol.pv_name}});
        o.push(
            "storage.k8s.io/v1",
            "VolumeAttachment",
            m,
            json!({"spec": spec, "status": status}),
        );
    }
    for s in &vol.snaps {
        let content = format!("snapcontent-{}", s.uid);
        let vs_rv = (o.rv + 1).to_string();
        if s.vs {
            let mut m = o.meta(&s.name, Some(&vol.ns), &s.uid, s.created);
            m.insert(
                "finalizers".into(),
                json!([
                    "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection",
                    "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
                ]),
            );
            let mut status = json!({"readyToUse": s.ready});
            if s.vsc {
                status["boundVolumeSnapshotContentName"] = json!(content);
            }
            if s.ready {
                status["creationTime"] = json!(rfc3339(s.created + 1));
                status["restoreSize"] = json!(quantity(vol.capacity));
            }
            if let Some(err) = &s.error {
                status["error"] = json!({"message": err, "time": rfc3339(s.created + 5)});
            }
            let spec = json!({"source": {"persistentVolumeClaimName": vol.pvc_name}, "volumeSnapshotClassName": s.class});
            o.push(
                "snapshot.storage.k8s.io/v1",
                "VolumeSnapshot",
                m,
                json!({"spec": spec, "status": status}),
            );
        }
        if s.vsc {
            let uid = names::uuid(&mut g.rng);
            let mut m = o.meta(&content, None, &uid, s.created + 1);
            m.insert(
                "finalizers".into(),
                json!(["snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"]),
            );
            if s.vsc_deleting {
                m.insert(
                    "deletionTimestamp".into(),
                    json!(rfc3339(g.now - 3 * 86_400)),
                );
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            let handle = format!(
                "{}{}{}",
                vol.vid,
                if s.detached { "/" } else { "@" },
                s.csi_name()
            );
            let mut status = json!({"readyToUse": s.ready});
            if s.ready {
                status["snapshotHandle"] = json!(handle);
                status["creationTime"] = json!((s.created + 1) as i128 * 1_000_000_000);
                status["restoreSize"] = json!(vol.capacity);
            }
            if let Some(err) = &s.error {
                status["error"] = json!({"message": err, "time": rfc3339(s.created + 5)});
            }
            let spec = json!({
                "deletionPolicy": if s.retain { "Retain" } else { "Delete" },
                "driver": driver,
                "source": {"volumeHandle": vol.vid},
                "volumeSnapshotClassName": s.class,
                "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "name": s.name, "namespace": vol.ns, "resourceVersion": vs_rv, "uid": s.uid}
            });
            o.push(
                "snapshot.storage.k8s.io/v1",
                "VolumeSnapshotContent",
                m,
                json!({"spec": spec, "status": status}),
            );
        }
    }
}

fn event(g: &mut Gen<'_>, e: &EventSpec, o: &mut Objects) {
    let (kind, ns, name, obj_uid) = &e.object;
    let uid = names::uuid(&mut g.rng);
    let ev_name = format!("{name}.{}", names::hex(&mut g.rng, 16));
    let ns_of_event = ns.clone().unwrap_or_else(|| "default".into());
    let m = o.meta(&ev_name, Some(&ns_of_event), &uid, e.first);
    let mut involved = json!({"apiVersion": "v1", "kind": kind, "name": name, "uid": obj_uid});
    if let Some(ns) = ns {
        involved["namespace"] = json!(ns);
    }
    let rest = json!({
        "involvedObject": involved,
        "reason": e.reason,
        "message": e.message,
        "type": if e.warning { "Warning" } else { "Normal" },
        "source": {"component": e.component},
        "reportingComponent": e.component,
        "reportingInstance": "",
        "firstTimestamp": rfc3339(e.first),
        "lastTimestamp": rfc3339(e.last),
        "count": e.count
    });
    o.push("v1", "Event", m, rest);
}
