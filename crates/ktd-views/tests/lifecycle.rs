//! The findings view over hand-made event streams: findings open only on complete views and
//! after the grace period, resolve when their evidence goes, stay put while a side is not
//! observed, and a replay gives exactly the same derived events.

use ktd_model::event::PollCounts;
use ktd_model::normalize::kube::normalize_object;
use ktd_model::truenas::{ApiTransport, Dataset, NasCollection, Share, Snapshot};
use ktd_model::{Envelope, Event, FindingKind, KubeKind, SourceId, Timestamp};
use ktd_views::{Age, FindingsConfig, FindingsView};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
const HOUR: i64 = 3600;

fn rfc3339(secs: i64) -> String {
    Timestamp::from_unix_secs(secs).to_string()
}

fn kube(at: i64, event: Event) -> Envelope {
    let v = at.to_be_bytes();
    Envelope::new(
        SourceId::kubernetes("prod"),
        Timestamp::from_unix_secs(at),
        event,
        &v,
    )
}

fn nas(at: i64, event: Event) -> Envelope {
    let v = at.to_be_bytes();
    Envelope::new(
        SourceId::truenas("nas01"),
        Timestamp::from_unix_secs(at),
        event,
        &v,
    )
}

fn applied(at: i64, object: Value) -> Envelope {
    kube(
        at,
        Event::ObjectApplied {
            object: normalize_object(&object, None).expect("valid object"),
        },
    )
}

fn pv(name: &str, handle: &str, phase: &str, created: i64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": rfc3339(created)},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "nfs",
            "claimRef": {"namespace": "apps", "name": format!("claim-{name}")},
            "csi": {"driver": "org.democratic-csi.nfs", "volumeHandle": handle,
                    "volumeAttributes": {"provisioner_driver": "freenas-api-nfs", "node_attach_driver": "nfs",
                                         "server": "nas01", "share": format!("/mnt/tank/k8s/nfs/{handle}")}}
        },
        "status": {"phase": phase, "lastPhaseTransitionTime": rfc3339(created + 5)}
    })
}

fn synced(at: i64, kinds: &[KubeKind]) -> Vec<Envelope> {
    kinds
        .iter()
        .map(|k| {
            kube(
                at,
                Event::SyncCompleted {
                    kind: *k,
                    objects: 0,
                },
            )
        })
        .collect()
}

fn all_synced(at: i64) -> Vec<Envelope> {
    synced(at, KubeKind::ALL)
}

fn dataset(name: &str, created: i64, props: Value) -> Dataset {
    serde_json::from_value(json!({
        "name": name, "pool": "tank", "type": "filesystem",
        "mountpoint": format!("/mnt/{name}"), "used": 1_073_741_824u64,
        "creation": rfc3339(created), "user_properties": props
    }))
    .expect("dataset")
}

fn managed(pv_name: &str) -> Value {
    json!({
        "democratic-csi:managed_resource": {"value": "true", "source": "local"},
        "democratic-csi:provision_success": {"value": "true", "source": "local"},
        "democratic-csi:csi_volume_name": {"value": pv_name, "source": "local"}
    })
}

fn observed(at: i64, d: Dataset) -> Envelope {
    nas(at, Event::DatasetObserved { dataset: d })
}

fn polled(at: i64, not_collected: Vec<NasCollection>) -> Envelope {
    nas(
        at,
        Event::PollCompleted {
            poll: at as u64,
            transport: ApiTransport::JsonRpc,
            duration_ms: 5,
            counts: PollCounts::default(),
            rejected: Vec::new(),
            not_collected,
        },
    )
}

/// A cluster with one healthy volume `pvc-live` and a NAS holding its dataset.
fn healthy(at: i64) -> Vec<Envelope> {
    let mut out = vec![applied(
        at,
        pv("pvc-live", "pvc-live", "Bound", NOW - 30 * 24 * HOUR),
    )];
    out.extend(all_synced(at));
    out.push(observed(
        at,
        dataset("tank/k8s/nfs", NOW - 90 * 24 * HOUR, json!({})),
    ));
    out.push(observed(
        at,
        dataset(
            "tank/k8s/nfs/pvc-live",
            NOW - 30 * 24 * HOUR,
            managed("pvc-live"),
        ),
    ));
    out
}

