//! Bundles made by hand, as a person with `kubectl`, `curl` or `midclt` would make them:
//! the real formats of every supported TrueNAS release and of kubectl read correctly;
//! missing files, malformed files and malformed objects are handled as docs/bundle.md says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ktd::bundle::{BundleError, BundleInfo, KindsFrom, ReadOptions, read_bundle, read_bundle_with};
use ktd_model::kube::KubeObject;
use ktd_model::truenas::{
    Dataset, HasUserProperties, NasCollection, Pool, Share, ShareKey, Snapshot, SystemInfo,
};
use ktd_model::{Envelope, Event, KubeKind, ObjectKey, Timestamp};
use ktd_sim::{GenerateOptions, Personality};
use ktd_truenas::{
    Poller, PollerState, SecretSource, TransportChoice, TrueNasClient, TrueNasConfig,
};
use serde_json::{Value, json};

mod support;
use support::Sim;

const NOW: &str = "2025-06-01T12:00:00Z";

fn now() -> Timestamp {
    Timestamp::parse_rfc3339(NOW).unwrap()
}

fn read(dir: &Path) -> Result<(BundleInfo, Vec<Envelope>), BundleError> {
    let mut events = Vec::new();
    let options = ReadOptions {
        now: Some(now()),
        ..ReadOptions::default()
    };
    read_bundle_with(dir, &options, &mut |e| events.push(e)).map(|info| (info, events))
}

fn write(dir: &Path, file: &str, value: &Value) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

// ---- the real formats of every release, from the simulator ---------------------------------

/// TrueNAS objects keyed for comparison.
#[derive(Debug, Default, PartialEq)]
struct Nas {
    pools: BTreeMap<String, Pool>,
    datasets: BTreeMap<String, Dataset>,
    snapshots: BTreeMap<String, Snapshot>,
    shares: BTreeMap<ShareKey, Share>,
    system: Option<SystemInfo>,
}

impl Nas {
    fn fold(events: &[Envelope]) -> Nas {
        let mut nas = Nas::default();
        for env in events {
            match &env.event {
                Event::PoolObserved { pool } => {
                    nas.pools.insert(pool.name.clone(), pool.clone());
                }
                Event::DatasetObserved { dataset } => {
                    // Nor for `extra.snapshots_count`.
                    let mut d = dataset.clone();
                    d.snapshot_count = None;
                    nas.datasets.insert(d.name.clone(), d);
                }
                Event::SnapshotObserved { snapshot } => {
                    // Hand-made queries do not ask for holds (`extra.holds`); the poller does.
                    let mut s = snapshot.clone();
                    s.holds = None;
                    nas.snapshots.insert(s.name.clone(), s);
                }
                Event::ShareObserved { share } => {
                    nas.shares.insert(share.key(), share.clone());
                }
                Event::SystemObserved { system } => nas.system = Some(system.clone()),
                _ => {}
            }
        }
        nas
    }
}

/// Every method file of a bundle fetched the way a person would: REST `GET`s without
/// options up to 24.10 (as `curl` prints them), JSON-RPC calls without parameters from
/// 25.04 (as `midclt call <method>` prints them).
async fn hand_made_truenas(sim: &Sim, personality: Personality, dir: &Path) -> TrueNasConfig {
    let key_file = dir.join("api-key");
    std::fs::write(&key_file, sim.api_key()).unwrap();
    let config = TrueNasConfig {
        instance: "nas".into(),
        url: sim.nas.url(),
        api_key: SecretSource::File { file: key_file },
        username: Some("truenas_admin".into()),
        ..TrueNasConfig::default()
    };
    let snapshot_method = personality.snapshot_query_method();
    let methods = [
        ("pool.query", "pool"),
        ("pool.dataset.query", "pool/dataset"),
        (
            snapshot_method,
            if personality >= Personality::V25_10 {
                "pool/snapshot"
            } else {
                "zfs/snapshot"
            },
        ),
        ("sharing.nfs.query", "sharing/nfs"),
        ("sharing.smb.query", "sharing/smb"),
        ("iscsi.target.query", "iscsi/target"),
        ("iscsi.extent.query", "iscsi/extent"),
        ("iscsi.targetextent.query", "iscsi/targetextent"),
        ("iscsi.global.config", "iscsi/global"),
        ("system.info", "system/info"),
        ("service.query", "service"),
    ];
    let out = dir.join("bundle/truenas");
    std::fs::create_dir_all(&out).unwrap();
    if personality.has_jsonrpc() {
        let client = TrueNasClient::connect(TrueNasConfig {
            transport: TransportChoice::Jsonrpc,
            ..config.clone()
        })
        .await
        .unwrap();
        for (method, _) in methods {
            let result = client.call(method, &[]).await.unwrap();
            std::fs::write(
                out.join(format!("{method}.json")),
                serde_json::to_vec(&result).unwrap(),
            )
            .unwrap();
        }
    } else {
        let http = reqwest::Client::new();
        for (method, path) in methods {
            let body = http
                .get(format!("{}/api/v2.0/{path}", sim.nas.url()))
                .bearer_auth(sim.api_key())
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .bytes()
                .await
                .unwrap();
            std::fs::write(out.join(format!("{method}.json")), &body).unwrap();
        }
    }
    config
}

