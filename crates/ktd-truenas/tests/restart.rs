//! Exactly-once across restarts: a poller rebuilt from the log continues at the next poll
//! number without duplicates, and a poll redone under the same number (after a crash, even
//! half-appended) gives the same ids.

mod support;

use std::collections::BTreeSet;

use ktd_model::{Envelope, Event, EventId};
use ktd_sim::Personality;
use ktd_truenas::{Poller, PollerState, TransportChoice};
use support::*;

fn ids(events: &[Envelope]) -> BTreeSet<EventId> {
    events.iter().map(|e| e.id).collect()
}

async fn restart(personality: Personality) {
    let w = world(personality);
    let sim = start(w.nas.clone()).await;
    let mut first = poller(&sim, TransportChoice::Auto).await;
    let mut log: Vec<Envelope> = poll(&mut first).await;
    let after_poll_1 = log.len();

    let nas = sim.server.nas();
    let gone = leaf(&nas, |d| !snapshots_of(&nas, &d.name).is_empty());
    sim.server.update({
        let gone = gone.clone();
        move |nas| {
            nas.datasets.retain(|d| d.name != gone);
            nas.snapshots.retain(|s| s.dataset != gone);
            nas.nfs_shares.pop();
        }
    });
    let poll_2 = poll(&mut first).await;
    assert_eq!(completed(&poll_2).0, 2);
    assert!(poll_2.len() > 3, "{:?}", types(&poll_2));
    log.extend(poll_2.iter().cloned());
    let live_state = first.state().clone();
    drop(first);

    // A restarted poller rebuilt from the log is where the first one was.
    let state = PollerState::rebuild(INSTANCE, &log);
    assert_eq!(state, live_state, "the fold of the log is the live state");
    assert_eq!(state.next_poll(), 3);
    let mut second = Poller::new(connect(&sim, TransportChoice::Auto).await, INSTANCE, state);
    let poll_3 = poll(&mut second).await;
    assert_eq!(
        types(&poll_3),
        vec!["PollCompleted"],
        "no duplicates after restart"
    );
    assert_eq!(completed(&poll_3).0, 3);
    assert!(ids(&poll_3).is_disjoint(&ids(&log)));

    // A crash after poll 2 appended only part of its events: the log holds poll 1 and the
    // first half of poll 2, no PollCompleted 2. The redo runs as poll 2 and its ids match.
    let half = (poll_2.len() - 1) / 2;
    let crashed_log: Vec<Envelope> = log[..after_poll_1 + half].to_vec();
    let state = PollerState::rebuild(INSTANCE, &crashed_log);
    assert_eq!(state.next_poll(), 2);
    let mut redo = Poller::new(connect(&sim, TransportChoice::Auto).await, INSTANCE, state);
    let again = poll(&mut redo).await;
    assert_eq!(completed(&again).0, 2);
    let original = ids(&poll_2);
    assert!(
        ids(&again).is_subset(&original),
        "a redone poll reuses the original ids"
    );
    // What was appended before the crash is not emitted again; the rest is.
    let appended = ids(&poll_2[..half]);
    assert_eq!(
        ids(&again),
        original.difference(&appended).copied().collect(),
        "exactly the missing events"
    );

    // Redoing poll 2 from the log of poll 1 alone gives poll 2 exactly.
    let state = PollerState::rebuild(INSTANCE, &log[..after_poll_1]);
    let mut redo = Poller::new(connect(&sim, TransportChoice::Auto).await, INSTANCE, state);
    let again = poll(&mut redo).await;
    let strip = |v: &[Envelope]| -> Vec<(EventId, Event)> {
        v.iter()
            .filter(|e| !matches!(e.event, Event::PollCompleted { .. }))
            .map(|e| (e.id, e.event.clone()))
            .collect()
    };
    pretty_assertions::assert_eq!(strip(&again), strip(&poll_2));
    assert_eq!(again.last().unwrap().id, poll_2.last().unwrap().id);

    // Other instances' events are not folded in.
    let other = PollerState::rebuild("another-nas", &log);
    assert_eq!(other.next_poll(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_over_rest() {
    restart(Personality::V24_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_over_jsonrpc() {
    restart(Personality::V25_10).await;
}
