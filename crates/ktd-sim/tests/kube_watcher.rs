//! kube-runtime's watcher and reflector (kube 5) against the fake kube-apiserver.

mod kube_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::PersistentVolume;
use ktd_sim::KubeApiServer;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config, ResourceExt};
use kube_support::*;
use serde_json::Value;

fn client(server: &KubeApiServer) -> Client {
    let config = Config::new(server.url().parse().expect("url"));
    Client::try_from(config).expect("client")
}

type Event<K> = Result<watcher::Event<K>, watcher::Error>;

/// The next event, failing the test if none comes within 10 s.
async fn next<K, S: Stream<Item = Event<K>> + Unpin>(s: &mut S) -> Event<K> {
    within(10, "a watcher event", s.next())
        .await
        .expect("the watcher never ends")
}

/// Events up to and including `InitDone`; returns the objects of the initial list.
async fn until_init_done<K: ResourceExt + std::fmt::Debug, S: Stream<Item = Event<K>> + Unpin>(
    s: &mut S,
) -> Vec<K> {
    let mut objects = Vec::new();
    loop {
        match next(s).await.expect("no errors during the initial list") {
            watcher::Event::Init => objects.clear(),
            watcher::Event::InitApply(o) => objects.push(o),
            watcher::Event::InitDone => return objects,
            other => panic!("unexpected event before InitDone: {other:?}"),
        }
    }
}

fn state(store: &Store<PersistentVolume>) -> BTreeMap<String, String> {
    store
        .state()
        .iter()
        .map(|pv| (pv.name_any(), pv.resource_version().unwrap_or_default()))
        .collect()
}

