//! Every release the simulator knows: connect with automatic transport, a first poll that
//! emits exactly the world, a quiet second poll, and exactly the changes after an update.

mod support;

use std::collections::BTreeSet;

use ktd_model::truenas::{ApiTransport, HasUserProperties, PropertySource, props};
use ktd_model::{Envelope, Event};
use ktd_sim::{Nas, Personality};
use ktd_truenas::TransportChoice;
use support::*;

/// Every change event a first poll of `nas` must emit.
fn whole_world(nas: &Nas) -> BTreeSet<(String, String)> {
    let mut want = BTreeSet::new();
    for p in &nas.pools {
        want.insert(("PoolObserved".to_owned(), p.name.clone()));
    }
    for d in &nas.datasets {
        want.insert(("DatasetObserved".to_owned(), d.name.clone()));
    }
    for s in &nas.snapshots {
        want.insert(("SnapshotObserved".to_owned(), s.full_name()));
    }
    let share = |kind: &str, id: u32| ("ShareObserved".to_owned(), format!("{kind}/{id}"));
    want.extend(nas.nfs_shares.iter().map(|s| share("nfs-share", s.id)));
    want.extend(nas.smb_shares.iter().map(|s| share("smb-share", s.id)));
    want.extend(
        nas.iscsi_targets
            .iter()
            .map(|s| share("iscsi-target", s.id)),
    );
    want.extend(
        nas.iscsi_extents
            .iter()
            .map(|s| share("iscsi-extent", s.id)),
    );
    want.extend(
        nas.iscsi_targetextents
            .iter()
            .map(|s| share("iscsi-targetextent", s.id)),
    );
    want.insert(("SystemObserved".to_owned(), nas.hostname.clone()));
    want
}

/// User property sources survive: own `managed_resource` on CSI snapshots, inherited on
/// periodic snapshots of CSI volumes.
fn check_property_sources(nas: &Nas, events: &[Envelope]) {
    let mut inherited = 0;
    let mut local = 0;
    for e in events {
        let Event::SnapshotObserved { snapshot } = &e.event else {
            continue;
        };
        let world = nas
            .snapshots
            .iter()
            .find(|s| s.full_name() == snapshot.name)
            .unwrap();
        let own = world.user_properties.contains_key(props::MANAGED_RESOURCE);
        match snapshot.user_properties.get(props::MANAGED_RESOURCE) {
            Some(p) if own => {
                assert_eq!(p.source, PropertySource::Local, "{}", snapshot.name);
                local += 1;
            }
            Some(p) => {
                assert_eq!(p.source, PropertySource::Inherited, "{}", snapshot.name);
                assert!(!snapshot.is_managed());
                inherited += 1;
            }
            None => assert!(!own, "{} lost its managed_resource", snapshot.name),
        }
    }
    assert!(local > 0, "CSI snapshots carry their own managed_resource");
    assert!(
        inherited > 0,
        "periodic snapshots of CSI volumes inherit managed_resource"
    );
}

