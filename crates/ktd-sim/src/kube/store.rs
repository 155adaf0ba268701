//! The object store: objects per kind in ordered maps, one global resource version,
//! a bounded change history per kind (the "watch cache"), and list-at-a-revision.
//!
//! History is what makes watches and continue tokens work: a watch at RV `r` replays the
//! changes after `r`; a list page at an older RV `r` is the current state with the changes
//! after `r` undone. Both need the history to reach back to `r` — when it does not (the
//! history was trimmed by its capacity, or [`Store::expire`] compacted it), the caller
//! gets [`Expired`], which the server turns into the apiserver's `410 Expired`.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::watch;

use super::resources::{RESOURCES, ResourceType, by_kind};

/// `(namespace, name)`; the namespace is `""` for cluster-scoped kinds.
pub type Key = (String, String);

/// Why [`Store::apply`] refused an object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    /// The value is not a Kubernetes object (an `apiVersion`, a `kind` and a
    /// `metadata.name` are required). Not retryable: fix the object.
    #[error("not a Kubernetes object: {0}")]
    Invalid(String),
    /// The fake apiserver does not serve this kind (see `resources::RESOURCES`).
    #[error("the fake apiserver does not serve kind {kind} in {api_version}")]
    UnknownKind {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
}

/// The requested resource version is no longer in the history (HTTP 410 `Expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The resource version asked for.
    pub requested: u64,
    /// The oldest resource version the history can still serve from.
    pub oldest: u64,
}

/// What a list or watch at an RV can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtError {
    /// Compacted away.
    Expired(Expired),
    /// Newer than anything the store has seen (`Too large resource version`).
    TooNew {
        /// The resource version asked for.
        requested: u64,
        /// The store's current resource version.
        current: u64,
    },
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted; the object is its last state stamped with the deletion RV.
    Deleted,
}

/// One entry of a kind's history.
#[derive(Debug)]
pub struct Change {
    /// The resource version of this change.
    pub rv: u64,
    /// What happened.
    pub kind: ChangeType,
    /// The object's key.
    pub key: Key,
    /// The object after the change (for deletions: the last state, stamped).
    pub object: Arc<Value>,
    /// The object before the change (`None` for creations).
    pub prev: Option<Arc<Value>>,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The RV the page was read at (constant across the pages of one list).
    pub rv: u64,
    /// The matching objects of this page, in key order.
    pub items: Vec<Arc<Value>>,
    /// The key of the last item when more matching items follow.
    pub more_after: Option<Key>,
    /// How many items follow (only computed when asked).
    pub remaining: Option<u64>,
}

/// Where a list continues: after `key`, with `remaining` items left (if counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last key already returned.
    pub key: Key,
    /// How many items followed it (`None` when not counted).
    pub remaining: Option<u64>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchStart {
    /// Strictly after this RV, no initial state.
    After(u64),
    /// With the current state as synthetic ADDED events, then the changes after it.
    Snapshot,
}

/// A watch that has begun: the epoch it belongs to, where it stands, what to send first.
pub struct WatchBegin {
    /// Compaction epoch; a compaction ([`Store::expire`]) ends every watch of older epochs.
    pub epoch: u64,
    /// Every change up to this RV is accounted for.
    pub position: u64,
    /// Objects to send as synthetic ADDED events (only for [`WatchStart::Snapshot`]).
    pub initial: Vec<Arc<Value>>,
    /// Wakes when the kind changes (or on compaction).
    pub wake: watch::Receiver<u64>,
}

struct KindState {
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    /// Every change with an RV above `floor` is in `history`.
    floor: u64,
    notify: watch::Sender<u64>,
}

struct Inner {
    rv: u64,
    epoch: u64,
    capacity: usize,
    kinds: Vec<KindState>,
}

/// Objects, resource versions and history of one simulated cluster.
pub struct Store {
    inner: Mutex<Inner>,
}

