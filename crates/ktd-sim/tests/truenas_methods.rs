//! Every simulated method over REST and over JSON-RPC, per personality: presence,
//! absence, and the wire shapes of the reference.

mod truenas_support;

use ktd_sim::world::Personality;
use serde_json::{Value, json};
use truenas_support::*;

/// (REST path, JSON-RPC method) pairs served on every release.
const COMMON: &[(&str, &str)] = &[
    ("/pool", "pool.query"),
    ("/pool/dataset", "pool.dataset.query"),
    ("/sharing/nfs", "sharing.nfs.query"),
    ("/sharing/smb", "sharing.smb.query"),
    ("/iscsi/extent", "iscsi.extent.query"),
    ("/iscsi/target", "iscsi.target.query"),
    ("/iscsi/targetextent", "iscsi.targetextent.query"),
    ("/iscsi/global", "iscsi.global.config"),
    ("/system/version", "system.version"),
    ("/system/version_short", "system.version_short"),
    ("/alert/list", "alert.list"),
    ("/core/ping", "core.ping"),
    ("/core/get_jobs", "core.get_jobs"),
    ("/service", "service.query"),
];

fn assert_dataset_prop(v: &Value, what: &str) {
    let keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is an object"))
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["parsed", "rawvalue", "source", "source_info", "value"],
        "{what}"
    );
    assert!(v["rawvalue"].is_string(), "{what} rawvalue is a string");
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .expect("list")
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} in list"))
}

fn check_datasets(p: Personality, list: &Value) {
    let ids: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    assert!(
        !ids.iter()
            .any(|i| i.contains(".system") || i.contains("ix-applications")),
        "internal datasets hidden: {ids:?}"
    );
    assert_eq!(ids.len(), 7, "{ids:?}");
    for d in list.as_array().expect("list") {
        assert_eq!(d["id"], d["name"], "id == name == full path");
        assert_eq!(d["pool"], "tank");
        assert!(d["children"].is_array());
        for key in [
            "used",
            "available",
            "usedbydataset",
            "usedbysnapshots",
            "usedbychildren",
            "creation",
            "compression",
            "origin",
        ] {
            assert_dataset_prop(&d[key], key);
        }
        let u = |k: &str| d[k]["parsed"].as_u64().expect("int parsed");
        assert_eq!(
            u("used"),
            u("usedbydataset")
                + u("usedbysnapshots")
                + u("usedbychildren")
                + u("usedbyrefreservation"),
            "used is computed for {}",
            d["id"]
        );
        assert_eq!(d["creation"]["parsed"], json!({"$date": CREATION * 1000}));
        assert_eq!(d["creation"]["rawvalue"], CREATION.to_string());
    }
    let root = find(list, "tank");
    assert_eq!(
        root["children"].as_array().expect("children").len(),
        1,
        "tank has one visible child (k8s)"
    );
    // flat=true: every dataset carries its whole subtree.
    let k8s = &root["children"][0];
    assert_eq!(k8s["name"], "tank/k8s");
    assert_eq!(k8s["children"].as_array().expect("children").len(), 2);
    assert_eq!(root["compression"]["source"], "LOCAL");
    assert_eq!(
        root["compression"]["value"], "LZ4",
        "enum values upper-cased"
    );
    assert_eq!(root["compression"]["parsed"], "lz4");

    let a = find(list, "tank/k8s/nfs/pvc-a");
    assert_eq!(a["type"], "FILESYSTEM");
    assert_eq!(a["mountpoint"], "/mnt/tank/k8s/nfs/pvc-a");
    assert_eq!(a["compression"]["source"], "INHERITED");
    assert_eq!(a["compression"]["source_info"], "tank");
    assert_eq!(a["refquota"]["parsed"], 10 * GIB);
    assert_eq!(a["refquota"]["value"], "10G");
    assert_eq!(
        a["quota"],
        json!({"parsed": null, "rawvalue": "0", "value": null, "source": "DEFAULT", "source_info": null})
    );
    assert_eq!(a["atime"]["value"], "OFF");
    assert_eq!(a["readonly"]["parsed"], false);
    assert!(a.get("volsize").is_none(), "volsize only on volumes");
    let up = &a["user_properties"];
    assert_eq!(
        up["democratic-csi:managed_resource"],
        json!({"value": "true", "rawvalue": "true", "parsed": "true", "source": "LOCAL"})
    );
    assert_eq!(
        up["ktd:owner"],
        json!({"value": "cluster-a", "rawvalue": "cluster-a", "parsed": "cluster-a", "source": "INHERITED"})
    );

    let c = find(list, "tank/k8s/nfs/pvc-c");
    assert_eq!(c["origin"]["value"], "tank/k8s/nfs/pvc-a@snapshot-1");
    assert_eq!(
        c["user_properties"]["democratic-csi:csi_volume_name"]["source"],
        "RECEIVED"
    );

    let b = find(list, "tank/k8s/iscsi/pvc-b");
    assert_eq!(b["type"], "VOLUME");
    assert_eq!(b["mountpoint"], Value::Null, "zvols have no mountpoint");
    assert_eq!(b["volsize"]["parsed"], 10 * GIB);
    assert_eq!(b["volsize"]["source"], "LOCAL");
    assert!(
        b.get("quota").is_none() && b.get("refquota").is_none(),
        "no quotas on volumes"
    );
    assert_eq!(
        b["usedbyrefreservation"]["parsed"],
        10 * GIB + 256 * 1024 * 1024 - 2 * GIB
    );
    // available comes from the pool: usable = 3/4 of raw (one RAIDZ1 of four disks).
    let pool_used = root["used"]["parsed"].as_u64().expect("root used");
    assert_eq!(
        root["available"]["parsed"].as_u64().expect("avail"),
        300 * GIB - pool_used
    );
    assert_eq!(
        a["available"]["parsed"].as_u64().expect("avail"),
        7 * GIB,
        "refquota caps available"
    );
    let _ = p;
}

