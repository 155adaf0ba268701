//! Space figures: never a `DatasetChanged`, sampled every `usage_sample_every` polls for the
//! datasets whose figures moved.

mod support;

use ktd_model::Event;
use ktd_sim::Personality;
use ktd_truenas::{Poller, PollerState, TransportChoice};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_sampled_every_n_polls_and_only_when_it_moved() {
    let sim = start(world(Personality::V25_10).nas).await;
    let mut config = config(&sim.server.url(), TransportChoice::Auto);
    config.usage_sample_every = 3;
    let mut poller = Poller::new(
        connect_with(&sim, config).await,
        INSTANCE,
        PollerState::default(),
    );
    poll(&mut poller).await;

    let nas = sim.server.nas();
    let grown = leaf(&nas, |_| true);
    sim.server.update({
        let grown = grown.clone();
        move |nas| {
            let d = nas.datasets.iter_mut().find(|d| d.name == grown).unwrap();
            d.used_by_dataset += 5 << 30;
        }
    });
    // Poll 2: not a sampling poll; space alone is no change.
    assert_eq!(types(&poll(&mut poller).await), vec!["PollCompleted"]);
    // Poll 3: samples the grown dataset (and the others whose `available` moved).
    let third = poll(&mut poller).await;
    assert_eq!(types(&third), vec!["UsageSampled", "PollCompleted"]);
    let Event::UsageSampled { samples } = &third[0].event else {
        unreachable!()
    };
    let world_ds = sim.server.nas().datasets.len();
    assert!(samples.len() <= world_ds);
    let s = samples
        .iter()
        .find(|s| s.dataset == grown)
        .expect("sampled");
    assert!(s.used >= 5 << 30);
    // Nothing moved since: poll 6 samples nothing.
    for _ in 4..=6 {
        assert_eq!(types(&poll(&mut poller).await), vec!["PollCompleted"]);
    }
    // The fold of the log agrees with the live state.
    assert_eq!(poller.state().last_completed(), 6);
}
