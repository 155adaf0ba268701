//! The write methods a cleanup tool needs: deletes and user-property updates, over
//! JSON-RPC and REST, with the middleware's errors and events.

mod truenas_support;

use ktd_sim::world::Personality;
use serde_json::{Value, json};
use truenas_support::*;

#[tokio::test]
async fn snapshot_and_dataset_deletes_over_jsonrpc() {
    let (server, _token) = start(fixture(Personality::V25_10)).await;
    let mut rpc = Rpc::login(&server).await;
    rpc.ok("core.subscribe", json!(["pool.snapshot.query"]))
        .await;
    rpc.ok("core.subscribe", json!(["pool.dataset.query"]))
        .await;

    // A clone origin cannot go, unless deferred.
    let origin = "tank/k8s/nfs/pvc-a@snapshot-1";
    let r = rpc.call("pool.snapshot.delete", json!([origin])).await;
    assert_eq!(r["error"]["code"], -32001);
    assert_eq!(r["error"]["data"]["errname"], "EFAULT");
    assert!(
        r["error"]["data"]["reason"]
            .as_str()
            .expect("reason")
            .contains("dependent clones")
    );
    assert_eq!(
        rpc.ok("pool.snapshot.delete", json!([origin, {"defer": true}]))
            .await,
        true
    );
    let s = rpc.ok("pool.snapshot.get_instance", json!([origin])).await;
    assert_eq!(s["properties"]["defer_destroy"]["value"], "on");

    // A plain snapshot goes; subscribers see REMOVED; a second delete is ENOENT.
    let auto = "tank/k8s/nfs/pvc-a@auto-2024-11-08_00-00";
    assert_eq!(rpc.ok("zfs.snapshot.delete", json!([auto])).await, true);
    let n = rpc.notification().await;
    assert_eq!(
        n["params"],
        json!({"msg": "removed", "collection": "pool.snapshot.query", "id": auto, "extra": {"recursive": false}})
    );
    let r = rpc.call("pool.snapshot.delete", json!([auto])).await;
    assert_eq!(
        (
            r["error"]["code"].clone(),
            r["error"]["data"]["errname"].clone()
        ),
        (json!(-32602), json!("ENOENT"))
    );
    // A held snapshot is busy.
    let r = rpc
        .call(
            "pool.snapshot.delete",
            json!(["tank/k8s/iscsi/pvc-b@auto-2024-11-08_00-00"]),
        )
        .await;
    assert!(
        r["error"]["data"]["reason"]
            .as_str()
            .expect("reason")
            .contains("busy")
    );

    // Datasets: children (snapshots count) need recursive; clones block the origin.
    let r = rpc
        .call("pool.dataset.delete", json!(["tank/k8s/nfs/pvc-a"]))
        .await;
    assert!(
        r["error"]["data"]["reason"]
            .as_str()
            .expect("reason")
            .contains("has children")
    );
    let r = rpc
        .call(
            "pool.dataset.delete",
            json!(["tank/k8s/nfs/pvc-a", {"recursive": true}]),
        )
        .await;
    assert!(
        r["error"]["data"]["reason"]
            .as_str()
            .expect("reason")
            .contains("dependent clones")
    );
    assert_eq!(
        rpc.ok("pool.dataset.delete", json!(["tank/k8s/nfs/pvc-c"]))
            .await,
        true
    );
    let n = rpc.notification().await;
    assert_eq!(
        n["params"],
        json!({"msg": "removed", "collection": "pool.dataset.query", "id": "tank/k8s/nfs/pvc-c"})
    );
    assert_eq!(
        rpc.ok(
            "pool.dataset.delete",
            json!(["tank/k8s/nfs/pvc-a", {"recursive": true, "force": true}])
        )
        .await,
        true
    );
    let names: Vec<String> = server
        .nas()
        .snapshots
        .iter()
        .map(|s| s.full_name())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("tank/k8s/nfs/pvc-a@")),
        "{names:?}"
    );
    assert!(
        !server
            .nas()
            .datasets
            .iter()
            .any(|d| d.name == "tank/k8s/nfs/pvc-a")
    );
}

