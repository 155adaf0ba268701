//! Renders each cluster's Kubernetes objects as the apiserver returns them
//! (`kubectl get -o json` items: apiVersion, kind, metadata, spec, status).

use rand::Rng;
use serde_json::{Map, Value, json};

use super::Gen;
use super::model::{ClusterPlan, EventSpec, Proto, PvState, PvcState, Volume};
use super::names::{self, quantity, rfc3339};
use super::nas_objects::NAS_IP;
use crate::world::Cluster;

const DRIVER_NS: &str = "democratic-csi";
const BASENAME: &str = "iqn.2005-10.org.freenas.ctl";

/// Accumulates one cluster's objects and hands out resource versions.
struct Objects {
    items: Vec<Value>,
    rv: u64,
}

impl Objects {
    /// `metadata` with name, namespace, uid, resourceVersion and creationTimestamp.
    fn meta(
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

    fn push(&mut self, api: &str, kind: &str, meta: Map<String, Value>, rest: Value) {
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
fn release(proto: Proto) -> String {
    format!("zfs-{}-democratic-csi", proto.as_str())
}

fn secret_params(class: &str, proto: Proto) -> Map<String, Value> {
    let rel = release(proto);
    let mut m = Map::new();
    for key in [
        "provisioner",
        "controller-publish",
        "node-stage",
        "node-publish",
        "controller-expand",
    ] {
        let name: String = format!("{key}-secret-{class}-{rel}")
            .chars()
            .take(63)
            .collect();
        m.insert(format!("csi.storage.k8s.io/{key}-secret-name"), json!(name));
        m.insert(
            format!("csi.storage.k8s.io/{key}-secret-namespace"),
            json!(DRIVER_NS),
        );
    }
    m
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
        infrastructure(g, &plan, &mut o);
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

/// Namespaces, nodes, CSI drivers and their pods, storage and snapshot classes.
fn infrastructure(g: &mut Gen<'_>, plan: &ClusterPlan, o: &mut Objects) {
    let t0 = plan.created;
    let mut namespaces = vec![
        "default".to_owned(),
        "kube-system".to_owned(),
        DRIVER_NS.to_owned(),
    ];
    namespaces.extend(plan.namespaces.iter().cloned());
    for ns in &namespaces {
        let uid = names::uuid(&mut g.rng);
        let mut m = o.meta(ns, None, &uid, t0 + 600);
        m.insert("labels".into(), json!({"kubernetes.io/metadata.name": ns}));
        o.push(
            "v1",
            "Namespace",
            m,
            json!({"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        );
    }
    let mut node_uids = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let uid = names::uuid(&mut g.rng);
        node_uids.push(uid.clone());
        let mut m = o.meta(node, None, &uid, t0 + 60 * i as i64);
        m.insert("labels".into(), json!({"kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}));
        let cordoned = plan.unschedulable == Some(i);
        let mut spec = json!({"podCIDR": format!("10.244.{i}.0/24")});
        if cordoned {
            spec["unschedulable"] = json!(true);
            spec["taints"] = json!([{"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "timeAdded": rfc3339(g.now - 7200)}]);
        }
        let status = json!({
            "addresses": [{"type": "InternalIP", "address": format!("192.168.10.{}", 31 + i)}, {"type": "Hostname", "address": node}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": rfc3339(g.now - 20), "lastTransitionTime": rfc3339(t0 + 120)}],
            "nodeInfo": {"kubeletVersion": "v1.33.5", "containerRuntimeVersion": "containerd://2.0.5", "osImage": "Ubuntu 24.04.3 LTS", "kernelVersion": "6.8.0-85-generic", "operatingSystem": "linux", "architecture": "amd64"}
        });
        o.push("v1", "Node", m, json!({"spec": spec, "status": status}));
    }
    for proto in Proto::ALL {
        let driver = plan.driver(proto);
        let uid = names::uuid(&mut g.rng);
        let mut m = o.meta(driver, None, &uid, t0 + 900);
        m.insert("labels".into(), json!({"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": release(proto).trim_end_matches("-democratic-csi")}));
        let spec = json!({
            "attachRequired": proto == Proto::Iscsi,
            "podInfoOnMount": true,
            "fsGroupPolicy": if proto == Proto::Iscsi { "File" } else { "ReadWriteOnceWithFSType" },
            "requiresRepublish": false,
            "storageCapacity": false,
            "seLinuxMount": false,
            "volumeLifecycleModes": ["Persistent", "Ephemeral"]
        });
        o.push("storage.k8s.io/v1", "CSIDriver", m, json!({"spec": spec}));
    }
    for (i, node) in plan.nodes.iter().enumerate() {
        let uid = names::uuid(&mut g.rng);
        let mut m = o.meta(node, None, &uid, t0 + 1000);
        m.insert(
            "ownerReferences".into(),
            json!([{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uids[i]}]),
        );
        let drivers: Vec<Value> = Proto::ALL
            .iter()
            .map(|&p| json!({"name": plan.driver(p), "nodeID": node, "topologyKeys": null}))
            .collect();
        o.push(
            "storage.k8s.io/v1",
            "CSINode",
            m,
            json!({"spec": {"drivers": drivers}}),
        );
    }
    for proto in Proto::ALL {
        driver_pods(g, plan, proto, o);
        for (class, retain) in [
            (proto.as_str().to_owned(), false),
            (format!("{}-retain", proto.as_str()), true),
        ] {
            let uid = names::uuid(&mut g.rng);
            let mut m = o.meta(&class, None, &uid, t0 + 1200);
            if proto == Proto::Nfs && !retain {
                m.insert(
                    "annotations".into(),
                    json!({"storageclass.kubernetes.io/is-default-class": "true"}),
                );
            }
            let mut params = secret_params(&class, proto);
            params.insert(
                "fsType".into(),
                json!(if proto == Proto::Nfs { "nfs" } else { "ext4" }),
            );
            let mut rest = json!({
                "provisioner": plan.driver(proto),
                "parameters": params,
                "reclaimPolicy": if retain { "Retain" } else { "Delete" },
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": true
            });
            if proto == Proto::Nfs {
                rest["mountOptions"] = json!(["noatime", "nfsvers=4"]);
            }
            o.push("storage.k8s.io/v1", "StorageClass", m, rest);
        }
        for detached in [false, true] {
            let class = super::base::snapshot_class(proto, detached);
            let uid = names::uuid(&mut g.rng);
            let mut m = o.meta(&class, None, &uid, t0 + 1300);
            if !detached {
                m.insert(
                    "annotations".into(),
                    json!({"snapshot.storage.kubernetes.io/is-default-class": "true"}),
                );
            }
            let rel = release(proto);
            let rest = json!({
                "driver": plan.driver(proto),
                "deletionPolicy": if detached { "Retain" } else { "Delete" },
                "parameters": {
                    "detachedSnapshots": detached.to_string(),
                    "csi.storage.k8s.io/snapshotter-secret-name": format!("snapshotter-secret-{class}-{rel}"),
                    "csi.storage.k8s.io/snapshotter-secret-namespace": DRIVER_NS
                }
            });
            o.push("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass", m, rest);
        }
    }
}

/// A Running, Ready driver pod `name` on `node`.
fn pod(
    g: &mut Gen<'_>,
    o: &mut Objects,
    (name, node): (&str, &str),
    role: &str,
    proto: Proto,
    containers: &[&str],
    started: i64,
) {
    let uid = names::uuid(&mut g.rng);
    let rel = release(proto);
    let mut m = o.meta(name, Some(DRIVER_NS), &uid, started);
    m.insert(
        "labels".into(),
        json!({
            "app.kubernetes.io/name": "democratic-csi",
            "app.kubernetes.io/instance": rel.trim_end_matches("-democratic-csi"),
            "app.kubernetes.io/csi-role": role,
            "app.kubernetes.io/component": format!("{role}-linux")
        }),
    );
    let specs: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": image(c)}))
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c, "image": image(c), "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": rfc3339(started + 20)}}
            })
        })
        .collect();
    let status = json!({
        "phase": "Running",
        "hostIP": NAS_IP.replace(".20", ".31"),
        "startTime": rfc3339(started + 1),
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(started + 1)},
            {"type": "Initialized", "status": "True", "lastTransitionTime": rfc3339(started + 5)},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": rfc3339(started + 30)},
            {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(started + 30)}
        ],
        "containerStatuses": statuses
    });
    o.push("v1", "Pod", m, json!({"spec": {"nodeName": node, "serviceAccountName": format!("{rel}-{role}-sa"), "containers": specs}, "status": status}));
}

fn image(container: &str) -> &'static str {
    match container {
        "csi-driver" => "docker.io/democraticcsi/democratic-csi:next",
        "external-provisioner" => "registry.k8s.io/sig-storage/csi-provisioner:v3.6.0",
        "external-attacher" => "registry.k8s.io/sig-storage/csi-attacher:v4.4.0",
        "external-resizer" => "registry.k8s.io/sig-storage/csi-resizer:v1.9.0",
        "external-snapshotter" => "registry.k8s.io/sig-storage/csi-snapshotter:v8.2.1",
        "driver-registrar" => "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.9.0",
        _ => "registry.k8s.io/sig-storage/livenessprobe:v2.11.0",
    }
}

fn driver_pods(g: &mut Gen<'_>, plan: &ClusterPlan, proto: Proto, o: &mut Objects) {
    let rel = release(proto);
    let started = g.now - g.rng.random_range(2..40) * 86_400;
    let node = plan.nodes[0].clone();
    let name = format!(
        "{rel}-controller-{}-{}",
        names::hex(&mut g.rng, 10),
        names::k8s_suffix(&mut g.rng, 5)
    );
    pod(
        g,
        o,
        (&name, &node),
        "controller",
        proto,
        &[
            "external-attacher",
            "external-provisioner",
            "external-resizer",
            "external-snapshotter",
            "csi-driver",
            "csi-proxy",
        ],
        started,
    );
    for node in &plan.nodes {
        let name = format!("{rel}-node-{}", names::k8s_suffix(&mut g.rng, 5));
        pod(
            g,
            o,
            (&name, node),
            "node",
            proto,
            &["csi-driver", "csi-proxy", "driver-registrar", "cleanup"],
            started + 30,
        );
    }
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
