//! The fake kube-apiserver's wire protocol, checked with a plain HTTP client.

mod kube_support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use ktd_sim::world::Denied;
use ktd_sim::{FaultInjector, Faults};
use kube_support::*;
use serde_json::{Value, json};

async fn get(url: &str) -> (u16, Value) {
    get_with(url, None).await
}

async fn get_with(url: &str, accept: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(accept) = accept {
        req = req.header("Accept", accept);
    }
    let resp = within(20, url, req.send()).await.expect("request");
    let code = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    (
        code,
        serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))),
    )
}

/// Reads a watch response line by line.
struct Lines {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Lines {
    async fn open(url: &str) -> (u16, Lines) {
        let resp = within(10, url, reqwest::Client::new().get(url).send())
            .await
            .expect("watch");
        let code = resp.status().as_u16();
        (
            code,
            Lines {
                body: resp.bytes_stream().boxed(),
                buf: Vec::new(),
            },
        )
    }

    /// The next event, `None` at a clean end of stream; panics after 10 s.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).expect("each line is one JSON event"));
            }
            match within(10, "a watch event", self.body.next()).await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => panic!("watch body failed: {e}"),
                None => {
                    assert!(self.buf.is_empty(), "stream ended mid-line");
                    return None;
                }
            }
        }
    }

    /// Whether the stream ends with an error (connection dropped) rather than cleanly.
    async fn ends_with_error(&mut self) -> bool {
        loop {
            match within(10, "the end of the watch", self.body.next()).await {
                Some(Ok(_)) => {}
                Some(Err(_)) => return true,
                None => return false,
            }
        }
    }
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn list_pages_are_consistent_and_expire() {
    let objects = (0..10).map(|i| pv(&format!("pv-{i:02}"))).collect();
    let (server, _guard) = start(cluster(objects)).await;
    let base = format!("{}/api/v1/persistentvolumes", server.url());
    let (code, first) = get(&format!("{base}?&limit=4")).await;
    assert_eq!(code, 200);
    assert_eq!(first["kind"], "PersistentVolumeList");
    assert_eq!(first["apiVersion"], "v1");
    assert_eq!(names(&first), ["pv-00", "pv-01", "pv-02", "pv-03"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 6);
    assert!(
        first["items"][0].get("kind").is_none(),
        "built-in list items carry no kind"
    );
    let list_rv = first["metadata"]["resourceVersion"].clone();
    server.apply(pv("pv-05a")).unwrap();
    server.delete("pv", None, "pv-09").unwrap();
    let token = first["metadata"]["continue"].as_str().unwrap();
    let (_, second) = get(&format!("{base}?&limit=4&continue={token}")).await;
    assert_eq!(
        second["metadata"]["resourceVersion"], list_rv,
        "one RV across pages"
    );
    assert_eq!(names(&second), ["pv-04", "pv-05", "pv-06", "pv-07"]);
    let token2 = second["metadata"]["continue"].as_str().unwrap().to_owned();
    let (_, third) = get(&format!("{base}?&limit=4&continue={token2}")).await;
    assert_eq!(
        names(&third),
        ["pv-08", "pv-09"],
        "the snapshot still has pv-09"
    );
    assert!(third["metadata"].get("continue").is_none());
    assert!(third["metadata"].get("remainingItemCount").is_none());

    // After compaction the token is too old: 410 Expired, and a fresh list works.
    server.expire_watches();
    let (code, status) = get(&format!("{base}?&limit=4&continue={token2}")).await;
    assert_eq!(code, 410);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["code"], 410);
    let (code, all) = get(&base).await;
    assert_eq!(code, 200);
    assert_eq!(names(&all).len(), 10);
    assert!(names(&all).contains(&"pv-05a".to_owned()));
    let (code, bad) = get(&format!("{base}?continue=garbage")).await;
    assert_eq!((code, bad["reason"].as_str()), (400, Some("BadRequest")));
}

