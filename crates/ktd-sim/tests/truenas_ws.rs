//! JSON-RPC protocol details: error codes, the 20-calls-in-flight limit, message size
//! limits and `collection_update` subscriptions fed by `TrueNasServer::update`.

mod truenas_support;

use futures::StreamExt;
use ktd_sim::Faults;
use ktd_sim::world::{NfsShare, Personality};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use truenas_support::*;

#[tokio::test]
async fn protocol_errors() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::login(&server).await;
    rpc.send_raw("{nope").await;
    let r = rpc.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    rpc.send_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"core.ping"}]"#)
        .await;
    assert_eq!(
        rpc.recv().await["error"]["code"],
        -32600,
        "batches are not supported"
    );
    rpc.send_raw(r#"{"jsonrpc":"1.0","id":5,"method":"core.ping"}"#)
        .await;
    let r = rpc.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(5), json!(-32600))
    );
    rpc.send_raw(r#"{"jsonrpc":"2.0","id":6,"method":"core.ping","params":{}}"#)
        .await;
    assert_eq!(
        rpc.recv().await["error"]["code"],
        -32600,
        "params must be an array"
    );
    let r = rpc.call("pool.dataset.destroy_everything", json!([])).await;
    assert_eq!(
        r["error"],
        json!({"code": -32601, "message": "Method does not exist"})
    );
    // A notification (no id) gets no reply: the next reply is for the next call.
    rpc.send_raw(r#"{"jsonrpc":"2.0","method":"core.ping"}"#)
        .await;
    assert_eq!(rpc.ok("system.version_short", json!([])).await, "25.04.2.6");
    // String ids are echoed.
    rpc.send_raw(r#"{"jsonrpc":"2.0","id":"abc","method":"core.ping"}"#)
        .await;
    assert_eq!(
        rpc.recv().await,
        json!({"jsonrpc": "2.0", "id": "abc", "result": "pong"})
    );
}

#[tokio::test]
async fn websocket_pings_are_answered() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::login(&server).await;
    use futures::SinkExt;
    rpc.ws
        .send(Message::Ping(b"keepalive".to_vec().into()))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(std::time::Duration::from_secs(5), rpc.ws.next())
        .await
        .expect("pong in time")
        .expect("open")
        .expect("frame");
    assert_eq!(pong, Message::Pong(b"keepalive".to_vec().into()));
}

#[tokio::test]
async fn oversized_messages_close_the_socket() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::connect(&server, "/api/current").await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"auth.login_with_api_key","params":["{}"]}}"#,
        "x".repeat(9000)
    );
    rpc.send_raw(&big).await;
    let msg = rpc.ws.next().await.expect("frame").expect("ok");
    match msg {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

#[tokio::test]
async fn more_than_twenty_calls_in_flight_are_refused() {
    let (server, _token) = start(fixture(Personality::V25_10)).await;
    let mut rpc = Rpc::login(&server).await;
    server.faults().set(Faults {
        latency_ms: 1500,
        ..Faults::default()
    });
    for _ in 0..25 {
        rpc.send(&json!({"jsonrpc": "2.0", "method": "core.ping", "params": []}))
            .await;
    }
    let mut replies = Vec::new();
    for _ in 0..25 {
        replies.push(rpc.recv().await);
    }
    let refused: Vec<&Value> = replies
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    assert_eq!(refused.len(), 5, "{replies:?}");
    for r in &refused {
        assert_eq!(r["error"]["code"], -32000);
        assert_eq!(
            r["error"]["message"],
            "Maximum number of concurrent calls (20) has exceeded."
        );
        assert!(
            r["id"].as_i64().expect("id") > 20 + 1,
            "the late calls are refused"
        );
    }
    assert_eq!(replies.iter().filter(|r| r["result"] == "pong").count(), 20);
    // Once they are done, calls are accepted again.
    server.faults().set(Faults::default());
    assert_eq!(rpc.ok("core.ping", json!([])).await, "pong");
}

#[tokio::test]
async fn subscriptions_receive_collection_updates() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::login(&server).await;
    let ds_sub = rpc
        .ok("core.subscribe", json!(["pool.dataset.query"]))
        .await;
    assert!(
        ds_sub.as_str().is_some_and(|s| s.len() == 36),
        "ident is a uuid: {ds_sub}"
    );
    rpc.ok("core.subscribe", json!(["sharing.nfs.query"])).await;
    rpc.ok("core.subscribe", json!(["zfs.snapshot.query"]))
        .await;
    let r = rpc.call("core.subscribe", json!(["no.such.event"])).await;
    assert_eq!(r["error"]["code"], -32001);

    // A new dataset made through the API: ADDED with fields.
    server.update(|nas| {
        let mut d = fs("tank/k8s/nfs/pvc-new", 5);
        d.user_properties
            .insert("democratic-csi:managed_resource".into(), "true".into());
        nas.datasets.push(d);
    });
    let n = rpc.notification().await;
    assert_eq!(n["jsonrpc"], "2.0");
    assert_eq!(n["method"], "collection_update");
    let p = &n["params"];
    assert_eq!(
        (p["msg"].clone(), p["collection"].clone(), p["id"].clone()),
        (
            json!("added"),
            json!("pool.dataset.query"),
            json!("tank/k8s/nfs/pvc-new")
        )
    );
    assert_eq!(
        p["fields"]["user_properties"]["democratic-csi:managed_resource"]["source"],
        "LOCAL"
    );
    assert_eq!(
        p["fields"]["user_properties"]["ktd:owner"]["source"],
        "INHERITED"
    );
    assert_eq!(p["fields"]["used"]["parsed"], 5);

    // A snapshot made outside the API sends nothing; a share gets only its id.
    server.update(|nas| {
        nas.snapshots
            .push(snap("tank/k8s/nfs/pvc-new", "auto-1", 1000, &[]));
        nas.nfs_shares.push(NfsShare {
            id: 2,
            path: "/mnt/tank/k8s/nfs/pvc-new".into(),
            comment: String::new(),
            networks: vec![],
            hosts: vec![],
            enabled: true,
        });
    });
    let n = rpc.notification().await;
    assert_eq!(
        n["params"],
        json!({"msg": "added", "collection": "sharing.nfs.query", "id": 2})
    );

    // Changed datasets: space growing sends nothing, a new refquota (an API update) does.
    server.update(|nas| {
        let d = nas
            .datasets
            .iter_mut()
            .find(|d| d.name == "tank/k8s/nfs/pvc-new")
            .expect("dataset");
        d.used_by_dataset = 50;
    });
    server.update(|nas| {
        let d = nas
            .datasets
            .iter_mut()
            .find(|d| d.name == "tank/k8s/nfs/pvc-new")
            .expect("dataset");
        d.refquota = Some(GIB);
    });
    let n = rpc.notification().await;
    assert_eq!(n["params"]["msg"], "changed");
    assert_eq!(n["params"]["fields"]["refquota"]["parsed"], GIB);
    assert_eq!(
        n["params"]["fields"]["usedbydataset"]["parsed"], 50,
        "fields are current"
    );
    // Unsubscribing by ident stops dataset events; share events continue.
    rpc.ok("core.unsubscribe", json!([ds_sub])).await;
    server.update(|nas| {
        nas.datasets.retain(|d| d.name != "tank/k8s/nfs/pvc-new");
        nas.nfs_shares.retain(|s| s.id != 2);
    });
    let n = rpc.notification().await;
    assert_eq!(
        n["params"],
        json!({"msg": "removed", "collection": "sharing.nfs.query", "id": 2})
    );
    assert_eq!(rpc.ok("core.ping", json!([])).await, "pong");
    assert!(
        rpc.notifications.is_empty(),
        "no dataset event after unsubscribe: {:?}",
        rpc.notifications
    );

    // A wildcard subscriber sees dataset removals.
    let mut all = Rpc::login(&server).await;
    all.ok("core.subscribe", json!(["*"])).await;
    server.update(|nas| nas.datasets.retain(|d| d.name != "tank/k8s/nfs/pvc-c"));
    let n = all.notification().await;
    assert_eq!(
        n["params"],
        json!({"msg": "removed", "collection": "pool.dataset.query", "id": "tank/k8s/nfs/pvc-c"})
    );
}