fn fold(view: &mut FindingsView, events: &[Envelope]) -> Vec<Event> {
    events.iter().flat_map(|e| view.apply(e)).collect()
}

fn opened(events: &[Event]) -> Vec<(FindingKind, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::FindingOpened { finding } => Some((finding.kind, finding.subject.name.clone())),
            _ => None,
        })
        .collect()
}

fn resolved(events: &[Event]) -> Vec<(FindingKind, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::FindingResolved { kind, subject, .. } => Some((*kind, subject.name.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_healthy_world_has_no_findings() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let mut events = healthy(NOW);
    events.push(polled(NOW, vec![]));
    assert_eq!(fold(&mut view, &events), vec![]);
    let s = view.summary();
    assert_eq!(s.volume_parents, vec!["tank/k8s/nfs".to_owned()]);
    assert!(s.not_judged.is_empty(), "{:?}", s.not_judged);
}

#[test]
fn an_orphaned_dataset_opens_only_once_both_sides_are_complete_and_resolves_when_its_pv_returns() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let orphan = dataset(
        "tank/k8s/nfs/pvc-gone",
        NOW - 48 * HOUR,
        managed("pvc-gone"),
    );
    let mut events = vec![applied(
        NOW,
        pv("pvc-live", "pvc-live", "Bound", NOW - 30 * 24 * HOUR),
    )];
    events.push(observed(
        NOW,
        dataset(
            "tank/k8s/nfs/pvc-live",
            NOW - 30 * 24 * HOUR,
            managed("pvc-live"),
        ),
    ));
    events.push(observed(NOW, orphan.clone()));
    events.push(polled(NOW, vec![]));
    // The NAS is complete, but no Kubernetes kind has synced: nothing may be judged.
    assert_eq!(fold(&mut view, &events), vec![]);
    let s = view.summary();
    assert!(
        s.not_judged["dataset-orphaned"].contains(&"PersistentVolume".to_owned()),
        "{:?}",
        s.not_judged
    );

    let derived = fold(&mut view, &all_synced(NOW + 1));
    assert_eq!(
        opened(&derived),
        vec![(
            FindingKind::DatasetOrphaned,
            "tank/k8s/nfs/pvc-gone".to_owned()
        )]
    );
    let f = view.findings().next().unwrap();
    assert_eq!(f.reclaimable_bytes, Some(1_073_741_824));
    assert!(f.reason.contains("pvc-gone"), "{}", f.reason);
    assert!(!f.remediation.is_empty());
    assert_eq!(f.first_seen, Timestamp::from_unix_secs(NOW + 1));

    // A share of the orphan is evidence inside the finding, not a second finding.
    let share: Share = serde_json::from_value(json!({"Nfs": {
        "id": 7, "path": "/mnt/tank/k8s/nfs/pvc-gone", "comment": "", "enabled": true, "readonly": false
    }}))
    .unwrap();
    let derived = fold(
        &mut view,
        &[
            nas(NOW + 60, Event::ShareObserved { share }),
            polled(NOW + 60, vec![]),
        ],
    );
    assert_eq!(opened(&derived), vec![]);
    match derived.as_slice() {
        [Event::FindingUpdated { finding }] => {
            assert!(
                finding
                    .related
                    .iter()
                    .any(|r| r.resource.kind == "nfs-share")
            );
            assert_eq!(finding.first_seen, Timestamp::from_unix_secs(NOW + 1));
        }
        other => panic!("expected one update, got {other:?}"),
    }

    // The PV comes back (restored from a backup): the finding resolves by itself.
    let derived = fold(
        &mut view,
        &[applied(
            NOW + 120,
            pv("pvc-gone", "pvc-gone", "Bound", NOW - 48 * HOUR),
        )],
    );
    assert_eq!(
        resolved(&derived),
        vec![(
            FindingKind::DatasetOrphaned,
            "tank/k8s/nfs/pvc-gone".to_owned()
        )]
    );
    assert_eq!(view.findings().count(), 0);
}

#[test]
fn fresh_and_unmanaged_datasets_are_never_orphans() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let mut events = healthy(NOW);
    // Provisioned a minute ago: its PV may not exist yet.
    events.push(observed(
        NOW,
        dataset("tank/k8s/nfs/pvc-new", NOW - 60, managed("pvc-new")),
    ));
    // Inherits democratic-csi's properties from its parent: not democratic-csi's own.
    events.push(observed(
        NOW,
        dataset(
            "tank/k8s/nfs/backup",
            NOW - 48 * HOUR,
            json!({"democratic-csi:managed_resource": {"value": "true", "source": "inherited", "inherited_from": "tank/k8s/nfs"}}),
        ),
    ));
    events.push(polled(NOW, vec![]));
    assert_eq!(opened(&fold(&mut view, &events)), vec![]);

    // Once the new dataset is older than the grace and still has no PV, it is an orphan.
    let later = NOW - 60 + Age::minutes(15).0.as_secs() as i64;
    let derived = fold(&mut view, &[kube(later, Event::Tick)]);
    assert_eq!(
        opened(&derived),
        vec![(
            FindingKind::DatasetOrphaned,
            "tank/k8s/nfs/pvc-new".to_owned()
        )]
    );
}

