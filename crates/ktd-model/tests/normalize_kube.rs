//! Kubernetes JSON (apiserver / `kubectl get -o json`) into normalized objects, including
//! the real-world PVs in shared/reference/examples.

use ktd_model::kube::*;
use ktd_model::normalize::NormalizeError;
use ktd_model::normalize::kube::{normalize_object, read_list};
use ktd_model::{KubeKind, Timestamp};
use serde_json::{Value, json};

const EXAMPLE_PVS: &str = include_str!("fixtures/democratic-csi-pv-freenas-api-nfs.json");

#[test]
fn real_world_democratic_csi_pvs() {
    let list: Value = serde_json::from_str(EXAMPLE_PVS).unwrap();
    let mut pvs = Vec::new();
    let (seen, skipped) = read_list(EXAMPLE_PVS.as_bytes(), |r| pvs.push(r.unwrap())).unwrap();
    assert_eq!((seen, skipped), (2, 0));
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let KubeObject::PersistentVolume(pv) = &pvs[0] else {
        panic!("not a PV")
    };
    assert_eq!(pv.meta.name, "pvc-0c6e4d07-d1e1-4db5-a49e-8049d70ba2b0");
    assert_eq!(pv.phase, PvPhase::Bound);
    assert_eq!(pv.capacity_bytes, Some(2 << 30));
    assert_eq!(pv.reclaim_policy.as_deref(), Some("Retain"));
    let csi = pv.csi.as_ref().unwrap();
    assert_eq!(csi.driver, "nfs");
    assert_eq!(
        csi.volume_handle,
        "pvc-0c6e4d07-d1e1-4db5-a49e-8049d70ba2b0"
    );
    assert_eq!(
        csi.volume_attributes["provisioner_driver"],
        "freenas-api-nfs"
    );
    assert_eq!(
        csi.volume_attributes["share"],
        "/mnt/it-nas-6tb/k8s/volumes/pvc-0c6e4d07-d1e1-4db5-a49e-8049d70ba2b0"
    );
    let claim = pv.claim.as_ref().unwrap();
    assert_eq!(claim.namespace.as_deref(), Some("gitea"));
    assert_eq!(
        pv.meta.created,
        Some(Timestamp::parse_rfc3339("2023-12-07T15:45:47Z").unwrap())
    );

    // The re-bound PV: its name no longer matches its claim's uid.
    let KubeObject::PersistentVolume(rebound) = &pvs[1] else {
        panic!("not a PV")
    };
    let uid = rebound.claim.as_ref().unwrap().uid.as_deref().unwrap();
    assert_ne!(rebound.meta.name, format!("pvc-{uid}"));
    assert!(
        !rebound
            .meta
            .annotations
            .contains_key("kubectl.kubernetes.io/last-applied-configuration"),
        "last-applied is dropped"
    );
    assert_eq!(
        rebound.meta.annotations["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
}

#[test]
fn kubectl_list_of_mixed_kinds_streams_and_skips_unwatched_kinds() {
    let doc = json!({
        "apiVersion": "v1",
        "items": [
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-0", "namespace": "db", "uid": "u1", "resourceVersion": "5",
              "creationTimestamp": "2024-01-01T00:00:00Z"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}, "storageClassName": "freenas-iscsi",
              "volumeName": "pvc-u1", "dataSource": {"kind": "VolumeSnapshot", "name": "snap-1", "apiGroup": "snapshot.storage.k8s.io"}},
             "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "db"}},
            {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
             "metadata": {"name": "snapcontent-7c1e", "resourceVersion": "20480", "uid": "1b2c"},
             "spec": {"deletionPolicy": "Retain", "driver": "org.democratic-csi.iscsi", "volumeSnapshotClassName": "zfs",
               "source": {"volumeHandle": "pvc-3f2a"},
               "volumeSnapshotRef": {"kind": "VolumeSnapshot", "apiVersion": "snapshot.storage.k8s.io/v1", "namespace": "db", "name": "data-0-snap", "uid": "7c1e"}},
             "status": {"snapshotHandle": "pvc-3f2a@snapshot-7c1e", "creationTime": 1763712000000000000i64, "restoreSize": 10737418240i64, "readyToUse": true}},
            {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
             "metadata": {"name": "data-0-snap", "namespace": "db", "uid": "7c1e", "resourceVersion": "20481"},
             "spec": {"source": {"persistentVolumeClaimName": "data-0"}, "volumeSnapshotClassName": "zfs"},
             "status": {"boundVolumeSnapshotContentName": "snapcontent-7c1e", "creationTime": "2025-11-21T08:00:00Z",
                        "readyToUse": false, "restoreSize": "10Gi", "error": {"time": "2025-11-21T08:01:00Z", "message": "failed to take snapshot"}}},
            {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
             "metadata": {"name": "zfs-detached", "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}},
             "driver": "org.democratic-csi.iscsi", "deletionPolicy": "Delete", "parameters": {"detachedSnapshots": "true"}}
        ],
        "kind": "List",
        "metadata": {"resourceVersion": ""}
    });
    let mut objects = Vec::new();
    let (seen, skipped) = read_list(serde_json::to_vec(&doc).unwrap().as_slice(), |r| {
        objects.push(r.unwrap())
    })
    .unwrap();
    assert_eq!((seen, skipped), (5, 1));
    let kinds: Vec<_> = objects.iter().map(KubeObject::kind).collect();
    assert_eq!(
        kinds,
        [
            KubeKind::PersistentVolumeClaim,
            KubeKind::VolumeSnapshotContent,
            KubeKind::VolumeSnapshot,
            KubeKind::VolumeSnapshotClass
        ]
    );
    let KubeObject::PersistentVolumeClaim(pvc) = &objects[0] else {
        unreachable!()
    };
    assert_eq!(pvc.requested_bytes, Some(5 << 30));
    assert_eq!(pvc.phase, PvcPhase::Bound);
    assert_eq!(
        pvc.data_source.as_ref().unwrap().kind.as_deref(),
        Some("VolumeSnapshot")
    );
    assert_eq!(pvc.meta.key(), ObjectKey::namespaced("db", "data-0"));
    let KubeObject::VolumeSnapshotContent(vsc) = &objects[1] else {
        unreachable!()
    };
    assert_eq!(vsc.handle(), Some("pvc-3f2a@snapshot-7c1e"));
    assert_eq!(
        vsc.creation_time,
        Some(Timestamp::from_unix_secs(1_763_712_000)),
        "nanoseconds on the wire"
    );
    assert_eq!(vsc.restore_size, Some(10 << 30));
    assert_eq!(vsc.snapshot_ref.namespace.as_deref(), Some("db"));
    let KubeObject::VolumeSnapshot(vs) = &objects[2] else {
        unreachable!()
    };
    assert_eq!(
        vs.restore_size,
        Some(10 << 30),
        "a Quantity string on the VolumeSnapshot"
    );
    assert_eq!(vs.ready_to_use, Some(false));
    assert_eq!(
        vs.error.as_ref().unwrap().message,
        "failed to take snapshot"
    );
    let KubeObject::VolumeSnapshotClass(class) = &objects[3] else {
        unreachable!()
    };
    assert!(class.is_default);
    assert_eq!(class.parameters["detachedSnapshots"], "true");
}

#[test]
fn typed_list_items_take_the_kind_of_their_list() {
    let doc = json!({"kind": "PersistentVolumeList", "apiVersion": "v1", "metadata": {"resourceVersion": "10"},
        "items": [{"metadata": {"name": "pv-1", "resourceVersion": "9"}, "spec": {"csi": {"driver": "d", "volumeHandle": "h"}}, "status": {"phase": "Released"}}]});
    let mut objects = Vec::new();
    read_list(serde_json::to_vec(&doc).unwrap().as_slice(), |r| {
        objects.push(r.unwrap())
    })
    .unwrap();
    let KubeObject::PersistentVolume(pv) = &objects[0] else {
        panic!()
    };
    assert_eq!(pv.phase, PvPhase::Released);
}

#[test]
fn malformed_objects_are_named() {
    let bad_quantity = json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": "pv-x"},
        "spec": {"capacity": {"storage": "lots"}}});
    let err = normalize_object(&bad_quantity, None).unwrap_err();
    assert!(
        err.to_string().contains("PersistentVolume pv-x") && err.to_string().contains("lots"),
        "{err}"
    );

    let wrong_type = json!({"kind": "VolumeAttachment", "metadata": {"name": "va-1"}, "status": {"attached": "yes"}});
    let err = normalize_object(&wrong_type, None).unwrap_err();
    assert!(err.to_string().contains("VolumeAttachment va-1"), "{err}");

    let no_ns = json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "c"}});
    assert!(
        normalize_object(&no_ns, None)
            .unwrap_err()
            .to_string()
            .contains("namespace")
    );

    let no_name = json!({"kind": "StorageClass", "metadata": {}});
    assert!(
        normalize_object(&no_name, None)
            .unwrap_err()
            .to_string()
            .contains("metadata.name")
    );

    assert!(matches!(
        normalize_object(&json!({"metadata": {"name": "x"}}), None),
        Err(NormalizeError::MissingKind)
    ));
    assert!(
        matches!(normalize_object(&json!({"kind": "Secret"}), None), Err(NormalizeError::UnsupportedKind(k)) if k == "Secret")
    );
}

