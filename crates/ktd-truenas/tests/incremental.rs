//! Between full reads a poll asks TrueNAS only for what changed: new snapshots from the
//! newest known `createtxg` on (`extra.min_txg`), removals where a dataset's
//! `snapshot_count` does not add up, and snapshots whose clones or inherited properties
//! changed. The events are those a full read gives, over both transports, and across a
//! restart (the state rebuilt from the log).

mod support;

use std::collections::BTreeSet;

use ktd_model::{Envelope, Event};
use ktd_sim::world::Dataset;
use ktd_sim::{GenerateOptions, Personality};
use ktd_truenas::{Poller, PollerState, TransportChoice, TrueNasConfig};
use support::*;

/// Full reads on poll 1 (first of the process) and every `EVERY` polls.
const EVERY: u64 = 8;

fn big_world(personality: Personality) -> ktd_sim::World {
    ktd_sim::generate(&GenerateOptions {
        volumes: 160,
        snapshots_per_volume: 3,
        clusters: 1,
        seed: 11,
        personality,
        ..GenerateOptions::default()
    })
}

fn incremental(url: &str, transport: TransportChoice) -> TrueNasConfig {
    TrueNasConfig {
        snapshot_full_read_every: EVERY,
        ..config(url, transport)
    }
}

/// Leaf datasets that own two snapshots or more, are no clone and have none.
fn with_snapshots(nas: &ktd_sim::Nas) -> Vec<String> {
    let origins: BTreeSet<&str> = nas
        .datasets
        .iter()
        .filter_map(|d| d.origin.as_deref())
        .collect();
    let mut out: Vec<String> = nas
        .datasets
        .iter()
        .filter(|d| d.origin.is_none() && snapshots_of(nas, &d.name).len() >= 2)
        .filter(|d| {
            !nas.datasets
                .iter()
                .any(|c| c.name.starts_with(&format!("{}/", d.name)))
        })
        .filter(|d| {
            !origins
                .iter()
                .any(|o| o.starts_with(&format!("{}@", d.name)))
        })
        .map(|d| d.name.clone())
        .collect();
    out.sort();
    out
}

/// One poll, its events kept in `log`.
async fn run(poller: &mut Poller, log: &mut Vec<Envelope>) -> Vec<Envelope> {
    let events = poll(poller).await;
    log.extend(events.iter().cloned());
    events
}

fn served(sim: &Sim) -> u64 {
    sim.server.snapshots_served()
}