impl Store {
    /// An empty store keeping at most `history_capacity` changes per kind.
    pub fn new(history_capacity: usize) -> Self {
        let kinds = RESOURCES
            .iter()
            .map(|_| KindState {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                floor: 0,
                notify: watch::channel(0).0,
            })
            .collect();
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                epoch: 0,
                capacity: history_capacity.max(1),
                kinds,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation completes before it can panic; the data stays consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the initial objects; they get RVs but no history (like a fresh apiserver).
    pub fn load(&self, objects: Vec<Value>) -> Result<(), ApplyError> {
        for object in objects {
            self.apply(object)?;
        }
        let mut inner = self.lock();
        let rv = inner.rv;
        for ks in &mut inner.kinds {
            ks.history.clear();
            ks.floor = rv;
        }
        Ok(())
    }

    /// Changes the per-kind history capacity (trimming at the next change).
    pub fn set_capacity(&self, history_capacity: usize) {
        self.lock().capacity = history_capacity.max(1);
    }

    /// The current (global) resource version.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Creates or updates an object, assigning server fields; returns the stored object.
    /// An update that changes nothing is a no-op (no new RV, no event), as upstream.
    pub fn apply(&self, mut object: Value) -> Result<Value, ApplyError> {
        let (rt, key) = identify(&mut object)?;
        let mut inner = self.lock();
        let ks = &inner.kinds[rt.index()];
        let prev = ks.objects.get(&key).cloned();
        fill_server_fields(&mut object, prev.as_deref());
        if let Some(prev) = &prev {
            set_rv(&mut object, rv_of(prev));
            if object == **prev {
                return Ok(object);
            }
        }
        inner.rv += 1;
        let rv = inner.rv;
        set_rv(&mut object, rv);
        let object = Arc::new(object);
        let kind = if prev.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        let ks = &mut inner.kinds[rt.index()];
        ks.objects.insert(key.clone(), object.clone());
        let change = Change {
            rv,
            kind,
            key,
            object: object.clone(),
            prev,
        };
        inner.record(rt, change);
        Ok((*object).clone())
    }

    /// Deletes an object; returns its last state stamped with the deletion RV.
    pub fn delete(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
        let key = (namespace.to_owned(), name.to_owned());
        let mut inner = self.lock();
        let prev = inner.kinds[rt.index()].objects.remove(&key)?;
        inner.rv += 1;
        let rv = inner.rv;
        let mut stamped = (*prev).clone();
        set_rv(&mut stamped, rv);
        let stamped = Arc::new(stamped);
        let change = Change {
            rv,
            kind: ChangeType::Deleted,
            key,
            object: stamped.clone(),
            prev: Some(prev),
        };
        inner.record(rt, change);
        Some((*stamped).clone())
    }

    /// All current objects of a kind, in key order.
    pub fn objects(&self, rt: &ResourceType) -> Vec<Arc<Value>> {
        self.lock().kinds[rt.index()]
            .objects
            .values()
            .cloned()
            .collect()
    }

    /// One object.
    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let key = (namespace.to_owned(), name.to_owned());
        self.lock().kinds[rt.index()].objects.get(&key).cloned()
    }

    /// Compacts every history to the current RV and ends every open watch (they get 410).
    pub fn expire(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        let rv = inner.rv;
        for ks in &mut inner.kinds {
            ks.history.clear();
            ks.floor = rv;
            ks.notify.send_replace(rv);
        }
    }