fn server_state(server: &KubeApiServer) -> BTreeMap<String, String> {
    server
        .objects("PersistentVolume")
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            (
                m["name"].as_str().unwrap().to_owned(),
                m["resourceVersion"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits until the reflector's store equals the server's objects.
async fn converge(store: &Store<PersistentVolume>, server: &KubeApiServer) {
    let wait = async {
        while state(store) != server_state(server) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .is_err()
    {
        let (a, b) = (state(store), server_state(server));
        panic!(
            "store never converged: {} objects vs {} on the server",
            a.len(),
            b.len()
        );
    }
}

#[tokio::test]
async fn paged_initial_list_then_apply_and_delete() {
    let objects = (0..50).map(|i| pv(&format!("pv-{i:02}"))).collect();
    let (server, _guard) = start(cluster(objects)).await;
    let api = Api::<PersistentVolume>::all(client(&server));
    let mut w = watcher(api, watcher::Config::default().page_size(7))
        .default_backoff()
        .boxed();
    let initial = until_init_done(&mut w).await;
    let names: BTreeSet<String> = initial.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names.len(), 50);
    assert!(names.contains("pv-00") && names.contains("pv-49"));
    assert_eq!(server.stats().lists, 8, "50 objects in pages of 7");

    let created = server.apply(pv("new")).unwrap();
    match next(&mut w).await.unwrap() {
        watcher::Event::Apply(o) => {
            assert_eq!(o.name_any(), "new");
            assert_eq!(
                o.resource_version().as_deref(),
                created["metadata"]["resourceVersion"].as_str()
            );
            assert_eq!(o.spec.unwrap().csi.unwrap().volume_handle, "new");
        }
        other => panic!("expected Apply, got {other:?}"),
    }
    let mut bound = created.clone();
    bound["status"]["phase"] = "Bound".into();
    server.apply(bound).unwrap();
    match next(&mut w).await.unwrap() {
        watcher::Event::Apply(o) => assert_eq!(o.status.unwrap().phase.as_deref(), Some("Bound")),
        other => panic!("expected Apply, got {other:?}"),
    }
    let gone = server.delete("pv", None, "new").unwrap().unwrap();
    match next(&mut w).await.unwrap() {
        watcher::Event::Delete(o) => {
            assert_eq!(o.name_any(), "new");
            assert_eq!(
                o.resource_version().as_deref(),
                gone["metadata"]["resourceVersion"].as_str()
            );
        }
        other => panic!("expected Delete, got {other:?}"),
    }
}

#[tokio::test]
async fn dynamic_volume_snapshots_page_and_watch_per_namespace() {
    let objects = (0..50)
        .map(|i| vs(&format!("ns-{}", i % 3), &format!("snap-{i:02}")))
        .collect();
    let (server, _guard) = start(cluster(objects)).await;
    let gvk = GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshot");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "volumesnapshots");
    let all = Api::<DynamicObject>::all_with(client(&server), &ar);
    let mut w = watcher(all, watcher::Config::default().page_size(7)).boxed();
    let initial = until_init_done(&mut w).await;
    assert_eq!(initial.len(), 50);
    assert!(
        initial
            .iter()
            .all(|o| o.data["status"]["readyToUse"] == Value::Bool(true))
    );

    let ns1 = Api::<DynamicObject>::namespaced_with(client(&server), "ns-1", &ar);
    let mut w1 = watcher(ns1, watcher::Config::default().page_size(7)).boxed();
    let initial = until_init_done(&mut w1).await;
    assert_eq!(initial.len(), 17);
    assert!(
        initial
            .iter()
            .all(|o| o.namespace().as_deref() == Some("ns-1"))
    );

    server.apply(vs("ns-2", "later")).unwrap();
    server.apply(vs("ns-1", "later")).unwrap();
    match next(&mut w1).await.unwrap() {
        watcher::Event::Apply(o) => assert_eq!(
            (o.namespace().unwrap(), o.name_any()),
            ("ns-1".into(), "later".into())
        ),
        other => panic!("expected Apply in ns-1, got {other:?}"),
    }
    for want in ["ns-2", "ns-1"] {
        match next(&mut w).await.unwrap() {
            watcher::Event::Apply(o) => assert_eq!(o.namespace().as_deref(), Some(want)),
            other => panic!("expected Apply, got {other:?}"),
        }
    }
    assert_eq!(
        server.stats().lists,
        8 + 3,
        "pages of 7: 8 for all 50, 3 for the 17 in ns-1"
    );
}

#[tokio::test]
async fn streaming_list_reaches_init_done() {
    let (server, _guard) = start(cluster((0..5).map(|i| pv(&format!("pv-{i}"))).collect())).await;
    let api = Api::<PersistentVolume>::all(client(&server));
    let mut w = watcher(api, watcher::Config::default().streaming_lists()).boxed();
    assert_eq!(until_init_done(&mut w).await.len(), 5);
    server.apply(pv("pv-9")).unwrap();
    assert!(
        matches!(next(&mut w).await.unwrap(), watcher::Event::Apply(o) if o.name_any() == "pv-9")
    );
}

#[tokio::test]
async fn metadata_only_watcher() {
    let (server, _guard) = start(cluster((0..9).map(|i| pv(&format!("pv-{i}"))).collect())).await;
    let api = Api::<PartialObjectMeta<PersistentVolume>>::all(client(&server));
    let mut w = watcher(api, watcher::Config::default().page_size(4)).boxed();
    let initial = until_init_done(&mut w).await;
    assert_eq!(initial.len(), 9);
    assert!(
        initial[0]
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l["app"] == "db")
    );
    server.delete("pv", None, "pv-3").unwrap();
    assert!(
        matches!(next(&mut w).await.unwrap(), watcher::Event::Delete(o) if o.name_any() == "pv-3")
    );
}

#[tokio::test]
async fn a_410_storm_makes_the_reflector_relist_and_converge() {
    let (server, _guard) = start(cluster(
        (0..30).map(|i| pv(&format!("pv-{i:02}"))).collect(),
    ))
    .await;
    let api = Api::<PersistentVolume>::all(client(&server));
    let (reader, writer) = reflector::store();
    let mut events = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().page_size(7)),
    )
    .boxed();
    let (inits, expired) = (
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    );
    let drive = async {
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => {
                    inits.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                }
                Err(watcher::Error::WatchError(s)) if s.code == 410 => {
                    expired.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                }
                _ => 0,
            };
        }
    };
    let storm = async {
        within(10, "the first sync", reader.wait_until_ready())
            .await
            .unwrap();
        for round in 0..8 {
            // Changes the watcher will only learn about by re-listing: made while it is
            // being cut off, including deletions (which a re-list reports by absence).
            server.expire_watches();
            server.apply(pv(&format!("storm-{round}"))).unwrap();
            server
                .delete("pv", None, &format!("pv-{round:02}"))
                .unwrap();
            let mut m = pv(&format!("pv-{:02}", 20 + round));
            m["status"]["phase"] = "Released".into();
            server.apply(m).unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        server.expire_watches();
        converge(&reader, &server).await;
    };
    tokio::select! {
        () = drive => panic!("the watcher ended"),
        () = storm => {}
    }
    let (inits, expired) = (inits.into_inner(), expired.into_inner());
    assert!(
        expired >= 5,
        "open watches got 410 ERROR events ({expired})"
    );
    assert!(
        inits > expired / 2 && inits >= 5,
        "each 410 made the watcher re-list ({inits} lists)"
    );
    assert_eq!(state(&reader).len(), 30);
}

