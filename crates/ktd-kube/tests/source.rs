//! The source against the fake apiserver: initial sync of a generated world, changes,
//! malformed objects, deterministic ids.

mod support;

use std::collections::BTreeSet;

use ktd_model::normalize::kube::normalize_as;
use ktd_model::{Event, KubeKind, ObjectKey};
use ktd_sim::{GenerateOptions, generate};
use pretty_assertions::assert_eq;
use support::*;

fn world_cluster() -> ktd_sim::Cluster {
    let world = generate(&GenerateOptions {
        volumes: 100,
        clusters: 1,
        ..GenerateOptions::default()
    });
    world.clusters.into_iter().next().expect("one cluster")
}

#[tokio::test]
async fn a_generated_world_streams_in_completely() {
    let mut cluster = world_cluster();
    // Objects the default selection leaves out: an ordinary pod and its ordinary event.
    cluster.objects.push(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}
    }));
    cluster.objects.push(serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-1.pulled", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"},
        "reason": "Pulled", "message": "Successfully pulled image", "type": "Normal"
    }));
    let (server, _guard) = start(cluster).await;
    let mut run = Run::start(config(&server)).await;
    run.until(60, "every kind's SyncCompleted", |e| {
        all_completed(e, KubeKind::ALL)
    })
    .await;
    let expected = server_state(&server, KubeKind::ALL);
    assert!(expected.len() > 300, "a sizeable world: {}", expected.len());
    for kind in KubeKind::ALL {
        assert!(
            expected.keys().any(|(k, _)| k == kind),
            "the world has {kind} objects"
        );
    }
    assert_eq!(fold(&run.events), expected);
    for (kind, name) in [(KubeKind::Pod, "web-1"), (KubeKind::Event, "web-1.pulled")] {
        assert!(!expected.contains_key(&(kind, ObjectKey::namespaced("shop", name))));
    }
    assert_unique_ids(&run.events);
    // Every applied object is what the normalizer makes of the server's JSON.
    for e in &run.events {
        match &e.event {
            Event::ObjectApplied { object } => {
                let raw = server
                    .objects(object.kind().as_str())
                    .into_iter()
                    .find(|o| {
                        o["metadata"]["name"] == object.key().name.as_str()
                            && o["metadata"]["namespace"].as_str()
                                == object.key().namespace.as_deref()
                    })
                    .expect("on the server");
                assert_eq!(&normalize_as(object.kind(), &raw).unwrap(), object);
            }
            Event::ObjectRejected { .. }
            | Event::WatchFailed { .. }
            | Event::ObjectDeleted { .. } => {
                panic!("unexpected in a clean initial sync: {}", describe(e))
            }
            _ => {}
        }
    }
    // SyncCompleted counts what was listed (after the Event filter).
    for e in &run.events {
        if let Event::SyncCompleted { kind, objects } = e.event {
            let n = expected.keys().filter(|(k, _)| *k == kind).count() as u64;
            assert_eq!(objects, n, "{kind}");
        }
    }
}

