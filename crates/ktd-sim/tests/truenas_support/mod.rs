//! Shared fixture and clients for the TrueNAS simulator tests.
#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ktd_sim::truenas::TrueNasServer;
use ktd_sim::world::{
    ApiKey, Dataset, DatasetType, IscsiExtent, IscsiTarget, IscsiTargetExtent, Nas, NfsShare,
    Personality, Pool, Service, SmbShare, Snapshot,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub const KEY: &str = "1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const RO_KEY: &str = "2-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const REVOKED_KEY: &str = "3-cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
pub const GIB: u64 = 1 << 30;
pub const CREATION: i64 = 1_731_000_000;

fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn fs(name: &str, used: u64) -> Dataset {
    Dataset {
        name: name.to_owned(),
        kind: DatasetType::Filesystem,
        used_by_dataset: used,
        used_by_snapshots: 0,
        volsize: None,
        volblocksize: None,
        refquota: None,
        refreservation: None,
        origin: None,
        creation: CREATION,
        encrypted: false,
        user_properties: BTreeMap::new(),
        received_properties: BTreeMap::new(),
    }
}

pub fn snap(dataset: &str, name: &str, txg: u64, local: &[(&str, &str)]) -> Snapshot {
    Snapshot {
        dataset: dataset.to_owned(),
        name: name.to_owned(),
        createtxg: txg,
        creation: CREATION + txg as i64,
        used: 1_253_376,
        referenced: 4 * GIB,
        user_properties: props(local),
        defer_destroy: false,
        holds: 0,
    }
}

/// A small world with every kind of object the simulator serves.
pub fn fixture(p: Personality) -> Nas {
    let mut parent = fs("tank/k8s/nfs", 0);
    parent.user_properties = props(&[("ktd:owner", "cluster-a")]);
    let mut pvc_a = fs("tank/k8s/nfs/pvc-a", 3 * GIB);
    pvc_a.used_by_snapshots = GIB;
    pvc_a.refquota = Some(10 * GIB);
    pvc_a.user_properties = props(&[
        ("democratic-csi:csi_volume_name", "pvc-a"),
        ("democratic-csi:managed_resource", "true"),
        ("democratic-csi:provision_success", "true"),
        ("democratic-csi:freenas_nfs_share_id", "1"),
    ]);
    let mut pvc_c = fs("tank/k8s/nfs/pvc-c", GIB);
    pvc_c.origin = Some("tank/k8s/nfs/pvc-a@snapshot-1".into());
    pvc_c.received_properties = props(&[("democratic-csi:csi_volume_name", "pvc-c")]);
    let mut pvc_b = fs("tank/k8s/iscsi/pvc-b", 2 * GIB);
    pvc_b.kind = DatasetType::Volume;
    pvc_b.volsize = Some(10 * GIB);
    pvc_b.volblocksize = Some(16384);
    pvc_b.refreservation = Some(10 * GIB + 256 * 1024 * 1024);
    pvc_b.user_properties = props(&[
        ("democratic-csi:csi_volume_name", "pvc-b"),
        ("democratic-csi:managed_resource", "true"),
    ]);
    let mut destroy = snap(
        "tank/k8s/iscsi/pvc-b",
        "auto-2024-11-08_00-00",
        900,
        &[("org.truenas:destroy_at_abcd1234", "1731500000")],
    );
    destroy.holds = 1;
    Nas {
        personality: p,
        hostname: "nas01".into(),
        api_keys: vec![
            ApiKey {
                id: 1,
                name: "ktd".into(),
                key: KEY.into(),
                username: "truenas_admin".into(),
                revoked: false,
                readonly: false,
            },
            ApiKey {
                id: 2,
                name: "ro".into(),
                key: RO_KEY.into(),
                username: "svc-ro".into(),
                revoked: false,
                readonly: true,
            },
            ApiKey {
                id: 3,
                name: "old".into(),
                key: REVOKED_KEY.into(),
                username: "truenas_admin".into(),
                revoked: true,
                readonly: false,
            },
        ],
        pools: vec![Pool {
            id: 1,
            name: "tank".into(),
            status: "ONLINE".into(),
            size: 400 * GIB,
            allocated: 100 * GIB,
            last_scrub: Some(1_731_203_600),
        }],
        datasets: vec![
            fs("tank", 1024),
            fs("tank/.system", GIB),
            fs("tank/ix-applications", GIB),
            fs("tank/k8s", 0),
            parent,
            pvc_a,
            pvc_c,
            fs("tank/k8s/iscsi", 0),
            pvc_b,
        ],
        snapshots: vec![
            snap(
                "tank/k8s/nfs/pvc-a",
                "snapshot-1",
                800,
                &[
                    ("democratic-csi:csi_snapshot_name", "snapshot-1"),
                    ("democratic-csi:managed_resource", "true"),
                ],
            ),
            snap("tank/k8s/nfs/pvc-a", "auto-2024-11-08_00-00", 850, &[]),
            destroy,
            snap("tank/.system", "internal", 10, &[]),
        ],
        nfs_shares: vec![NfsShare {
            id: 1,
            path: "/mnt/tank/k8s/nfs/pvc-a".into(),
            comment: "pvc-a (democratic-csi)".into(),
            networks: vec!["10.0.0.0/24".into()],
            hosts: vec![],
            enabled: true,
        }],
        smb_shares: vec![SmbShare {
            id: 1,
            name: "media".into(),
            path: "/mnt/tank/media".into(),
            comment: String::new(),
            enabled: true,
        }],
        iscsi_targets: vec![IscsiTarget {
            id: 1,
            name: "pvc-b".into(),
            portal: 1,
            initiator: 1,
        }],
        iscsi_extents: vec![IscsiExtent {
            id: 1,
            name: "pvc-b".into(),
            disk: "zvol/tank/k8s/iscsi/pvc-b".into(),
            comment: String::new(),
            enabled: true,
        }],
        iscsi_targetextents: vec![IscsiTargetExtent {
            id: 1,
            target: 1,
            extent: 1,
            lunid: 0,
        }],
        iscsi_basename: "iqn.2005-10.org.freenas.ctl".into(),
        services: vec![
            Service {
                service: "nfs".into(),
                enable: true,
                state: "RUNNING".into(),
            },
            Service {
                service: "iscsitarget".into(),
                enable: true,
                state: "RUNNING".into(),
            },
            Service {
                service: "cifs".into(),
                enable: false,
                state: "STOPPED".into(),
            },
        ],
        boottime: 1_749_000_000,
    }
}

pub async fn start(nas: Nas) -> (TrueNasServer, CancellationToken) {
    let token = CancellationToken::new();
    let server = TrueNasServer::start(nas, "127.0.0.1:0".parse().expect("addr"), token.clone())
        .await
        .expect("start simulator");
    (server, token)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GET a REST path with the good key; returns (status, body as JSON or string).
pub async fn rest_get(server: &TrueNasServer, path: &str) -> (u16, Value) {
    let resp = http()
        .get(format!("{}/api/v2.0{path}", server.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A JSON-RPC client over tokio-tungstenite.
pub struct Rpc {
    pub ws: Ws,
    next: i64,
    /// Notifications received while waiting for replies.
    pub notifications: Vec<Value>,
}

impl Rpc {
    pub async fn connect(server: &TrueNasServer, path: &str) -> Rpc {
        let url = format!("{}{path}", server.url().replace("http://", "ws://"));
        // Big enough for 100,000 snapshots in one reply.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .expect("websocket connect");
        Rpc {
            ws,
            next: 0,
            notifications: Vec::new(),
        }
    }

    /// Connects to `/api/current` and logs in with the good key.
    pub async fn login(server: &TrueNasServer) -> Rpc {
        let mut rpc = Rpc::connect(server, "/api/current").await;
        let r = rpc.call("auth.login_ex", json!([{"mechanism": "API_KEY_PLAIN", "username": "truenas_admin", "api_key": KEY}])).await;
        assert_eq!(r["result"]["response_type"], "SUCCESS", "{r}");
        rpc
    }

    pub async fn send(&mut self, v: &Value) -> i64 {
        self.next += 1;
        let mut v = v.clone();
        v["id"] = json!(self.next);
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
        self.next
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// Next message that is not a notification (notifications are kept).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("reply in time")
                .expect("socket open")
                .expect("frame");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("json frame");
                if v.get("method").is_some() && v.get("id").is_none() {
                    self.notifications.push(v);
                    continue;
                }
                return v;
            }
        }
    }

    /// Calls a method and returns the whole reply (`result` or `error`).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self
            .send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
        let reply = self.recv().await;
        assert_eq!(reply["id"], json!(id), "reply to our call");
        assert_eq!(reply["jsonrpc"], "2.0");
        reply
    }

    /// Calls a method that must succeed.
    pub async fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params).await;
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    }

    /// Waits for the next notification.
    pub async fn notification(&mut self) -> Value {
        if !self.notifications.is_empty() {
            return self.notifications.remove(0);
        }
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("notification in time")
                .expect("socket open")
                .expect("frame");
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).expect("json frame");
            }
        }
    }
}
