use serde_json::json;

use super::super::resources::by_name;
use super::*;

fn pv(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}}})
}

fn names(page: &Page) -> Vec<String> {
    page.items
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn cursor(page: &Page) -> Cursor {
    Cursor {
        key: page.more_after.clone().unwrap(),
        remaining: page.remaining,
    }
}

fn all(_: &Value) -> bool {
    true
}

#[test]
fn apply_assigns_server_fields_and_global_rvs() {
    let store = Store::new(100);
    let a = store.apply(pv("a")).unwrap();
    let pvc =
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"}});
    let c = store.apply(pvc).unwrap();
    assert_eq!(a["metadata"]["resourceVersion"], "1");
    assert_eq!(
        c["metadata"]["resourceVersion"], "2",
        "one counter across kinds"
    );
    assert_eq!(c["metadata"]["namespace"], "default");
    assert!(a["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(
        a["metadata"]["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(a["metadata"]["generation"], 1);

    // Same object again: no-op.
    let again = store.apply(pv("a")).unwrap();
    assert_eq!(again["metadata"]["resourceVersion"], "1");
    assert_eq!(again["metadata"]["uid"], a["metadata"]["uid"]);
    // Status change: new RV, same generation; spec change: generation + 1.
    let mut st = pv("a");
    st["status"] = json!({"phase": "Bound"});
    let st = store.apply(st).unwrap();
    assert_eq!(st["metadata"]["resourceVersion"], "3");
    assert_eq!(st["metadata"]["generation"], 1);
    let mut sp = st.clone();
    sp["spec"]["capacity"]["storage"] = json!("2Gi");
    let sp = store.apply(sp).unwrap();
    assert_eq!(sp["metadata"]["generation"], 2);
    assert_eq!(sp["metadata"]["uid"], a["metadata"]["uid"]);

    let gone = store.delete(by_name("pv").unwrap(), "", "a").unwrap();
    assert_eq!(
        gone["metadata"]["resourceVersion"], "5",
        "stamped with the deletion RV"
    );
    assert!(store.delete(by_name("pv").unwrap(), "", "a").is_none());
    assert!(matches!(
        store.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})),
        Err(ApplyError::UnknownKind { .. })
    ));
    assert!(matches!(
        store.apply(json!({"kind": "PersistentVolume"})),
        Err(ApplyError::Invalid(_))
    ));
}

#[test]
fn pages_are_a_consistent_snapshot() {
    let store = Store::new(100);
    let rt = by_name("pv").unwrap();
    for i in 0..10 {
        store.apply(pv(&format!("pv-{i}"))).unwrap();
    }
    let first = store
        .list_page(rt, None, None, Some(4), &all, true)
        .unwrap();
    assert_eq!(names(&first), ["pv-0", "pv-1", "pv-2", "pv-3"]);
    assert_eq!(first.remaining, Some(6));
    let rv = first.rv;
    // Changes between pages must not show: delete one ahead, add one ahead, modify one ahead.
    store.delete(rt, "", "pv-5").unwrap();
    store.apply(pv("pv-45")).unwrap();
    let mut m = pv("pv-6");
    m["status"] = json!({"phase": "Released"});
    store.apply(m).unwrap();
    let second = store
        .list_page(rt, Some(rv), Some(&cursor(&first)), Some(4), &all, true)
        .unwrap();
    assert_eq!(second.rv, rv);
    assert_eq!(names(&second), ["pv-4", "pv-5", "pv-6", "pv-7"]);
    assert!(
        second.items[2].get("status").is_none(),
        "pv-6 as of the list RV"
    );
    assert_eq!(second.remaining, Some(2));
    let third = store
        .list_page(rt, Some(rv), Some(&cursor(&second)), Some(4), &all, true)
        .unwrap();
    assert_eq!(names(&third), ["pv-8", "pv-9"]);
    assert!(third.more_after.is_none());
    // A fresh list sees the new state.
    let now = store.list_page(rt, None, None, None, &all, false).unwrap();
    assert!(names(&now).contains(&"pv-45".to_owned()) && !names(&now).contains(&"pv-5".to_owned()));
    // Filtering counts only matches.
    let only9 = |o: &Value| o["metadata"]["name"] == "pv-9";
    let p = store
        .list_page(rt, None, None, Some(1), &only9, false)
        .unwrap();
    assert_eq!(names(&p), ["pv-9"]);
    assert!(p.more_after.is_none());
    assert!(matches!(
        store.list_page(rt, Some(10_000), None, None, &all, false),
        Err(AtError::TooNew {
            requested: 10_000,
            ..
        })
    ));
}

#[test]
fn compaction_expires_watches_and_continue_tokens() {
    let store = Store::new(3);
    let rt = by_name("pv").unwrap();
    store.load(vec![pv("a"), pv("b")]).unwrap();
    assert_eq!(store.current_rv(), 2);
    // The initial objects have no history: a watch from before them is too old.
    assert!(store.begin_watch(rt, WatchStart::After(1)).is_err());
    let w = store.begin_watch(rt, WatchStart::After(2)).unwrap();
    for n in ["c", "d", "e", "f"] {
        store.apply(pv(n)).unwrap();
    }
    // Capacity 3: the change at RV 3 fell out, so a watcher at RV 2 has lagged too far.
    let err = store
        .changes_since(rt, w.position, w.epoch, 100)
        .unwrap_err();
    assert_eq!(
        err,
        Expired {
            requested: 2,
            oldest: 3
        }
    );
    let (changes, reached) = store.changes_since(rt, 3, w.epoch, 100).unwrap();
    assert_eq!(changes.iter().map(|c| c.rv).collect::<Vec<_>>(), [4, 5, 6]);
    assert_eq!(reached, 6);
    let (some, reached) = store.changes_since(rt, 3, w.epoch, 2).unwrap();
    assert_eq!(
        (some.len(), reached),
        (2, 5),
        "a full batch stops at its last change"
    );

    // Continue tokens at an RV the history still covers work; older ones expire.
    assert!(
        store
            .list_page(rt, Some(3), None, None, &all, false)
            .is_ok()
    );
    assert!(matches!(
        store.list_page(rt, Some(2), None, None, &all, false),
        Err(AtError::Expired(_))
    ));

    // The 410 storm: open watches (older epoch) and old RVs expire; the current RV works.
    let w = store.begin_watch(rt, WatchStart::After(6)).unwrap();
    store.expire();
    assert!(store.changes_since(rt, 6, w.epoch, 10).is_err());
    assert!(store.begin_watch(rt, WatchStart::After(5)).is_err());
    let fresh = store.begin_watch(rt, WatchStart::After(6)).unwrap();
    assert!(
        store
            .changes_since(rt, 6, fresh.epoch, 10)
            .unwrap()
            .0
            .is_empty()
    );
    let snap = store.begin_watch(rt, WatchStart::Snapshot).unwrap();
    assert_eq!((snap.position, snap.initial.len()), (6, 6));
}