#[test]
fn hand_made_truenas_files_of_every_release_read_like_a_live_poll() {
    for personality in Personality::ALL {
        let sim = Sim::serve(ktd_sim::generate(&GenerateOptions {
            volumes: 16,
            snapshots_per_volume: 2,
            clusters: 1,
            seed: 3,
            personality,
            ..GenerateOptions::default()
        }));
        let dir = tempfile::tempdir().unwrap();
        let live = sim.rt.block_on(async {
            let config = hand_made_truenas(&sim, personality, dir.path()).await;
            let client = TrueNasClient::connect(config).await.unwrap();
            let mut poller = Poller::new(client, "nas", PollerState::default());
            poller.poll_once(now()).await
        });
        let bundle = dir.path().join("bundle");
        // The default `flat: true` form: every dataset at the top level, parents repeating
        // their subtrees.
        let raw: Value = serde_json::from_slice(
            &std::fs::read(bundle.join("truenas/pool.dataset.query.json")).unwrap(),
        )
        .unwrap();
        let top = raw.as_array().unwrap();
        assert_eq!(top.len(), sim.world.nas.datasets.len(), "{personality:?}");
        assert!(top[0]["children"].as_array().is_some_and(|c| !c.is_empty()));
        let (info, events) = read(&bundle).unwrap();
        let (from_bundle, live) = (Nas::fold(&events), Nas::fold(&live));

        assert_eq!(
            from_bundle.datasets.keys().collect::<Vec<_>>(),
            live.datasets.keys().collect::<Vec<_>>(),
            "{personality:?}: the default flat result is read once per dataset"
        );
        for (name, d) in &live.datasets {
            assert_eq!(&from_bundle.datasets[name], d, "{personality:?} {name}");
        }
        assert_eq!(
            from_bundle.snapshots.keys().collect::<Vec<_>>(),
            live.snapshots.keys().collect::<Vec<_>>(),
            "{personality:?}"
        );
        for (name, s) in &live.snapshots {
            assert_eq!(&from_bundle.snapshots[name], s, "{personality:?} {name}");
        }
        assert_eq!(from_bundle.pools, live.pools, "{personality:?}");
        assert_eq!(from_bundle.shares, live.shares, "{personality:?}");
        assert_eq!(from_bundle.system, live.system, "{personality:?}");
        assert!(!from_bundle.datasets.is_empty() && !from_bundle.snapshots.is_empty());

        // No bundle.json: now is the reader's, and nothing is missing.
        assert!(!info.collected_at_from_bundle);
        assert_eq!(info.collected_at, now());
        let nas = info.truenas.unwrap();
        assert!(nas.not_collected.is_empty(), "{:?}", nas.not_collected);
        assert_eq!(nas.source.instance, sim.world.nas.hostname);
        assert!(info.kubernetes.is_none());
        assert!(info.rejected.is_empty(), "{:?}", info.rejected);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    }
}