fn check_snapshots(list: &Value) {
    let arr = list.as_array().expect("list");
    assert_eq!(arr.len(), 3, "internal snapshots hidden");
    let csi = find(list, "tank/k8s/nfs/pvc-a@snapshot-1");
    for k in [
        "id",
        "name",
        "pool",
        "type",
        "snapshot_name",
        "dataset",
        "createtxg",
        "properties",
    ] {
        assert!(csi.get(k).is_some(), "snapshot has {k}");
    }
    assert_eq!(csi["name"], csi["id"]);
    assert_eq!(csi["type"], "SNAPSHOT");
    assert_eq!(csi["snapshot_name"], "snapshot-1");
    assert_eq!(csi["dataset"], "tank/k8s/nfs/pvc-a");
    assert_eq!(csi["createtxg"], "800", "createtxg is a string");
    let props = &csi["properties"];
    let mut keys: Vec<&str> = props["used"]
        .as_object()
        .expect("prop")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["parsed", "rawvalue", "source", "value"],
        "no source_info on snapshots"
    );
    assert_eq!(props["used"]["parsed"], 1_253_376);
    assert_eq!(props["used"]["value"], "1.20M");
    assert_eq!(
        props["creation"]["parsed"],
        json!({"$date": (CREATION + 800) * 1000})
    );
    assert_eq!(props["clones"]["value"], "tank/k8s/nfs/pvc-c");
    assert_eq!(props["democratic-csi:managed_resource"]["source"], "LOCAL");
    assert_eq!(
        props["democratic-csi:csi_snapshot_name"]["value"],
        "snapshot-1"
    );
    // A periodic snapshot of a CSI volume inherits the dataset's user properties.
    let auto = find(list, "tank/k8s/nfs/pvc-a@auto-2024-11-08_00-00");
    let m = &auto["properties"]["democratic-csi:managed_resource"];
    assert_eq!(
        m,
        &json!({"value": "true", "rawvalue": "true", "parsed": "true", "source": "INHERITED"})
    );
    assert_eq!(auto["properties"]["ktd:owner"]["source"], "INHERITED");
    assert!(
        auto["properties"]
            .get("democratic-csi:csi_snapshot_name")
            .is_none()
    );
}

