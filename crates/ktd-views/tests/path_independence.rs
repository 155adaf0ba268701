//! Property: whatever history led to a state, the findings view ends up with exactly the
//! findings a fresh view derives from that state alone — no finding left open after its
//! evidence went, none missing because it appeared while a side was incomplete. This is
//! what makes "replay the log from sequence 0" and "the live view" the same thing.

use std::collections::BTreeMap;

use ktd_model::event::PollCounts;
use ktd_model::kube::ObjectKey;
use ktd_model::normalize::kube::normalize_object;
use ktd_model::truenas::{ApiTransport, Dataset, Share, ShareKey, Snapshot};
use ktd_model::{Envelope, Event, Finding, KubeKind, SourceId, Timestamp};
use ktd_views::{FindingsConfig, FindingsView};
use proptest::prelude::*;
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000;
const PARENT: &str = "tank/k8s/nfs";
const SLOTS: usize = 4;

fn ts(secs: i64) -> String {
    Timestamp::from_unix_secs(secs).to_string()
}

/// One change to the world (or to what ktd can see of it).
#[derive(Clone, Debug)]
enum Op {
    TogglePv(usize),
    ReleasePv(usize),
    ToggleDataset(usize),
    ToggleProvisioned(usize),
    ToggleSnapshot(usize),
    ToggleContent(usize),
    ToggleShare(usize),
    ToggleVolumeSnapshot(usize),
    /// Time passes (minutes).
    Wait(u16),
    PollFailed,
    WatchFailed(usize),
    Resync,
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        slot.clone().prop_map(Op::TogglePv),
        slot.clone().prop_map(Op::ReleasePv),
        slot.clone().prop_map(Op::ToggleDataset),
        slot.clone().prop_map(Op::ToggleProvisioned),
        slot.clone().prop_map(Op::ToggleSnapshot),
        slot.clone().prop_map(Op::ToggleContent),
        slot.clone().prop_map(Op::ToggleShare),
        slot.clone().prop_map(Op::ToggleVolumeSnapshot),
        (1u16..120).prop_map(Op::Wait),
        Just(Op::PollFailed),
        (0..KubeKind::ALL.len()).prop_map(Op::WatchFailed),
        Just(Op::Resync),
        Just(Op::Poll),
    ]
}

/// The world as it is, and the events that told ktd about it.
#[derive(Default)]
struct World {
    now: i64,
    kube: BTreeMap<(KubeKind, ObjectKey), Value>,
    datasets: BTreeMap<String, Dataset>,
    snapshots: BTreeMap<String, Snapshot>,
    shares: BTreeMap<ShareKey, Share>,
    events: Vec<Envelope>,
    released: [bool; SLOTS],
    provisioned: [bool; SLOTS],
}

fn vol(i: usize) -> String {
    format!("pvc-{i}")
}

impl World {
    fn new() -> World {
        let mut w = World {
            now: T0,
            provisioned: [true; SLOTS],
            ..World::default()
        };
        // An anchor volume that is always healthy: the parent is discoverable.
        w.put_kube(pv_json("pvc-anchor", false, T0 - 86_400));
        w.put_dataset(dataset("pvc-anchor", true, T0 - 86_400));
        w
    }

    fn kube_env(&self, event: Event) -> Envelope {
        let v = self.events.len().to_be_bytes();
        Envelope::new(
            SourceId::kubernetes("c"),
            Timestamp::from_unix_secs(self.now),
            event,
            &v,
        )
    }

    fn nas_env(&self, event: Event) -> Envelope {
        let v = self.events.len().to_be_bytes();
        Envelope::new(
            SourceId::truenas("nas"),
            Timestamp::from_unix_secs(self.now),
            event,
            &v,
        )
    }

    fn put_kube(&mut self, v: Value) {
        let object = normalize_object(&v, None).expect("object");
        self.kube.insert((object.kind(), object.key()), v);
        let e = self.kube_env(Event::ObjectApplied { object });
        self.events.push(e);
    }

    fn toggle_kube(&mut self, v: Value) {
        let object = normalize_object(&v, None).expect("object");
        let key = (object.kind(), object.key());
        if self.kube.remove(&key).is_some() {
            let e = self.kube_env(Event::ObjectDeleted {
                kind: key.0,
                key: key.1,
                uid: None,
                missing_from_relist: false,
            });
            self.events.push(e);
        } else {
            self.put_kube(v);
        }
    }

