//! The snapshot ledger joins both sides per volume and checks retention policies.

use ktd_model::event::PollCounts;
use ktd_model::normalize::kube::normalize_object;
use ktd_model::truenas::{ApiTransport, Dataset, Snapshot};
use ktd_model::{Envelope, Event, KubeKind, SourceId, Timestamp};
use ktd_views::config::RetentionPolicy;
use ktd_views::ledger::{self, SnapshotState};
use ktd_views::{Age, FindingsConfig, FindingsView};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn ts(secs: i64) -> String {
    Timestamp::from_unix_secs(secs).to_string()
}

fn kube(object: Value) -> Envelope {
    Envelope::new(
        SourceId::kubernetes("c"),
        Timestamp::from_unix_secs(NOW),
        Event::ObjectApplied {
            object: normalize_object(&object, None).unwrap(),
        },
        b"",
    )
}

fn nas(event: Event) -> Envelope {
    Envelope::new(
        SourceId::truenas("nas"),
        Timestamp::from_unix_secs(NOW),
        event,
        b"",
    )
}

fn csi_snapshot(i: usize, age_days: i64) -> Snapshot {
    serde_json::from_value(json!({
        "name": format!("tank/k8s/nfs/pvc-1@snapshot-{i}"), "dataset": "tank/k8s/nfs/pvc-1",
        "snapshot_name": format!("snapshot-{i}"), "pool": "tank",
        "creation": ts(NOW - age_days * DAY), "used": 1000 * (i as u64 + 1), "referenced": 5000,
        "user_properties": {
            "democratic-csi:managed_resource": {"value": "true", "source": "local"},
            "democratic-csi:csi_snapshot_name": {"value": format!("snapshot-{i}"), "source": "local"}
        }
    }))
    .unwrap()
}

fn world() -> Vec<Envelope> {
    let mut out = vec![kube(json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pvc-1", "uid": "u1", "creationTimestamp": ts(NOW - 90 * DAY)},
        "spec": {"storageClassName": "fast", "persistentVolumeReclaimPolicy": "Delete",
                 "claimRef": {"namespace": "db", "name": "data"},
                 "csi": {"driver": "nfs.csi", "volumeHandle": "pvc-1",
                         "volumeAttributes": {"provisioner_driver": "freenas-api-nfs"}}},
        "status": {"phase": "Bound"}
    }))];
    // Snapshots 0..4 on both sides, 40, 20, 10, 5 and 1 days old; snapshot-5 on TrueNAS only.
    for (i, age) in [40, 20, 10, 5, 1].into_iter().enumerate() {
        out.push(kube(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": format!("snap-{i}"), "namespace": "db", "uid": format!("vs{i}"),
                         "creationTimestamp": ts(NOW - age * DAY), "labels": {"tier": "daily"}},
            "spec": {"source": {"persistentVolumeClaimName": "data"}},
            "status": {"readyToUse": true, "boundVolumeSnapshotContentName": format!("snapcontent-{i}")}
        })));
        out.push(kube(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": format!("snapcontent-{i}"), "uid": format!("c{i}"), "creationTimestamp": ts(NOW - age * DAY)},
            "spec": {"deletionPolicy": "Delete", "driver": "nfs.csi", "source": {"volumeHandle": "pvc-1"},
                     "volumeSnapshotRef": {"namespace": "db", "name": format!("snap-{i}"), "uid": format!("vs{i}")}},
            "status": {"readyToUse": true, "snapshotHandle": format!("pvc-1@snapshot-{i}")}
        })));
        out.push(nas(Event::SnapshotObserved {
            snapshot: csi_snapshot(i, age),
        }));
    }
    out.push(nas(Event::SnapshotObserved {
        snapshot: csi_snapshot(5, 2),
    }));
    // A VolumeSnapshotContent whose ZFS snapshot is gone.
    out.push(kube(json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
        "metadata": {"name": "snapcontent-9", "uid": "c9", "creationTimestamp": ts(NOW - 3 * DAY)},
        "spec": {"deletionPolicy": "Delete", "driver": "nfs.csi", "source": {"volumeHandle": "pvc-1"},
                 "volumeSnapshotRef": {"namespace": "db", "name": "snap-9", "uid": "vs9"}},
        "status": {"readyToUse": true, "snapshotHandle": "pvc-1@snapshot-9"}
    })));
    let d: Dataset = serde_json::from_value(json!({
        "name": "tank/k8s/nfs/pvc-1", "pool": "tank", "type": "filesystem", "used": 100_000,
        "used_by_snapshots": 15_000, "creation": ts(NOW - 90 * DAY),
        "user_properties": {
            "democratic-csi:managed_resource": {"value": "true", "source": "local"},
            "democratic-csi:provision_success": {"value": "true", "source": "local"}
        }
    }))
    .unwrap();
    out.push(nas(Event::DatasetObserved { dataset: d }));
    for kind in KubeKind::ALL {
        out.push(Envelope::new(
            SourceId::kubernetes("c"),
            Timestamp::from_unix_secs(NOW),
            Event::SyncCompleted {
                kind: *kind,
                objects: 0,
            },
            b"",
        ));
    }
    out.push(nas(Event::PollCompleted {
        poll: 1,
        transport: ApiTransport::RestV2,
        duration_ms: 1,
        counts: PollCounts::default(),
        rejected: vec![],
        not_collected: vec![],
    }));
    out
}

