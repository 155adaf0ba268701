//! Generator tests: determinism, counts, sizes, coverage of the catalogue and the traps,
//! and the independent consistency checker against the recorded truth.

use std::collections::BTreeSet;

use ktd_model::FindingKind;
use pretty_assertions::assert_eq;
use serde_json::Value;

use super::checker::{self, Derived};
use super::{GenerateOptions, generate};
use crate::world::{TrapKind, World};

const ALL_TRAPS: [TrapKind; 9] = [
    TrapKind::InheritedManagedSnapshot,
    TrapKind::InFlightProvisioning,
    TrapKind::UnmanagedDataset,
    TrapKind::CloneOriginHelper,
    TrapKind::HashedVolumeId,
    TrapKind::OtherClusterParent,
    TrapKind::YoungPendingPvc,
    TrapKind::YoungSnapshotNotReady,
    TrapKind::ReboundPv,
];

fn opts(volumes: usize, clusters: usize, seed: u64, faults: bool) -> GenerateOptions {
    GenerateOptions {
        volumes,
        clusters,
        seed,
        faults,
        ..GenerateOptions::default()
    }
}

fn count(world: &World, kind: &str) -> usize {
    world
        .clusters
        .iter()
        .flat_map(|c| &c.objects)
        .filter(|o| o["kind"] == kind)
        .count()
}

/// Asserts that the checker derives exactly the recorded truth, that traps hold, and that
/// the unowned list is right.
fn assert_consistent(world: &World) {
    for c in &world.clusters {
        let derived = checker::derive(world, &c.name);
        let expected: BTreeSet<Derived> = world
            .truth
            .findings
            .iter()
            .filter(|f| f.cluster == c.name)
            .map(|f| (f.kind, f.subject.clone()))
            .collect();
        let missing: Vec<_> = expected.difference(&derived).collect();
        let unexpected: Vec<_> = derived.difference(&expected).collect();
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "cluster {}: recorded but without evidence: {missing:#?}\nderived but not recorded: {unexpected:#?}",
            c.name
        );
        for t in &world.truth.traps {
            assert!(
                !derived.iter().any(|(_, r)| *r == t.resource),
                "trap {:?} {} is a finding subject in {}",
                t.kind,
                t.resource,
                c.name
            );
        }
    }
    let problems: Vec<String> = world
        .truth
        .traps
        .iter()
        .filter_map(|t| checker::trap_problem(world, t.kind, &t.resource))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(checker::unowned(world), world.truth.unowned);
    let subjects: BTreeSet<_> = world
        .truth
        .findings
        .iter()
        .map(|f| (&f.cluster, f.kind, &f.subject))
        .collect();
    assert_eq!(
        subjects.len(),
        world.truth.findings.len(),
        "duplicate expected findings"
    );
}

#[test]
fn generate_is_deterministic() {
    let a = serde_json::to_string(&generate(&opts(60, 2, 7, true))).unwrap();
    let b = serde_json::to_string(&generate(&opts(60, 2, 7, true))).unwrap();
    let c = serde_json::to_string(&generate(&opts(60, 2, 8, true))).unwrap();
    assert!(a == b, "same seed, different worlds");
    assert_ne!(a, c);
}

#[test]
fn generate_counts_match_the_options_without_faults() {
    for (volumes, clusters, spv) in [(10, 1, 2), (120, 3, 4), (57, 2, 0)] {
        let o = GenerateOptions {
            snapshots_per_volume: spv,
            ..opts(volumes, clusters, 3, false)
        };
        let w = generate(&o);
        assert_eq!(w.clusters.len(), clusters);
        assert_eq!(count(&w, "PersistentVolume"), volumes);
        assert_eq!(count(&w, "PersistentVolumeClaim"), volumes);
        assert_eq!(count(&w, "VolumeSnapshot"), volumes * spv);
        assert_eq!(count(&w, "VolumeSnapshotContent"), volumes * spv);
        let volume_datasets = w
            .nas
            .datasets
            .iter()
            .filter(|d| {
                d.user_properties
                    .contains_key("democratic-csi:csi_volume_name")
            })
            .count();
        assert_eq!(volume_datasets, volumes);
        let csi_snaps = w
            .nas
            .snapshots
            .iter()
            .filter(|s| {
                s.user_properties
                    .contains_key("democratic-csi:csi_snapshot_name")
            })
            .count();
        let detached = w
            .nas
            .datasets
            .iter()
            .filter(|d| {
                d.user_properties
                    .contains_key("democratic-csi:csi_snapshot_name")
            })
            .count();
        assert_eq!(csi_snaps + detached, volumes * spv);
        assert!(
            w.truth.findings.is_empty(),
            "faults off, yet findings: {:#?}",
            w.truth.findings
        );
        assert_consistent(&w);
    }
}

