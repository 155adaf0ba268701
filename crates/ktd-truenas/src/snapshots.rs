//! How a poll reads snapshots without re-reading all of them (87,000 snapshots are ≈ 170 MB
//! of JSON, and most polls find nothing new).
//!
//! A **full read** (the first poll of a process, then every
//! [`snapshot_full_read_every`](crate::TrueNasConfig::snapshot_full_read_every) polls, and
//! whenever an incremental read finds too much to catch up on) lists every snapshot with its
//! properties, in `createtxg` ranges of about 10,000 known snapshots so that no single answer
//! is huge; a known snapshot it does not list was removed.
//!
//! An **incremental read** relies on what TrueNAS offers for that (reference/truenas-api.md
//! §2.3–2.4, §5), all of it available from 22.12 to 26:
//! 1. new snapshots: per pool, the snapshot query with `extra.min_txg` = the newest known
//!    `createtxg` of that pool (ZFS applies it while listing, so older snapshots cost
//!    neither properties nor bytes; `createtxg`s are per pool, hence one query per pool);
//! 2. removed snapshots: the dataset query already carries each dataset's `snapshot_count`
//!    (`extra.snapshots_count`, cached by the middleware until the dataset's snapshots
//!    change). Where it differs from the known snapshots plus the new ones (or a dataset
//!    with known snapshots is gone, or set aside), the names of that dataset's snapshots are
//!    listed (`dataset = X` with `select: ["name"]`, the middleware's fast path without
//!    properties; one list of every name when many datasets differ), and the known ones
//!    missing are removed. Listed names that are not known (a rename) are read by `id`;
//! 3. snapshots whose `clones` changed (the origin snapshots of clones created, destroyed
//!    or promoted since the previous poll) and the snapshots of changed datasets (they carry
//!    their dataset's user properties, inherited) are read again by `id`.
//!
//! What an incremental read cannot see — a snapshot's `used` moving as its dataset is
//! written, holds, `defer_destroy`, user properties edited after creation — is refreshed by
//! the next full read.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ktd_model::content_digest;
use ktd_model::normalize::truenas as nt;
use ktd_model::truenas::Snapshot;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::TrueNasClient;
use crate::error::ClientError;
use crate::fetch::{Failure, Kind, RawKey, SnapshotPlan, View, check_json};
use crate::state::{Digest, PollerState, dataset_of};

/// Above this many datasets to check, one list of every snapshot name replaces the
/// per-dataset lists; above this many snapshots to read by `id`, a full read replaces them.
pub(crate) const CATCH_UP_LIMIT: usize = 64;

/// What a poll read of snapshots.
#[derive(Default)]
pub(crate) struct SnapshotView {
    /// Snapshots new or changed against the state, with their content digest.
    pub changed: Vec<(Snapshot, Digest)>,
    /// Known snapshots that are gone (before the rejections' veto).
    pub removed: Vec<String>,
    /// How many snapshots were read with their properties.
    pub read: u64,
    /// Whether this was a full read.
    pub full: bool,
}

/// What the snapshot queries need.
pub(crate) struct SnapshotRead<'a> {
    pub client: &'a TrueNasClient,
    pub state: &'a PollerState,
    /// `extra.properties` (ZFS and user properties).
    pub properties: Vec<String>,
}

/// Snapshots read with their properties during one poll.
struct Collected<'a> {
    state: &'a PollerState,
    view: SnapshotView,
    /// Names of every snapshot read.
    seen: HashSet<String>,
}

impl Collected<'_> {
    /// Reads one element of a snapshot query.
    fn element(&mut self, method: &str, json: &[u8], view: &mut View) -> Result<(), ClientError> {
        let s = match nt::snapshot_from_json(json) {
            Ok(s) => s,
            Err(e) => {
                check_json(method, json)?;
                let key = RawKey::of(json).key(Kind::Snapshot);
                view.rejections.reject(Kind::Snapshot, method, key, e);
                return Ok(());
            }
        };
        self.view.read += 1;
        if self.seen.contains(&s.name) {
            return Ok(());
        }
        let digest = content_digest(&s);
        if self.state.snapshots.get(&s.name).map(|k| k.digest) != Some(digest) {
            self.seen.insert(s.name.clone());
            self.view.changed.push((s, digest));
        } else {
            self.seen.insert(s.name);
        }
        Ok(())
    }
}