#[test]
fn a_failed_poll_freezes_truenas_findings_instead_of_resolving_or_opening_them() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let mut events = healthy(NOW);
    events.push(observed(
        NOW,
        dataset(
            "tank/k8s/nfs/pvc-gone",
            NOW - 48 * HOUR,
            managed("pvc-gone"),
        ),
    ));
    events.push(polled(NOW, vec![]));
    assert_eq!(opened(&fold(&mut view, &events)).len(), 1);

    let failed = nas(
        NOW + 60,
        Event::PollFailed {
            poll: 2,
            error: "connection refused".into(),
            method: None,
            retryable: true,
        },
    );
    // While TrueNAS is unreachable the orphan is removed from ktd's memory by nobody and a
    // new one would not be trusted either: nothing changes.
    let newer = observed(
        NOW + 61,
        dataset(
            "tank/k8s/nfs/pvc-other",
            NOW - 48 * HOUR,
            managed("pvc-other"),
        ),
    );
    assert_eq!(fold(&mut view, &[failed, newer]), vec![]);
    assert_eq!(view.findings().count(), 1);
    assert!(view.summary().not_judged.contains_key("dataset-orphaned"));

    let derived = fold(&mut view, &[polled(NOW + 120, vec![])]);
    assert_eq!(
        opened(&derived),
        vec![(
            FindingKind::DatasetOrphaned,
            "tank/k8s/nfs/pvc-other".to_owned()
        )]
    );
}

#[test]
fn a_bundle_without_a_method_file_is_not_judged_on_it() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let mut events = healthy(NOW);
    let share: Share = serde_json::from_value(json!({"Smb": {
        "id": 3, "name": "gone", "path": "/mnt/tank/k8s/nfs/pvc-gone", "comment": "", "enabled": true, "readonly": false
    }}))
    .unwrap();
    events.push(nas(NOW, Event::ShareObserved { share }));
    events.push(polled(NOW, vec![NasCollection::SmbShares]));
    assert_eq!(opened(&fold(&mut view, &events)), vec![]);
    let s = view.summary();
    assert_eq!(
        s.not_judged["share-orphaned"],
        vec!["sharing.smb.query".to_owned()]
    );

    let derived = fold(&mut view, &[polled(NOW + 1, vec![])]);
    assert_eq!(
        opened(&derived),
        vec![(FindingKind::ShareOrphaned, "gone".to_owned())]
    );
}