fn check_pool(p: Personality, pools: &Value) {
    let pool = &pools[0];
    assert_eq!(pool["name"], "tank");
    assert_eq!(pool["id"], 1);
    assert!(pool["guid"].is_string());
    assert_eq!(pool["path"], "/mnt/tank");
    assert_eq!(pool["size"], 400 * GIB);
    assert_eq!(pool["healthy"], true);
    assert_eq!(
        pool["scan"]["end_time"],
        json!({"$date": 1_731_203_600_000i64})
    );
    assert_eq!(pool["topology"]["data"][0]["type"], "RAIDZ1");
    assert_eq!(
        pool.get("encrypt").is_some(),
        p == Personality::V22_12,
        "22.12 has encrypt"
    );
    assert_eq!(pool.get("is_decrypted").is_some(), p == Personality::V22_12);
    assert_eq!(
        pool.get("status_code").is_some(),
        p > Personality::V22_12,
        "status_code from 23.10"
    );
    assert_eq!(
        pool.get("dedup_table_size").is_some(),
        p >= Personality::V25_04
    );
    assert_eq!(pool.get("expand").is_some(), p >= Personality::V25_10);
}

fn check_records(p: Personality, get: &dyn Fn(&str) -> Value) {
    let nfs = &get("sharing.nfs.query")[0];
    assert_eq!(nfs["path"], "/mnt/tank/k8s/nfs/pvc-a");
    assert!(nfs.get("paths").is_none());
    assert_eq!(nfs.get("quiet").is_some(), p == Personality::V22_12);
    assert_eq!(
        nfs.get("expose_snapshots").is_some(),
        p >= Personality::V25_04
    );
    let smb = &get("sharing.smb.query")[0];
    if p >= Personality::V25_10 {
        assert_eq!(smb["readonly"], false);
        assert_eq!(smb["access_based_share_enumeration"], false);
        assert!(smb["options"].is_object());
        assert!(smb.get("ro").is_none() && smb.get("abe").is_none());
    } else {
        assert_eq!(smb["ro"], false);
        assert_eq!(smb["abe"], false);
        assert!(smb.get("options").is_none() && smb.get("readonly").is_none());
    }
    let ext = &get("iscsi.extent.query")[0];
    assert_eq!(ext["disk"], "zvol/tank/k8s/iscsi/pvc-b");
    assert_eq!(ext["path"], ext["disk"]);
    assert_eq!(ext["type"], "DISK");
    let tgt = &get("iscsi.target.query")[0];
    assert_eq!(tgt["groups"][0]["portal"], 1);
    assert_eq!(
        tgt.get("iscsi_parameters").is_some(),
        p >= Personality::V25_04
    );
    assert_eq!(
        get("iscsi.targetextent.query")[0],
        json!({"id": 1, "target": 1, "lunid": 0, "extent": 1})
    );
    let global = get("iscsi.global.config");
    assert_eq!(global["basename"], "iqn.2005-10.org.freenas.ctl");
    assert_eq!(global.get("iser").is_some(), p >= Personality::V25_04);
    let version = get("system.version");
    assert_eq!(
        version.as_str().expect("string").contains("SCALE"),
        p < Personality::V25_04
    );
    assert_eq!(version, p.version_string());
    assert_eq!(get("system.version_short"), p.version_short());
    assert_eq!(get("core.ping"), "pong");
    assert_eq!(get("core.get_jobs"), json!([]));
    let svc = get("service.query");
    assert_eq!(
        svc[0],
        json!({"id": 1, "service": "nfs", "enable": true, "state": "RUNNING", "pids": [1000]})
    );
    // 25 % full and healthy: no pool alerts; the revoked key raises ApiKeyRevoked on 25.04+.
    let alerts = get("alert.list");
    let klasses: Vec<&str> = alerts
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["klass"].as_str().expect("klass"))
        .collect();
    // 25.10.1 warns about REST usage (the REST client above authenticated).
    let expected: &[&str] = if p >= Personality::V25_10 {
        &["ApiKeyRevoked", "RESTAPIUsage"]
    } else if p >= Personality::V25_04 {
        &["ApiKeyRevoked"]
    } else {
        &[]
    };
    assert_eq!(klasses, expected);
}

