//! The state machine driven with literal watcher events (no server).

use serde_json::json;

use super::*;

fn pv(name: &str, uid: &str, rv: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": uid, "resourceVersion": rv},
        "spec": {"capacity": {"storage": "1Gi"},
            "csi": {"driver": "org.democratic-csi.nfs", "volumeHandle": name}},
        "status": {"phase": "Bound"}
    }))
    .unwrap()
}

fn state() -> KindState {
    KindState::new(
        SourceId::kubernetes("test"),
        KubeKind::PersistentVolume,
        KnownKind::default(),
        None,
    )
}

type Item = Result<watcher::Event<DynamicObject>, watcher::Error>;

fn run(s: &mut KindState, items: Vec<Item>) -> Vec<Event> {
    items
        .into_iter()
        .flat_map(|i| s.handle(i, Timestamp::EPOCH))
        .map(|e| e.event)
        .collect()
}

fn summary(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::ObjectApplied { object } => format!("applied {}", object.key()),
            Event::ObjectDeleted {
                key,
                missing_from_relist,
                ..
            } => format!("deleted {key} missing={missing_from_relist}"),
            Event::ObjectRejected { key, .. } => format!("rejected {key:?}"),
            Event::SyncStarted { .. } => "started".into(),
            Event::SyncCompleted { objects, .. } => format!("completed {objects}"),
            Event::WatchFailed { .. } => "failed".into(),
            other => format!("{other:?}"),
        })
        .collect()
}

use watcher::Event as W;

#[test]
fn relist_skips_unchanged_and_reports_missing_and_recreated() {
    let mut s = state();
    let first = run(
        &mut s,
        vec![
            Ok(W::Init),
            Ok(W::InitApply(pv("a", "ua", "1"))),
            Ok(W::InitApply(pv("b", "ub", "2"))),
            Ok(W::InitApply(pv("c", "uc", "3"))),
            Ok(W::InitDone),
        ],
    );
    assert_eq!(
        summary(&first),
        [
            "started",
            "applied a",
            "applied b",
            "applied c",
            "completed 3"
        ]
    );
    let second = run(
        &mut s,
        vec![
            Ok(W::Init),
            Ok(W::InitApply(pv("a", "ua", "1"))),  // unchanged
            Ok(W::InitApply(pv("b", "ub2", "9"))), // re-created
            Ok(W::InitApply(pv("d", "ud", "8"))),  // new
            Ok(W::InitDone),                       // c missing
        ],
    );
    assert_eq!(
        summary(&second),
        [
            "started",
            "deleted b missing=true",
            "applied b",
            "applied d",
            "deleted c missing=true",
            "completed 3"
        ]
    );
    assert_eq!(s.known_len(), 3);
}

#[test]
fn a_list_that_fails_part_way_is_the_same_sync() {
    let mut s = state();
    run(
        &mut s,
        vec![
            Ok(W::Init),
            Ok(W::InitApply(pv("a", "ua", "1"))),
            Ok(W::InitApply(pv("b", "ub", "2"))),
            Ok(W::InitDone),
        ],
    );
    let gone = |code| {
        Err(watcher::Error::InitialListFailed(kube::Error::Api(
            Box::new(kube::core::Status {
                code,
                message: "boom".into(),
                ..kube::core::Status::default()
            }),
        )))
    };
    let events = run(
        &mut s,
        vec![
            Ok(W::Init),
            Ok(W::InitApply(pv("a", "ua", "1"))),
            Ok(W::InitApply(pv("b", "ub", "2"))),
            gone(500),
            Ok(W::Init),
            Ok(W::InitApply(pv("a", "ua", "1"))), // b was deleted between the attempts
            Ok(W::InitDone),
        ],
    );
    assert_eq!(
        summary(&events),
        ["started", "failed", "deleted b missing=true", "completed 1"]
    );
}

#[test]
fn watch_changes_and_deletes_carry_their_versions() {
    let mut s = state();
    run(&mut s, vec![Ok(W::Init), Ok(W::InitDone)]);
    let out: Vec<Envelope> = [
        Ok(W::Apply(pv("a", "ua", "5"))),
        Ok(W::Apply(pv("a", "ua", "5"))), // replayed: nothing
        Ok(W::Delete(pv("a", "ua", "6"))),
    ]
    .into_iter()
    .flat_map(|i| s.handle(i, Timestamp::EPOCH))
    .collect();
    assert_eq!(out.len(), 2);
    let src = SourceId::kubernetes("test");
    let expected = Envelope::new(
        src,
        Timestamp::from_unix_secs(99),
        Event::ObjectDeleted {
            kind: KubeKind::PersistentVolume,
            key: ObjectKey::cluster("a"),
            uid: Some("ua".into()),
            missing_from_relist: false,
        },
        b"6",
    );
    assert_eq!(out[1].id, expected.id, "id = f(key, deletion RV), not time");
}

#[test]
fn malformed_objects_are_rejected_by_name_and_the_rest_flows() {
    let mut s = state();
    let mut bad = pv("bad", "ub", "2");
    bad.data["spec"]["capacity"]["storage"] = json!("lots");
    let events = run(
        &mut s,
        vec![
            Ok(W::Init),
            Ok(W::InitApply(bad)),
            Ok(W::InitApply(pv("good", "ug", "3"))),
            Ok(W::InitDone),
        ],
    );
    assert_eq!(
        summary(&events),
        [
            "started",
            "rejected Some(ObjectKey { namespace: None, name: \"bad\" })",
            "applied good",
            "completed 2"
        ]
    );
    let Event::ObjectRejected { error, .. } = &events[1] else {
        unreachable!()
    };
    assert!(error.contains("bad") && error.contains("lots"), "{error}");
}

#[test]
fn persistent_failures_are_reported_once_per_episode() {
    let mut s = state();
    let forbidden = || {
        Err(watcher::Error::InitialListFailed(kube::Error::Api(
            Box::new(kube::core::Status {
                code: 403,
                message: "forbidden".into(),
                ..kube::core::Status::default()
            }),
        )))
    };
    let mut items = Vec::new();
    for _ in 0..5 {
        items.push(Ok(W::Init));
        items.push(forbidden());
    }
    let events = run(&mut s, items);
    assert_eq!(summary(&events), ["started", "failed"]);
    let events = run(
        &mut s,
        vec![
            Ok(W::Init),
            Ok(W::InitApply(pv("a", "u", "1"))),
            Ok(W::InitDone),
        ],
    );
    assert_eq!(summary(&events), ["applied a", "completed 1"]);
    // A later failure of the same kind is news again.
    assert_eq!(summary(&run(&mut s, vec![forbidden()])), ["failed"]);
}

#[test]
fn expired_watches_are_routine() {
    let mut s = state();
    let expired = Err(watcher::Error::WatchError(Box::new(kube::core::Status {
        code: 410,
        ..kube::core::Status::default()
    })));
    assert!(run(&mut s, vec![expired]).is_empty());
}