#[test]
fn generate_default_world_covers_every_finding_and_trap() {
    for seed in 1..=4 {
        let w = generate(&GenerateOptions {
            seed,
            ..GenerateOptions::default()
        });
        assert_covers_everything(&w);
    }
}

#[test]
fn generate_world_round_trips_through_json() {
    let w = generate(&opts(30, 2, 5, true));
    let text = serde_json::to_string(&w).unwrap();
    let back: World = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    assert_eq!(w.nas.personality, GenerateOptions::default().personality);
    let o: GenerateOptions =
        serde_json::from_str(r#"{"volumes": 5, "clusters": 0, "personality": "22.12"}"#).unwrap();
    let w = generate(&o);
    assert_eq!(w.clusters.len(), 1, "0 clusters is treated as 1");
    assert_eq!(w.nas.personality, crate::world::Personality::V22_12);
    assert!(serde_json::from_str::<GenerateOptions>(r#"{"volume": 5}"#).is_err());
}

fn assert_covers_everything(w: &World) {
    let kinds: BTreeSet<FindingKind> = w.truth.findings.iter().map(|f| f.kind).collect();
    for k in FindingKind::ALL {
        assert!(kinds.contains(k), "no {k} planted");
    }
    for t in ALL_TRAPS {
        assert!(w.truth.traps.iter().any(|x| x.kind == t), "no {t:?} trap");
    }
    assert!(!w.truth.unowned.is_empty());
    for c in &w.clusters {
        assert!(
            w.truth.findings.iter().any(|f| f.cluster == c.name),
            "cluster {} has no finding",
            c.name
        );
    }
    assert_consistent(w);
}

#[test]
fn generate_worlds_are_consistent_across_seeds_and_shapes() {
    for seed in 0..12 {
        let clusters = 1 + (seed as usize % 3);
        let volumes = [0, 3, 10, 40, 150, 7][seed as usize % 6];
        let o = GenerateOptions {
            snapshots_per_volume: seed as usize % 4,
            ..opts(volumes, clusters, seed, true)
        };
        assert_consistent(&generate(&o));
    }
}

#[test]
fn generate_objects_look_like_the_apiserver_and_democratic_csi() {
    let w = generate(&GenerateOptions::default());
    for c in &w.clusters {
        for o in &c.objects {
            for field in [
                "/apiVersion",
                "/kind",
                "/metadata/name",
                "/metadata/uid",
                "/metadata/resourceVersion",
                "/metadata/creationTimestamp",
            ] {
                assert!(
                    o.pointer(field).is_some_and(Value::is_string),
                    "{field} missing in {o}"
                );
            }
        }
        let vsc = c
            .objects
            .iter()
            .find(|o| o["kind"] == "VolumeSnapshotContent" && o["status"]["readyToUse"] == true)
            .unwrap();
        assert!(vsc["status"]["creationTime"].is_i64() && vsc["status"]["restoreSize"].is_u64());
        let uid = vsc["spec"]["volumeSnapshotRef"]["uid"].as_str().unwrap();
        assert_eq!(vsc["metadata"]["name"], format!("snapcontent-{uid}"));
        assert!(
            vsc["status"]["snapshotHandle"]
                .as_str()
                .unwrap()
                .ends_with(&format!("snapshot-{uid}"))
        );
        let vs = c
            .objects
            .iter()
            .find(|o| o["kind"] == "VolumeSnapshot" && o["status"]["readyToUse"] == true)
            .unwrap();
        assert!(
            vs["status"]["restoreSize"]
                .as_str()
                .unwrap()
                .ends_with("Gi")
        );
        let pv = c
            .objects
            .iter()
            .find(|o| o["kind"] == "PersistentVolume")
            .unwrap();
        assert_eq!(
            pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
            pv["spec"]["csi"]["driver"]
        );
        assert!(
            pv["spec"]["csi"]["volumeAttributes"]["storage.kubernetes.io/csiProvisionerIdentity"]
                .as_str()
                .unwrap()
                .ends_with(pv["spec"]["csi"]["driver"].as_str().unwrap())
        );
        let defaults = c
            .objects
            .iter()
            .filter(|o| {
                o["kind"] == "StorageClass"
                    && o["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
                        == "true"
            })
            .count();
        assert_eq!(defaults, 1);
    }
    let drivers: BTreeSet<_> = w
        .clusters
        .iter()
        .flat_map(|c| &c.objects)
        .filter(|o| o["kind"] == "CSIDriver")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        drivers.len(),
        2 * w.clusters.len(),
        "CSIDriver names must be unique per cluster"
    );
    let share = &w.nas.nfs_shares[0];
    let ds = share.path.trim_start_matches("/mnt/");
    assert_eq!(
        share.comment,
        format!(
            "democratic-csi ({}): {ds}",
            share.comment.split(['(', ')']).nth(1).unwrap()
        )
    );
    let txgs: Vec<_> = {
        let mut s = w.nas.snapshots.clone();
        s.sort_by_key(|s| (s.creation, s.createtxg));
        s.iter().map(|s| s.createtxg).collect()
    };
    assert!(
        txgs.windows(2).all(|p| p[0] < p[1]),
        "createtxg must grow with creation"
    );
    assert!(
        w.nas.datasets.iter().all(|d| d.creation < w.now)
            && w.nas.snapshots.iter().all(|s| s.creation < w.now)
    );
    let names: Vec<_> = w.nas.datasets.iter().map(|d| d.name.as_str()).collect();
    for n in &names {
        if let Some((p, _)) = n.rsplit_once('/') {
            assert!(
                names.iter().position(|x| *x == p) < names.iter().position(|x| x == n),
                "{n} before its parent"
            );
        }
    }
}

#[test]
fn generate_scales_to_ten_thousand_volumes() {
    for volumes in [10, 1_000, 10_000] {
        let o = GenerateOptions {
            snapshots_per_volume: 2,
            ..opts(volumes, 2, 11, true)
        };
        let w = generate(&o);
        assert!(count(&w, "PersistentVolume") >= volumes);
        if volumes == 1_000 {
            assert_consistent(&w);
        }
    }
}

#[test]
fn generate_checker_catches_unrecorded_and_unsupported_findings() {
    let world = generate(&GenerateOptions::default());
    let recorded = |w: &World, cluster: &str| -> BTreeSet<Derived> {
        w.truth
            .findings
            .iter()
            .filter(|f| f.cluster == cluster)
            .map(|f| (f.kind, f.subject.clone()))
            .collect()
    };
    let cluster = world.clusters[0].name.clone();
    assert_eq!(
        checker::derive(&world, &cluster),
        recorded(&world, &cluster)
    );
    // A healthy PV deleted behind the generator's back: its dataset becomes an orphan.
    let mut w = world.clone();
    let objects = &mut w.clusters[0].objects;
    let i = objects
        .iter()
        .position(|o| {
            o["kind"] == "PersistentVolume"
                && o["status"]["phase"] == "Bound"
                && o["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        })
        .unwrap();
    let handle = objects[i]["spec"]["csi"]["volumeHandle"]
        .as_str()
        .unwrap()
        .to_owned();
    objects.remove(i);
    let extra: Vec<_> = checker::derive(&w, &cluster)
        .difference(&recorded(&w, &cluster))
        .cloned()
        .collect();
    assert!(
        extra
            .iter()
            .any(|(k, r)| *k == FindingKind::DatasetOrphaned && r.name.ends_with(&handle)),
        "{extra:#?}"
    );
    // A recorded finding loses its evidence: the orphaned share's dataset reappears.
    let mut w = world.clone();
    let f = w
        .truth
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ShareOrphaned && f.subject.kind == "nfs-share")
        .unwrap()
        .clone();
    let mut ds = w
        .nas
        .datasets
        .iter()
        .find(|d| d.name.starts_with("tank/k8s/"))
        .unwrap()
        .clone();
    ds.name = f.subject.name.trim_start_matches("/mnt/").to_owned();
    w.nas.datasets.push(ds);
    let missing: Vec<_> = recorded(&w, &f.cluster)
        .difference(&checker::derive(&w, &f.cluster))
        .cloned()
        .collect();
    assert!(
        missing.contains(&(f.kind, f.subject.clone())),
        "{missing:#?}"
    );
}
