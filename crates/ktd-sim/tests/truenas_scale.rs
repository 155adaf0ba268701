//! Scale: 10,000 datasets and 100,000 snapshots stay correct over REST and JSON-RPC (fast
//! paths, caches, trees). Timings are printed for humans; targets live in `bench/`.

mod truenas_support;

use std::time::Instant;

use ktd_sim::world::{Dataset, DatasetType, Personality, Snapshot};
use serde_json::{Value, json};
use truenas_support::*;

fn big_world() -> ktd_sim::Nas {
    let mut nas = fixture(Personality::V25_04);
    nas.datasets.push(fs("tank/k8s/vols", 0));
    for i in 0..10_000 {
        let name = format!("tank/k8s/vols/pvc-{i:05}");
        let mut d: Dataset = fs(&name, 1 << 20);
        if i % 2 == 0 {
            d.kind = DatasetType::Volume;
            d.volsize = Some(1 << 30);
        }
        d.user_properties
            .insert("democratic-csi:managed_resource".into(), "true".into());
        d.user_properties.insert(
            "democratic-csi:csi_volume_name".into(),
            format!("pvc-{i:05}"),
        );
        nas.datasets.push(d);
        for s in 0..10 {
            let mut snap: Snapshot = snap(&name, &format!("auto-{s}"), 1000 + s, &[]);
            snap.creation += i64::from(i);
            nas.snapshots.push(snap);
        }
    }
    nas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_stay_correct_at_100k_snapshots_and_10k_datasets() {
    let (server, _token) = start(big_world()).await;
    // First query: renders the world (once per change) and answers over REST.
    let started = Instant::now();
    let (status, all) = rest_get(&server, "/zfs/snapshot").await;
    let first = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(all.as_array().expect("list").len(), 100_003);
    let inherited = &all[3]["properties"]["democratic-csi:managed_resource"];
    assert_eq!(inherited["source"], "INHERITED");
    drop(all);
    // Second query: served from the cache.
    let started = Instant::now();
    let (status, again) = rest_get(&server, "/zfs/snapshot").await;
    let second = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(again.as_array().expect("list").len(), 100_003);
    drop(again);
    eprintln!("100k snapshots over REST (~170 MB): first {first:?}, cached {second:?}");

    // JSON-RPC: the same list (the test client's debug-build frame reader dominates here).
    let mut rpc = Rpc::login(&server).await;
    let started = Instant::now();
    assert_eq!(
        rpc.ok("zfs.snapshot.query", json!([[], {"count": true}]))
            .await,
        100_003
    );
    let per_dataset = rpc
        .ok(
            "zfs.snapshot.query",
            json!([[["dataset", "=", "tank/k8s/vols/pvc-04242"]], {"select": ["name"]}]),
        )
        .await;
    assert_eq!(per_dataset.as_array().expect("list").len(), 10);
    let one = rpc
        .ok(
            "zfs.snapshot.query",
            json!([[["id", "=", "tank/k8s/vols/pvc-04242@auto-3"]], {"get": true}]),
        )
        .await;
    assert_eq!(one["createtxg"], "1003");
    let fast = started.elapsed();
    eprintln!("count + per-dataset + single id over JSON-RPC: {fast:?}");
    let all = rpc.ok("zfs.snapshot.query", json!([])).await;
    assert_eq!(all.as_array().expect("list").len(), 100_003);

    // Datasets: count, a flat=false tree, and a filtered page.
    let started = Instant::now();
    assert_eq!(
        rpc.ok("pool.dataset.query", json!([[], {"count": true}]))
            .await,
        10_008
    );
    let tree = rpc.ok("pool.dataset.query", json!([[["id", "=", "tank/k8s/vols"]], {"extra": {"flat": false, "properties": ["used"]}}])).await;
    assert_eq!(
        tree[0]["children"].as_array().expect("children").len(),
        10_000
    );
    let page: Value = rpc.ok("pool.dataset.query", json!([[["type", "=", "VOLUME"]], {"limit": 5, "order_by": ["-name"], "select": ["name"]}])).await;
    assert_eq!(page[0]["name"], "tank/k8s/vols/pvc-09998");
    let elapsed = started.elapsed();
    eprintln!("10k datasets: three queries in {elapsed:?}");
}