#[tokio::test]
async fn dropped_streams_resume_without_missing_changes() {
    let (server, _guard) = start(cluster(
        (0..10).map(|i| pv(&format!("pv-{i:02}"))).collect(),
    ))
    .await;
    server.set_bookmark_interval(Duration::from_millis(30));
    let api = Api::<PersistentVolume>::all(client(&server));
    let (reader, writer) = reflector::store();
    let mut events = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().page_size(4)),
    )
    .boxed();
    let seen = std::sync::Mutex::new((0usize, 0usize, BTreeSet::<String>::new()));
    let drive = async {
        while let Some(event) = events.next().await {
            let mut seen = seen.lock().unwrap();
            match event {
                Ok(watcher::Event::Init) => seen.0 += 1,
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                    seen.2.insert(o.resource_version().unwrap());
                }
                Err(_) => seen.1 += 1,
                _ => {}
            }
        }
    };
    let mut made = BTreeSet::new();
    let churn = async {
        within(10, "the first sync", reader.wait_until_ready())
            .await
            .unwrap();
        for round in 0..40 {
            let stored = server.apply(pv(&format!("churn-{round:02}"))).unwrap();
            made.insert(
                stored["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            if round % 3 == 0 {
                let gone = server
                    .delete("pv", None, &format!("churn-{round:02}"))
                    .unwrap()
                    .unwrap();
                made.insert(
                    gone["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            if round % 5 == 0 {
                server.drop_watches();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        converge(&reader, &server).await;
    };
    tokio::select! {
        () = drive => panic!("the watcher ended"),
        () = churn => {}
    }
    let (inits, errors, rvs) = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(
        inits, 1,
        "drops resume the watch from the last RV; no re-list"
    );
    // kube reads an aborted chunked body as EOF (not an error) and simply re-watches.
    assert_eq!(errors, 0);
    let stats = server.stats();
    assert!(
        stats.watches >= 8,
        "each of the 8 drops forced a re-watch ({stats:?})"
    );
    assert_eq!(stats.lists, 3, "10 objects in pages of 4, listed once");
    let missed: Vec<_> = made.difference(&rvs).collect();
    assert!(
        missed.is_empty(),
        "every change arrived as an event; missed RVs {missed:?}"
    );
}

#[tokio::test]
async fn the_reflector_converges_through_errors_drops_and_latency() {
    let (server, _guard) = start(cluster(
        (0..20).map(|i| pv(&format!("pv-{i:02}"))).collect(),
    ))
    .await;
    let api = Api::<PersistentVolume>::all(client(&server));
    let (reader, writer) = reflector::store();
    let mut events = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().page_size(6)),
    )
    .boxed();
    let errors = std::sync::atomic::AtomicUsize::new(0);
    let drive = async {
        while let Some(event) = events.next().await {
            if event.is_err() {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    };
    let churn = async {
        within(10, "the first sync", reader.wait_until_ready())
            .await
            .unwrap();
        server.faults().set(ktd_sim::Faults {
            latency_ms: 5,
            error_rate: 0.2,
            drop_rate: 0.1,
            ..ktd_sim::Faults::default()
        });
        for round in 0..30 {
            server.apply(pv(&format!("churn-{round:02}"))).unwrap();
            if round % 4 == 0 {
                server
                    .delete("pv", None, &format!("pv-{:02}", round / 4))
                    .unwrap();
            }
            if round % 10 == 9 {
                server.expire_watches();
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        server.faults().set(ktd_sim::Faults::default());
        converge(&reader, &server).await;
    };
    tokio::select! {
        () = drive => panic!("the watcher ended"),
        () = churn => {}
    }
    assert!(errors.into_inner() > 0, "faults were injected and seen");
}

#[tokio::test]
async fn frequent_bookmarks_and_short_timeouts_do_not_disturb_the_watcher() {
    let (server, _guard) = start(cluster(vec![pv("a")])).await;
    server.set_bookmark_interval(Duration::from_millis(20));
    let api = Api::<PersistentVolume>::all(client(&server));
    let mut w = watcher(api, watcher::Config::default().timeout(1))
        .default_backoff()
        .boxed();
    assert_eq!(until_init_done(&mut w).await.len(), 1);
    for round in 0..3 {
        // Let bookmarks flow and at least one watch time out and resume.
        let quiet = tokio::time::timeout(Duration::from_millis(1300), w.next()).await;
        assert!(
            quiet.is_err(),
            "bookmarks and re-watches are silent, got {:?}",
            quiet.ok()
        );
        server.apply(pv(&format!("b-{round}"))).unwrap();
        match next(&mut w).await {
            Ok(watcher::Event::Apply(o)) => assert_eq!(o.name_any(), format!("b-{round}")),
            other => panic!("expected Apply, got {other:?}"),
        }
    }
    let stats = server.stats();
    assert_eq!(stats.lists, 1, "never re-listed");
    assert!(
        stats.watches >= 4,
        "timed-out watches were resumed ({stats:?})"
    );
}