#[tokio::test]
async fn api_and_outside_changes_send_different_events() {
    let (server, _token) = start(fixture(Personality::V25_10)).await;
    let mut rpc = Rpc::login(&server).await;
    rpc.ok("core.subscribe", json!(["pool.snapshot.query"]))
        .await;
    rpc.ok("core.subscribe", json!(["pool.dataset.query"]))
        .await;
    // Snapshots through the API: ADDED with fields, REMOVED with extra.recursive.
    server.update_via_api(|nas| {
        nas.snapshots
            .push(snap("tank/k8s/nfs/pvc-a", "snapshot-9", 990, &[]))
    });
    let n = rpc.notification().await;
    assert_eq!(n["params"]["collection"], "pool.snapshot.query");
    assert_eq!(n["params"]["msg"], "added");
    assert_eq!(n["params"]["fields"]["createtxg"], "990");
    assert_eq!(
        n["params"]["fields"]["properties"]["democratic-csi:managed_resource"]["source"],
        "INHERITED"
    );
    server.update_via_api(|nas| nas.snapshots.retain(|s| s.name != "snapshot-9"));
    let n = rpc.notification().await;
    assert_eq!(
        n["params"],
        json!({"msg": "removed", "collection": "pool.snapshot.query", "id": "tank/k8s/nfs/pvc-a@snapshot-9", "extra": {"recursive": false}})
    );
    // `zfs` outside the API: only the dataset removal is seen.
    server.update_outside_api(|nas| {
        nas.datasets.push(fs("tank/k8s/nfs/by-hand", 1));
        nas.datasets.retain(|d| d.name != "tank/k8s/nfs/pvc-c");
    });
    let n = rpc.notification().await;
    assert_eq!(
        n["params"],
        json!({"msg": "removed", "collection": "pool.dataset.query", "id": "tank/k8s/nfs/pvc-c"})
    );
    assert_eq!(rpc.ok("core.ping", json!([])).await, "pong");
    assert!(rpc.notifications.is_empty(), "{:?}", rpc.notifications);
}
