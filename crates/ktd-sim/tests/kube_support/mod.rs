//! Shared helpers for the fake kube-apiserver tests.
#![allow(dead_code)]

use std::time::Duration;

use ktd_sim::{Cluster, KubeApiServer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A CSI PersistentVolume.
pub fn pv(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"app": "db"},
            "annotations": {"pv.kubernetes.io/provisioned-by": "org.democratic-csi.nfs"}},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "nfs",
            "csi": {"driver": "org.democratic-csi.nfs", "volumeHandle": name}},
        "status": {"phase": "Available"}
    })
}

/// A PersistentVolumeClaim.
pub fn pvc(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "nfs",
            "resources": {"requests": {"storage": "10Gi"}}},
        "status": {"phase": "Pending"}
    })
}

/// A VolumeSnapshot.
pub fn vs(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"persistentVolumeClaimName": "data"}, "volumeSnapshotClassName": "zfs"},
        "status": {"readyToUse": true, "restoreSize": "10Gi",
            "boundVolumeSnapshotContentName": format!("snapcontent-{name}")}
    })
}

/// A VolumeSnapshotContent.
pub fn vsc(name: &str) -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
        "metadata": {"name": name},
        "spec": {"deletionPolicy": "Delete", "driver": "org.democratic-csi.nfs",
            "source": {"volumeHandle": "pvc-1"},
            "volumeSnapshotRef": {"kind": "VolumeSnapshot", "namespace": "db", "name": name}},
        "status": {"readyToUse": true, "restoreSize": 10737418240_u64, "snapshotHandle": "pool/pvc-1@snap"}
    })
}

/// A cluster holding `objects`.
pub fn cluster(objects: Vec<Value>) -> Cluster {
    Cluster {
        name: "test".into(),
        objects,
        snapshot_crds: true,
        denied: Vec::new(),
    }
}

/// A server on a free loopback port; stops when the returned guard drops.
pub async fn start(cluster: Cluster) -> (KubeApiServer, tokio_util::sync::DropGuard) {
    let token = CancellationToken::new();
    let server = KubeApiServer::start(cluster, "127.0.0.1:0".parse().unwrap(), token.clone())
        .await
        .expect("the fake apiserver starts");
    (server, token.drop_guard())
}

/// Bounds a wait in a test.
pub async fn within<F: std::future::Future>(secs: u64, what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s waiting for {what}"))
}

/// The names of a list's items.
pub fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}
