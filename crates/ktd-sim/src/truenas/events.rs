//! `collection_update` events for changes made with [`super::TrueNasServer::update`].
//!
//! What the real middleware sends (reference §3.3): CRUD services (`sharing.*`, `iscsi.*`)
//! ADDED/CHANGED/REMOVED with only `id`; `pool.dataset.query` ADDED/CHANGED with `fields`
//! and REMOVED; `pool.query` CHANGED; snapshots made outside the API: nothing.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::Shared;
use crate::world::Nas;

/// One event, before it is framed for a transport.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    /// `pool.dataset.query`, `sharing.nfs.query`, ...
    pub collection: String,
    /// `added`, `changed` or `removed`.
    pub msg: &'static str,
    /// The object id.
    pub id: Value,
    /// The object (datasets, pools, snapshots created through the API).
    pub fields: Option<Value>,
    /// `extra` (snapshot removals: `{"recursive": false}`).
    pub extra: Option<Value>,
}

/// Who made a change, which decides the events (reference §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Datasets and database objects through the API, snapshots outside it (periodic
    /// tasks, replication, the CLI): no snapshot events.
    Mixed,
    /// Everything through the API: snapshots send ADDED (with fields) and REMOVED too.
    Api,
    /// ZFS changes outside the API: only dataset REMOVED (from ZFS history).
    Outside,
}

/// The parts of the world that produce events, captured before an update.
pub(crate) struct Before {
    origin: Origin,
    snapshots: std::collections::HashSet<String>,
    datasets: HashMap<String, Value>,
    records: Vec<(&'static str, HashMap<u64, Value>)>,
    pools: HashMap<u64, Value>,
}

fn by_id<T: Serialize>(items: &[T], id: impl Fn(&T) -> u32) -> HashMap<u64, Value> {
    items
        .iter()
        .map(|x| {
            (
                u64::from(id(x)),
                serde_json::to_value(x).unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn records(nas: &Nas) -> Vec<(&'static str, HashMap<u64, Value>)> {
    vec![
        ("sharing.nfs.query", by_id(&nas.nfs_shares, |s| s.id)),
        ("sharing.smb.query", by_id(&nas.smb_shares, |s| s.id)),
        ("iscsi.target.query", by_id(&nas.iscsi_targets, |s| s.id)),
        ("iscsi.extent.query", by_id(&nas.iscsi_extents, |s| s.id)),
        (
            "iscsi.targetextent.query",
            by_id(&nas.iscsi_targetextents, |s| s.id),
        ),
    ]
}

impl Before {
    /// Captures what events are computed from; None when nobody listens.
    pub(crate) fn capture(shared: &Shared, nas: &Nas, origin: Origin) -> Option<Before> {
        if shared.events.receiver_count() == 0 {
            return None;
        }
        Some(Before {
            origin,
            snapshots: snapshot_names(nas, origin),
            datasets: datasets(nas),
            records: records(nas),
            pools: pools(nas),
        })
    }
}

fn snapshot_names(nas: &Nas, origin: Origin) -> std::collections::HashSet<String> {
    if origin != Origin::Api {
        return Default::default();
    }
    nas.snapshots
        .iter()
        .map(crate::world::Snapshot::full_name)
        .collect()
}

/// Pools as far as events go: a CHANGED comes with a state change, not with usage.
fn pools(nas: &Nas) -> HashMap<u64, Value> {
    nas.pools
        .iter()
        .map(|p| (u64::from(p.id), json!({"name": p.name, "status": p.status})))
        .collect()
}

/// Datasets as far as events go: what `pool.dataset.update` can change. Space usage
/// growing (data written) sends nothing.
fn datasets(nas: &Nas) -> HashMap<String, Value> {
    nas.datasets
        .iter()
        .map(|d| {
            let settable = json!([d.volsize, d.refquota, d.refreservation, d.user_properties]);
            (d.name.clone(), settable)
        })
        .collect()
}

fn diff<K: Clone + Eq + std::hash::Hash + Ord>(
    before: &HashMap<K, Value>,
    after: &HashMap<K, Value>,
) -> Vec<(&'static str, K)> {
    let mut out: Vec<(&'static str, K)> = Vec::new();
    for (k, v) in after {
        match before.get(k) {
            None => out.push(("added", k.clone())),
            Some(old) if old != v => out.push(("changed", k.clone())),
            _ => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push(("removed", k.clone()));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Sends the events for the difference between `before` and the current world.
pub(crate) fn publish(shared: &Shared, before: Option<Before>) {
    let Some(before) = before else {
        return;
    };
    let (ds_after, rec_after, pools_after, snaps_after, p) = {
        let nas = shared.nas_read();
        (
            datasets(&nas),
            records(&nas),
            pools(&nas),
            snapshot_names(&nas, before.origin),
            nas.personality,
        )
    };
    let mut out = Vec::new();
    let ds_changes = diff(&before.datasets, &ds_after);
    if !ds_changes.is_empty() {
        let r = shared.rendered(p);
        for (msg, name) in ds_changes {
            let fields = (msg != "removed")
                .then(|| super::methods::dataset_entry(&r, &name))
                .flatten();
            if super::render::is_internal(&name, p)
                || (before.origin == Origin::Outside && msg != "removed")
            {
                continue;
            }
            out.push(Event {
                collection: "pool.dataset.query".into(),
                msg,
                id: json!(name),
                fields,
                extra: None,
            });
        }
    }
    for ((collection, old), (_, new)) in before.records.iter().zip(&rec_after) {
        for (msg, id) in diff(old, new) {
            out.push(Event {
                collection: (*collection).into(),
                msg,
                id: json!(id),
                fields: None,
                extra: None,
            });
        }
    }
    if before.origin == Origin::Api {
        let collection = p.snapshot_query_method();
        let mut added: Vec<&String> = snaps_after.difference(&before.snapshots).collect();
        let mut removed: Vec<&String> = before.snapshots.difference(&snaps_after).collect();
        added.sort();
        removed.sort();
        let r = (!added.is_empty()).then(|| shared.rendered(p));
        for name in added {
            let fields = r.as_ref().and_then(|r| {
                r.snapshots
                    .iter()
                    .find(|s| s.head["id"] == name.as_str())
                    .map(|s| s.full())
            });
            let id = json!(name);
            out.push(Event {
                collection: collection.into(),
                msg: "added",
                id,
                fields,
                extra: None,
            });
        }
        for name in removed {
            let extra = Some(json!({"recursive": false}));
            let id = json!(name);
            out.push(Event {
                collection: collection.into(),
                msg: "removed",
                id,
                fields: None,
                extra,
            });
        }
    }
    for (msg, id) in diff(&before.pools, &pools_after) {
        let fields = shared
            .rendered(p)
            .pools
            .iter()
            .find(|v| v["id"] == json!(id))
            .cloned();
        out.push(Event {
            collection: "pool.query".into(),
            msg,
            id: json!(id),
            fields,
            extra: None,
        });
    }
    for e in out {
        // No receivers left is fine: nobody is subscribed any more.
        let _ = shared.events.send(e);
    }
}