#[test]
fn a_pv_whose_dataset_is_being_deleted_is_not_missing_its_backing() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let mut events = healthy(NOW);
    // Released 2 minutes ago with policy Delete: democratic-csi destroys the dataset, then
    // the provisioner deletes the PV.
    let mut released = pv("pvc-going", "pvc-going", "Released", NOW - 10 * 24 * HOUR);
    released["status"]["lastPhaseTransitionTime"] = json!(rfc3339(NOW - 120));
    events.push(applied(NOW, released.clone()));
    // Bound, but its dataset is gone: a real finding.
    events.push(applied(
        NOW,
        pv(
            "pvc-lost-data",
            "pvc-lost-data",
            "Bound",
            NOW - 10 * 24 * HOUR,
        ),
    ));
    events.push(polled(NOW, vec![]));
    assert_eq!(
        opened(&fold(&mut view, &events)),
        vec![(FindingKind::PvBackingMissing, "pvc-lost-data".to_owned())]
    );
    // If the delete never completes, the released PV becomes a finding after the grace.
    let derived = fold(&mut view, &[kube(NOW + 20 * 60, Event::Tick)]);
    let mut kinds = opened(&derived);
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (FindingKind::PvBackingMissing, "pvc-going".to_owned()),
            (FindingKind::PvReleased, "pvc-going".to_owned()),
        ]
    );
}

#[test]
fn inherited_snapshot_properties_do_not_make_a_csi_snapshot() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let mut events = healthy(NOW);
    let snap = |name: &str, source: &str| -> Snapshot {
        serde_json::from_value(json!({
            "name": format!("tank/k8s/nfs/pvc-live@{name}"), "dataset": "tank/k8s/nfs/pvc-live",
            "snapshot_name": name, "pool": "tank", "creation": rfc3339(NOW - 48 * HOUR), "used": 4096,
            "user_properties": {
                "democratic-csi:managed_resource": {"value": "true", "source": source},
                "democratic-csi:csi_snapshot_name": {"value": name, "source": source}
            }
        }))
        .unwrap()
    };
    events.push(nas(
        NOW,
        Event::SnapshotObserved {
            snapshot: snap("auto-2026-01-01", "inherited"),
        },
    ));
    events.push(nas(
        NOW,
        Event::SnapshotObserved {
            snapshot: snap("snapshot-abc", "local"),
        },
    ));
    events.push(polled(NOW, vec![]));
    assert_eq!(
        opened(&fold(&mut view, &events)),
        vec![(
            FindingKind::SnapshotOrphaned,
            "tank/k8s/nfs/pvc-live@snapshot-abc".to_owned()
        )]
    );
}

#[test]
fn datasets_under_another_clusters_parent_are_unowned_not_orphaned() {
    let mut view = FindingsView::new(FindingsConfig::default());
    let mut events = healthy(NOW);
    events.push(observed(
        NOW,
        dataset("tank/k8s/other/pvc-x", NOW - 48 * HOUR, managed("pvc-x")),
    ));
    events.push(polled(NOW, vec![]));
    assert_eq!(fold(&mut view, &events), vec![]);
    assert_eq!(
        view.summary().unowned,
        vec!["tank/k8s/other/pvc-x".to_owned()]
    );

    // Configured as ours, the same dataset is judged.
    let cfg = FindingsConfig {
        volume_parents: vec!["tank/k8s/other".into()],
        ..FindingsConfig::default()
    };
    let mut view = FindingsView::new(cfg);
    assert_eq!(
        opened(&fold(&mut view, &events)),
        vec![(
            FindingKind::DatasetOrphaned,
            "tank/k8s/other/pvc-x".to_owned()
        )]
    );
}

#[test]
fn replaying_the_same_events_gives_the_same_derived_events() {
    let mut events = healthy(NOW);
    events.push(observed(
        NOW,
        dataset(
            "tank/k8s/nfs/pvc-gone",
            NOW - 48 * HOUR,
            managed("pvc-gone"),
        ),
    ));
    events.push(polled(NOW, vec![]));
    events.push(nas(
        NOW + 60,
        Event::DatasetRemoved {
            name: "tank/k8s/nfs/pvc-gone".into(),
        },
    ));
    events.push(polled(NOW + 60, vec![]));
    let source = SourceId::ktd("views");
    let run = || {
        let mut view = FindingsView::new(FindingsConfig::default());
        events
            .iter()
            .flat_map(|e| view.apply_enveloped(e, &source))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first.len(), 2, "opened then resolved: {first:?}");
    assert_eq!(first, run());
    assert_ne!(first[0].id, first[1].id);
}