#[tokio::test]
async fn changes_arrive_within_a_second() {
    let (server, _guard) = start(cluster(vec![pv("pv-a"), pvc("db", "data")])).await;
    let mut run = Run::start(config(&server)).await;
    run.until(30, "initial sync", |e| all_completed(e, KubeKind::ALL))
        .await;
    let base = run.events.len();

    let created = server.apply(pv("pv-new")).unwrap();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let applied = |name: &'static str, rv: String| {
        move |e: &[ktd_model::Envelope]| {
            e[base..].iter().any(|e| {
                matches!(&e.event, Event::ObjectApplied { object }
                if object.key().name == name && object.meta().resource_version == rv)
            })
        }
    };
    run.until(1, "ObjectApplied for a new PV", applied("pv-new", rv))
        .await;

    let mut modified = created.clone();
    modified["status"]["phase"] = "Bound".into();
    let modified = server.apply(modified).unwrap();
    let rv = modified["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    run.until(
        1,
        "ObjectApplied for the modified PV",
        applied("pv-new", rv),
    )
    .await;

    let mut claim = server.objects("pvc").remove(0);
    claim["status"]["phase"] = "Bound".into();
    let claim = server.apply(claim).unwrap();
    let rv = claim["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    run.until(1, "ObjectApplied for the modified PVC", applied("data", rv))
        .await;

    let gone = server.delete("pv", None, "pv-new").unwrap().unwrap();
    let deletion_rv = gone["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    run.until(1, "ObjectDeleted for the PV", |e| {
        e[base..].iter().any(|e| {
            matches!(&e.event, Event::ObjectDeleted { key, missing_from_relist: false, .. }
            if key.name == "pv-new")
        })
    })
    .await;
    // The delete's id is derived from the deletion RV.
    let deleted = run
        .events
        .iter()
        .rev()
        .find(|e| matches!(e.event, Event::ObjectDeleted { .. }))
        .unwrap();
    let expected = ktd_model::Envelope::new(
        deleted.source.clone(),
        deleted.observed_at,
        Event::ObjectDeleted {
            kind: KubeKind::PersistentVolume,
            key: ObjectKey::cluster("pv-new"),
            uid: created["metadata"]["uid"].as_str().map(String::from),
            missing_from_relist: false,
        },
        deletion_rv.as_bytes(),
    );
    assert_eq!(deleted.id, expected.id);
    assert_eq!(fold(&run.events), server_state(&server, KubeKind::ALL));
    assert_unique_ids(&run.events);
}

#[tokio::test]
async fn malformed_objects_are_rejected_by_name_and_the_rest_flows() {
    let (server, _guard) = start(cluster(vec![pv("pv-a")])).await;
    let mut run = Run::start(config(&server)).await;
    run.until(30, "initial sync", |e| all_completed(e, KubeKind::ALL))
        .await;

    let mut bad = pv("pv-lots");
    bad["spec"]["capacity"]["storage"] = "lots".into();
    server.apply(bad).unwrap();
    let mut wrong_type = pv("pv-typed");
    wrong_type["spec"]["csi"]["volumeHandle"] = serde_json::json!(42);
    server.apply(wrong_type).unwrap();
    server.apply(pv("pv-fine")).unwrap();
    run.until(5, "the good PV after the bad ones", |e| {
        e.iter().any(|e| matches!(&e.event, Event::ObjectApplied { object } if object.key().name == "pv-fine"))
    })
    .await;
    let rejected: Vec<(String, String)> = run
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ObjectRejected {
                kind: KubeKind::PersistentVolume,
                key: Some(key),
                error,
            } => Some((key.name.clone(), error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, "pv-lots");
    assert!(
        rejected[0].1.contains("pv-lots") && rejected[0].1.contains("lots"),
        "{}",
        rejected[0].1
    );
    assert_eq!(rejected[1].0, "pv-typed");
    assert!(rejected[1].1.contains("pv-typed"), "{}", rejected[1].1);

    // A relist does not repeat the rejections (their RVs are known).
    server.expire_watches();
    run.until(30, "the relist of PVs", |e| {
        completed(e, 2).contains(&KubeKind::PersistentVolume)
    })
    .await;
    let rejections = run
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::ObjectRejected { .. }))
        .count();
    assert_eq!(rejections, 2);
    assert_unique_ids(&run.events);
}

#[tokio::test]
async fn two_runs_give_the_same_ids_for_the_initial_sync() {
    let (server, _guard) = start(world_cluster()).await;
    let mut a = Run::start(config(&server)).await;
    // Run B observes at a fixed, controlled time: observed_at is not part of an id.
    let at = ktd_model::Timestamp::from_unix_secs(1_800_000_000);
    let client = config(&server).client().await.unwrap();
    let mut b =
        Run::from_source(ktd_kube::KubeSource::new(client, config(&server)).clock(move || at));
    a.until(60, "run A's sync", |e| all_completed(e, KubeKind::ALL))
        .await;
    b.until(60, "run B's sync", |e| all_completed(e, KubeKind::ALL))
        .await;
    // Let stragglers (none expected) arrive.
    a.drain_for(200).await;
    b.drain_for(200).await;
    let ids = |r: &Run| r.events.iter().map(|e| e.id).collect::<BTreeSet<_>>();
    assert!(ids(&a).len() > 300);
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.events.len(), b.events.len());
    assert!(b.events.iter().all(|e| e.observed_at == at));
    assert!(a.events.iter().all(|e| e.observed_at != at));
}

