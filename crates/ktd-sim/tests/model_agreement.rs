//! The simulator and ktd's normalizers were written independently from the reference
//! documents; here they must agree. Every object the simulated servers return, for every
//! TrueNAS release and over both transports, normalizes without error and says what the
//! world says (names, ownership with its source, inherited properties, sizes).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ktd_model::KubeKind;
use ktd_model::normalize::{kube as nk, truenas as nt};
use ktd_model::truenas::{Dataset, HasUserProperties, PropertySource, Snapshot, props};
use ktd_sim::world::DatasetType;
use ktd_sim::{GenerateOptions, KubeApiServer, Personality, TrueNasServer, World};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

fn world(personality: Personality) -> World {
    ktd_sim::generate(&GenerateOptions {
        volumes: 40,
        snapshots_per_volume: 2,
        clusters: 2,
        seed: 11,
        personality,
        ..GenerateOptions::default()
    })
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn rest(http: &reqwest::Client, base: &str, key: &str, path: &str) -> bytes::Bytes {
    let resp = http
        .get(format!("{base}/api/v2.0{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.bytes().await.unwrap()
}

fn read_all_datasets(body: &[u8]) -> Vec<Dataset> {
    let mut out = Vec::new();
    nt::read_datasets(body, |r| out.push(r.expect("dataset normalizes"))).unwrap();
    out
}

fn read_all_snapshots(body: &[u8]) -> Vec<Snapshot> {
    let mut out = Vec::new();
    nt::read_snapshots(body, |r| out.push(r.expect("snapshot normalizes"))).unwrap();
    out
}

fn check_against_world(world: &World, datasets: &[Dataset], snapshots: &[Snapshot]) {
    let by_name: BTreeMap<&str, &Dataset> = datasets.iter().map(|d| (d.name.as_str(), d)).collect();
    for wd in &world.nas.datasets {
        let d = by_name
            .get(wd.name.as_str())
            .unwrap_or_else(|| panic!("dataset {} missing", wd.name));
        let managed_locally = wd
            .user_properties
            .get(props::MANAGED_RESOURCE)
            .is_some_and(|v| v == "true");
        assert_eq!(d.is_managed(), managed_locally, "{}", wd.name);
        match wd.kind {
            DatasetType::Volume => {
                assert_eq!(d.kind, ktd_model::truenas::DatasetType::Volume);
                assert_eq!(d.volsize, wd.volsize, "{}", wd.name);
                assert!(d.mountpoint.is_none());
            }
            DatasetType::Filesystem => {
                assert_eq!(
                    d.mountpoint.as_deref(),
                    Some(format!("/mnt/{}", wd.name).as_str())
                );
            }
        }
        assert_eq!(d.origin, wd.origin, "{}", wd.name);
        assert_eq!(
            d.used_by_snapshots,
            Some(wd.used_by_snapshots),
            "{}",
            wd.name
        );
        for (k, v) in &wd.user_properties {
            let p = &d.user_properties[k];
            assert_eq!(
                (&p.value, p.source),
                (v, PropertySource::Local),
                "{} {k}",
                wd.name
            );
        }
    }
    assert_eq!(
        datasets.len(),
        world.nas.datasets.len(),
        "no extra datasets"
    );

    let snaps: BTreeMap<&str, &Snapshot> = snapshots.iter().map(|s| (s.name.as_str(), s)).collect();
    assert_eq!(snaps.len(), world.nas.snapshots.len());
    let mut inherited_seen = 0;
    for ws in &world.nas.snapshots {
        let s = snaps[ws.full_name().as_str()];
        assert_eq!(s.createtxg, Some(ws.createtxg));
        assert_eq!(s.used, Some(ws.used));
        assert_eq!(s.defer_destroy, ws.defer_destroy);
        let local = ws
            .user_properties
            .get(props::MANAGED_RESOURCE)
            .is_some_and(|v| v == "true");
        assert_eq!(s.is_managed(), local, "{}", s.name);
        // A periodic snapshot of a CSI volume inherits `managed_resource` from the volume:
        // visible, but not its own.
        if !local && s.user_prop(props::MANAGED_RESOURCE) == Some("true") {
            assert_eq!(
                s.user_properties[props::MANAGED_RESOURCE].source,
                PropertySource::Inherited
            );
            inherited_seen += 1;
        }
    }
    assert!(
        inherited_seen > 0,
        "the world has periodic snapshots of CSI volumes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truenas_rest_output_normalizes_and_matches_the_world_for_every_release() {
    for personality in Personality::ALL {
        let w = world(personality);
        let shutdown = CancellationToken::new();
        let server = TrueNasServer::start(w.nas.clone(), loopback(), shutdown.clone())
            .await
            .unwrap();
        let key = w.nas.api_keys[0].key.clone();
        let http = reqwest::Client::new();
        let base = server.url();

        let flat = read_all_datasets(&rest(&http, &base, &key, "/pool/dataset").await);
        let tree =
            read_all_datasets(&rest(&http, &base, &key, "/pool/dataset?extra.flat=false").await);
        assert_eq!(
            flat.iter().map(|d| &d.name).collect::<BTreeSet<_>>(),
            tree.iter().map(|d| &d.name).collect::<BTreeSet<_>>(),
            "{personality:?}: flat and tree forms list the same datasets"
        );
        let snapshot_path = if personality >= Personality::V25_10 {
            "/pool/snapshot"
        } else {
            "/zfs/snapshot"
        };
        let snapshots = read_all_snapshots(&rest(&http, &base, &key, snapshot_path).await);
        check_against_world(&w, &tree, &snapshots);

        let nfs: Value =
            serde_json::from_slice(&rest(&http, &base, &key, "/sharing/nfs").await).unwrap();
        let shares: Vec<_> = nt::each(&nfs, "sharing.nfs.query", nt::nfs_share)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            shares
                .iter()
                .map(|s| s.path.clone())
                .collect::<BTreeSet<_>>(),
            w.nas
                .nfs_shares
                .iter()
                .map(|s| s.path.clone())
                .collect::<BTreeSet<_>>()
        );
        let smb: Value =
            serde_json::from_slice(&rest(&http, &base, &key, "/sharing/smb").await).unwrap();
        for r in nt::each(&smb, "sharing.smb.query", nt::smb_share).unwrap() {
            r.unwrap();
        }
        let extents: Value =
            serde_json::from_slice(&rest(&http, &base, &key, "/iscsi/extent").await).unwrap();
        let extents: Vec<_> = nt::each(&extents, "iscsi.extent.query", nt::iscsi_extent)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for (e, we) in extents.iter().zip(&w.nas.iscsi_extents) {
            assert_eq!(e.zvol(), we.disk.strip_prefix("zvol/"));
        }
        for path in ["/iscsi/target", "/iscsi/targetextent"] {
            let v: Value = serde_json::from_slice(&rest(&http, &base, &key, path).await).unwrap();
            assert!(v.as_array().is_some_and(|a| !a.is_empty()), "{path}");
        }
        let pools: Value =
            serde_json::from_slice(&rest(&http, &base, &key, "/pool").await).unwrap();
        for r in nt::each(&pools, "pool.query", nt::pool).unwrap() {
            assert!(r.unwrap().healthy);
        }
        let info: Value =
            serde_json::from_slice(&rest(&http, &base, &key, "/system/info").await).unwrap();
        let global: Value =
            serde_json::from_slice(&rest(&http, &base, &key, "/iscsi/global").await).unwrap();
        let system = nt::system_info(&info, Some(&global), None).unwrap();
        let expected: Vec<u32> = personality
            .version_short()
            .split('.')
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(system.release, expected, "{personality:?}");
        assert_eq!(
            system.iscsi_basename.as_deref(),
            Some(w.nas.iscsi_basename.as_str())
        );
        shutdown.cancel();
    }
}

/// One JSON-RPC call over an open WebSocket.
async fn call<S>(ws: &mut S, id: u64, method: &str, params: Value) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + SinkExt<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    ws.send(Message::text(req.to_string())).await.unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("answer in time")
            .expect("socket open")
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        if v.get("id") == Some(&json!(id)) {
            assert!(v.get("error").is_none(), "{method}: {v}");
            return v["result"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_and_rest_give_the_same_resources() {
    for personality in [Personality::V25_04, Personality::V25_10] {
        let w = world(personality);
        let shutdown = CancellationToken::new();
        let server = TrueNasServer::start(w.nas.clone(), loopback(), shutdown.clone())
            .await
            .unwrap();
        let key = w.nas.api_keys[0].key.clone();
        let ws_url = format!("{}/api/current", server.url().replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        let login = call(
            &mut ws,
            1,
            "auth.login_ex",
            json!([{"mechanism": "API_KEY_PLAIN", "username": "truenas_admin", "api_key": key}]),
        )
        .await;
        assert_eq!(login["response_type"], "SUCCESS");
        let datasets = call(
            &mut ws,
            2,
            "pool.dataset.query",
            json!([[], {"extra": {"flat": false}}]),
        )
        .await;
        let from_ws = read_all_datasets(&serde_json::to_vec(&datasets).unwrap());
        let snapshots = call(&mut ws, 3, personality.snapshot_query_method(), json!([])).await;
        let snaps_ws = read_all_snapshots(&serde_json::to_vec(&snapshots).unwrap());

        let http = reqwest::Client::new();
        let from_rest = read_all_datasets(
            &rest(&http, &server.url(), &key, "/pool/dataset?extra.flat=false").await,
        );
        assert_eq!(from_ws, from_rest, "{personality:?}");
        check_against_world(&w, &from_ws, &snaps_ws);
        shutdown.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kubernetes_object_normalizes_and_nothing_is_lost() {
    let w = world(Personality::V25_04);
    for cluster in &w.clusters {
        let mut expected: BTreeMap<String, usize> = BTreeMap::new();
        for o in &cluster.objects {
            *expected
                .entry(o["kind"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let shutdown = CancellationToken::new();
        let server = KubeApiServer::start(cluster.clone(), loopback(), shutdown.clone())
            .await
            .unwrap();
        let http = reqwest::Client::new();
        for kind in KubeKind::ALL {
            let path = if kind.group().is_empty() {
                format!("/api/{}/{}", kind.version(), kind.plural())
            } else {
                format!(
                    "/apis/{}/{}/{}",
                    kind.group(),
                    kind.version(),
                    kind.plural()
                )
            };
            let body = http
                .get(format!("{}{path}", server.url()))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let mut n = 0;
            nk::read_list(body.as_ref(), |r| {
                let o = r.unwrap_or_else(|e| panic!("{kind}: {e}"));
                assert_eq!(o.kind(), *kind);
                n += 1;
            })
            .unwrap();
            assert_eq!(
                n,
                expected.get(kind.as_str()).copied().unwrap_or(0),
                "{}: {kind}",
                cluster.name
            );
        }
        shutdown.cancel();
    }
}