async fn round_trip(personality: Personality, transport: TransportChoice) {
    let w = big_world(personality);
    let total = w.nas.snapshots.len() as u64;
    let sim = start(w.nas).await;
    let client = connect_with(&sim, incremental(&sim.server.url(), transport)).await;
    let mut poller = Poller::new(client, INSTANCE, PollerState::default());
    let mut log: Vec<Envelope> = Vec::new();

    // Poll 1 reads everything.
    let before = served(&sim);
    let first = run(&mut poller, &mut log).await;
    assert_eq!(completed(&first).1, Vec::<String>::new());
    assert_eq!(
        served(&sim) - before,
        total,
        "{personality:?}: the first poll reads all"
    );

    // Poll 2: nothing changed, and only the snapshots of the newest txg are read again.
    let before = served(&sim);
    let second = run(&mut poller, &mut log).await;
    assert_eq!(types(&second), vec!["PollCompleted"], "{personality:?}");
    let reread = served(&sim) - before;
    assert!(
        reread < total / 10,
        "{personality:?}: a poll with nothing new read {reread} of {total} snapshots"
    );

    // Poll 3: one snapshot taken.
    let nas = sim.server.nas();
    let ds = with_snapshots(&nas);
    let taken = format!("{}@manual-3", ds[0]);
    sim.server.update({
        let d = ds[0].clone();
        move |nas| {
            let mut s = nas
                .snapshots
                .iter()
                .find(|s| s.dataset == d)
                .unwrap()
                .clone();
            s.name = "manual-3".into();
            s.createtxg = nas.snapshots.iter().map(|s| s.createtxg).max().unwrap() + 5;
            s.used = 0;
            nas.snapshots.push(s);
        }
    });
    let third = run(&mut poller, &mut log).await;
    assert_eq!(
        changes(&third),
        set(&[("SnapshotObserved", taken.clone())]),
        "{personality:?}"
    );

    // Poll 4: one snapshot destroyed (an older one: its txg is below the watermark), and
    // a whole dataset with its snapshots.
    let dropped = snapshots_of(&nas, &ds[1])[0].clone();
    let gone_ds = ds[2].clone();
    let gone_snaps = snapshots_of(&nas, &gone_ds);
    sim.server.update({
        let (dropped, gone_ds) = (dropped.clone(), gone_ds.clone());
        move |nas| {
            nas.snapshots
                .retain(|s| s.full_name() != dropped && s.dataset != gone_ds);
            nas.datasets.retain(|d| d.name != gone_ds);
        }
    });
    let fourth = run(&mut poller, &mut log).await;
    let mut want = vec![
        ("SnapshotRemoved", dropped.clone()),
        ("DatasetRemoved", gone_ds.clone()),
    ];
    want.extend(gone_snaps.iter().map(|s| ("SnapshotRemoved", s.clone())));
    assert_eq!(changes(&fourth), set(&want), "{personality:?}");

    // Poll 5: a clone of a snapshot (the snapshot's `clones` changes) and a user property
    // set on a dataset (its snapshots inherit it).
    let origin = snapshots_of(&nas, &ds[3])[0].clone();
    let clone = format!("{}-clone", ds[3]);
    let tagged = ds[4].clone();
    sim.server.update({
        let (origin, clone, tagged, src) =
            (origin.clone(), clone.clone(), tagged.clone(), ds[3].clone());
        move |nas| {
            let mut c: Dataset = nas.datasets.iter().find(|d| d.name == src).unwrap().clone();
            c.name = clone;
            c.origin = Some(origin);
            c.user_properties.clear();
            nas.datasets.push(c);
            nas.datasets
                .iter_mut()
                .find(|d| d.name == tagged)
                .unwrap()
                .user_properties
                .insert("ktd-test:label".into(), "blue".into());
        }
    });
    let fifth = run(&mut poller, &mut log).await;
    let mut want = vec![
        ("DatasetObserved", clone.clone()),
        ("SnapshotObserved", origin.clone()),
        ("DatasetChanged", tagged.clone()),
    ];
    want.extend(
        snapshots_of(&nas, &tagged)
            .into_iter()
            .map(|s| ("SnapshotObserved", s)),
    );
    assert_eq!(changes(&fifth), set(&want), "{personality:?}");

    // Polls 6..=EVERY: what only a full read sees (a snapshot's `used` moving, a rename
    // within a dataset) arrives by the next full read at the latest, exactly once.
    let grown = snapshots_of(&nas, &ds[5])[0].clone();
    let renamed = snapshots_of(&nas, &ds[6])[0].clone();
    let new_name = format!("{}@renamed", ds[6]);
    sim.server.update({
        let (grown, renamed) = (grown.clone(), renamed.clone());
        move |nas| {
            for s in &mut nas.snapshots {
                if s.full_name() == grown {
                    s.used += 4096;
                }
                if s.full_name() == renamed {
                    s.name = "renamed".into();
                }
            }
        }
    });
    let mut late = Vec::new();
    while poller.state().next_poll() <= EVERY {
        late.extend(run(&mut poller, &mut log).await);
    }
    let want = set(&[
        ("SnapshotObserved", grown.clone()),
        ("SnapshotRemoved", renamed.clone()),
        ("SnapshotObserved", new_name.clone()),
    ]);
    assert_eq!(changes(&late), want, "{personality:?}");
    assert_eq!(
        late.len()
            - late
                .iter()
                .filter(|e| matches!(
                    e.event,
                    Event::PollCompleted { .. } | Event::UsageSampled { .. }
                ))
                .count(),
        want.len(),
        "{personality:?}: each change once"
    );

    // Restart: the state rebuilt from the log is the live one, and a new process (whose
    // first poll reads everything) adds nothing.
    let rebuilt = PollerState::rebuild(INSTANCE, &log);
    assert_eq!(&rebuilt, poller.state());
    let client = connect_with(&sim, incremental(&sim.server.url(), transport)).await;
    let mut restarted = Poller::new(client, INSTANCE, rebuilt);
    let after = run(&mut restarted, &mut log).await;
    assert_eq!(types(&after), vec!["PollCompleted"], "{personality:?}");

    // And it goes on incrementally: one snapshot taken, one destroyed.
    let destroyed = snapshots_of(&nas, &ds[7])[0].clone();
    let taken = format!("{}@manual-late", ds[8]);
    sim.server.update({
        let (destroyed, d) = (destroyed.clone(), ds[8].clone());
        move |nas| {
            nas.snapshots.retain(|s| s.full_name() != destroyed);
            let mut s = nas
                .snapshots
                .iter()
                .find(|s| s.dataset == d)
                .unwrap()
                .clone();
            s.name = "manual-late".into();
            s.createtxg = nas.snapshots.iter().map(|s| s.createtxg).max().unwrap() + 5;
            nas.snapshots.push(s);
        }
    });
    let before = served(&sim);
    let next = run(&mut restarted, &mut log).await;
    assert!(
        served(&sim) - before < total / 10,
        "{personality:?}: incremental again"
    );
    assert_eq!(
        changes(&next),
        set(&[
            ("SnapshotRemoved", destroyed.clone()),
            ("SnapshotObserved", taken.clone())
        ]),
        "{personality:?}"
    );

    // A poller that reads everything on every poll finds the state exact.
    let client = connect_with(
        &sim,
        TrueNasConfig {
            snapshot_full_read_every: 1,
            ..config(&sim.server.url(), transport)
        },
    )
    .await;
    let mut full = Poller::new(client, INSTANCE, PollerState::rebuild(INSTANCE, &log));
    assert_eq!(types(&poll(&mut full).await), vec!["PollCompleted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_24_10() {
    round_trip(Personality::V24_10, TransportChoice::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonrpc_25_10() {
    round_trip(Personality::V25_10, TransportChoice::Auto).await;
}

/// Many datasets whose counts do not add up: one list of every name instead of one per
/// dataset; many names nobody knows: a full read instead of reading them one by one.
async fn catching_up(personality: Personality) {
    let w = big_world(personality);
    let sim = start(w.nas).await;
    let client = connect_with(&sim, incremental(&sim.server.url(), TransportChoice::Auto)).await;
    let mut poller = Poller::new(client, INSTANCE, PollerState::default());
    poll(&mut poller).await;
    let nas = sim.server.nas();
    let ds = with_snapshots(&nas);
    assert!(ds.len() > 70, "{} datasets with snapshots", ds.len());

    // 70 datasets lose their oldest snapshot.
    let dropped: Vec<String> = ds[..70]
        .iter()
        .map(|d| snapshots_of(&nas, d)[0].clone())
        .collect();
    sim.server.update({
        let dropped = dropped.clone();
        move |nas| nas.snapshots.retain(|s| !dropped.contains(&s.full_name()))
    });
    let before = served(&sim);
    let events = poll(&mut poller).await;
    let want: Vec<(&str, String)> = dropped
        .iter()
        .map(|s| ("SnapshotRemoved", s.clone()))
        .collect();
    assert_eq!(changes(&events), set(&want), "{personality:?}");
    let total = sim.server.nas().snapshots.len() as u64;
    assert!(
        served(&sim) - before < total / 10,
        "{personality:?}: names, not properties"
    );

    // The same 70 datasets lose another snapshot and see a third one renamed.
    let nas = sim.server.nas();
    let mut want = Vec::new();
    let mut plan = Vec::new();
    for d in &ds[..70] {
        let snaps = snapshots_of(&nas, d);
        want.push(("SnapshotRemoved", snaps[0].clone()));
        want.push(("SnapshotRemoved", snaps[1].clone()));
        want.push(("SnapshotObserved", format!("{d}@renamed")));
        plan.push((snaps[0].clone(), snaps[1].clone()));
    }
    sim.server.update(move |nas| {
        for (gone, renamed) in &plan {
            nas.snapshots.retain(|s| &s.full_name() != gone);
            let s = nas
                .snapshots
                .iter_mut()
                .find(|s| &s.full_name() == renamed)
                .unwrap();
            s.name = "renamed".into();
        }
    });
    let before = served(&sim);
    let events = poll(&mut poller).await;
    assert_eq!(changes(&events), set(&want), "{personality:?}");
    let total = sim.server.nas().snapshots.len() as u64;
    assert!(
        served(&sim) - before >= total,
        "{personality:?}: a full read"
    );
    assert_eq!(types(&poll(&mut poller).await), vec!["PollCompleted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_over_rest() {
    catching_up(Personality::V24_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_over_jsonrpc() {
    catching_up(Personality::V25_10).await;
}
