//! The source under faults: 410 storms, dropped watch streams, forbidden kinds, missing
//! snapshot CRDs. "No lost and no duplicated events" means: folding the events (applied
//! minus deleted, latest resourceVersion per key) gives exactly the server's state, no
//! envelope id is emitted twice, and every deletion is surfaced as an `ObjectDeleted`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ktd_model::{Event, KubeKind, ObjectKey};
use ktd_sim::world::Denied;
use pretty_assertions::assert_eq;
use support::*;

fn seed_objects() -> Vec<serde_json::Value> {
    let mut objects: Vec<_> = (0..40).map(|i| pv(&format!("pv-{i:02}"))).collect();
    objects.extend((0..40).map(|i| pvc(&format!("ns-{}", i % 3), &format!("claim-{i:02}"))));
    objects
}

/// Applies, modifies and deletes objects in round `round` (deterministic); returns the
/// keys deleted.
fn churn(server: &ktd_sim::KubeApiServer, round: usize) -> Vec<(KubeKind, ObjectKey)> {
    let mut deleted = Vec::new();
    for j in 0..5 {
        let i = round * 5 + j;
        server.apply(pv(&format!("new-{i:03}"))).unwrap();
        let mut claim = pvc("ns-new", &format!("new-claim-{i:03}"));
        claim["metadata"]["labels"] = serde_json::json!({"round": round.to_string()});
        server.apply(claim).unwrap();
    }
    // Modify a few existing PVs.
    for mut o in server.objects("pv").into_iter().take(3) {
        o["metadata"]["labels"]["touched"] = round.to_string().into();
        server.apply(o).unwrap();
    }
    // Delete one old PV, one old PVC and one freshly created PV.
    if round < 40 {
        let name = format!("pv-{round:02}");
        if server.delete("pv", None, &name).unwrap().is_some() {
            deleted.push((KubeKind::PersistentVolume, ObjectKey::cluster(name)));
        }
        let (ns, name) = (format!("ns-{}", round % 3), format!("claim-{round:02}"));
        if server.delete("pvc", Some(&ns), &name).unwrap().is_some() {
            deleted.push((
                KubeKind::PersistentVolumeClaim,
                ObjectKey::namespaced(ns, name),
            ));
        }
    }
    let name = format!("new-{:03}", round * 5);
    if server.delete("pv", None, &name).unwrap().is_some() {
        deleted.push((KubeKind::PersistentVolume, ObjectKey::cluster(name)));
    }
    deleted
}

fn deletions(events: &[ktd_model::Envelope]) -> BTreeSet<(KubeKind, ObjectKey)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ObjectDeleted { kind, key, .. } => Some((*kind, key.clone())),
            _ => None,
        })
        .collect()
}

async fn converge(run: &mut Run, server: &ktd_sim::KubeApiServer) {
    let kinds = [KubeKind::PersistentVolume, KubeKind::PersistentVolumeClaim];
    let expected = server_state(server, KubeKind::ALL);
    run.until(60, "the folded events to equal the server's state", |e| {
        let state = fold(e);
        // Wait for the last sync of both kinds to finish too.
        let syncing = kinds.iter().any(|k| {
            let started = e
                .iter()
                .filter(|x| matches!(&x.event, Event::SyncStarted { kind } if kind == k))
                .count();
            let done = e
                .iter()
                .filter(|x| matches!(&x.event, Event::SyncCompleted { kind, .. } if kind == k))
                .count();
            started != done
        });
        !syncing && state == expected
    })
    .await;
}