fn view(retention: Vec<RetentionPolicy>) -> FindingsView {
    let mut v = FindingsView::new(FindingsConfig {
        retention,
        ..FindingsConfig::default()
    });
    for e in world() {
        v.apply(&e);
    }
    v
}

#[test]
fn both_sides_are_joined_per_volume() {
    let v = view(vec![]);
    let l = ledger::build(v.inventory(), v.config());
    assert_eq!(l.volumes.len(), 1);
    let vol = &l.volumes[0];
    assert_eq!(vol.pv.as_deref(), Some("pvc-1"));
    assert_eq!(vol.claim.as_deref(), Some("db/data"));
    assert_eq!(vol.dataset.as_deref(), Some("tank/k8s/nfs/pvc-1"));
    assert_eq!(vol.count, 7, "5 joined, 1 TrueNAS-only, 1 Kubernetes-only");
    assert_eq!(vol.zfs_snapshots, 6);
    assert_eq!(vol.used_by_snapshots, Some(15_000));
    assert_eq!(vol.created_last_7d, 4, "5, 1, 2 and 3 days old");
    assert_eq!(vol.created_last_24h, 1);
    let by_handle = |h: &str| vol.snapshots.iter().find(|s| s.handle == h).unwrap();
    let joined = by_handle("pvc-1@snapshot-0");
    assert_eq!(joined.state, SnapshotState::Ready);
    assert_eq!(joined.volume_snapshot.as_deref(), Some("db/snap-0"));
    assert_eq!(joined.content.as_deref(), Some("snapcontent-0"));
    assert_eq!(
        joined.truenas.as_deref(),
        Some("tank/k8s/nfs/pvc-1@snapshot-0")
    );
    assert_eq!(by_handle("pvc-1@snapshot-5").state, SnapshotState::NasOnly);
    assert_eq!(
        by_handle("pvc-1@snapshot-9").state,
        SnapshotState::BackingMissing
    );
    assert_eq!(vol.not_ready, 2);
    assert_eq!(vol.oldest, Some(Timestamp::from_unix_secs(NOW - 40 * DAY)));
    assert!(vol.retention.is_none());
    // Oldest first.
    assert_eq!(vol.snapshots[0].handle, "pvc-1@snapshot-0");
}

#[test]
fn retention_policies_list_what_violates_them() {
    let policy =
        |name: &str, max_age: Option<Age>, max_count: Option<usize>, sc: &str| RetentionPolicy {
            name: name.into(),
            storage_class: Some(sc.into()),
            namespace: None,
            labels: [("tier".to_owned(), "daily".to_owned())].into(),
            max_age,
            max_count,
        };
    let v = view(vec![
        policy("other-class", Some(Age::hours(1)), None, "slow"),
        policy(
            "two-weeks-three",
            Some(Age::hours(14 * 24)),
            Some(3),
            "fast",
        ),
    ]);
    let l = ledger::build(v.inventory(), v.config());
    let c = l.volumes[0].retention.as_ref().unwrap();
    assert_eq!(
        c.policy, "two-weeks-three",
        "the first matching policy applies"
    );
    assert!(!c.compliant);
    assert_eq!(
        c.violations,
        vec![
            "db/snap-0: older than 14d".to_owned(),
            "db/snap-1: older than 14d".to_owned(),
            "db/snap-0: beyond the 3 newest".to_owned(),
            "db/snap-1: beyond the 3 newest".to_owned(),
        ]
    );
    assert_eq!(l.totals.non_compliant, 1);

    let lenient = view(vec![policy(
        "lenient",
        Some(Age::hours(60 * 24)),
        Some(10),
        "fast",
    )]);
    let l = ledger::build(lenient.inventory(), lenient.config());
    assert!(l.volumes[0].retention.as_ref().unwrap().compliant);
}