fn check_info(p: Personality, info: &Value) {
    assert_eq!(info["version"], p.version_string());
    assert_eq!(info["hostname"], "nas01");
    assert_eq!(info["boottime"], json!({"$date": 1_749_000_000_000i64}));
    assert!(info["datetime"]["$date"].is_i64());
    assert!(info["uptime_seconds"].is_f64());
    assert_eq!(
        info.get("birthday").is_some(),
        p == Personality::V22_12,
        "birthday only up to 23.10"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_over_rest_and_jsonrpc_per_personality() {
    for p in Personality::ALL {
        let (server, token) = start(fixture(p)).await;
        // REST.
        let mut rest = std::collections::HashMap::new();
        for (path, method) in COMMON {
            let (status, body) = rest_get(&server, path).await;
            assert_eq!(status, 200, "{p:?} GET {path}: {body}");
            rest.insert(*method, body);
        }
        let (status, info) = rest_get(&server, "/system/info").await;
        assert_eq!(status, 200);
        check_info(p, &info);
        let (zfs_status, zfs) = rest_get(&server, "/zfs/snapshot").await;
        let (pool_status, pool_snaps) = rest_get(&server, "/pool/snapshot").await;
        let snaps = if p >= Personality::V25_10 {
            assert_eq!(zfs_status, 404, "{p:?}: /zfs/snapshot is gone on 25.10");
            assert_eq!(zfs, "404: Not Found");
            assert_eq!(pool_status, 200);
            pool_snaps
        } else {
            assert_eq!(pool_status, 404, "{p:?}: /pool/snapshot only on 25.10");
            assert_eq!(zfs_status, 200);
            zfs
        };
        check_snapshots(&snaps);
        check_datasets(p, &rest["pool.dataset.query"]);
        check_pool(p, &rest["pool.query"]);
        check_records(p, &|m| rest[m].clone());
        let (status, one) = rest_get(&server, "/pool/dataset/id/tank%2Fk8s%2Fnfs%2Fpvc-a").await;
        assert_eq!(status, 200);
        assert_eq!(one["id"], "tank/k8s/nfs/pvc-a");
        let snap_path = if p >= Personality::V25_10 {
            "/pool/snapshot"
        } else {
            "/zfs/snapshot"
        };
        let (status, one) = rest_get(
            &server,
            &format!("{snap_path}/id/tank%2Fk8s%2Fnfs%2Fpvc-a%40snapshot-1"),
        )
        .await;
        assert_eq!((status, &one["snapshot_name"]), (200, &json!("snapshot-1")));
        // `/id/{id}` of every CRUD service (integer ids) agrees with the list.
        let mut by_id = Vec::new();
        for (path, method) in COMMON
            .iter()
            .filter(|(_, m)| m.ends_with(".query") && *m != "pool.dataset.query")
        {
            let (status, one) = rest_get(&server, &format!("{path}/id/1")).await;
            assert_eq!(status, 200, "{p:?} GET {path}/id/1: {one}");
            assert_eq!(one, rest[method][0], "{p:?} {path}/id/1");
            let (status, none) = rest_get(&server, &format!("{path}/id/99")).await;
            assert_eq!(
                (status, none),
                (404, json!({"message": ""})),
                "{p:?} {path}/id/99"
            );
            by_id.push((method.replace(".query", ".get_instance"), one));
        }

        // JSON-RPC.
        let versions = http()
            .get(format!("{}/api/versions", server.url()))
            .send()
            .await
            .expect("versions");
        if p.has_jsonrpc() {
            assert_eq!(versions.status().as_u16(), 200);
            let list: Value = versions.json().await.expect("json");
            assert!(list.as_array().expect("list").contains(&json!("v25.04.2")));
            assert_eq!(
                list.as_array().expect("list").contains(&json!("v25.10.0")),
                p >= Personality::V25_10
            );
            let mut rpc = Rpc::login(&server).await;
            for (_, method) in COMMON {
                let mut result = rpc.ok(method, json!([])).await;
                if *method == "alert.list" && p >= Personality::V25_10 {
                    // The REST usage count grew since the REST call.
                    let usage = &mut result[1]["args"]["count"];
                    assert!(usage.as_u64().expect("count") > 10);
                    *usage = rest[method][1]["args"]["count"].clone();
                    let text = rest[method][1]["formatted"].clone();
                    result[1]["formatted"] = text;
                }
                assert_eq!(
                    result, rest[method],
                    "{p:?} {method}: JSON-RPC and REST agree"
                );
            }
            check_info(p, &rpc.ok("system.info", json!([])).await);
            let snap = rpc.ok(p.snapshot_query_method(), json!([])).await;
            check_snapshots(&snap);
            if p >= Personality::V25_10 {
                // zfs.snapshot is private on 25.10 but still callable over a WebSocket.
                assert_eq!(rpc.ok("zfs.snapshot.query", json!([])).await, snap);
            } else {
                let r = rpc.call("pool.snapshot.query", json!([])).await;
                assert_eq!(
                    r["error"],
                    json!({"code": -32601, "message": "Method does not exist"})
                );
            }
            let one = rpc
                .ok("pool.dataset.get_instance", json!(["tank/k8s/iscsi/pvc-b"]))
                .await;
            assert_eq!(one["type"], "VOLUME");
            for (method, expected) in &by_id {
                assert_eq!(
                    &rpc.ok(method, json!([1])).await,
                    expected,
                    "{p:?} {method}"
                );
                let miss = rpc.call(method, json!([99])).await;
                assert_eq!(miss["error"]["code"], -32602, "{p:?} {method} miss");
            }
            // The hidden v24.10 endpoint speaks the 24.10 shapes.
            let mut v2410 = Rpc::connect(&server, "/api/v24.10").await;
            v2410.ok("auth.login_with_api_key", json!([KEY])).await;
            let nfs = v2410.ok("sharing.nfs.query", json!([])).await;
            assert!(nfs[0].get("expose_snapshots").is_none(), "v24.10 NFS shape");
            // A versioned endpoint keeps the shapes of its version.
            let mut old = Rpc::connect(&server, "/api/v25.04.2").await;
            old.ok("auth.login_with_api_key", json!([KEY])).await;
            let smb = old.ok("sharing.smb.query", json!([])).await;
            assert!(
                smb[0].get("ro").is_some(),
                "v25.04.2 keeps the flat SMB shape"
            );
            assert_eq!(
                old.ok("system.version", json!([])).await,
                p.version_string(),
                "the release is the server's, whatever the API version"
            );
        } else {
            assert_eq!(
                versions.status().as_u16(),
                302,
                "{p:?}: nginx redirects /api/versions"
            );
            assert_eq!(versions.headers()["location"], "/ui/");
            let url = format!("{}/api/current", server.url().replace("http://", "ws://"));
            assert!(
                tokio_tungstenite::connect_async(url).await.is_err(),
                "{p:?}: no JSON-RPC endpoint"
            );
        }
        token.cancel();
        server.stopped().await;
    }
}

#[tokio::test]
async fn dataset_query_extras() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::login(&server).await;
    // properties: only the requested keys (plus the identity keys).
    let ds = rpc.ok("pool.dataset.query", json!([[["id", "=", "tank/k8s/nfs/pvc-a"]], {"get": true, "extra": {"properties": ["used", "available"]}}])).await;
    let mut keys: Vec<&str> = ds
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "available",
            "children",
            "encrypted",
            "encryption_root",
            "id",
            "key_loaded",
            "locked",
            "mountpoint",
            "name",
            "pool",
            "type",
            "used",
            "user_properties"
        ]
    );
    // retrieve_user_props=false (25.04+).
    let ds = rpc.ok("pool.dataset.query", json!([[["id", "=", "tank/k8s/nfs/pvc-a"]], {"get": true, "extra": {"properties": [], "retrieve_user_props": false}}])).await;
    assert!(ds.get("user_properties").is_none());
    // flat=false: only the pool roots, subtrees in children.
    let tree = rpc
        .ok(
            "pool.dataset.query",
            json!([[], {"extra": {"flat": false}}]),
        )
        .await;
    assert_eq!(tree.as_array().expect("list").len(), 1);
    assert_eq!(
        tree[0]["children"][0]["children"][0]["name"],
        "tank/k8s/nfs"
    );
    // retrieve_children=false without filter: pool roots only, no children.
    let roots = rpc
        .ok(
            "pool.dataset.query",
            json!([[], {"extra": {"retrieve_children": false}}]),
        )
        .await;
    assert_eq!(roots.as_array().expect("list").len(), 1);
    assert_eq!(roots[0]["children"], json!([]));
    // snapshots_count and snapshots.
    let ds = rpc.ok("pool.dataset.query", json!([[["id", "=", "tank/k8s/nfs/pvc-a"]], {"get": true, "extra": {"snapshots_count": true, "snapshots": true}}])).await;
    assert_eq!(ds["snapshot_count"], 2);
    assert_eq!(ds["snapshots"].as_array().expect("list").len(), 2);
    assert_eq!(
        ds["snapshots"][0]["properties"],
        json!({}),
        "snapshots_properties defaults to none"
    );
    // Snapshot extras: properties, holds, retention (needs an id filter or a limit).
    let s = rpc.ok("zfs.snapshot.query", json!([[["id", "=", "tank/k8s/iscsi/pvc-b@auto-2024-11-08_00-00"]], {"get": true, "extra": {"properties": ["used"], "holds": true, "retention": true}}])).await;
    assert_eq!(
        s["properties"]
            .as_object()
            .expect("props")
            .keys()
            .collect::<Vec<_>>(),
        ["used"]
    );
    assert_eq!(s["holds"], json!({"truenas": 1}));
    assert_eq!(
        s["retention"],
        json!({"datetime": {"$date": 1_731_500_000_000i64}, "source": "property"})
    );
    let r = rpc
        .call(
            "zfs.snapshot.query",
            json!([[], {"extra": {"retention": true}}]),
        )
        .await;
    assert_eq!(r["error"]["code"], -32001);
    assert_eq!(r["error"]["data"]["errname"], "EINVAL");
    let s = rpc
        .ok(
            "zfs.snapshot.query",
            json!([[], {"limit": 1, "extra": {"retention": true}}]),
        )
        .await;
    assert_eq!(s[0]["retention"], Value::Null);
    // min_txg/max_txg.
    let s = rpc
        .ok(
            "zfs.snapshot.query",
            json!([[], {"select": ["name"], "extra": {"min_txg": 820, "max_txg": 880}}]),
        )
        .await;
    assert_eq!(
        s,
        json!([{"name": "tank/k8s/nfs/pvc-a@auto-2024-11-08_00-00"}])
    );
    // retrieve_user_props is ignored before 25.04.
    server.set_personality(Personality::V24_10);
    let (status, ds) = rest_get(
        &server,
        "/pool/dataset/id/tank%2Fk8s?extra.retrieve_user_props=false",
    )
    .await;
    assert_eq!(status, 200);
    assert!(ds.get("user_properties").is_some());
}

#[tokio::test]
async fn alerts_are_derived_from_the_world() {
    let mut nas = fixture(Personality::V24_10);
    nas.pools[0].allocated = 340 * GIB; // 85 %
    let (server, _token) = start(nas).await;
    let (_, alerts) = rest_get(&server, "/alert/list").await;
    assert_eq!(
        alerts[0]["klass"], "ZpoolCapacityWarning",
        "24.10 thresholds are 70/80/90"
    );
    assert_eq!(alerts[0]["args"], json!({"volume": "tank", "capacity": 85}));
    assert!(alerts[0]["datetime"]["$date"].is_i64());
    server.set_personality(Personality::V25_04);
    let (_, alerts) = rest_get(&server, "/alert/list").await;
    assert_eq!(
        alerts[0]["klass"], "ZpoolCapacityNotice",
        "25.04.2 thresholds are 85/90/95"
    );
    assert_eq!(alerts[0]["level"], "NOTICE");
    assert_eq!(
        alerts[0]["formatted"],
        "Space usage for pool \"tank\" is 85%. Optimal pool performance requires used space remain below 80%."
    );
}