#[tokio::test]
async fn selectors_filter_lists_and_unsupported_fields_are_refused() {
    let mut a = pv("a");
    a["metadata"]["labels"] = json!({"app": "web", "tier": "gold"});
    let events = vec![
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "db"},
            "involvedObject": {"kind": "PersistentVolumeClaim", "name": "data", "namespace": "db"},
            "reason": "ProvisioningFailed", "type": "Warning"}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2", "namespace": "web"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "FailedMount", "type": "Warning"}),
    ];
    let mut objects = vec![a, pv("b"), pv("c")];
    objects.extend(events);
    let (server, _guard) = start(cluster(objects)).await;
    let u = server.url();
    let (_, l) = get(&format!(
        "{u}/api/v1/persistentvolumes?labelSelector=app%3Dweb"
    ))
    .await;
    assert_eq!(names(&l), ["a"]);
    let (_, l) = get(&format!(
        "{u}/api/v1/persistentvolumes?labelSelector=app+notin+(web),!tier"
    ))
    .await;
    assert_eq!(names(&l), ["b", "c"]);
    let (_, l) = get(&format!(
        "{u}/api/v1/persistentvolumes?fieldSelector=metadata.name!%3Db"
    ))
    .await;
    assert_eq!(names(&l), ["a", "c"]);
    let (_, l) = get(&format!(
        "{u}/api/v1/events?fieldSelector=involvedObject.kind%3DPersistentVolumeClaim,type%3DWarning"
    ))
    .await;
    assert_eq!(names(&l), ["e1"]);
    let (_, l) = get(&format!("{u}/api/v1/namespaces/web/events")).await;
    assert_eq!(names(&l), ["e2"]);
    let (code, s) = get(&format!(
        "{u}/api/v1/persistentvolumes?fieldSelector=spec.claimRef.name%3Dx"
    ))
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        s["message"],
        "field label not supported: spec.claimRef.name"
    );
    let (code, pv_a) = get(&format!("{u}/api/v1/persistentvolumes/a")).await;
    assert_eq!(
        (code, pv_a["kind"].as_str()),
        (200, Some("PersistentVolume"))
    );
    let (code, s) = get(&format!("{u}/api/v1/persistentvolumes/nope")).await;
    assert_eq!((code, s["reason"].as_str()), (404, Some("NotFound")));
}

#[tokio::test]
async fn watch_streams_changes_bookmarks_and_timeouts() {
    let (server, _guard) = start(cluster(vec![pv("a"), pv("b")])).await;
    server.set_bookmark_interval(Duration::from_millis(100));
    let base = format!("{}/api/v1/persistentvolumes", server.url());

    // RV unset: synthetic ADDED for the current state first.
    let (code, mut w) = Lines::open(&format!("{base}?&watch=true&timeoutSeconds=1")).await;
    assert_eq!(code, 200);
    let e = w.next().await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["object"]["kind"].as_str()),
        (Some("ADDED"), Some("PersistentVolume"))
    );
    assert_eq!(w.next().await.unwrap()["object"]["metadata"]["name"], "b");
    let start = Instant::now();
    assert_eq!(
        w.next().await,
        None,
        "no bookmarks unless asked; closes after timeoutSeconds"
    );
    assert!(start.elapsed() >= Duration::from_millis(800));

    // From an RV: only later changes, bookmarks when allowed, one right before the timeout.
    let now = server.resource_version();
    let url = format!(
        "{base}?&watch=true&timeoutSeconds=2&allowWatchBookmarks=true&resourceVersion={now}"
    );
    let (_, mut w) = Lines::open(&url).await;
    let c = server.apply(pv("c")).unwrap();
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "ADDED");
    assert_eq!(rv(&e["object"]), rv(&c));
    let mut modified = c.clone();
    modified["status"]["phase"] = json!("Bound");
    server.apply(modified).unwrap();
    assert_eq!(w.next().await.unwrap()["type"], "MODIFIED");
    let deleted = server
        .delete("PersistentVolume", None, "c")
        .unwrap()
        .unwrap();
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "DELETED");
    assert_eq!(
        rv(&e["object"]),
        rv(&deleted),
        "stamped with the deletion RV"
    );
    assert_eq!(rv(&deleted), server.resource_version());
    let mut bookmarks = 0;
    while let Some(e) = w.next().await {
        assert_eq!(e["type"], "BOOKMARK");
        assert_eq!(e["object"]["kind"], "PersistentVolume");
        assert_eq!(e["object"]["apiVersion"], "v1");
        assert_eq!(rv(&e["object"]), server.resource_version());
        bookmarks += 1;
    }
    assert!(bookmarks >= 3, "periodic bookmarks, got {bookmarks}");
}

#[tokio::test]
async fn too_old_resource_versions_get_an_error_event() {
    let (server, _guard) = start(cluster(vec![pv("a")])).await;
    let base = format!("{}/api/v1/persistentvolumes", server.url());
    server.apply(pv("b")).unwrap();
    let (_, mut open) = Lines::open(&format!("{base}?&watch=true&resourceVersion=2")).await;
    server.expire_watches();
    let e = open.next().await.unwrap();
    assert_eq!(e["type"], "ERROR", "an open watch gets the 410 in-band");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(open.next().await, None);

    let (code, mut w) = Lines::open(&format!("{base}?&watch=true&resourceVersion=1")).await;
    assert_eq!(code, 200, "too old is HTTP 200 + ERROR event, not HTTP 410");
    let e = w.next().await.unwrap();
    assert_eq!(
        e,
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "too old resource version: 1 (2)",
            "reason": "Expired", "code": 410}})
    );
    assert_eq!(w.next().await, None);
}

