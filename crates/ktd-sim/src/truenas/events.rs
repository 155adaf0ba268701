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
    /// The object (datasets only).
    pub fields: Option<Value>,
}

/// The parts of the world that produce events, captured before an update.
pub(crate) struct Before {
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
    pub(crate) fn capture(nas: &Nas) -> Before {
        Before {
            datasets: datasets(nas),
            records: records(nas),
            pools: by_id(&nas.pools, |p| p.id),
        }
    }
}

fn datasets(nas: &Nas) -> HashMap<String, Value> {
    nas.datasets
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                serde_json::to_value(d).unwrap_or(Value::Null),
            )
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
pub(crate) fn publish(shared: &Shared, before: Before) {
    if shared.events.receiver_count() == 0 {
        return;
    }
    let (ds_after, rec_after, pools_after, p) = {
        let nas = shared.nas_read();
        (
            datasets(&nas),
            records(&nas),
            by_id(&nas.pools, |p| p.id),
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
            if super::render::is_internal(&name, p) {
                continue;
            }
            out.push(Event {
                collection: "pool.dataset.query".into(),
                msg,
                id: json!(name),
                fields,
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
        });
    }
    for e in out {
        // No receivers left is fine: nobody is subscribed any more.
        let _ = shared.events.send(e);
    }
}