#[test]
fn a_broken_list_document_fails_as_a_whole() {
    let err = read_list(&b"{\"kind\": \"List\", \"items\": [ {"[..], |_| {}).unwrap_err();
    assert!(err.to_string().contains("Kubernetes list"), "{err}");
    let err = read_list(&b"{\"kind\": \"List\"}"[..], |_| {}).unwrap_err();
    assert!(err.to_string().contains("items"), "{err}");
}

#[test]
fn nodes_pods_events_csinodes_and_attachments() {
    let node = json!({"kind": "Node", "metadata": {"name": "n1"}, "spec": {"unschedulable": true,
        "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.31.2"}}});
    let KubeObject::Node(n) = normalize_object(&node, None).unwrap() else {
        panic!()
    };
    assert!(n.unschedulable);
    assert_eq!(n.ready, Some(true));
    assert_eq!(n.taints, ["node.kubernetes.io/unschedulable:NoSchedule"]);

    let pod = json!({"kind": "Pod", "metadata": {"name": "csi-node-abc", "namespace": "democratic-csi",
        "ownerReferences": [{"kind": "DaemonSet", "name": "csi-node"}]},
        "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "csi-driver", "image": "democraticcsi/democratic-csi:next", "ready": false,
        "restartCount": 7, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
    let KubeObject::Pod(p) = normalize_object(&pod, None).unwrap() else {
        panic!()
    };
    assert!(!p.ready);
    assert_eq!(p.meta.owners, ["DaemonSet/csi-node"]);
    assert_eq!(p.containers[0].restart_count, 7);
    assert_eq!(
        p.containers[0].waiting_reason.as_deref(),
        Some("CrashLoopBackOff")
    );

    let event = json!({"kind": "Event", "metadata": {"name": "data-0.17f", "namespace": "db"},
        "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "db", "name": "data-0", "uid": "u1"},
        "reason": "ProvisioningFailed", "message": "rpc error", "type": "Warning", "count": 3,
        "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T01:00:00Z", "source": {"component": "external-provisioner"}});
    let KubeObject::Event(e) = normalize_object(&event, None).unwrap() else {
        panic!()
    };
    assert_eq!(
        (e.reason.as_str(), e.count, e.component.as_str()),
        ("ProvisioningFailed", 3, "external-provisioner")
    );
    assert_eq!(e.involved.kind.as_deref(), Some("PersistentVolumeClaim"));

    let csinode = json!({"kind": "CSINode", "metadata": {"name": "n1"}, "spec": {"drivers": [
        {"name": "org.democratic-csi.nfs", "nodeID": "n1", "topologyKeys": null}]}});
    let KubeObject::CsiNode(c) = normalize_object(&csinode, None).unwrap() else {
        panic!()
    };
    assert_eq!(c.drivers[0].name, "org.democratic-csi.nfs");
    let empty = json!({"kind": "CSINode", "metadata": {"name": "n2"}, "spec": {"drivers": null}});
    let KubeObject::CsiNode(c) = normalize_object(&empty, None).unwrap() else {
        panic!()
    };
    assert!(c.drivers.is_empty());

    let va = json!({"kind": "VolumeAttachment", "metadata": {"name": "csi-123"},
        "spec": {"attacher": "org.democratic-csi.iscsi", "nodeName": "n1", "source": {"persistentVolumeName": "pvc-1"}},
        "status": {"attached": false, "attachError": {"time": "2025-01-01T00:00:00Z", "message": "iscsiadm: login failed"}}});
    let KubeObject::VolumeAttachment(v) = normalize_object(&va, None).unwrap() else {
        panic!()
    };
    assert_eq!(v.pv_name.as_deref(), Some("pvc-1"));
    assert!(v.attach_error.unwrap().message.contains("login failed"));
}