    /// One page of a list of `rt` at `at` (None = now), after `cursor` (None = from the
    /// start), keeping objects accepted by `filter`; at most `limit` items (None = all).
    /// With `count`, the page says how many items follow it (pass it back in the next
    /// cursor: counting costs O(history), not O(objects)); use it only without selectors.
    pub fn list_page(
        &self,
        rt: &ResourceType,
        at: Option<u64>,
        cursor: Option<&Cursor>,
        limit: Option<usize>,
        filter: &dyn Fn(&Value) -> bool,
        count: bool,
    ) -> Result<Page, AtError> {
        let inner = self.lock();
        let ks = &inner.kinds[rt.index()];
        let at = at.unwrap_or(inner.rv);
        if at > inner.rv {
            return Err(AtError::TooNew {
                requested: at,
                current: inner.rv,
            });
        }
        // The state at `at` = current state with every later change undone, newest first,
        // so the oldest undo of a key wins.
        let mut undo: BTreeMap<&Key, Option<&Arc<Value>>> = BTreeMap::new();
        if at < inner.rv {
            if at < ks.floor {
                return Err(AtError::Expired(Expired {
                    requested: at,
                    oldest: ks.floor,
                }));
            }
            for change in ks.history.iter().rev().take_while(|c| c.rv > at) {
                undo.insert(&change.key, change.prev.as_ref());
            }
        }
        let lower = cursor.map_or(Bound::Unbounded, |c| Bound::Excluded(&c.key));
        let mut merged = Merge {
            current: ks
                .objects
                .range::<Key, _>((lower, Bound::Unbounded))
                .peekable(),
            undo: undo.range::<Key, _>((lower, Bound::Unbounded)).peekable(),
        }
        .filter(|(_, object)| filter(object));
        let limit = limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut last: Option<&Key> = None;
        for (key, object) in merged.by_ref() {
            if items.len() == limit {
                // One more exists: this page is not the last.
                let before = match cursor {
                    Some(c) => c.remaining,
                    None => {
                        let delta: i64 = undo
                            .iter()
                            .map(|(k, old)| {
                                i64::from(old.is_some()) - i64::from(ks.objects.contains_key(*k))
                            })
                            .sum();
                        u64::try_from(ks.objects.len() as i64 + delta).ok()
                    }
                };
                let remaining = before
                    .filter(|_| count)
                    .map(|n| n.saturating_sub(items.len() as u64));
                return Ok(Page {
                    rv: at,
                    items,
                    more_after: last.cloned(),
                    remaining,
                });
            }
            items.push(object.clone());
            last = Some(key);
        }
        Ok(Page {
            rv: at,
            items,
            more_after: None,
            remaining: None,
        })
    }

    /// Starts a watch of `rt`.
    pub fn begin_watch(&self, rt: &ResourceType, start: WatchStart) -> Result<WatchBegin, Expired> {
        let inner = self.lock();
        let ks = &inner.kinds[rt.index()];
        let wake = ks.notify.subscribe();
        match start {
            WatchStart::After(rv) if rv < ks.floor => Err(Expired {
                requested: rv,
                oldest: ks.floor,
            }),
            WatchStart::After(rv) => Ok(WatchBegin {
                epoch: inner.epoch,
                position: rv,
                initial: Vec::new(),
                wake,
            }),
            WatchStart::Snapshot => Ok(WatchBegin {
                epoch: inner.epoch,
                position: inner.rv,
                initial: ks.objects.values().cloned().collect(),
                wake,
            }),
        }
    }

    /// The changes of `rt` after `position` (at most `max`) and the position they bring
    /// the watch to; [`Expired`] if the history no longer reaches back that far or the
    /// store was compacted since the watch began (`epoch`).
    pub fn changes_since(
        &self,
        rt: &ResourceType,
        position: u64,
        epoch: u64,
        max: usize,
    ) -> Result<(Vec<Arc<Change>>, u64), Expired> {
        let inner = self.lock();
        let ks = &inner.kinds[rt.index()];
        if epoch != inner.epoch || position < ks.floor {
            return Err(Expired {
                requested: position,
                oldest: ks.floor,
            });
        }
        let start = ks.history.partition_point(|c| c.rv <= position);
        let changes: Vec<_> = ks.history.range(start..).take(max).cloned().collect();
        let reached = match changes.last() {
            Some(last) if changes.len() == max => last.rv,
            _ => inner.rv.max(position),
        };
        Ok((changes, reached))
    }
}