#[test]
fn what_kubectl_prints_reads_like_the_live_source() {
    let sim = Sim::serve(ktd_sim::generate(&GenerateOptions {
        volumes: 16,
        snapshots_per_volume: 2,
        clusters: 1,
        seed: 5,
        ..GenerateOptions::default()
    }));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let kubectl = "/usr/bin/kubectl";
    assert!(
        Path::new(kubectl).exists(),
        "kubectl is required for this test but {kubectl} does not exist (install the kubectl package)"
    );
    // The documented recipe, verbatim.
    let out = std::process::Command::new(kubectl)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("KUBECONFIG", home.join("none"))
        .args(["--server", &sim.kube.url(), "--cache-dir"])
        .arg(home.join("cache"))
        .args([
            "get",
            "pv,pvc,sc,volumeattachments,csidrivers,csinodes,nodes,volumesnapshots,volumesnapshotcontents,volumesnapshotclasses",
            "-A",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("kubernetes.json"), &out.stdout).unwrap();

    let (info, events) = read(&bundle).unwrap();
    let mut objects: BTreeMap<(KubeKind, ObjectKey), KubeObject> = BTreeMap::new();
    for env in &events {
        if let Event::ObjectApplied { object } = &env.event {
            objects.insert((object.kind(), object.key()), object.clone());
        }
    }
    let kinds = [
        KubeKind::PersistentVolume,
        KubeKind::PersistentVolumeClaim,
        KubeKind::StorageClass,
        KubeKind::VolumeAttachment,
        KubeKind::CsiDriver,
        KubeKind::CsiNode,
        KubeKind::Node,
        KubeKind::VolumeSnapshot,
        KubeKind::VolumeSnapshotContent,
        KubeKind::VolumeSnapshotClass,
    ];
    let live = sim.rt.block_on(async {
        use futures::StreamExt;
        let config = ktd_kube::KubeSourceConfig {
            instance: "bundle".into(),
            url: Some(sim.kube.url()),
            kinds: kinds.to_vec(),
            ..ktd_kube::KubeSourceConfig::default()
        };
        let client = config.client().await.unwrap();
        let mut stream = ktd_kube::KubeSource::new(client, config).stream().boxed();
        let mut live = BTreeMap::new();
        let mut synced = BTreeSet::new();
        while synced.len() < kinds.len() {
            let env = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next())
                .await
                .expect("the live source syncs (hang guard)")
                .unwrap();
            match env.event {
                Event::ObjectApplied { object } => {
                    live.insert((object.kind(), object.key()), object);
                }
                Event::SyncCompleted { kind, .. } => {
                    synced.insert(kind);
                }
                _ => {}
            }
        }
        live
    });
    assert_eq!(
        objects.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>()
    );
    for (key, object) in &live {
        assert_eq!(&objects[key], object, "{key:?}");
    }
    // Without bundle.json the kinds present count as collected (the world has all ten).
    let k = info.kubernetes.unwrap();
    assert_eq!(k.kinds_from, KindsFrom::Inferred);
    assert_eq!(k.kinds.keys().copied().collect::<Vec<_>>(), kinds.to_vec());
    assert_eq!(k.source.instance, "bundle");
    let synced: Vec<KubeKind> = events
        .iter()
        .filter_map(|e| match e.event {
            Event::SyncCompleted { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(synced, kinds.to_vec());
}

// ---- the shapes of the reference documents ------------------------------------------------

const PV_LIST: &str =
    include_str!("../../ktd-model/tests/fixtures/democratic-csi-pv-freenas-api-nfs.json");

fn prop(raw: &str, parsed: Value, source: &str) -> Value {
    json!({"parsed": parsed, "rawvalue": raw, "value": raw, "source": source, "source_info": null})
}

fn user(v: &str) -> Value {
    json!({"value": v, "rawvalue": v, "parsed": v, "source": "LOCAL"})
}

/// A bundle of the illustrative 25.04 shapes of reference/truenas-api.md and the real-world
/// PVs of reference/examples, without the files named in `omit`.
fn reference_bundle(dir: &Path, omit: &[&str]) {
    let zvol = json!({
        "id": "tank/k8s/vols/pvc-3f2a", "name": "tank/k8s/vols/pvc-3f2a", "pool": "tank", "type": "VOLUME",
        "encrypted": false, "encryption_root": null, "key_loaded": false, "locked": false, "mountpoint": null,
        "children": [],
        "used": prop("10748952576", json!(10748952576u64), "NONE"),
        "available": prop("7534150254592", json!(7534150254592u64), "NONE"),
        "volsize": prop("10737418240", json!(10737418240u64), "LOCAL"),
        "refreservation": prop("11005853696", json!(11005853696u64), "LOCAL"),
        "creation": {"parsed": {"$date": 1731000000000u64}, "rawvalue": "1731000000", "value": "Thu Nov  7 17:20 2024", "source": "NONE", "source_info": null},
        "compressratio": {"parsed": "1.37", "rawvalue": "1.37", "value": "1.37x", "source": "NONE", "source_info": null},
        "origin": prop("", json!(""), "NONE"),
        "user_properties": {
            "democratic-csi:csi_volume_name": user("pvc-3f2a"),
            "democratic-csi:managed_resource": user("true")
        }
    });
    let root = json!({"id": "tank", "name": "tank", "pool": "tank", "type": "FILESYSTEM",
        "mountpoint": "/mnt/tank", "children": [zvol.clone()], "user_properties": {}});
    let files: Vec<(&str, Value)> = vec![
        ("kubernetes.json", serde_json::from_str(PV_LIST).unwrap()),
        (
            "truenas/pool.query.json",
            json!([{
            "id": 1, "name": "tank", "guid": "12345678901234567890", "path": "/mnt/tank",
            "status": "ONLINE", "status_code": "OK", "status_detail": null, "healthy": true, "warning": false,
            "is_upgraded": true, "scan": {"function": "SCRUB", "state": "FINISHED", "errors": 0, "end_time": {"$date": 1731203600000u64}},
            "size": 11991548690432u64, "allocated": 4123168604160u64, "free": 7868380086272u64, "freeing": 0,
            "fragmentation": "3", "size_str": "11991548690432", "free_str": "7868380086272",
            "autotrim": {"parsed": "off", "rawvalue": "off", "source": "DEFAULT", "value": "off"},
            "topology": {"data": [{"name": "raidz1-0", "type": "RAIDZ1", "status": "ONLINE", "children": []}],
                         "log": [], "cache": [], "spare": [], "special": [], "dedup": []}}]),
        ),
        // `flat: true`, the default: the root repeats the zvol in its children.
        ("truenas/pool.dataset.query.json", json!([root, zvol])),
        (
            "truenas/zfs.snapshot.query.json",
            json!([{
            "id": "tank/k8s/vols/pvc-3f2a@snapshot-7c1e", "name": "tank/k8s/vols/pvc-3f2a@snapshot-7c1e",
            "pool": "tank", "type": "SNAPSHOT", "snapshot_name": "snapshot-7c1e", "dataset": "tank/k8s/vols/pvc-3f2a",
            "createtxg": "918273",
            "properties": {
                "used": {"value": "1.2M", "rawvalue": "1253376", "source": "NONE", "parsed": 1253376},
                "referenced": {"value": "4.1G", "rawvalue": "4402341888", "source": "NONE", "parsed": 4402341888u64},
                "creation": {"value": "Fri Nov  8 10:00 2024", "rawvalue": "1731060000", "source": "NONE", "parsed": {"$date": 1731060000000u64}},
                "democratic-csi:csi_snapshot_name": {"value": "snapshot-7c1e", "rawvalue": "snapshot-7c1e", "source": "LOCAL", "parsed": "snapshot-7c1e"}},
            "holds": {}}]),
        ),
        (
            "truenas/sharing.nfs.query.json",
            json!([{
            "id": 7, "path": "/mnt/tank/k8s/nfs/pvc-91bd", "aliases": [], "comment": "pvc-91bd (democratic-csi)",
            "networks": ["10.0.0.0/24"], "hosts": [], "ro": false, "maproot_user": "root", "maproot_group": "root",
            "mapall_user": null, "mapall_group": null, "security": [], "enabled": true, "locked": false,
            "expose_snapshots": false}]),
        ),
        (
            "truenas/sharing.smb.query.json",
            json!([{
            "id": 1, "purpose": "NO_PRESET", "path": "/mnt/tank/smb/media", "name": "media", "comment": "",
            "ro": true, "browsable": true, "abe": false, "enabled": true, "locked": false}]),
        ),
        (
            "truenas/iscsi.extent.query.json",
            json!([{
            "id": 12, "name": "pvc-3f2a", "type": "DISK", "disk": "zvol/tank/k8s/vols/pvc-3f2a",
            "path": "zvol/tank/k8s/vols/pvc-3f2a", "serial": "08002799a5f1", "filesize": 0,
            "blocksize": 512, "pblocksize": false, "avail_threshold": null, "comment": "", "insecure_tpc": true,
            "xen": false, "rpm": "SSD", "ro": false, "enabled": true, "naa": "0x6589cfc000000abc",
            "vendor": "TrueNAS", "locked": false}]),
        ),
        (
            "truenas/iscsi.target.query.json",
            json!([{
            "id": 9, "name": "pvc-3f2a", "alias": null, "mode": "ISCSI",
            "groups": [{"portal": 1, "initiator": 1, "authmethod": "NONE", "auth": null}],
            "auth_networks": [], "rel_tgt_id": 9, "iscsi_parameters": null}]),
        ),
        (
            "truenas/iscsi.targetextent.query.json",
            json!([{"id": 15, "target": 9, "lunid": 0, "extent": 12}]),
        ),
        (
            "truenas/iscsi.global.config.json",
            json!({"id": 1, "basename": "iqn.2005-10.org.freenas.ctl",
            "isns_servers": [], "listen_port": 3260, "pool_avail_threshold": null, "alua": false, "iser": false}),
        ),
        (
            "truenas/system.info.json",
            json!({
            "version": "TrueNAS-25.04.2.6", "buildtime": {"$date": 1750000000000u64}, "hostname": "nas01",
            "physmem": 68719476736u64, "cores": 32, "uptime": "12 days, 3:04:05.123456", "uptime_seconds": 1047845.1,
            "boottime": {"$date": 1749000000000u64}, "datetime": {"$date": 1750047845000u64}, "timezone": "UTC",
            "license": null, "ecc_memory": true}),
        ),
    ];
    for (file, value) in files {
        if !omit.contains(&file) {
            write(dir, file, &value);
        }
    }
}

#[test]
fn the_reference_shapes_read_into_every_resource() {
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    let (info, events) = read(dir.path()).unwrap();
    let nas = Nas::fold(&events);

    assert_eq!(nas.datasets.len(), 2, "the flat form's repeat is read once");
    let zvol = &nas.datasets["tank/k8s/vols/pvc-3f2a"];
    assert_eq!(zvol.volsize, Some(10737418240));
    assert!(zvol.is_managed());
    let snap = &nas.snapshots["tank/k8s/vols/pvc-3f2a@snapshot-7c1e"];
    assert_eq!(snap.createtxg, Some(918273));
    assert_eq!(snap.referenced, Some(4402341888));
    assert_eq!(nas.pools["tank"].scan.as_ref().unwrap().state, "FINISHED");
    assert_eq!(nas.shares.len(), 5);
    let Some(Share::Smb(smb)) = nas.shares.values().find(|s| matches!(s, Share::Smb(_))) else {
        panic!("no SMB share")
    };
    assert!(smb.readonly);
    let system = nas.system.unwrap();
    assert_eq!(system.release, vec![25, 4, 2, 6]);
    assert_eq!(
        system.iscsi_basename.as_deref(),
        Some("iqn.2005-10.org.freenas.ctl"),
        "iscsi.global.config completes the system"
    );

    // The TrueNAS source is named after the host, the cluster is `bundle`.
    for env in &events {
        let expected = if env.subject.contains(".obs.nas01.") {
            "nas01"
        } else {
            "bundle"
        };
        assert_eq!(env.source.instance, expected, "{}", env.subject);
        assert_eq!(env.observed_at, now());
    }
    let pvs = events
        .iter()
        .filter(|e| matches!(&e.event, Event::ObjectApplied { object } if object.kind() == KubeKind::PersistentVolume))
        .count();
    assert_eq!(pvs, 2);
    assert_eq!(
        info.kubernetes.unwrap().kinds,
        BTreeMap::from([(KubeKind::PersistentVolume, 2)])
    );

    let poll = events
        .iter()
        .find_map(|e| match &e.event {
            Event::PollCompleted {
                poll,
                counts,
                not_collected,
                rejected,
                ..
            } => Some((
                *poll,
                counts.clone(),
                not_collected.clone(),
                rejected.clone(),
            )),
            _ => None,
        })
        .unwrap();
    assert_eq!(poll.0, 1);
    assert_eq!(
        (
            poll.1.pools,
            poll.1.datasets,
            poll.1.snapshots,
            poll.1.shares
        ),
        (1, 2, 1, 5)
    );
    assert!(poll.2.is_empty());
    assert!(poll.3.is_empty());
}

#[test]
fn a_missing_method_file_is_reported_not_collected() {
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &["truenas/sharing.smb.query.json"]);
    let (info, events) = read(dir.path()).unwrap();
    let not_collected = events
        .iter()
        .find_map(|e| match &e.event {
            Event::PollCompleted { not_collected, .. } => Some(not_collected.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(not_collected, vec![NasCollection::SmbShares]);
    assert_eq!(
        info.truenas.unwrap().not_collected,
        vec![NasCollection::SmbShares]
    );

    // Without system.info the source has no host name and the system is not collected.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(
        dir.path(),
        &[
            "truenas/system.info.json",
            "truenas/zfs.snapshot.query.json",
        ],
    );
    let (info, events) = read(dir.path()).unwrap();
    let nas = info.truenas.unwrap();
    assert_eq!(
        nas.not_collected,
        vec![NasCollection::Snapshots, NasCollection::System]
    );
    assert_eq!(nas.source.instance, "bundle");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.event, Event::SystemObserved { .. }))
    );
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("iscsi.global.config.json is ignored")),
        "{:?}",
        info.warnings
    );
}