#[tokio::test]
async fn a_watcher_lagging_beyond_the_history_gets_410() {
    let (server, _guard) = start(cluster(vec![pv("a")])).await;
    server.set_history_capacity(10);
    let now = server.resource_version();
    let url = format!(
        "{}/api/v1/persistentvolumes?watch=true&resourceVersion={now}",
        server.url()
    );
    let (_, mut w) = Lines::open(&url).await;
    // 50 changes before the watch task gets a chance to run (single-threaded runtime):
    // the 10 kept in the history no longer reach back to the watcher's position.
    for i in 0..50 {
        server.apply(pv(&format!("burst-{i}"))).unwrap();
    }
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["reason"], "Expired");
    assert_eq!(
        e["object"]["message"],
        format!("too old resource version: {now} (41)")
    );
    assert_eq!(w.next().await, None);
}

#[tokio::test]
async fn streaming_lists_end_with_the_annotated_bookmark() {
    let (server, _guard) = start(cluster(vec![pv("a"), pv("b")])).await;
    let url = format!(
        "{}/api/v1/persistentvolumes?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0",
        server.url()
    );
    let (_, mut w) = Lines::open(&url).await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    let marker = w.next().await.unwrap();
    assert_eq!(marker["type"], "BOOKMARK");
    assert_eq!(
        marker["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(rv(&marker["object"]), server.resource_version());
    server.apply(pv("c")).unwrap();
    assert_eq!(w.next().await.unwrap()["object"]["metadata"]["name"], "c");
    let (code, _) = get(&format!(
        "{}/api/v1/persistentvolumes?watch=1&sendInitialEvents=true",
        server.url()
    ))
    .await;
    assert_eq!(
        code, 422,
        "sendInitialEvents needs resourceVersionMatch=NotOlderThan"
    );
}

#[tokio::test]
async fn watches_with_selectors_see_objects_leave_and_enter() {
    let (server, _guard) = start(cluster(vec![pv("a")])).await;
    let now = server.resource_version();
    let url = format!(
        "{}/api/v1/persistentvolumes?watch=true&labelSelector=app%3Ddb&resourceVersion={now}",
        server.url()
    );
    let (_, mut w) = Lines::open(&url).await;
    let mut a = server.objects("pv").remove(0);
    a["metadata"]["labels"]["app"] = json!("web");
    server.apply(a.clone()).unwrap();
    let e = w.next().await.unwrap();
    assert_eq!(
        (
            e["type"].as_str(),
            e["object"]["metadata"]["labels"]["app"].as_str()
        ),
        (Some("DELETED"), Some("web"))
    );
    a["metadata"]["labels"]["app"] = json!("db");
    server.apply(a).unwrap();
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");

    // The legacy single-object watch path only sees that object.
    let url = format!(
        "{}/api/v1/persistentvolumes/b?watch=true&resourceVersion={}",
        server.url(),
        server.resource_version()
    );
    let (_, mut one) = Lines::open(&url).await;
    server.apply(pv("c")).unwrap();
    server.apply(pv("b")).unwrap();
    assert_eq!(one.next().await.unwrap()["object"]["metadata"]["name"], "b");
}

#[tokio::test]
async fn dropped_watches_die_mid_stream() {
    let (server, _guard) = start(cluster(vec![pv("a")])).await;
    let url = format!("{}/api/v1/persistentvolumes?watch=true", server.url());
    let (_, mut w) = Lines::open(&url).await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    server.drop_watches();
    assert!(
        w.ends_with_error().await,
        "an abrupt close, not a clean end"
    );
    // New watches are unaffected.
    let (_, mut w) = Lines::open(&url).await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
}

#[tokio::test]
async fn discovery_crds_rbac_and_write_verbs() {
    let mut c = cluster(vec![pv("a"), vs("db", "s1")]);
    c.snapshot_crds = false;
    let (server, _guard) = start(c).await;
    let u = server.url();
    let (code, v) = get(&format!("{u}/version")).await;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
    let (_, api) = get(&format!("{u}/api")).await;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, core) = get(&format!("{u}/api/v1")).await;
    let pv_res = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "persistentvolumes")
        .unwrap();
    assert_eq!(pv_res["shortNames"], json!(["pv"]));
    assert_eq!(pv_res["namespaced"], false);
    assert!(
        pv_res["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("watch"))
    );
    let (_, groups) = get(&format!("{u}/apis")).await;
    assert!(!groups.to_string().contains("snapshot.storage.k8s.io"));
    let (code, s) = get(&format!(
        "{u}/apis/snapshot.storage.k8s.io/v1/volumesnapshots"
    ))
    .await;
    assert_eq!((code, s["kind"].as_str()), (404, Some("Status")));

    server.set_snapshot_crds(true);
    let (_, groups) = get(&format!("{u}/apis")).await;
    assert!(groups.to_string().contains("snapshot.storage.k8s.io"));
    let (_, snap) = get(&format!("{u}/apis/snapshot.storage.k8s.io/v1")).await;
    let vs_res = snap["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "volumesnapshots")
        .unwrap();
    assert_eq!(vs_res["shortNames"], json!(["vs"]));
    let (code, l) = get(&format!(
        "{u}/apis/snapshot.storage.k8s.io/v1/namespaces/db/volumesnapshots"
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        l["items"][0]["kind"], "VolumeSnapshot",
        "custom resource list items keep kind"
    );

    server.set_denied(vec![Denied {
        verb: "watch".into(),
        group: "*".into(),
        resource: "persistentvolumes".into(),
    }]);
    let (code, _) = get(&format!("{u}/api/v1/persistentvolumes")).await;
    assert_eq!(code, 200, "list is still allowed");
    let (code, s) = get(&format!("{u}/api/v1/persistentvolumes?watch=true")).await;
    assert_eq!(
        (code, s["reason"].as_str(), s["code"].as_u64()),
        (403, Some("Forbidden"), Some(403))
    );
    let review = |verb: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"group": "", "resource": "persistentvolumes", "verb": verb}}})
    };
    let client = reqwest::Client::new();
    let ssar = format!("{u}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews");
    for (verb, allowed) in [("watch", false), ("list", true)] {
        let resp = client.post(&ssar).json(&review(verb)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"]["allowed"], allowed, "{verb}");
    }
    let resp = client
        .post(format!("{u}/api/v1/persistentvolumes"))
        .json(&pv("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let s: Value = resp.json().await.unwrap();
    assert_eq!(s["reason"], "MethodNotAllowed");
}

#[tokio::test]
async fn tables_for_kubectl() {
    let (server, _guard) = start(cluster(vec![pv("a")])).await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let (_, t) = get_with(
        &format!("{}/api/v1/persistentvolumes?limit=500", server.url()),
        Some(accept),
    )
    .await;
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let headers: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(headers[..3], ["Name", "Capacity", "Access Modes"]);
    assert!(headers.contains(&"Age") && headers.contains(&"Status"));
    assert_eq!(t["rows"][0]["cells"][0], "a");
    assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "a");
    assert!(t["metadata"]["resourceVersion"].is_string());
}

#[tokio::test]
async fn faults_errors_and_drops() {
    let (server, _guard) = start(cluster(vec![pv("a")])).await;
    let url = format!("{}/api/v1/persistentvolumes", server.url());
    let faults: &FaultInjector = server.faults();
    faults.set(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let (c1, s1) = get(&url).await;
    let (c2, _) = get(&url).await;
    assert_eq!((c1, c2), (500, 503));
    assert_eq!(s1["kind"], "Status");
    faults.set(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let resp = reqwest::Client::new().get(&url).send().await;
    let failed = match resp {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "a dropped connection is an error for the client");
    faults.set(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let start = Instant::now();
    assert_eq!(get(&url).await.0, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    faults.set(Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    });
    let hang = tokio::time::timeout(
        Duration::from_millis(500),
        reqwest::Client::new().get(&url).send(),
    )
    .await;
    assert!(hang.is_err(), "a hung request never answers");
}

#[tokio::test]
async fn large_lists_page_completely() {
    let mut objects: Vec<Value> = (0..10_000).map(|i| pv(&format!("pvc-{i:05}"))).collect();
    objects.extend((0..50_000).map(|i| vs(&format!("ns-{}", i % 20), &format!("snap-{i:06}"))));
    objects.extend((0..50_000).map(|i| vsc(&format!("snapcontent-{i:06}"))));
    let (server, _guard) = start(cluster(objects)).await;
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut total = 0;
    for path in [
        "/api/v1/persistentvolumes",
        "/apis/snapshot.storage.k8s.io/v1/volumesnapshots",
        "/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents",
    ] {
        let mut token = String::new();
        loop {
            let url = format!("{}{path}?&limit=500&continue={token}", server.url());
            let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            total += page["items"].as_array().unwrap().len();
            match page["metadata"]["continue"].as_str() {
                Some(t) => token = t.to_owned(),
                None => break,
            }
        }
    }
    assert_eq!(total, 110_000);
    let took = start.elapsed();
    eprintln!("paged 110k objects in {took:?}");
}