    fn put_dataset(&mut self, d: Dataset) {
        self.datasets.insert(d.name.clone(), d.clone());
        let e = self.nas_env(Event::DatasetObserved { dataset: d });
        self.events.push(e);
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::TogglePv(i) => {
                let created = now - 3600;
                self.toggle_kube(pv_json(&vol(i), self.released[i], created));
            }
            Op::ReleasePv(i) => {
                self.released[i] = !self.released[i];
                let key = (KubeKind::PersistentVolume, ObjectKey::cluster(vol(i)));
                if self.kube.contains_key(&key) {
                    self.put_kube(pv_json(&vol(i), self.released[i], now - 7200));
                }
            }
            Op::ToggleDataset(i) => {
                let name = format!("{PARENT}/{}", vol(i));
                if self.datasets.remove(&name).is_some() {
                    let e = self.nas_env(Event::DatasetRemoved { name });
                    self.events.push(e);
                } else {
                    self.put_dataset(dataset(&vol(i), self.provisioned[i], now - 600));
                }
            }
            Op::ToggleProvisioned(i) => {
                self.provisioned[i] = !self.provisioned[i];
                let name = format!("{PARENT}/{}", vol(i));
                if let Some(old) = self.datasets.get(&name) {
                    let mut d = dataset(&vol(i), self.provisioned[i], 0);
                    d.creation = old.creation;
                    self.datasets.insert(name, d.clone());
                    let e = self.nas_env(Event::DatasetChanged { dataset: d });
                    self.events.push(e);
                }
            }
            Op::ToggleSnapshot(i) => {
                let s = snapshot(&vol(i), now - 1200);
                if self.snapshots.remove(&s.name).is_some() {
                    let e = self.nas_env(Event::SnapshotRemoved { name: s.name });
                    self.events.push(e);
                } else {
                    self.snapshots.insert(s.name.clone(), s.clone());
                    let e = self.nas_env(Event::SnapshotObserved { snapshot: s });
                    self.events.push(e);
                }
            }
            Op::ToggleContent(i) => self.toggle_kube(content_json(i, now - 1800)),
            Op::ToggleVolumeSnapshot(i) => self.toggle_kube(vs_json(i, now - 1800)),
            Op::ToggleShare(i) => {
                let share = nfs_share(i);
                let key = share.key();
                if self.shares.remove(&key).is_some() {
                    let e = self.nas_env(Event::ShareRemoved { share: key });
                    self.events.push(e);
                } else {
                    self.shares.insert(key, share.clone());
                    let e = self.nas_env(Event::ShareObserved { share });
                    self.events.push(e);
                }
            }
            Op::Wait(minutes) => {
                self.now += i64::from(minutes) * 60;
                let e = self.kube_env(Event::Tick);
                self.events.push(e);
            }
            Op::PollFailed => {
                let e = self.nas_env(Event::PollFailed {
                    poll: 0,
                    error: "timeout".into(),
                    method: None,
                    retryable: true,
                });
                self.events.push(e);
            }
            Op::WatchFailed(k) => {
                let e = self.kube_env(Event::WatchFailed {
                    kind: KubeKind::ALL[k],
                    error: "connection reset".into(),
                    retryable: true,
                });
                self.events.push(e);
            }
            Op::Resync => self.events.extend(self.completeness_kube()),
            Op::Poll => {
                let e = self.poll();
                self.events.push(e);
            }
        }
    }

    fn completeness_kube(&self) -> Vec<Envelope> {
        KubeKind::ALL
            .iter()
            .map(|k| {
                self.kube_env(Event::SyncCompleted {
                    kind: *k,
                    objects: 0,
                })
            })
            .collect()
    }

    fn poll(&self) -> Envelope {
        self.nas_env(Event::PollCompleted {
            poll: 0,
            transport: ApiTransport::JsonRpc,
            duration_ms: 1,
            counts: PollCounts::default(),
            rejected: Vec::new(),
            not_collected: Vec::new(),
        })
    }

    /// The current state alone, as a fresh observation would report it.
    fn snapshot_events(&self) -> Vec<Envelope> {
        let mut out = Vec::new();
        for v in self.kube.values() {
            let object = normalize_object(v, None).unwrap();
            out.push(self.kube_env(Event::ObjectApplied { object }));
        }
        out.extend(self.completeness_kube());
        for d in self.datasets.values() {
            out.push(self.nas_env(Event::DatasetObserved { dataset: d.clone() }));
        }
        for s in self.snapshots.values() {
            out.push(self.nas_env(Event::SnapshotObserved {
                snapshot: s.clone(),
            }));
        }
        for s in self.shares.values() {
            out.push(self.nas_env(Event::ShareObserved { share: s.clone() }));
        }
        out.push(self.poll());
        out
    }
}

fn pv_json(name: &str, released: bool, created: i64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "uid": format!("u-{name}"), "creationTimestamp": ts(created)},
        "spec": {"persistentVolumeReclaimPolicy": "Retain",
                 "claimRef": {"namespace": "a", "name": format!("c-{name}")},
                 "csi": {"driver": "nfs.csi", "volumeHandle": name,
                         "volumeAttributes": {"provisioner_driver": "freenas-api-nfs"}}},
        "status": {"phase": if released { "Released" } else { "Bound" }, "lastPhaseTransitionTime": ts(created)}
    })
}

fn content_json(i: usize, created: i64) -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
        "metadata": {"name": format!("snapcontent-{i}"), "uid": format!("uc-{i}"), "creationTimestamp": ts(created)},
        "spec": {"deletionPolicy": "Retain", "driver": "nfs.csi",
                 "source": {"volumeHandle": vol(i)},
                 "volumeSnapshotRef": {"namespace": "a", "name": format!("vs-{i}"), "uid": format!("uvs-{i}")}},
        "status": {"snapshotHandle": format!("{}@snapshot-{i}", vol(i)), "readyToUse": true}
    })
}