fn synced(events: &[Envelope]) -> BTreeMap<KubeKind, u64> {
    events
        .iter()
        .filter_map(|e| match e.event {
            Event::SyncCompleted { kind, objects } => Some((kind, objects)),
            _ => None,
        })
        .collect()
}

#[test]
fn bundle_json_says_which_kinds_were_collected_else_they_are_inferred() {
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    let (info, events) = read(dir.path()).unwrap();
    assert_eq!(info.kubernetes.unwrap().kinds_from, KindsFrom::Inferred);
    assert_eq!(
        synced(&events),
        BTreeMap::from([(KubeKind::PersistentVolume, 2)])
    );

    // Listed kinds count as collected even with no object: a cluster without snapshots.
    write(
        dir.path(),
        "bundle.json",
        &json!({"collected_at": "2024-12-01T08:00:00Z", "cluster": "prod",
                "kubernetes_kinds": ["pv", "PersistentVolumeClaim", "VolumeSnapshot"]}),
    );
    let (info, events) = read(dir.path()).unwrap();
    let k = info.kubernetes.unwrap();
    assert_eq!(k.kinds_from, KindsFrom::BundleJson);
    assert_eq!(k.source.instance, "prod");
    assert_eq!(
        synced(&events),
        BTreeMap::from([
            (KubeKind::PersistentVolume, 2),
            (KubeKind::PersistentVolumeClaim, 0),
            (KubeKind::VolumeSnapshot, 0),
        ])
    );
    let at = Timestamp::parse_rfc3339("2024-12-01T08:00:00Z").unwrap();
    assert_eq!(info.collected_at, at);
    assert!(info.collected_at_from_bundle);
    assert!(events.iter().all(|e| e.observed_at == at));

    // Objects of a kind bundle.json does not list are read, but the kind is not complete.
    write(
        dir.path(),
        "bundle.json",
        &json!({"kubernetes_kinds": ["PersistentVolumeClaim"], "extra_field": 1}),
    );
    let (info, events) = read(dir.path()).unwrap();
    let k = info.kubernetes.unwrap();
    assert_eq!(
        synced(&events),
        BTreeMap::from([(KubeKind::PersistentVolumeClaim, 0)])
    );
    assert_eq!(
        k.uncollected_objects,
        BTreeMap::from([(KubeKind::PersistentVolume, 2)])
    );
    assert!(
        info.warnings.iter().any(|w| w.contains("extra_field")),
        "{:?}",
        info.warnings
    );
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("does not list PersistentVolume")),
        "{:?}",
        info.warnings
    );
}

