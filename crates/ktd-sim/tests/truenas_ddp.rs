//! The legacy DDP-style `/websocket` (22.12 … 25.10).

mod truenas_support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ktd_sim::world::Personality;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use truenas_support::*;

struct Ddp(Ws);

impl Ddp {
    async fn open(server: &ktd_sim::TrueNasServer) -> Ddp {
        let url = format!("{}/websocket", server.url().replace("http://", "ws://"));
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        Ddp(ws)
    }

    async fn send(&mut self, v: Value) {
        self.0
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.0.next())
                .await
                .expect("in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).expect("json");
            }
        }
    }

    async fn call(&mut self, id: &str, method: &str, params: Value) -> Value {
        self.send(json!({"id": id, "msg": "method", "method": method, "params": params}))
            .await;
        let r = self.recv().await;
        assert_eq!(
            (r["msg"].clone(), r["id"].clone()),
            (json!("result"), json!(id)),
            "{r}"
        );
        r
    }
}

#[tokio::test]
async fn legacy_websocket_on_every_release() {
    for p in Personality::ALL {
        let (server, _token) = start(fixture(p)).await;
        let mut ddp = Ddp::open(&server).await;
        ddp.send(json!({"msg": "method", "id": "x", "method": "core.ping"}))
            .await;
        assert_eq!(
            ddp.recv().await,
            json!({"msg": "failed", "version": "1"}),
            "{p:?}: connect first"
        );
        ddp.send(json!({"msg": "connect", "version": "1", "support": ["1"]}))
            .await;
        let hello = ddp.recv().await;
        assert_eq!(hello["msg"], "connected");
        assert!(hello["session"].is_string());
        ddp.send(json!({"msg": "ping", "id": "p1"})).await;
        assert_eq!(ddp.recv().await, json!({"msg": "pong", "id": "p1"}));

        let r = ddp.call("1", "pool.dataset.query", json!([])).await;
        assert_eq!(r["error"]["error"], 207, "{p:?}");
        assert_eq!(r["error"]["errname"], "ENOTAUTHENTICATED");
        assert_eq!(r["error"]["type"], Value::Null);
        let r = ddp.call("2", "auth.login_with_api_key", json!([KEY])).await;
        assert_eq!(r["result"], true);
        let r = ddp
            .call(
                "3",
                "pool.dataset.query",
                json!([[["type", "=", "VOLUME"]], {"select": ["id"]}]),
            )
            .await;
        assert_eq!(r["result"], json!([{"id": "tank/k8s/iscsi/pvc-b"}]));
        let r = ddp
            .call("4", "zfs.snapshot.query", json!([[], {"count": true}]))
            .await;
        assert_eq!(
            r["result"], 3,
            "{p:?}: zfs.snapshot is reachable over the legacy socket"
        );
        let r = ddp.call("5", "sharing.smb.query", json!([])).await;
        assert!(
            r["result"][0].get("ro").is_some(),
            "{p:?}: legacy socket speaks the v24.10 shapes"
        );
        let r = ddp.call("6", "system.version", json!([])).await;
        assert_eq!(r["result"], p.version_string());
        let r = ddp
            .call("7", "pool.dataset.query", json!([[["name", "like", "x"]]]))
            .await;
        assert_eq!(r["error"]["type"], "VALIDATION");
        assert_eq!(r["error"]["error"], 22);
        let r = ddp.call("8", "auth.login_ex", json!([{"mechanism": "API_KEY_PLAIN", "username": "truenas_admin", "api_key": KEY}])).await;
        if p >= Personality::V25_04 {
            assert_eq!(r["result"]["response_type"], "SUCCESS");
        } else {
            assert_eq!(
                r["error"]["errname"], "ENOENT",
                "{p:?}: no auth.login_ex before 25.04"
            );
        }

        ddp.send(json!({"msg": "sub", "id": "s1", "name": "pool.dataset.query"}))
            .await;
        assert_eq!(ddp.recv().await, json!({"msg": "ready", "subs": ["s1"]}));
        server.update(|nas| nas.datasets.retain(|d| d.name != "tank/k8s/nfs/pvc-c"));
        let ev = ddp.recv().await;
        assert_eq!(
            ev,
            json!({"msg": "removed", "collection": "pool.dataset.query", "id": "tank/k8s/nfs/pvc-c"})
        );
    }
}

#[tokio::test]
async fn legacy_websocket_login_from_remote_revokes_on_25_04() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    server.set_client_remote(true);
    let mut ddp = Ddp::open(&server).await;
    ddp.send(json!({"msg": "connect", "version": "1", "support": ["1"]}))
        .await;
    ddp.recv().await;
    let r = ddp.call("1", "auth.login_with_api_key", json!([KEY])).await;
    assert_eq!(r["result"], false);
    assert!(server.nas().api_keys.iter().any(|k| k.id == 1 && k.revoked));
}

#[tokio::test]
async fn legacy_websocket_faults() {
    let (server, _token) = start(fixture(Personality::V24_10)).await;
    let mut ddp = Ddp::open(&server).await;
    ddp.send(json!({"msg": "connect", "version": "1", "support": ["1"]}))
        .await;
    ddp.recv().await;
    assert_eq!(
        ddp.call("1", "auth.login_with_api_key", json!([KEY])).await["result"],
        true
    );
    server.faults().set(ktd_sim::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let r = ddp.call("2", "core.ping", json!([])).await;
    assert_eq!(r["error"]["errname"], "EFAULT");
    server.faults().set(ktd_sim::Faults {
        drop_rate: 1.0,
        ..Default::default()
    });
    ddp.send(json!({"id": "3", "msg": "method", "method": "core.ping", "params": []}))
        .await;
    let next = tokio::time::timeout(Duration::from_secs(5), ddp.0.next())
        .await
        .expect("ends in time");
    assert!(
        matches!(next, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "{next:?}"
    );
}