#[tokio::test]
async fn user_property_updates_and_record_deletes() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::login(&server).await;
    rpc.ok("core.subscribe", json!(["*"])).await;
    let ds = rpc
        .ok(
            "pool.dataset.update",
            json!(["tank/k8s/nfs/pvc-a", {"user_properties_update": [
            {"key": "democratic-csi:managed_resource", "remove": true},
            {"key": "ktd:quarantined", "value": "2026-11-22"},
            {"key": "ktd:owner", "value": "ktd"}]}]),
        )
        .await;
    let up = &ds["user_properties"];
    assert!(up.get("democratic-csi:managed_resource").is_none());
    assert_eq!(up["ktd:quarantined"]["source"], "LOCAL");
    assert_eq!(
        up["ktd:owner"],
        json!({"value": "ktd", "rawvalue": "ktd", "parsed": "ktd", "source": "LOCAL"})
    );
    let n = rpc.notification().await;
    assert_eq!(
        (n["params"]["msg"].clone(), n["params"]["id"].clone()),
        (json!("changed"), json!("tank/k8s/nfs/pvc-a"))
    );
    // Removing a local value lets the inherited one show through again.
    let ds = rpc.ok("pool.dataset.update", json!(["tank/k8s/nfs/pvc-a", {"user_properties_update": [{"key": "ktd:owner", "remove": true}]}])).await;
    assert_eq!(ds["user_properties"]["ktd:owner"]["source"], "INHERITED");
    rpc.notification().await;
    let r = rpc
        .call(
            "pool.dataset.update",
            json!(["tank/k8s/nfs/pvc-a", {"comments": "x"}]),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602);

    // Records: deleting an extent removes its target-extent association; ids only in events.
    assert_eq!(rpc.ok("iscsi.extent.delete", json!([1])).await, true);
    assert_eq!(
        rpc.notification().await["params"],
        json!({"msg": "removed", "collection": "iscsi.extent.query", "id": 1})
    );
    assert_eq!(
        rpc.notification().await["params"],
        json!({"msg": "removed", "collection": "iscsi.targetextent.query", "id": 1})
    );
    assert_eq!(
        rpc.ok("iscsi.targetextent.query", json!([])).await,
        json!([])
    );
    assert_eq!(rpc.ok("sharing.nfs.delete", json!([1])).await, true);
    let r = rpc.call("sharing.nfs.delete", json!([1])).await;
    assert_eq!(r["error"]["data"]["errname"], "ENOENT");
}

#[tokio::test]
async fn deletes_and_updates_over_rest() {
    let (server, _token) = start(fixture(Personality::V24_10)).await;
    let client = http();
    let url = |p: &str| format!("{}/api/v2.0{p}", server.url());
    // democratic-csi style: DELETE with options in the body.
    let resp = client
        .delete(url(
            "/zfs/snapshot/id/tank%2Fk8s%2Fnfs%2Fpvc-a%40auto-2024-11-08_00-00",
        ))
        .bearer_auth(KEY)
        .json(&json!({"defer": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json"), true);
    let resp = client
        .delete(url("/pool/dataset/id/tank%2Fk8s%2Fiscsi%2Fpvc-b"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 422, "snapshots are children");
    assert_eq!(resp.json::<Value>().await.expect("json")["errno"], 14);
    let resp = client
        .put(url("/pool/dataset/id/tank%2Fk8s%2Fiscsi%2Fpvc-b"))
        .bearer_auth(KEY)
        .json(&json!({"user_properties_update": [{"key": "ktd:note", "value": "orphan"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["user_properties"]["ktd:note"]["value"],
        "orphan"
    );
    let resp = client
        .delete(url("/sharing/nfs/id/1"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = client
        .delete(url("/sharing/nfs/id/1"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 404);
    let resp = client
        .delete(url("/pool/dataset/id/tank%2Fk8s%2Fnfs%2Fpvc-a"))
        .bearer_auth(KEY)
        .body("{oops")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
}