#[tokio::test]
async fn a_restart_from_the_log_reports_what_changed_while_down_and_nothing_else() {
    let (server, _guard) = start(cluster(vec![
        pv("pv-a"),
        pv("pv-b"),
        pv("pv-c"),
        pvc("db", "data"),
    ]))
    .await;
    let mut first = Run::start(config(&server)).await;
    first
        .until(30, "the first run's sync", |e| {
            all_completed(e, KubeKind::ALL)
        })
        .await;
    first.stop();

    // While ktd is down: one PV deleted, one modified, one created.
    server.delete("pv", None, "pv-b").unwrap().unwrap();
    let mut c = server
        .objects("pv")
        .into_iter()
        .find(|o| o["metadata"]["name"] == "pv-c")
        .unwrap();
    c["status"]["phase"] = "Released".into();
    server.apply(c).unwrap();
    server.apply(pv("pv-d")).unwrap();

    let mut known = ktd_kube::KnownObjects::new("test");
    for e in &first.events {
        known.apply(e);
    }
    assert_eq!(known.len(KubeKind::PersistentVolume), 3);
    assert_eq!(known.syncs(KubeKind::PersistentVolume), 1);
    let mut second = Run::start_with(config(&server), known).await;
    second
        .until(30, "the second run's sync", |e| {
            all_completed(e, KubeKind::ALL)
        })
        .await;
    let objects: Vec<String> = second
        .events
        .iter()
        .filter(|e| {
            !matches!(
                e.event,
                Event::SyncStarted { .. } | Event::SyncCompleted { .. }
            )
        })
        .map(describe)
        .collect();
    assert_eq!(objects.len(), 3, "{objects:#?}");
    assert!(second.events.iter().any(|e| matches!(&e.event,
        Event::ObjectDeleted { key, missing_from_relist: true, .. } if key.name == "pv-b")));
    for name in ["pv-c", "pv-d"] {
        assert!(second.events.iter().any(|e| matches!(&e.event,
            Event::ObjectApplied { object } if object.key().name == name)));
    }
    // The second run's sync markers are new facts, not duplicates of the first run's.
    let first_ids: BTreeSet<_> = first.events.iter().map(|e| e.id).collect();
    assert!(second.events.iter().all(|e| !first_ids.contains(&e.id)));
    let mut all = first.events.clone();
    all.extend(second.events.iter().cloned());
    assert_eq!(fold(&all), server_state(&server, KubeKind::ALL));
}

#[tokio::test]
async fn a_bundle_lists_every_kind_and_reads_back() {
    let (server, _guard) = start(world_cluster()).await;
    let config = config(&server);
    let client = config.client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = ktd_kube::collect_to_dir(&client, &config, dir.path())
        .await
        .unwrap();
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    let file = std::fs::File::open(dir.path().join("kubernetes.json")).unwrap();
    let mut read = std::collections::BTreeMap::new();
    ktd_model::normalize::kube::read_list(file, |o| {
        let o = o.expect("every item normalizes");
        read.insert((o.kind(), o.key()), o.meta().resource_version.clone());
    })
    .unwrap();
    assert_eq!(read, server_state(&server, KubeKind::ALL));
    let written: u64 = summary.objects.iter().map(|(_, n)| n).sum();
    assert_eq!(written as usize, read.len());
    let text = std::fs::read_to_string(dir.path().join("kubernetes.json")).unwrap();
    assert!(!text.contains("\"kind\":\"Secret\""));
    assert!(!text.contains("managedFields"));

    // Kinds the apiserver refuses are left out and named, the rest is written.
    server.set_snapshot_crds(false);
    let mut out = Vec::new();
    let summary = ktd_kube::collect_list(&client, &config, &mut out)
        .await
        .unwrap();
    assert_eq!(summary.skipped.len(), 3, "{:?}", summary.skipped);
    assert!(summary.skipped[0].1.contains("CRDs are not installed"));
    serde_json::from_slice::<serde_json::Value>(&out).expect("still one valid JSON document");
}
