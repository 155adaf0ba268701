//! `ktd collect` (the real binary) against simulated worlds of every TrueNAS release, then
//! the bundle read back: every object of the world is there, normalized exactly as the live
//! sources (the Kubernetes watcher and the TrueNAS poller) observe it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use futures::StreamExt;
use ktd::bundle::{BundleInfo, read_bundle};
use ktd_kube::KubeSourceConfig;
use ktd_model::kube::KubeObject;
use ktd_model::truenas::{Dataset, Pool, Share, ShareKey, Snapshot, SystemInfo};
use ktd_model::{Envelope, Event, KubeKind, ObjectKey, Timestamp};
use ktd_sim::world::Denied;
use ktd_sim::{GenerateOptions, Personality, World};
use ktd_truenas::{Poller, PollerState, SecretSource, TrueNasClient, TrueNasConfig};
use serde_json::Value;

mod support;
use support::Sim;

fn world(personality: Personality) -> World {
    ktd_sim::generate(&GenerateOptions {
        volumes: 24,
        snapshots_per_volume: 2,
        clusters: 1,
        seed: 7,
        personality,
        ..GenerateOptions::default()
    })
}

fn kube_config(sim: &Sim) -> KubeSourceConfig {
    KubeSourceConfig {
        instance: sim.world.clusters[0].name.clone(),
        url: Some(sim.kube.url()),
        ..KubeSourceConfig::default()
    }
}

fn nas_config(sim: &Sim, dir: &Path) -> TrueNasConfig {
    let key_file = dir.join("api-key");
    std::fs::write(&key_file, sim.api_key()).unwrap();
    TrueNasConfig {
        instance: "nas".into(),
        url: sim.nas.url(),
        api_key: SecretSource::File { file: key_file },
        username: Some("truenas_admin".into()),
        ..TrueNasConfig::default()
    }
}

/// A configuration file for `ktd collect` naming the simulated servers.
fn write_config(
    dir: &Path,
    kube: Option<&KubeSourceConfig>,
    nas: Option<&TrueNasConfig>,
) -> PathBuf {
    let mut text = String::new();
    if let Some(kube) = kube {
        text.push_str(&format!(
            "kubernetes:\n  instance: {}\n  url: {}\n",
            kube.instance,
            kube.url.as_deref().unwrap()
        ));
    }
    if let Some(nas) = nas {
        let SecretSource::File { file } = &nas.api_key else {
            panic!("key from a file")
        };
        text.push_str(&format!(
            "truenas:\n  instance: nas\n  url: {}\n  api_key: {{file: {}}}\n  username: truenas_admin\n",
            nas.url,
            file.display()
        ));
    }
    let path = dir.join("ktd.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ktd(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ktd"))
        .env_remove("KTD_CONTEXT")
        .env_remove("KUBECONFIG")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn collect(config: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["collect", "--out", out.to_str().unwrap(), "-o", "json"];
    args.extend_from_slice(extra);
    let output = ktd(config, &args);
    assert!(
        output.status.success(),
        "ktd collect failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn read(dir: &Path) -> (BundleInfo, Vec<Envelope>) {
    let mut events = Vec::new();
    let info = read_bundle(dir, &mut |e| events.push(e)).unwrap();
    (info, events)
}

/// What one side observed, keyed for comparison.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    objects: BTreeMap<(KubeKind, ObjectKey), KubeObject>,
    rejected: BTreeSet<(KubeKind, Option<ObjectKey>)>,
    synced: BTreeMap<KubeKind, u64>,
    pools: BTreeMap<String, Pool>,
    datasets: BTreeMap<String, Dataset>,
    snapshots: BTreeMap<String, Snapshot>,
    shares: BTreeMap<ShareKey, Share>,
    system: Option<SystemInfo>,
    nas_rejected: Vec<String>,
}

impl Observed {
    fn fold(events: &[Envelope]) -> Observed {
        let mut o = Observed::default();
        for env in events {
            match &env.event {
                Event::ObjectApplied { object } => {
                    o.objects
                        .insert((object.kind(), object.key()), object.clone());
                }
                Event::ObjectRejected { kind, key, .. } => {
                    o.rejected.insert((*kind, key.clone()));
                }
                Event::SyncCompleted { kind, objects } => {
                    o.synced.insert(*kind, *objects);
                }
                Event::PoolObserved { pool } => {
                    o.pools.insert(pool.name.clone(), pool.clone());
                }
                Event::DatasetObserved { dataset } => {
                    o.datasets.insert(dataset.name.clone(), dataset.clone());
                }
                Event::SnapshotObserved { snapshot } => {
                    o.snapshots.insert(snapshot.name.clone(), snapshot.clone());
                }
                Event::ShareObserved { share } => {
                    o.shares.insert(share.key(), share.clone());
                }
                Event::SystemObserved { system } => o.system = Some(system.clone()),
                Event::PollCompleted { rejected, .. } => o.nas_rejected = rejected.clone(),
                _ => {}
            }
        }
        o
    }
}