async fn storm(drop_instead: bool) {
    let (server, _guard) = start(cluster(seed_objects())).await;
    let mut run = Run::start(config(&server)).await;
    run.until(30, "initial sync", |e| all_completed(e, KubeKind::ALL))
        .await;
    let lists_before = server.stats().lists;
    let watches_before = server.stats().watches;
    let mut deleted = BTreeSet::new();
    for round in 0..30 {
        deleted.extend(churn(&server, round));
        if round % 2 == 0 {
            if drop_instead {
                server.drop_watches();
            } else {
                server.expire_watches();
            }
        }
        // Keep consuming while the storm goes on (sometimes mid-relist, sometimes not).
        run.drain_for(if round % 3 == 0 { 10 } else { 150 }).await;
    }
    converge(&mut run, &server).await;
    // Nothing more is coming but the end of relists still in backoff: no object events.
    let settled = run.events.len();
    run.drain_for(2000).await;
    let stray: Vec<String> = run.events[settled..]
        .iter()
        .filter(|e| {
            !matches!(
                e.event,
                Event::SyncStarted { .. } | Event::SyncCompleted { .. }
            )
        })
        .map(describe)
        .collect();
    assert!(
        stray.is_empty(),
        "stray events after convergence: {stray:?}"
    );

    assert_eq!(fold(&run.events), server_state(&server, KubeKind::ALL));
    assert_unique_ids(&run.events);
    // Every deletion of an object the source had seen is surfaced. (An object created
    // and deleted while a watcher was relisting was never observable: neither its
    // creation nor its deletion can appear.)
    let surfaced = deletions(&run.events);
    let seen: BTreeSet<(KubeKind, ObjectKey)> = run
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ObjectApplied { object } => Some((object.kind(), object.key())),
            _ => None,
        })
        .collect();
    let lost: Vec<_> = deleted
        .iter()
        .filter(|d| seen.contains(*d) && !surfaced.contains(*d))
        .collect();
    assert!(lost.is_empty(), "deletions never surfaced: {lost:?}");
    let old_ones = deleted
        .iter()
        .filter(|(_, k)| !k.name.starts_with("new-"))
        .count();
    assert!(
        old_ones >= 40,
        "objects of the initial sync were deleted: {old_ones}"
    );
    let synthesized = run
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.event,
                Event::ObjectDeleted {
                    missing_from_relist: true,
                    ..
                }
            )
        })
        .count();
    eprintln!(
        "{} deletions, {} surfaced, {synthesized} synthesized at a relist",
        deleted.len(),
        surfaced.len()
    );
    // Relists re-emit nothing that was already known: every ObjectApplied is a distinct
    // (key, resourceVersion).
    let applied: Vec<_> = run
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ObjectApplied { object } => Some((
                object.kind(),
                object.key(),
                object.meta().resource_version.clone(),
            )),
            _ => None,
        })
        .collect();
    let distinct: BTreeSet<_> = applied.iter().cloned().collect();
    assert_eq!(
        applied.len(),
        distinct.len(),
        "an unchanged object was re-emitted"
    );
    let failures: Vec<_> = run
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::WatchFailed { .. }))
        .map(describe)
        .collect();
    assert!(
        failures.is_empty(),
        "storms and drops are routine: {failures:?}"
    );
    if drop_instead {
        assert!(
            server.stats().watches > watches_before + 20,
            "watches resumed after drops"
        );
    } else {
        // kube-runtime's default backoff also spaces out relists after a 410 (0.8 s,
        // 1.6 s, ...), so a storm of 15 expiries causes a few relists per kind.
        let relists = completed(&run.events, 3);
        eprintln!(
            "lists during the storm: {}",
            server.stats().lists - lists_before
        );
        assert!(
            relists.contains(&KubeKind::PersistentVolume),
            "PVs were relisted repeatedly"
        );
        assert!(
            server.stats().lists >= lists_before + 12 * 2,
            "every kind relisted"
        );
    }
}

#[tokio::test]
async fn a_410_storm_loses_and_duplicates_nothing() {
    storm(false).await;
}

#[tokio::test]
async fn dropped_watch_streams_lose_and_duplicate_nothing() {
    storm(true).await;
}