impl Inner {
    fn record(&mut self, rt: &ResourceType, change: Change) {
        let capacity = self.capacity;
        let ks = &mut self.kinds[rt.index()];
        let rv = change.rv;
        ks.history.push_back(Arc::new(change));
        while ks.history.len() > capacity {
            if let Some(old) = ks.history.pop_front() {
                ks.floor = old.rv;
            }
        }
        ks.notify.send_replace(rv);
    }
}

/// Merges the current objects with the undo overrides (both in key order).
struct Merge<'a, A, B>
where
    A: Iterator<Item = (&'a Key, &'a Arc<Value>)>,
    B: Iterator<Item = (&'a &'a Key, &'a Option<&'a Arc<Value>>)>,
{
    current: std::iter::Peekable<A>,
    undo: std::iter::Peekable<B>,
}

impl<'a, A, B> Iterator for Merge<'a, A, B>
where
    A: Iterator<Item = (&'a Key, &'a Arc<Value>)>,
    B: Iterator<Item = (&'a &'a Key, &'a Option<&'a Arc<Value>>)>,
{
    type Item = (&'a Key, &'a Arc<Value>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.current.peek(), self.undo.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((a, _)), Some((b, _))) => (*a).cmp(**b),
            };
            match order {
                std::cmp::Ordering::Less => return self.current.next(),
                std::cmp::Ordering::Equal => {
                    self.current.next();
                }
                std::cmp::Ordering::Greater => {}
            }
            let (key, old) = self.undo.next().expect("peeked");
            if let Some(old) = old {
                return Some((*key, *old));
            }
        }
    }
}

/// Validates an object and finds its type and key (defaulting the namespace).
fn identify(object: &mut Value) -> Result<(&'static ResourceType, Key), ApplyError> {
    let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).map(str::to_owned);
    let (Some(api_version), Some(kind)) = (text(object, "apiVersion"), text(object, "kind")) else {
        return Err(ApplyError::Invalid(
            "apiVersion and kind are required".into(),
        ));
    };
    let rt = by_kind(&api_version, &kind).ok_or(ApplyError::UnknownKind { api_version, kind })?;
    let meta = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ApplyError::Invalid("metadata is required".into()))?;
    let name = match meta.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => return Err(ApplyError::Invalid("metadata.name is required".into())),
    };
    let namespace = if rt.namespaced {
        let ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
        let ns = if ns.is_empty() { "default" } else { ns }.to_owned();
        meta.insert("namespace".into(), Value::String(ns.clone()));
        ns
    } else {
        String::new()
    };
    Ok((rt, (namespace, name)))
}

/// uid, creationTimestamp and generation, as the apiserver assigns them.
fn fill_server_fields(object: &mut Value, prev: Option<&Value>) {
    let generation = match prev {
        None => None,
        Some(prev) => {
            let old = prev.pointer("/metadata/generation").and_then(Value::as_i64);
            let old = old.unwrap_or(1);
            Some(if body_differs(object, prev) {
                old + 1
            } else {
                old
            })
        }
    };
    let prev_meta = |f: &str| prev.and_then(|p| p.get("metadata")?.get(f).cloned());
    let meta = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("identify checked metadata");
    if !meta.contains_key("uid") {
        let uid = prev_meta("uid").unwrap_or_else(|| uuid::Uuid::new_v4().to_string().into());
        meta.insert("uid".into(), uid);
    }
    if !meta.contains_key("creationTimestamp") {
        let ts = prev_meta("creationTimestamp").unwrap_or_else(|| now_rfc3339().into());
        meta.insert("creationTimestamp".into(), ts);
    }
    match generation {
        Some(g) => {
            meta.insert("generation".into(), g.into());
        }
        None => {
            meta.entry("generation").or_insert(1.into());
        }
    }
}

/// Whether anything besides `metadata` and `status` changed (what bumps `generation`).
fn body_differs(a: &Value, b: &Value) -> bool {
    fn body(v: &Value) -> BTreeMap<&String, &Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                    .collect()
            })
            .unwrap_or_default()
    }
    body(a) != body(b)
}

/// Now as the apiserver writes timestamps (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn set_rv(object: &mut Value, rv: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

fn rv_of(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