#[test]
fn a_malformed_object_is_named_and_everything_else_is_read() {
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    let mut list: Value = serde_json::from_str(PV_LIST).unwrap();
    let mut bad = list["items"][0].clone();
    bad["metadata"]["name"] = json!("pv-broken");
    bad["spec"]["capacity"]["storage"] = json!("lots");
    list["items"].as_array_mut().unwrap().push(bad);
    list["items"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "x"}, "data": {"password": "aHVudGVyMg=="}}));
    write(dir.path(), "kubernetes.json", &list);
    let mut nfs: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("truenas/sharing.nfs.query.json")).unwrap(),
    )
    .unwrap();
    nfs.as_array_mut()
        .unwrap()
        .push(json!({"id": 8, "comment": "no path"}));
    write(dir.path(), "truenas/sharing.nfs.query.json", &nfs);
    let mut datasets: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("truenas/pool.dataset.query.json")).unwrap(),
    )
    .unwrap();
    datasets
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "tank/odd", "name": "tank/odd", "type": "BLOCKDEVICE"}));
    write(dir.path(), "truenas/pool.dataset.query.json", &datasets);

    let (info, events) = read(dir.path()).unwrap();
    let rejected: BTreeSet<(String, String)> = info
        .rejected
        .iter()
        .map(|r| (r.file.clone(), r.object.clone()))
        .collect();
    assert_eq!(info.rejected.len(), 3, "{:?}", info.rejected);
    assert!(rejected.contains(&(
        "kubernetes.json".into(),
        "PersistentVolume pv-broken".into()
    )));
    assert!(
        rejected.contains(&(
            "truenas/sharing.nfs.query.json".into(),
            "sharing.nfs.query 8".into()
        )),
        "{rejected:?}"
    );
    assert!(
        info.rejected
            .iter()
            .any(|r| r.file == "truenas/pool.dataset.query.json"
                && r.object.contains("tank/odd")
                && r.error.contains("BLOCKDEVICE")),
        "{:?}",
        info.rejected
    );
    assert!(
        info.rejected.iter().any(|r| r.error.contains("lots")),
        "{:?}",
        info.rejected
    );

    // The rest is all there; the live sources' rejection events and lists are used.
    let nas = Nas::fold(&events);
    assert_eq!(nas.datasets.len(), 2);
    assert_eq!(nas.shares.len(), 5);
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ObjectRejected { kind: KubeKind::PersistentVolume, key: Some(k), .. } if k.name == "pv-broken")));
    let poll_rejected = events
        .iter()
        .find_map(|e| match &e.event {
            Event::PollCompleted { rejected, .. } => Some(rejected.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(poll_rejected.len(), 2, "{poll_rejected:?}");
    assert_eq!(synced(&events)[&KubeKind::PersistentVolume], 3);
    // Secrets are never read.
    assert_eq!(
        info.kubernetes.unwrap().skipped,
        BTreeMap::from([("Secret".into(), 1)])
    );
    assert!(
        !events
            .iter()
            .any(|e| format!("{:?}", e.event).contains("aHVudGVyMg"))
    );
}

fn error_of(dir: &Path) -> String {
    match read(dir) {
        Ok(_) => panic!("{} read without error", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_malformed_file_fails_with_its_name_position_and_what_to_do() {
    // Truncated JSON.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    let path = dir.path().join("truenas/zfs.snapshot.query.json");
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("zfs.snapshot.query.json"), "{err}");
    assert!(err.contains("line") && err.contains("column"), "{err}");
    assert!(err.contains("midclt call zfs.snapshot.query"), "{err}");

    // An error answer saved instead of a result.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    write(
        dir.path(),
        "truenas/pool.dataset.query.json",
        &json!({"message": "Invalid API key"}),
    );
    let err = error_of(dir.path());
    assert!(err.contains("pool.dataset.query.json"), "{err}");
    assert!(err.contains("JSON array"), "{err}");

    // kubernetes.json that is not a list.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    std::fs::write(dir.path().join("kubernetes.json"), "[1, 2]").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("kubernetes.json"), "{err}");
    assert!(err.contains("kubectl get pv,pvc"), "{err}");

    // system.info that is a list.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    write(dir.path(), "truenas/system.info.json", &json!([]));
    let err = error_of(dir.path());
    assert!(
        err.contains("system.info.json") && err.contains("JSON object"),
        "{err}"
    );

    // bundle.json with a kind ktd does not know.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    write(
        dir.path(),
        "bundle.json",
        &json!({"kubernetes_kinds": ["Deployment"]}),
    );
    let err = error_of(dir.path());
    assert!(
        err.contains("bundle.json") && err.contains("Deployment"),
        "{err}"
    );

    // Both snapshot methods.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    write(dir.path(), "truenas/pool.snapshot.query.json", &json!([]));
    let err = error_of(dir.path());
    assert!(
        err.contains("both") && err.contains("pool.snapshot.query"),
        "{err}"
    );

    // bundle.json names kinds but kubernetes.json is gone.
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &["kubernetes.json"]);
    write(
        dir.path(),
        "bundle.json",
        &json!({"kubernetes_kinds": ["pv"]}),
    );
    let err = error_of(dir.path());
    assert!(err.contains("kubernetes.json is missing"), "{err}");

    // Not a bundle at all.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    assert!(matches!(read(dir.path()), Err(BundleError::Empty { .. })));
    assert!(matches!(
        read(&dir.path().join("nope")),
        Err(BundleError::NotADirectory { .. })
    ));
}

#[test]
fn a_kind_list_whose_items_have_no_kind_is_a_clear_error_but_a_typed_list_reads() {
    let list: Value = serde_json::from_str(PV_LIST).unwrap();
    let mut items = list["items"].clone();
    for item in items.as_array_mut().unwrap() {
        let o = item.as_object_mut().unwrap();
        o.remove("kind");
        o.remove("apiVersion");
    }
    // Keys in kubectl's order (`items` before `kind`) and the other way round.
    for text in [
        format!(r#"{{"apiVersion": "v1", "items": {items}, "kind": "List", "metadata": {{}}}}"#),
        format!(r#"{{"apiVersion": "v1", "kind": "List", "items": {items}}}"#),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubernetes.json"), &text).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, BundleError::ItemsWithoutKind { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("no `apiVersion`/`kind`"), "{text}");
        assert!(
            text.contains("pvc-0c6e4d07-d1e1-4db5-a49e-8049d70ba2b0"),
            "{text}"
        );
        assert!(text.contains("kubectl get"), "{text}");
    }

    // What the apiserver returns for one kind: the list's kind types its items.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{"items": {items}, "kind": "PersistentVolumeList", "apiVersion": "v1", "metadata": {{"resourceVersion": "9"}}}}"#
    );
    std::fs::write(dir.path().join("kubernetes.json"), text).unwrap();
    let (info, _) = read(dir.path()).unwrap();
    assert_eq!(
        info.kubernetes.unwrap().kinds,
        BTreeMap::from([(KubeKind::PersistentVolume, 2)])
    );
}

#[test]
fn the_same_bundle_gives_the_same_events_with_every_marker_after_every_object() {
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &[]);
    write(dir.path(), "bundle.json", &json!({"collected_at": NOW}));
    let ids = |threads: usize| {
        let mut events = Vec::new();
        let options = ReadOptions {
            threads,
            ..ReadOptions::default()
        };
        read_bundle_with(dir.path(), &options, &mut |e| events.push(e)).unwrap();
        events
    };
    let parallel = ids(0);
    let serial = ids(1);
    let set = |events: &[Envelope]| events.iter().map(|e| e.id).collect::<BTreeSet<_>>();
    assert_eq!(set(&parallel), set(&serial));
    assert_eq!(set(&parallel).len(), parallel.len(), "ids are unique");
    let mut again = Vec::new();
    read_bundle(dir.path(), &mut |e| again.push(e)).unwrap();
    assert_eq!(set(&again), set(&parallel));

    let is_marker = |e: &Envelope| {
        matches!(
            e.event,
            Event::SyncCompleted { .. } | Event::PollCompleted { .. }
        )
    };
    let first_marker = parallel.iter().position(is_marker).unwrap();
    assert!(parallel[first_marker..].iter().all(is_marker));
    assert_eq!(parallel.len() - first_marker, 2, "one kind and one poll");

    // Another collection time is another observation.
    write(
        dir.path(),
        "bundle.json",
        &json!({"collected_at": "2025-06-02T12:00:00Z"}),
    );
    let mut later = Vec::new();
    read_bundle(dir.path(), &mut |e| later.push(e)).unwrap();
    assert!(set(&later).is_disjoint(&set(&parallel)));
}

#[test]
fn leftovers_of_an_interrupted_collection_and_unknown_files_are_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &["truenas/sharing.smb.query.json"]);
    std::fs::write(
        dir.path()
            .join("truenas/.sharing.smb.query.json.x1y2.partial"),
        "[{\"id\": 1",
    )
    .unwrap();
    std::fs::write(dir.path().join("truenas/iscsi.auth.query.json"), "[]").unwrap();
    let (info, _) = read(dir.path()).unwrap();
    assert_eq!(
        info.truenas.unwrap().not_collected,
        vec![NasCollection::SmbShares]
    );
    assert!(
        info.warnings.iter().any(|w| w.contains("interrupted")),
        "{:?}",
        info.warnings
    );
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("iscsi.auth.query.json")),
        "{:?}",
        info.warnings
    );
}