/// The live sources' first full observation of the simulated world.
fn observe_live(sim: &Sim, nas: &TrueNasConfig) -> Vec<Envelope> {
    let kube = kube_config(sim);
    sim.rt.block_on(async {
        let client = kube.client().await.unwrap();
        let mut stream = ktd_kube::KubeSource::new(client, kube.clone())
            .stream()
            .boxed();
        let mut events = Vec::new();
        let mut synced = BTreeSet::new();
        while synced.len() < kube.watched_kinds().len() {
            let env = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await
                .expect("the live Kubernetes source syncs every kind (hang guard)")
                .expect("the stream goes on");
            if let Event::SyncCompleted { kind, .. } = &env.event {
                synced.insert(*kind);
            }
            events.push(env);
        }
        let client = TrueNasClient::connect(nas.clone()).await.unwrap();
        let mut poller = Poller::new(client, "nas", PollerState::default());
        events.extend(poller.poll_once(Timestamp::now()).await);
        events
    })
}

#[test]
fn a_collected_bundle_reads_back_as_the_live_sources_observe_every_release() {
    for personality in Personality::ALL {
        let sim = Sim::serve(world(personality));
        let dir = tempfile::tempdir().unwrap();
        let kube = kube_config(&sim);
        let nas = nas_config(&sim, dir.path());
        let config = write_config(dir.path(), Some(&kube), Some(&nas));
        let bundle = dir.path().join("bundle");
        let report = collect(&config, &bundle, &[]);
        assert_eq!(report["left_out"], serde_json::json!([]), "{personality:?}");

        // The snapshot method of the release names the file.
        let (present, absent) = if personality >= Personality::V25_10 {
            ("pool.snapshot.query.json", "zfs.snapshot.query.json")
        } else {
            ("zfs.snapshot.query.json", "pool.snapshot.query.json")
        };
        assert!(
            bundle.join("truenas").join(present).is_file(),
            "{personality:?}"
        );
        assert!(
            !bundle.join("truenas").join(absent).exists(),
            "{personality:?}"
        );

        let (info, events) = read(&bundle);
        let from_bundle = Observed::fold(&events);
        let live = Observed::fold(&observe_live(&sim, &nas));

        // Both sides, object for object, exactly as the live sources normalize them.
        same(&from_bundle.objects, &live.objects, personality);
        assert_eq!(from_bundle.rejected, live.rejected, "{personality:?}");
        assert_eq!(from_bundle.synced, live.synced, "{personality:?}");
        same(&from_bundle.pools, &live.pools, personality);
        same(&from_bundle.datasets, &live.datasets, personality);
        same(&from_bundle.snapshots, &live.snapshots, personality);
        same(&from_bundle.shares, &live.shares, personality);
        assert_eq!(from_bundle.system, live.system, "{personality:?}");
        assert_eq!(
            from_bundle.nas_rejected, live.nas_rejected,
            "{personality:?}"
        );

        // And the world itself is all there.
        let w = &sim.world;
        for kind in [
            KubeKind::PersistentVolume,
            KubeKind::PersistentVolumeClaim,
            KubeKind::VolumeSnapshot,
            KubeKind::VolumeSnapshotContent,
            KubeKind::StorageClass,
            KubeKind::Node,
        ] {
            let in_world = w.clusters[0]
                .objects
                .iter()
                .filter(|o| o["kind"] == kind.as_str())
                .count() as u64;
            assert!(in_world > 0, "{kind}");
            assert_eq!(
                info.kubernetes.as_ref().unwrap().kinds[&kind],
                in_world,
                "{kind}"
            );
        }
        let names: BTreeSet<&str> = from_bundle.datasets.keys().map(String::as_str).collect();
        let world_names: BTreeSet<&str> = w.nas.datasets.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, world_names, "{personality:?}");
        let snaps: BTreeSet<String> = from_bundle.snapshots.keys().cloned().collect();
        let world_snaps: BTreeSet<String> = w.nas.snapshots.iter().map(|s| s.full_name()).collect();
        assert_eq!(snaps, world_snaps, "{personality:?}");
        assert_eq!(
            from_bundle.shares.len(),
            w.nas.nfs_shares.len()
                + w.nas.smb_shares.len()
                + w.nas.iscsi_targets.len()
                + w.nas.iscsi_extents.len()
                + w.nas.iscsi_targetextents.len()
        );
        let system = from_bundle.system.as_ref().unwrap();
        assert_eq!(system.version, personality.version_string());
        assert_eq!(
            system.iscsi_basename.as_deref(),
            Some(w.nas.iscsi_basename.as_str())
        );

        // Everything was collected, and bundle.json says when.
        let nas_info = info.truenas.as_ref().unwrap();
        assert!(
            nas_info.not_collected.is_empty(),
            "{:?}",
            nas_info.not_collected
        );
        assert_eq!(nas_info.source.instance, w.nas.hostname);
        assert!(info.collected_at_from_bundle);
        assert_eq!(
            info.collected_at.to_string(),
            report["collected_at"].as_str().unwrap()
        );
        assert!(events.iter().all(|e| e.observed_at == info.collected_at));
        assert!(info.rejected.is_empty(), "{:?}", info.rejected);

        // No secret left the systems.
        let key = sim.api_key();
        for file in walk(&bundle) {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(!text.contains(&key), "{} holds the API key", file.display());
            assert!(!text.contains("\"kind\":\"Secret\""), "{}", file.display());
        }
    }
}

