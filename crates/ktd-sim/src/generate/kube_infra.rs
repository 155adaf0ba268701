//! Renders the cluster-wide objects of a cluster: namespaces, nodes, CSIDrivers, CSINodes,
//! democratic-csi driver pods, StorageClasses and VolumeSnapshotClasses.

use rand::Rng;
use serde_json::{Map, Value, json};

use super::Gen;
use super::kube_objects::{DRIVER_NS, Objects, release};
use super::model::{ClusterPlan, Proto};
use super::names::{self, rfc3339};

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

/// Namespaces, nodes, CSI drivers and their pods, storage and snapshot classes.
pub(super) fn infrastructure(g: &mut Gen<'_>, plan: &ClusterPlan, o: &mut Objects) {
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
            "addresses": [{"type": "InternalIP", "address": node_ip(i)}, {"type": "Hostname", "address": node}],
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
    (name, node, node_index): (&str, &str, usize),
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
    let owner = match role {
        "controller" => (
            "apps/v1",
            "ReplicaSet",
            name.rsplit_once('-').map_or(name, |x| x.0).to_owned(),
        ),
        _ => ("apps/v1", "DaemonSet", format!("{rel}-node")),
    };
    let owner_uid = names::uuid(&mut g.rng);
    m.insert(
        "ownerReferences".into(),
        json!([{"apiVersion": owner.0, "kind": owner.1, "name": owner.2, "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]),
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
        "hostIP": node_ip(node_index),
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
        (&name, &node, 0),
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
    for (i, node) in plan.nodes.iter().enumerate() {
        let name = format!("{rel}-node-{}", names::k8s_suffix(&mut g.rng, 5));
        pod(
            g,
            o,
            (&name, node, i),
            "node",
            proto,
            &["csi-driver", "csi-proxy", "driver-registrar", "cleanup"],
            started + 30,
        );
    }
}

/// InternalIP of node `i`.
fn node_ip(i: usize) -> String {
    format!("192.168.10.{}", 31 + i)
}
