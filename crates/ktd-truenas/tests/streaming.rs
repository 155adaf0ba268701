//! Answers are read element by element as they arrive. A large answer gives exactly the
//! world; JSON broken in the middle of an answer fails the poll by name (not retryable,
//! nothing else emitted) and the next poll recovers; an object of an unexpected shape is
//! set aside by name while the poll goes on, and its previous state stands. Over REST and
//! JSON-RPC (a proxy corrupts the simulator's answers).

mod support;

use std::collections::BTreeSet;

use ktd_model::Event;
use ktd_sim::{GenerateOptions, Personality};
use ktd_truenas::{Poller, PollerState, TransportChoice, TrueNasConfig};
use serde_json::{Value, json};
use support::proxy::{self, Corruption};
use support::*;

fn names_of(nas: &ktd_sim::Nas) -> BTreeSet<String> {
    nas.snapshots.iter().map(|s| s.full_name()).collect()
}

/// Thousands of snapshots: many REST chunks and JSON-RPC pieces, elements cut across them.
async fn large(personality: Personality) {
    let w = ktd_sim::generate(&GenerateOptions {
        volumes: 200,
        snapshots_per_volume: 16,
        clusters: 1,
        seed: 5,
        personality,
        ..GenerateOptions::default()
    });
    let world = names_of(&w.nas);
    assert!(world.len() > 2_500, "{} snapshots", world.len());
    let sim = start(w.nas).await;
    let client = connect_with(
        &sim,
        TrueNasConfig {
            snapshot_full_read_every: 2,
            ..config(&sim.server.url(), TransportChoice::Auto)
        },
    )
    .await;

    // query_each hands over each element once.
    let method = client.snapshot_method();
    let params = [json!([]), json!({"extra": {"properties": ["used"]}})];
    let mut listed = BTreeSet::new();
    let n = bounded(
        "query_each",
        client.query_each(method, &params, |json| {
            let v: Value = serde_json::from_slice(json).unwrap();
            listed.insert(v["name"].as_str().unwrap().to_owned());
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(n as usize, world.len());
    assert!(
        listed == world,
        "{:?}",
        listed
            .symmetric_difference(&world)
            .take(3)
            .collect::<Vec<_>>()
    );

    // call_to_writer writes the result as sent: the same value as `call`.
    let mut out = Vec::new();
    let written = bounded(
        "call_to_writer",
        client.call_to_writer(method, &params, &mut out),
    )
    .await
    .unwrap();
    assert_eq!(written as usize, out.len());
    let value = bounded("call", client.call(method, &params)).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), value);

    // A poll observes exactly the world; the next full read finds one removal and nothing
    // else.
    let mut poller = Poller::new(client, INSTANCE, PollerState::default());
    let first = poll(&mut poller).await;
    let observed: BTreeSet<String> = first
        .iter()
        .filter_map(|e| match &e.event {
            Event::SnapshotObserved { snapshot } => Some(snapshot.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(completed(&first).1, Vec::<String>::new());
    assert!(
        observed == world,
        "{personality:?}: {:?}",
        observed
            .symmetric_difference(&world)
            .take(3)
            .collect::<Vec<_>>()
    );
    let gone = world.iter().nth(world.len() / 3).unwrap().clone();
    sim.server.update({
        let gone = gone.clone();
        move |nas| nas.snapshots.retain(|s| s.full_name() != gone)
    });
    let before = sim.server.snapshots_served();
    let second = poll(&mut poller).await;
    assert!(sim.server.snapshots_served() - before >= world.len() as u64 - 1);
    assert_eq!(changes(&second), set(&[("SnapshotRemoved", gone)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_over_rest() {
    large(Personality::V24_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_over_jsonrpc() {
    large(Personality::V25_10).await;
}

async fn broken_json(personality: Personality) {
    let sim = start(world(personality).nas).await;
    let p = proxy::start(sim.server.url(), sim.shutdown.clone()).await;
    let client = connect_with(&sim, config(&p.url, TransportChoice::Auto)).await;
    let method = client.snapshot_method();
    let mut poller = Poller::new(client, INSTANCE, PollerState::default());
    p.set(Corruption::BrokenJson);
    let failed = poll(&mut poller).await;
    assert_eq!(types(&failed), vec!["PollFailed"], "{personality:?}");
    let Event::PollFailed {
        poll: n,
        error,
        method: m,
        retryable,
    } = &failed[0].event
    else {
        unreachable!()
    };
    assert_eq!((*n, m.as_deref(), *retryable), (1, Some(method), false));
    assert!(
        error.contains("malformed") && error.contains("not JSON"),
        "{error}"
    );
    assert_eq!(poller.state().snapshots().count(), 0);
    p.set(Corruption::None);
    let ok = poll(&mut poller).await;
    assert_eq!(completed(&ok), (1, vec![]));
    assert_eq!(
        poller.state().snapshots().count(),
        sim.server.nas().snapshots.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_json_mid_answer_over_rest() {
    broken_json(Personality::V24_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_json_mid_answer_over_jsonrpc() {
    broken_json(Personality::V25_10).await;
}

/// A snapshot taken after everything else (it comes in an incremental read).
fn take(sim: &Sim, dataset: &str, name: &str) -> String {
    sim.server.update({
        let (dataset, name) = (dataset.to_owned(), name.to_owned());
        move |nas| {
            let mut s = nas
                .snapshots
                .iter()
                .find(|s| s.dataset == dataset)
                .unwrap()
                .clone();
            s.name = name;
            s.createtxg = nas.snapshots.iter().map(|s| s.createtxg).max().unwrap() + 3;
            nas.snapshots.push(s);
        }
    });
    format!("{dataset}@{name}")
}

async fn unexpected_shapes(personality: Personality) {
    let sim = start(world(personality).nas).await;
    let p = proxy::start(sim.server.url(), sim.shutdown.clone()).await;
    let client = connect_with(&sim, config(&p.url, TransportChoice::Auto)).await;
    let method = client.snapshot_method();
    let mut poller = Poller::new(client, INSTANCE, PollerState::default());
    assert_eq!(completed(&poll(&mut poller).await), (1, vec![]));
    let nas = sim.server.nas();
    let ds = leaf(&nas, |d| snapshots_of(&nas, &d.name).len() >= 2);

    // A new snapshot of an unexpected shape: named in `rejected`, not observed, the poll
    // goes on.
    let bad = take(&sim, &ds, "bad-shape");
    p.set(Corruption::BadShape(bad.clone()));
    let second = poll(&mut poller).await;
    let (n, rejected) = completed(&second);
    assert_eq!(n, 2);
    assert!(
        !rejected.is_empty()
            && rejected
                .iter()
                .all(|r| r.contains(&bad) && r.contains(method)),
        "{personality:?}: {rejected:?}"
    );
    assert!(changes(&second).is_empty(), "{:?}", changes(&second));

    // A snapshot without a name: it could be any known one, so no snapshot is removed
    // this poll (one was destroyed) while the rest goes on.
    let nameless = take(&sim, &ds, "nameless");
    let destroyed = snapshots_of(&nas, &ds)[0].clone();
    sim.server.update({
        let destroyed = destroyed.clone();
        move |nas| nas.snapshots.retain(|s| s.full_name() != destroyed)
    });
    p.set(Corruption::Nameless(nameless.clone()));
    let third = poll(&mut poller).await;
    let (_, rejected) = completed(&third);
    assert!(
        rejected.iter().any(|r| r.contains("(unnamed object)")),
        "{personality:?}: {rejected:?}"
    );
    // The snapshot set aside before is readable again: it arrives.
    assert_eq!(
        changes(&third),
        set(&[("SnapshotObserved", bad)]),
        "{personality:?}"
    );
    assert!(poller.state().snapshots().any(|s| s == destroyed));

    // Healed: the rest arrives.
    p.set(Corruption::None);
    let fourth = poll(&mut poller).await;
    assert_eq!(completed(&fourth), (4, vec![]));
    assert_eq!(
        changes(&fourth),
        set(&[
            ("SnapshotObserved", nameless),
            ("SnapshotRemoved", destroyed),
        ]),
        "{personality:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_shapes_over_rest() {
    unexpected_shapes(Personality::V24_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_shapes_over_jsonrpc() {
    unexpected_shapes(Personality::V25_10).await;
}