#[test]
fn ktd_scan_prints_what_a_bundle_holds() {
    let dir = tempfile::tempdir().unwrap();
    reference_bundle(dir.path(), &["truenas/sharing.smb.query.json"]);
    write(
        dir.path(),
        "bundle.json",
        &json!({"collected_at": NOW, "kubernetes_kinds": ["pv", "pvc"], "cluster": "prod",
                "left_out": [{"what": "VolumeSnapshot", "reason": "the snapshot CRDs are not installed"}]}),
    );
    let scan = |format: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ktd"))
            .env_remove("KTD_CONFIG")
            .args(["scan", "--bundle"])
            .arg(dir.path())
            .args(["-o", format])
            .output()
            .unwrap()
    };
    let out = scan("json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["findings"].is_array(), "{report}");
    assert_eq!(report["summary"]["at"], "2025-06-01T12:00:00Z");
    let summary = &report["bundle"];
    assert_eq!(summary["collected_at"], "2025-06-01T12:00:00Z");
    assert_eq!(summary["collected_at_from"], "bundle.json");
    assert_eq!(summary["kubernetes"]["cluster"], "prod");
    assert_eq!(
        summary["kubernetes"]["kinds"],
        json!([
            {"what": "PersistentVolume", "file": "kubernetes.json", "objects": 2},
            {"what": "PersistentVolumeClaim", "file": "kubernetes.json", "objects": 0}
        ])
    );
    assert_eq!(summary["truenas"]["host"], "nas01");
    assert_eq!(summary["truenas"]["not_collected"], json!(["smb-shares"]));
    assert_eq!(summary["left_out"][0]["what"], "VolumeSnapshot");

    let out = scan("table");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("kubernetes/prod  PersistentVolume"),
        "{table}"
    );
    assert!(table.contains("truenas/nas01"), "{table}");
    assert!(
        table.contains("not collected (not judged): smb-shares"),
        "{table}"
    );
    assert!(table.contains("left out: VolumeSnapshot"), "{table}");

    std::fs::write(dir.path().join("kubernetes.json"), "{").unwrap();
    let out = scan("table");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kubernetes.json cannot be read"),
        "{stderr}"
    );
}