/// Why an incremental read gives way to a full one.
struct CatchUp(&'static str);

/// Reads snapshots as `plan` says.
pub(crate) async fn read(
    r: &SnapshotRead<'_>,
    view: &mut View,
    plan: SnapshotPlan<'_>,
) -> Result<SnapshotView, Failure> {
    if !plan.full {
        match incremental(r, view, plan.previous_origins).await? {
            Ok(v) => return Ok(v),
            Err(CatchUp(why)) => {
                tracing::info!(reason = why, "TrueNAS snapshots: full read instead");
            }
        }
    }
    full(r, view).await
}

/// Known snapshots per query of a full read (≈ 20 MB of JSON).
pub(crate) const FULL_READ_BATCH: usize = 10_000;

/// `createtxg` ranges (`min_txg`, `max_txg`, both inclusive, open when `None`) that split
/// the known snapshots into batches of about `batch`; together they cover every `createtxg`.
pub(crate) fn txg_ranges(state: &PollerState, batch: usize) -> Vec<(Option<u64>, Option<u64>)> {
    let mut txgs: Vec<u64> = state
        .snapshots
        .values()
        .filter_map(|k| k.createtxg)
        .collect();
    txgs.sort_unstable();
    let mut bounds: Vec<u64> = txgs
        .chunks(batch.max(1))
        .filter_map(|c| c.last().copied())
        .collect();
    bounds.pop(); // the last batch is open-ended (new snapshots come there)
    bounds.dedup();
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut from = None;
    for b in bounds {
        ranges.push((from, Some(b)));
        from = Some(b + 1);
    }
    ranges.push((from, None));
    ranges
}

/// Every snapshot: in `createtxg` ranges of about [`FULL_READ_BATCH`] known snapshots
/// (`extra.min_txg`/`max_txg`, applied by ZFS while listing), so that no answer is huge;
/// in one query when nothing is known yet.
async fn full(r: &SnapshotRead<'_>, view: &mut View) -> Result<SnapshotView, Failure> {
    let mut c = Collected {
        state: r.state,
        view: SnapshotView {
            full: true,
            ..SnapshotView::default()
        },
        seen: HashSet::new(),
    };
    for (min, max) in txg_ranges(r.state, FULL_READ_BATCH) {
        let mut extra = json!({});
        if let Some(min) = min {
            extra["min_txg"] = json!(min);
        }
        if let Some(max) = max {
            extra["max_txg"] = json!(max);
        }
        query(r, json!([]), extra, &mut c, view).await?;
    }
    let mut out = c.view;
    out.removed = r
        .state
        .snapshots
        .keys()
        .filter(|n| !c.seen.contains(n.as_str()))
        .cloned()
        .collect();
    Ok(out)
}

/// The snapshot query with `filters`, `extra.properties`, `extra.holds` and `extra`.
async fn query(
    r: &SnapshotRead<'_>,
    filters: Value,
    mut extra: Value,
    c: &mut Collected<'_>,
    view: &mut View,
) -> Result<(), Failure> {
    extra["properties"] = json!(r.properties);
    extra["holds"] = json!(true);
    let params = [filters, json!({ "extra": extra })];
    let method = r.client.snapshot_method();
    r.client
        .snapshot_query_each(&params, |method, json| c.element(method, json, view))
        .await
        .map_err(|e| Failure::new(r.client.snapshot_method(), e))
        .inspect_err(|_| tracing::debug!(method, "snapshot query failed"))?;
    Ok(())
}

/// Names of snapshots (`select: ["name"]`, the query's fast path without properties).
async fn names(
    r: &SnapshotRead<'_>,
    filters: Value,
    view: &mut View,
) -> Result<HashSet<String>, Failure> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(default)]
        name: Option<String>,
    }
    let mut out = HashSet::new();
    let params = [filters, json!({"select": ["name"]})];
    r.client
        .snapshot_query_each(&params, |method, json| {
            match serde_json::from_slice::<Named>(json) {
                Ok(Named { name: Some(n) }) if !n.is_empty() => {
                    out.insert(n);
                }
                Ok(_) => {
                    view.rejections.reject(
                        Kind::Snapshot,
                        method,
                        None,
                        "no `name` in the listing",
                    );
                }
                Err(e) => {
                    check_json(method, json)?;
                    view.rejections.reject(Kind::Snapshot, method, None, e);
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| Failure::new(r.client.snapshot_method(), e))?;
    Ok(out)
}

/// New snapshots, removals found through `snapshot_count`, renamed snapshots and
/// snapshots whose clones changed; `Err(CatchUp)` when a full read is cheaper.
async fn incremental(
    r: &SnapshotRead<'_>,
    view: &mut View,
    previous_origins: &HashMap<String, String>,
) -> Result<Result<SnapshotView, CatchUp>, Failure> {
    let state = r.state;
    let mut c = Collected {
        state,
        view: SnapshotView::default(),
        seen: HashSet::new(),
    };

    // 1. New snapshots, per pool from its newest known createtxg.
    let mut marks: BTreeMap<&str, Option<u64>> = state.snapshot_watermarks();
    for pool in &view.pools {
        marks.entry(pool.name.as_str()).or_insert(None);
    }
    let pools: Vec<(String, Option<u64>)> =
        marks.into_iter().map(|(p, m)| (p.to_owned(), m)).collect();
    for (pool, mark) in pools {
        let extra = match mark {
            Some(txg) => json!({ "min_txg": txg }),
            None => json!({}),
        };
        query(r, json!([["pool", "=", pool]]), extra, &mut c, view).await?;
    }

    // 2. Datasets whose snapshot count does not add up.
    let known_counts = state.snapshot_counts();
    let mut new_counts: HashMap<&str, u64> = HashMap::new();
    for name in &c.seen {
        if !state.snapshots.contains_key(name) {
            *new_counts.entry(dataset_of(name)).or_insert(0) += 1;
        }
    }
    let expected = |d: &str| {
        known_counts.get(d).copied().unwrap_or(0) + new_counts.get(d).copied().unwrap_or(0)
    };
    let mut check: BTreeSet<String> = BTreeSet::new();
    let mut in_view = HashSet::new();
    for d in &view.datasets {
        in_view.insert(d.name.as_str());
        let want = expected(&d.name);
        match d.snapshot_count {
            Some(n) if n == want => {}
            None if want == 0 => {}
            _ => {
                check.insert(d.name.clone());
            }
        }
    }
    for d in known_counts.keys().chain(new_counts.keys()) {
        if !in_view.contains(d) {
            check.insert((*d).to_owned());
        }
    }
    let mut unknown = BTreeSet::new();
    let mut removed = Vec::new();
    if check.len() > CATCH_UP_LIMIT {
        // One list of every name instead of hundreds of per-dataset lists.
        let all = names(r, json!([]), view).await?;
        for d in &check {
            removed.extend(
                state
                    .snapshots_of(d)
                    .filter(|k| !all.contains(*k) && !c.seen.contains(*k))
                    .map(str::to_owned),
            );
        }
        unknown.extend(
            all.into_iter()
                .filter(|n| !state.snapshots.contains_key(n) && !c.seen.contains(n)),
        );
    } else {
        for d in &check {
            let listed = names(r, json!([["dataset", "=", d]]), view).await?;
            removed.extend(
                state
                    .snapshots_of(d)
                    .filter(|k| !listed.contains(*k) && !c.seen.contains(*k))
                    .map(str::to_owned),
            );
            unknown.extend(
                listed
                    .into_iter()
                    .filter(|n| !state.snapshots.contains_key(n) && !c.seen.contains(n)),
            );
        }
    }
    c.view.removed = removed;

    // 3. Origins of clones created, destroyed or promoted since the previous poll.
    let mut reread: BTreeSet<String> = BTreeSet::new();
    for (d, origin) in previous_origins {
        if view.origins.get(d) != Some(origin) {
            reread.insert(origin.clone());
        }
    }
    for (d, origin) in &view.origins {
        if previous_origins.get(d) != Some(origin) {
            reread.insert(origin.clone());
        }
    }
    // Snapshots carry their dataset's user properties (inherited): a changed dataset's
    // known snapshots are read again.
    for d in view
        .datasets
        .iter()
        .filter(|d| d.changed.is_some() && !d.new)
    {
        reread.extend(state.snapshots_of(&d.name).map(str::to_owned));
    }
    reread.retain(|s| state.snapshots.contains_key(s) && !c.seen.contains(s));
    reread.retain(|s| !c.view.removed.contains(s));
    reread.extend(unknown);
    if reread.len() > CATCH_UP_LIMIT {
        return Ok(Err(CatchUp("many snapshots to read by name")));
    }
    for name in reread {
        let before = c.seen.len();
        query(r, json!([["id", "=", name]]), json!({}), &mut c, view).await?;
        if c.seen.len() == before
            && state.snapshots.contains_key(&name)
            && !view.rejections.is_protected(Kind::Snapshot, &name)
        {
            // A known snapshot an `id` query does not find is gone.
            c.view.removed.push(name);
        }
    }
    c.view.removed.sort_unstable();
    c.view.removed.dedup();
    tracing::debug!(
        pools = view.pools.len(),
        checked = check.len(),
        read = c.view.read,
        removed = c.view.removed.len(),
        "TrueNAS snapshots read incrementally"
    );
    Ok(Ok(c.view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktd_model::{Envelope, Event, SourceId, Timestamp};

    fn state_with(txgs: &[Option<u64>]) -> PollerState {
        let mut state = PollerState::default();
        for (i, txg) in txgs.iter().enumerate() {
            let snapshot = Snapshot {
                name: format!("tank/d{}@s{i}", i % 3),
                dataset: format!("tank/d{}", i % 3),
                snapshot_name: format!("s{i}"),
                pool: "tank".into(),
                createtxg: *txg,
                creation: None,
                used: None,
                referenced: None,
                clones: Vec::new(),
                defer_destroy: false,
                holds: None,
                user_properties: Default::default(),
            };
            state.apply(&Envelope::new(
                SourceId::truenas("nas"),
                Timestamp::from_unix_ms(0),
                Event::SnapshotObserved { snapshot },
                &[i as u8],
            ));
        }
        state
    }

    #[test]
    fn txg_ranges_cover_everything_in_batches() {
        assert_eq!(txg_ranges(&PollerState::default(), 2), vec![(None, None)]);
        let state = state_with(&[Some(5), Some(1), Some(9), Some(9), Some(3), None, Some(12)]);
        // Sorted: 1 3 5 9 9 12 → batches [1 3] [5 9] [9 12]: bounds 3, 9 (the last is open).
        assert_eq!(
            txg_ranges(&state, 2),
            vec![(None, Some(3)), (Some(4), Some(9)), (Some(10), None)]
        );
        assert_eq!(txg_ranges(&state, 100), vec![(None, None)]);
    }
}