#[tokio::test]
async fn a_forbidden_kind_is_reported_once_and_recovers_when_granted() {
    let mut c = cluster(seed_objects());
    c.denied = ["list", "watch"]
        .map(|verb| Denied {
            verb: verb.into(),
            group: "storage.k8s.io".into(),
            resource: "volumeattachments".into(),
        })
        .to_vec();
    let (server, _guard) = start(c).await;
    let mut run = Run::start(config(&server)).await;
    let others: Vec<KubeKind> = KubeKind::ALL
        .iter()
        .copied()
        .filter(|k| *k != KubeKind::VolumeAttachment)
        .collect();
    run.until(30, "the other kinds' syncs and the failure", |e| {
        all_completed(e, &others)
            && e.iter().any(|e| {
                matches!(
                    e.event,
                    Event::WatchFailed {
                        kind: KubeKind::VolumeAttachment,
                        ..
                    }
                )
            })
    })
    .await;
    // Let the watcher retry a few times (backoff 0.8 s, 1.6 s, ...).
    run.drain_for(3000).await;
    let failures: Vec<String> = run
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::WatchFailed {
                kind,
                error,
                retryable,
            } => {
                assert_eq!(*kind, KubeKind::VolumeAttachment);
                assert!(retryable);
                Some(error.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "rate-limited to one report: {failures:?}"
    );
    assert!(
        failures[0].contains("may not list volumeattachments in API group \"storage.k8s.io\"")
            && failures[0].contains("deploy/"),
        "{}",
        failures[0]
    );
    assert!(!completed(&run.events, 1).contains(&KubeKind::VolumeAttachment));

    server.set_denied(vec![]);
    run.until(45, "the VolumeAttachment sync after RBAC was fixed", |e| {
        completed(e, 1).contains(&KubeKind::VolumeAttachment)
    })
    .await;
    assert_eq!(fold(&run.events), server_state(&server, KubeKind::ALL));
    assert_unique_ids(&run.events);
}

#[tokio::test]
async fn missing_snapshot_crds_are_reported_clearly() {
    let mut c = cluster(seed_objects());
    c.snapshot_crds = false;
    let (server, _guard) = start(c).await;
    let mut run = Run::start(config(&server)).await;
    let snapshot_kinds = [
        KubeKind::VolumeSnapshot,
        KubeKind::VolumeSnapshotContent,
        KubeKind::VolumeSnapshotClass,
    ];
    let others: Vec<KubeKind> = KubeKind::ALL
        .iter()
        .copied()
        .filter(|k| !snapshot_kinds.contains(k))
        .collect();
    let failed = |e: &[ktd_model::Envelope]| -> BTreeSet<KubeKind> {
        e.iter()
            .filter_map(|e| match &e.event {
                Event::WatchFailed { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    };
    run.until(30, "the other kinds' syncs and three failures", |e| {
        all_completed(e, &others) && failed(e).len() == 3
    })
    .await;
    assert_eq!(failed(&run.events), snapshot_kinds.into_iter().collect());
    for e in &run.events {
        if let Event::WatchFailed { error, .. } = &e.event {
            assert!(
                error.contains("the snapshot.storage.k8s.io/v1 CRDs are not installed (VolumeSnapshot* kinds cannot be observed)"),
                "{error}"
            );
        }
    }
    // Installing the CRDs later is picked up without a restart.
    server.set_snapshot_crds(true);
    run.until(45, "the snapshot kinds' syncs", |e| {
        all_completed(e, &snapshot_kinds)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(fold(&run.events), server_state(&server, KubeKind::ALL));
}

#[tokio::test]
async fn random_server_errors_and_drops_converge_without_duplicates() {
    let (server, _guard) = start(cluster(seed_objects())).await;
    let mut run = Run::start(config(&server)).await;
    run.until(30, "initial sync", |e| all_completed(e, KubeKind::ALL))
        .await;
    server.faults().set(ktd_sim::Faults {
        error_rate: 0.15,
        drop_rate: 0.15,
        ..ktd_sim::Faults::default()
    });
    for round in 0..20 {
        churn(&server, round);
        if round % 5 == 0 {
            server.expire_watches();
        }
        run.drain_for(100).await;
    }
    server.faults().set(ktd_sim::Faults::default());
    converge(&mut run, &server).await;
    assert_eq!(fold(&run.events), server_state(&server, KubeKind::ALL));
    assert_unique_ids(&run.events);
    // Failures are reported, but not once per retry.
    let failures = run
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::WatchFailed { .. }))
        .count();
    eprintln!(
        "{failures} WatchFailed events, {} lists",
        server.stats().lists
    );
    assert!(failures <= 12 * 6, "{failures} failure reports");
}

#[tokio::test]
async fn list_and_watch_are_the_only_verbs_used() {
    let mut c = cluster(seed_objects());
    c.denied = ["get", "create", "update", "patch", "delete"]
        .map(|verb| Denied {
            verb: verb.into(),
            group: "*".into(),
            resource: "*".into(),
        })
        .to_vec();
    let (server, _guard) = start(c).await;
    let mut run = Run::start(config(&server)).await;
    run.until(
        30,
        "every kind's sync with only list and watch granted",
        |e| all_completed(e, KubeKind::ALL),
    )
    .await;
    assert!(
        !run.events
            .iter()
            .any(|e| matches!(e.event, Event::WatchFailed { .. }))
    );
    // The rules rendered for deploy/ grant exactly these verbs.
    assert_eq!(ktd_kube::rbac::VERBS, ["list", "watch"]);
}