async fn release_round_trip(personality: Personality) {
    let w = world(personality);
    let sim = start(w.nas.clone()).await;
    let mut poller = poller(&sim, TransportChoice::Auto).await;
    let expected_transport = if personality >= Personality::V25_04 {
        ApiTransport::JsonRpc
    } else {
        ApiTransport::RestV2
    };
    assert_eq!(poller.client().transport(), expected_transport);
    assert_eq!(poller.client().version(), personality.version_short());
    let endpoint = poller.client().endpoint();
    let pinned = match personality {
        Personality::V25_04 => "/api/v25.04.2",
        Personality::V25_10 => "/api/v25.10.1",
        _ => "/api/v2.0",
    };
    assert!(endpoint.ends_with(pinned), "{endpoint}");

    // First poll: exactly the world.
    let first = poll(&mut poller).await;
    assert_eq!(completed(&first), (1, vec![]));
    pretty_assertions::assert_eq!(changes(&first), whole_world(&w.nas), "{personality:?}");
    check_property_sources(&w.nas, &first);
    let datasets = first
        .iter()
        .filter(|e| matches!(e.event, Event::DatasetObserved { .. }))
        .count();
    assert_eq!(datasets, w.nas.datasets.len(), "each dataset once");

    // Second poll: nothing changed.
    let second = poll(&mut poller).await;
    assert_eq!(types(&second), vec!["PollCompleted"], "{personality:?}");
    assert_eq!(completed(&second).0, 2);

    // Changes.
    let nas = sim.server.nas();
    let gone = leaf(&nas, |d| !snapshots_of(&nas, &d.name).is_empty());
    let gone_snaps = snapshots_of(&nas, &gone);
    let tagged = leaf(&nas, |d| {
        d.name != gone && !snapshots_of(&nas, &d.name).is_empty()
    });
    let tagged_snaps = snapshots_of(&nas, &tagged);
    let quota = leaf(&nas, |d| {
        d.name != gone && d.name != tagged && d.kind == ktd_sim::world::DatasetType::Filesystem
    });
    let parent = gone.rsplit_once('/').unwrap().0.to_owned();
    let created = format!("{parent}/pvc-new-by-test");
    let snap_src = leaf(&nas, |d| ![&gone, &tagged, &quota].contains(&&d.name));
    let dropped_snap = nas
        .snapshots
        .iter()
        .find(|s| {
            ![&gone, &tagged].contains(&&s.dataset)
                && !nas
                    .datasets
                    .iter()
                    .any(|d| d.origin.as_deref() == Some(s.full_name().as_str()))
        })
        .unwrap()
        .full_name();
    let nfs_gone = nas.nfs_shares[0].id;
    let smb_changed = nas.smb_shares.first().map(|s| s.id);
    {
        let (gone, tagged, quota, created, snap_src, dropped_snap) = (
            gone.clone(),
            tagged.clone(),
            quota.clone(),
            created.clone(),
            snap_src.clone(),
            dropped_snap.clone(),
        );
        sim.server.update(move |nas| {
            nas.datasets.retain(|d| d.name != gone);
            nas.snapshots.retain(|s| s.dataset != gone);
            let mut new = nas
                .datasets
                .iter()
                .find(|d| d.name == snap_src)
                .unwrap()
                .clone();
            new.name = created;
            new.user_properties.clear();
            nas.datasets.push(new);
            nas.datasets
                .iter_mut()
                .find(|d| d.name == tagged)
                .unwrap()
                .user_properties
                .insert("ktd-test:label".into(), "blue".into());
            nas.datasets
                .iter_mut()
                .find(|d| d.name == quota)
                .unwrap()
                .refquota = Some(1 << 40);
            let mut snap = nas
                .snapshots
                .iter()
                .find(|s| s.dataset == snap_src)
                .cloned()
                .unwrap_or_else(|| nas.snapshots[0].clone());
            snap.dataset = snap_src.clone();
            snap.name = "manual-by-test".into();
            snap.createtxg += 1_000_000;
            nas.snapshots.push(snap);
            nas.snapshots.retain(|s| s.full_name() != dropped_snap);
            nas.nfs_shares.retain(|s| s.id != nfs_gone);
            if let Some(id) = smb_changed {
                nas.smb_shares
                    .iter_mut()
                    .find(|s| s.id == id)
                    .unwrap()
                    .comment = "changed by test".into();
            }
        });
    }
    let third = poll(&mut poller).await;
    assert_eq!(completed(&third), (3, vec![]));
    let mut want = vec![
        ("DatasetRemoved", gone.clone()),
        ("DatasetObserved", created.clone()),
        ("DatasetChanged", tagged.clone()),
        ("DatasetChanged", quota.clone()),
        ("SnapshotObserved", format!("{snap_src}@manual-by-test")),
        ("SnapshotRemoved", dropped_snap.clone()),
        ("ShareRemoved", format!("nfs-share/{nfs_gone}")),
    ];
    want.extend(gone_snaps.iter().map(|s| ("SnapshotRemoved", s.clone())));
    // Snapshots inherit the new user property of their dataset.
    want.extend(tagged_snaps.iter().map(|s| ("SnapshotObserved", s.clone())));
    if let Some(id) = smb_changed {
        want.push(("ShareObserved", format!("smb-share/{id}")));
    }
    pretty_assertions::assert_eq!(changes(&third), set(&want), "{personality:?}");
    // Space moved in the pool: sampled, not reported as dataset changes.
    assert!(
        third
            .iter()
            .any(|e| matches!(e.event, Event::UsageSampled { .. })),
        "{personality:?}: usage sampled"
    );

    // And quiet again.
    let fourth = poll(&mut poller).await;
    assert_eq!(types(&fourth), vec!["PollCompleted"], "{personality:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_22_12() {
    release_round_trip(Personality::V22_12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_24_10() {
    release_round_trip(Personality::V24_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_25_04() {
    release_round_trip(Personality::V25_04).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_25_10() {
    release_round_trip(Personality::V25_10).await;
}