fn vs_json(i: usize, created: i64) -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": format!("vs-{i}"), "namespace": "a", "uid": format!("uvs-{i}"), "creationTimestamp": ts(created)},
        "spec": {"source": {"persistentVolumeClaimName": format!("c-{}", vol(i))}},
        "status": {"boundVolumeSnapshotContentName": format!("snapcontent-{i}"), "readyToUse": true}
    })
}

fn dataset(leaf: &str, provisioned: bool, created: i64) -> Dataset {
    let mut props = json!({
        "democratic-csi:managed_resource": {"value": "true", "source": "local"},
        "democratic-csi:csi_volume_name": {"value": leaf, "source": "local"}
    });
    if provisioned {
        props["democratic-csi:provision_success"] = json!({"value": "true", "source": "local"});
    }
    serde_json::from_value(json!({
        "name": format!("{PARENT}/{leaf}"), "pool": "tank", "type": "filesystem",
        "mountpoint": format!("/mnt/{PARENT}/{leaf}"), "used": 1000, "creation": ts(created),
        "user_properties": props
    }))
    .unwrap()
}

fn snapshot(leaf: &str, created: i64) -> Snapshot {
    let i = leaf.trim_start_matches("pvc-");
    serde_json::from_value(json!({
        "name": format!("{PARENT}/{leaf}@snapshot-{i}"), "dataset": format!("{PARENT}/{leaf}"),
        "snapshot_name": format!("snapshot-{i}"), "pool": "tank", "creation": ts(created), "used": 10,
        "user_properties": {
            "democratic-csi:managed_resource": {"value": "true", "source": "local"},
            "democratic-csi:csi_snapshot_name": {"value": format!("snapshot-{i}"), "source": "local"}
        }
    }))
    .unwrap()
}

fn nfs_share(i: usize) -> Share {
    serde_json::from_value(json!({"Nfs": {
        "id": i, "path": format!("/mnt/{PARENT}/{}", vol(i)), "comment": "", "enabled": true, "readonly": false
    }}))
    .unwrap()
}

/// Findings without their times (first/last seen depend on history by design).
fn timeless(view: &FindingsView) -> Vec<Finding> {
    view.findings()
        .map(|f| Finding {
            first_seen: Timestamp::EPOCH,
            last_seen: Timestamp::EPOCH,
            ..f.clone()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_view_depends_on_the_state_not_on_the_history(ops in proptest::collection::vec(op(), 0..60)) {
        let mut world = World::new();
        world.events.extend(world.completeness_kube());
        let first_poll = world.poll();
        world.events.push(first_poll);
        for op in &ops {
            world.apply(op);
        }
        // Both sides observed completely at the end.
        world.apply(&Op::Resync);
        world.apply(&Op::Poll);

        let mut live = FindingsView::new(FindingsConfig::default());
        for e in &world.events {
            live.apply(e);
        }
        let mut fresh = FindingsView::new(FindingsConfig::default());
        for e in world.snapshot_events() {
            fresh.apply(&e);
        }
        prop_assert_eq!(timeless(&live), timeless(&fresh));

        // And a replay of the same history is identical, derived events included.
        let mut again = FindingsView::new(FindingsConfig::default());
        let src = SourceId::ktd("views");
        let mut live2 = FindingsView::new(FindingsConfig::default());
        let a: Vec<Envelope> = world.events.iter().flat_map(|e| live2.apply_enveloped(e, &src)).collect();
        let b: Vec<Envelope> = world.events.iter().flat_map(|e| again.apply_enveloped(e, &src)).collect();
        prop_assert_eq!(&a, &b);

        // Catching up (fold without evaluating, restore what was derived, evaluate once)
        // reaches the live state, first_seen included.
        let mut caught_up = FindingsView::new(FindingsConfig::default());
        for e in &world.events {
            caught_up.observe(e);
        }
        for d in &a {
            caught_up.restore(&d.event);
        }
        let changes = caught_up.evaluate();
        prop_assert!(changes.is_empty(), "{:?}", changes);
        let seen = |v: &FindingsView| -> Vec<Finding> {
            v.findings().map(|f| Finding { last_seen: Timestamp::EPOCH, ..f.clone() }).collect()
        };
        prop_assert_eq!(seen(&live2), seen(&caught_up));
    }
}

#[test]
fn the_generator_reaches_findings() {
    // Guard against a vacuous property: a simple history does produce findings.
    let mut world = World::new();
    world.events.extend(world.completeness_kube());
    for op in [
        Op::ToggleDataset(0),
        Op::ToggleSnapshot(0),
        Op::Wait(60),
        Op::Resync,
        Op::Poll,
    ] {
        world.apply(&op);
    }
    let mut view = FindingsView::new(FindingsConfig::default());
    for e in &world.events {
        view.apply(e);
    }
    let kinds: Vec<&str> = view.findings().map(|f| f.kind.as_str()).collect();
    assert!(kinds.contains(&"dataset-orphaned"), "{kinds:?}");
    assert!(kinds.contains(&"snapshot-orphaned"), "{kinds:?}");
}