/// The same keys, and the same value under each (the first difference reported alone).
fn same<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    bundle: &BTreeMap<K, V>,
    live: &BTreeMap<K, V>,
    personality: Personality,
) {
    assert_eq!(
        bundle.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>(),
        "{personality:?}: bundle vs live"
    );
    for (key, value) in live {
        assert_eq!(
            &bundle[key], value,
            "{personality:?} {key:?}: bundle vs live"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn forbidden_kinds_and_missing_snapshot_crds_are_left_out_and_not_judged() {
    let mut world = world(Personality::V25_04);
    world.clusters[0].snapshot_crds = false;
    world.clusters[0].denied.push(Denied {
        verb: "list".into(),
        group: "storage.k8s.io".into(),
        resource: "csinodes".into(),
    });
    let sim = Sim::serve(world);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&kube_config(&sim)), None);
    let bundle = dir.path().join("bundle");
    let report = collect(&config, &bundle, &["--kubernetes-only"]);

    let left_out: BTreeSet<String> = report["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["what"].as_str().unwrap().to_owned())
        .collect();
    let missing = [
        KubeKind::CsiNode,
        KubeKind::VolumeSnapshot,
        KubeKind::VolumeSnapshotContent,
        KubeKind::VolumeSnapshotClass,
    ];
    let expected: BTreeSet<String> = missing.iter().map(|k| k.as_str().to_owned()).collect();
    assert_eq!(left_out, expected);

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
    let listed: Vec<&str> = manifest["kubernetes_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(listed.contains(&"PersistentVolume"));
    for kind in missing {
        assert!(!listed.contains(&kind.as_str()), "{kind} listed");
    }
    assert_eq!(
        manifest["left_out"].as_array().unwrap().len(),
        missing.len()
    );
    assert!(!bundle.join("truenas").join("system.info.json").exists());

    let (info, events) = read(&bundle);
    let synced = Observed::fold(&events).synced;
    for kind in missing {
        assert!(!synced.contains_key(&kind), "{kind} marked complete");
    }
    assert!(synced.contains_key(&KubeKind::PersistentVolume));
    assert!(info.truenas.is_none());
    assert_eq!(info.left_out.len(), missing.len());
}

#[test]
fn collect_refuses_an_existing_bundle_and_a_missing_truenas_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ktd.yaml");
    std::fs::write(&config, "kubernetes:\n  url: http://127.0.0.1:9\n").unwrap();
    let out = ktd(
        &config,
        &[
            "collect",
            "--out",
            dir.path().join("b").to_str().unwrap(),
            "--truenas-only",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`truenas` section"), "{stderr}");

    let bundle = dir.path().join("old");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("kubernetes.json"), "{}").unwrap();
    let out = ktd(&config, &["collect", "--out", bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already holds a bundle"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(bundle.join("kubernetes.json")).unwrap(),
        "{}"
    );
}

#[test]
fn an_unreachable_truenas_is_left_out_and_the_cluster_still_collected() {
    let sim = Sim::serve(world(Personality::V24_10));
    let dir = tempfile::tempdir().unwrap();
    let mut nas = nas_config(&sim, dir.path());
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    nas.url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = write_config(dir.path(), Some(&kube_config(&sim)), Some(&nas));
    let bundle = dir.path().join("bundle");
    let report = collect(&config, &bundle, &[]);
    let left_out = report["left_out"].as_array().unwrap();
    assert_eq!(left_out.len(), 1, "{left_out:?}");
    assert_eq!(left_out[0]["what"], "truenas");
    let (info, _) = read(&bundle);
    assert!(info.truenas.is_none());
    assert_eq!(info.kubernetes.unwrap().kinds.len(), KubeKind::ALL.len());
}
