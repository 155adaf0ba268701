//! The id → seq index, written in sorted bulk merges.
//!
//! Event ids are random (digests), so inserting each batch's ids into the on-disk B-tree
//! would dirty, and copy on write, one index page per event: at a few hundred thousand
//! events that doubles the cost of every append. Instead, the ids of recent events live in
//! memory ([`Pending`]) and are merged into the `ids` table, sorted, once [`MERGE_AT`] (see
//! [`super::RedbOptions::index_merge_at`]) have
//! accumulated, in the same transaction as the append that crosses the threshold. The meta
//! table records, per stream, the last sequence whose id is in the table (`indexed.<stream>`);
//! on open, the ids of the events after it are read back into memory. So the index is
//! always complete: table + pending = every event of the log.
//!
//! A read-only handle in another process cannot see the writer's memory: it keeps its own
//! copy of the ids after the marker ([`Recent`]), read from the records themselves and
//! extended as the writer appends.

use std::collections::HashMap;

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::store::{read_err, tables, write_err};
use crate::{LogError, Stream};

/// Pending ids merged into the table at once, by default.
pub(crate) const MERGE_AT: usize = 65_536;

/// Ids of events appended after the last merge, per stream.
#[derive(Default)]
pub(crate) struct Pending {
    by_stream: [HashMap<u128, u64>; 2],
}

const fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Observations => 0,
        Stream::Derived => 1,
    }
}

/// The meta key holding the last indexed sequence of a stream.
pub(crate) const fn marker_key(stream: Stream) -> &'static str {
    match stream {
        Stream::Observations => "indexed.observations",
        Stream::Derived => "indexed.derived",
    }
}

impl Pending {
    /// The sequence of a pending id.
    pub(crate) fn get(&self, stream: Stream, id: u128) -> Option<u64> {
        self.by_stream[slot(stream)].get(&id).copied()
    }

    /// Number of pending ids of a stream.
    pub(crate) fn len(&self, stream: Stream) -> usize {
        self.by_stream[slot(stream)].len()
    }

    /// Adds ids appended by a committed transaction.
    pub(crate) fn extend(&mut self, stream: Stream, ids: impl IntoIterator<Item = (u128, u64)>) {
        self.by_stream[slot(stream)].extend(ids);
    }

    /// Forgets a stream's pending ids (after they were merged).
    pub(crate) fn clear(&mut self, stream: Stream) {
        self.by_stream[slot(stream)].clear();
    }

    /// Pending ids of a stream plus `more`, sorted by id (the order the B-tree wants).
    pub(crate) fn sorted_with(
        &self,
        stream: Stream,
        more: &HashMap<u128, u64>,
    ) -> Vec<(u128, u64)> {
        let mut all: Vec<(u128, u64)> = self.by_stream[slot(stream)]
            .iter()
            .chain(more.iter())
            .map(|(k, v)| (*k, *v))
            .collect();
        all.sort_unstable();
        all
    }

    /// Rebuilds the pending ids from the events after each stream's marker.
    pub(crate) fn load(db: &Database) -> Result<Pending, LogError> {
        let mut pending = Pending::default();
        let txn = db.begin_read().map_err(read_err)?;
        for stream in Stream::ALL {
            let through = indexed_through(&txn, stream)?;
            scan_ids(&txn, stream, through, &mut pending.by_stream[slot(stream)])?;
        }
        Ok(pending)
    }
}

/// The last sequence of `stream` whose id is in the id table.
fn indexed_through(txn: &ReadTransaction, stream: Stream) -> Result<u64, LogError> {
    let meta = txn.open_table(tables::META).map_err(read_err)?;
    Ok(meta
        .get(marker_key(stream))
        .map_err(read_err)?
        .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
        .unwrap_or(0))
}

/// Adds the ids of the events after `after` to `map`; returns the last sequence read.
fn scan_ids(
    txn: &ReadTransaction,
    stream: Stream,
    after: u64,
    map: &mut HashMap<u128, u64>,
) -> Result<Option<u64>, LogError> {
    let events = txn.open_table(tables::events(stream)).map_err(read_err)?;
    let mut last = None;
    for entry in events.range(after.saturating_add(1)..).map_err(read_err)? {
        let (seq, bytes) = entry.map_err(read_err)?;
        // An unreadable record has no id to index; readers report it.
        if let Ok(env) = ktd_model::decode(bytes.value()) {
            map.entry(env.id.as_u128()).or_insert(seq.value());
        }
        last = Some(seq.value());
    }
    Ok(last)
}

/// A read-only handle's copy of the ids the writer holds in memory: those of the events
/// after the marker, per stream.
#[derive(Default)]
pub(crate) struct Recent {
    by_stream: [RecentIds; 2],
}

#[derive(Default)]
struct RecentIds {
    /// The marker these ids follow.
    indexed: u64,
    /// The last sequence whose id is in `ids` (or `indexed`).
    scanned: u64,
    ids: HashMap<u128, u64>,
}

impl Recent {
    /// The sequence of `id` in `stream`: from the id table, or from the events after the
    /// marker, read as of one commit. After a merge (the marker moved) the copy starts over
    /// from the new marker; otherwise only the events appended since the last call are read.
    pub(crate) fn find(
        &mut self,
        db: &impl ReadableDatabase,
        stream: Stream,
        id: u128,
    ) -> Result<Option<u64>, LogError> {
        let txn = db.begin_read().map_err(read_err)?;
        let ids = txn.open_table(tables::ids(stream)).map_err(read_err)?;
        if let Some(seq) = ids.get(id).map_err(read_err)? {
            return Ok(Some(seq.value()));
        }
        let through = indexed_through(&txn, stream)?;
        let recent = &mut self.by_stream[slot(stream)];
        if recent.indexed != through || recent.scanned < through {
            *recent = RecentIds {
                indexed: through,
                scanned: through,
                ids: HashMap::new(),
            };
        }
        if let Some(last) = scan_ids(&txn, stream, recent.scanned, &mut recent.ids)? {
            recent.scanned = last;
        }
        Ok(recent.ids.get(&id).copied())
    }
}

/// Writes sorted `entries` into a stream's id table and moves its marker to `through`.
pub(crate) fn merge(
    txn: &WriteTransaction,
    stream: Stream,
    entries: &[(u128, u64)],
    through: u64,
) -> Result<(), LogError> {
    let mut ids = txn.open_table(tables::ids(stream)).map_err(write_err)?;
    for (id, seq) in entries {
        ids.insert(id, seq).map_err(write_err)?;
    }
    let mut meta = txn.open_table(tables::META).map_err(write_err)?;
    meta.insert(marker_key(stream), through.to_le_bytes().as_slice())
        .map_err(write_err)?;
    Ok(())
}
