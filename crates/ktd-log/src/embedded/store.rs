//! The synchronous half of the embedded log: the redb tables and the transactions on them.
//! Everything here blocks (file IO, fsync); [`super::RedbLog`] runs it on
//! `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use ktd_model::{Envelope, EventId};
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    StorageBackend, StorageError,
};

use super::index::{self, Pending};
use crate::{AppendOutcome, Checkpoint, LogError, Record, Stream, UnreadableRecord};

/// The redb tables of an embedded log, public so that tools (and tests) can inspect a log
/// file with redb directly. Writing to them bypasses every check of [`super::RedbLog`].
pub mod tables {
    use redb::TableDefinition;

    use crate::Stream;

    /// Format marker and version: `format` → `ktd-event-log`, `version` → u32 (LE).
    pub const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("ktd_meta");
    /// Observations: sequence → encoded envelope.
    pub const OBSERVATIONS: TableDefinition<'static, u64, &[u8]> =
        TableDefinition::new("ktd_observations");
    /// Observations: event id → sequence.
    pub const OBSERVATION_IDS: TableDefinition<'static, u128, u64> =
        TableDefinition::new("ktd_observations_ids");
    /// Derived events: sequence → encoded envelope.
    pub const DERIVED: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("ktd_derived");
    /// Derived events: event id → sequence.
    pub const DERIVED_IDS: TableDefinition<'static, u128, u64> =
        TableDefinition::new("ktd_derived_ids");
    /// Consumer checkpoints: consumer name → sequence (u64 LE) followed by its state, in one
    /// value so that both change together.
    pub const CHECKPOINTS: TableDefinition<'static, &str, &[u8]> =
        TableDefinition::new("ktd_checkpoints");

    /// The events table of a stream.
    pub const fn events(stream: Stream) -> TableDefinition<'static, u64, &'static [u8]> {
        match stream {
            Stream::Observations => OBSERVATIONS,
            Stream::Derived => DERIVED,
        }
    }

    /// The id index of a stream.
    pub const fn ids(stream: Stream) -> TableDefinition<'static, u128, u64> {
        match stream {
            Stream::Observations => OBSERVATION_IDS,
            Stream::Derived => DERIVED_IDS,
        }
    }
}

/// The value of `format` in the meta table.
pub const FORMAT: &str = "ktd-event-log";
/// The on-disk layout version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A redb error during a write: nothing of the transaction was stored.
pub(crate) fn write_err(e: impl Display) -> LogError {
    LogError::Write(format!(
        "{e} (nothing of this batch was stored; check free space and that the file is writable)"
    ))
}

/// A redb error during a read.
pub(crate) fn read_err(e: impl Display) -> LogError {
    LogError::Read(format!(
        "{e} (the file may be damaged: check the disk and the system log, restore the log from \
         a backup if needed)"
    ))
}

fn open_err(path: &str, reason: impl Into<String>) -> LogError {
    LogError::Open {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn database_open_err(path: &str, e: DatabaseError) -> LogError {
    let reason = match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            "the file is locked by another process (is another ktd running on it?); stop it or \
             use another path"
                .to_owned()
        }
        DatabaseError::UpgradeRequired(v) => format!(
            "the file uses redb file format {v}, which this ktd cannot read; open it with the ktd \
             version that wrote it and export it"
        ),
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            format!("permission denied ({io}); make the file and its directory writable by ktd")
        }
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            format!("not a ktd event log ({io}); point ktd at its own log file")
        }
        DatabaseError::Storage(StorageError::Io(io)) => {
            format!("{io}; check the path and the file system")
        }
        DatabaseError::Storage(StorageError::Corrupted(c)) => {
            format!("not a ktd event log, or a corrupt one ({c}); point ktd at its own log file")
        }
        other => format!("{other}"),
    };
    open_err(path, reason)
}

/// Opens (or creates) the file and checks or writes the format marker.
pub(crate) fn open_file(path: &Path) -> Result<Database, LogError> {
    let label = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(open_err(
            &label,
            format!(
                "directory {} does not exist; create it or fix the path",
                dir.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(open_err(
            &label,
            "this is a directory; give the path of a file",
        ));
    }
    let db = Database::builder()
        .create(path)
        .map_err(|e| database_open_err(&label, e))?;
    init(db, &label)
}

/// Opens a log on a custom redb storage backend (tests inject faults this way).
pub(crate) fn open_backend(
    backend: impl StorageBackend,
    label: &str,
) -> Result<Database, LogError> {
    let db = Database::builder()
        .create_with_backend(backend)
        .map_err(|e| database_open_err(label, e))?;
    init(db, label)
}

/// Checks the format marker, or writes it (and creates every table) in a new file.
fn init(db: Database, label: &str) -> Result<Database, LogError> {
    let fail = |e: &dyn Display| open_err(label, format!("{e}"));
    let read = db.begin_read().map_err(|e| fail(&e))?;
    let has_tables = read.list_tables().map_err(|e| fail(&e))?.next().is_some();
    let marker = match read.open_table(tables::META) {
        Ok(meta) => {
            let format = meta.get("format").map_err(|e| fail(&e))?;
            let version = meta.get("version").map_err(|e| fail(&e))?;
            Some((
                format.map(|v| v.value().to_vec()),
                version.and_then(|v| v.value().try_into().ok().map(u32::from_le_bytes)),
            ))
        }
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(fail(&e)),
    };
    drop(read);
    match marker {
        Some((Some(format), Some(version))) if format == FORMAT.as_bytes() => {
            if version > FORMAT_VERSION {
                return Err(open_err(
                    label,
                    format!(
                        "the log was written by a newer ktd (format {version}, this ktd reads up \
                         to {FORMAT_VERSION}); upgrade ktd"
                    ),
                ));
            }
        }
        Some(_) => {
            return Err(open_err(
                label,
                "the file is a redb database but not a ktd event log; point ktd at its own log file",
            ));
        }
        None if has_tables => {
            return Err(open_err(
                label,
                "the file is a redb database but not a ktd event log; point ktd at its own log file",
            ));
        }
        None => {
            let mut txn = db.begin_write().map_err(|e| fail(&e))?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| fail(&e))?;
            {
                let mut meta = txn.open_table(tables::META).map_err(|e| fail(&e))?;
                meta.insert("format", FORMAT.as_bytes())
                    .map_err(|e| fail(&e))?;
                meta.insert("version", FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(|e| fail(&e))?;
                for stream in Stream::ALL {
                    txn.open_table(tables::events(stream))
                        .map_err(|e| fail(&e))?;
                    txn.open_table(tables::ids(stream)).map_err(|e| fail(&e))?;
                }
                txn.open_table(tables::CHECKPOINTS).map_err(|e| fail(&e))?;
            }
            txn.commit().map_err(|e| fail(&e))?;
        }
    }
    Ok(db)
}

/// Appends a batch in one durable write transaction. Returns the outcome and the stream's
/// last sequence after the batch. `pending` is locked for the whole transaction, which
/// also serializes writers.
pub(crate) fn append(
    db: &Database,
    pending: &Mutex<Pending>,
    merge_at: usize,
    stream: Stream,
    events: Vec<Envelope>,
) -> Result<(AppendOutcome, u64), LogError> {
    for env in &events {
        stream.check(env)?;
    }
    let mut pending = lock(pending)?;
    let mut txn = db.begin_write().map_err(write_err)?;
    txn.set_durability(Durability::Immediate)
        .map_err(write_err)?;
    let mut outcome = AppendOutcome {
        seqs: Vec::with_capacity(events.len()),
        ..AppendOutcome::default()
    };
    let mut added: HashMap<u128, u64> = HashMap::with_capacity(events.len());
    let last = {
        let mut table = txn.open_table(tables::events(stream)).map_err(write_err)?;
        let ids = txn.open_table(tables::ids(stream)).map_err(write_err)?;
        let mut next = table
            .last()
            .map_err(write_err)?
            .map_or(0, |(k, _)| k.value())
            + 1;
        let first = next;
        let mut fresh = Vec::with_capacity(events.len());
        for mut env in events {
            let id = env.id.as_u128();
            let existing = match added.get(&id).copied().or_else(|| pending.get(stream, id)) {
                Some(seq) => Some(seq),
                None => ids.get(id).map_err(write_err)?.map(|v| v.value()),
            };
            if let Some(seq) = existing {
                outcome.seqs.push(seq);
                outcome.duplicates += 1;
                continue;
            }
            env.seq = next;
            fresh.push(env);
            added.insert(id, next);
            outcome.seqs.push(next);
            outcome.appended += 1;
            next += 1;
        }
        let mut seq = first;
        for part in encode(fresh)? {
            let mut start = 0;
            for &end in &part.ends {
                table
                    .insert(seq, &part.bytes[start..end])
                    .map_err(write_err)?;
                start = end;
                seq += 1;
            }
        }
        next - 1
    };
    if outcome.appended == 0 {
        txn.abort().map_err(write_err)?;
        return Ok((outcome, last));
    }
    let merged = pending.len(stream) + added.len() >= merge_at;
    if merged {
        index::merge(&txn, stream, &pending.sorted_with(stream, &added), last)?;
    }
    txn.commit().map_err(write_err)?;
    if merged {
        pending.clear(stream);
    } else {
        pending.extend(stream, added);
    }
    Ok((outcome, last))
}

/// Batches at least this large are encoded on two threads.
const PARALLEL_ENCODE_MIN: usize = 512;

/// Envelopes encoded back to back: envelope `i` is `bytes[ends[i-1]..ends[i]]`.
struct Encoded {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// Encodes like [`ktd_model::encode`] (msgpack, named fields), into one buffer per part
/// instead of one allocation per event. Large batches are split in two halves encoded (and
/// dropped) in parallel; the parts come back in order.
fn encode(mut envs: Vec<Envelope>) -> Result<Vec<Encoded>, LogError> {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if envs.len() < PARALLEL_ENCODE_MIN || cores < 2 {
        return Ok(vec![encode_part(envs)?]);
    }
    let second = envs.split_off(envs.len() / 2);
    std::thread::scope(|s| {
        let helper = s.spawn(move || encode_part(second));
        let a = encode_part(envs)?;
        let b = helper.join().map_err(|_| {
            LogError::Write("the encoding thread panicked; this is a bug, please report it".into())
        })??;
        Ok(vec![a, b])
    })
}

fn encode_part(envs: Vec<Envelope>) -> Result<Encoded, LogError> {
    let mut out = Encoded {
        bytes: Vec::with_capacity(envs.len() * 512),
        ends: Vec::with_capacity(envs.len()),
    };
    for env in &envs {
        rmp_serde::encode::write_named(&mut out.bytes, env)
            .map_err(|e| LogError::Encode(ktd_model::CodecError::Encode(e)))?;
        out.ends.push(out.bytes.len());
    }
    Ok(out)
}

/// Locks the pending ids; a poisoned lock means a writer panicked mid-append.
pub(crate) fn lock(pending: &Mutex<Pending>) -> Result<MutexGuard<'_, Pending>, LogError> {
    pending.lock().map_err(|_| {
        LogError::Write(
            "an earlier append panicked; restart ktd to reload the log (this is a bug, please \
             report it)"
                .into(),
        )
    })
}

/// Reads up to `max` records from `from_seq`.
pub(crate) fn read(
    db: &Database,
    stream: Stream,
    from_seq: u64,
    max: usize,
) -> Result<Vec<Record>, LogError> {
    let txn = db.begin_read().map_err(read_err)?;
    let table = txn.open_table(tables::events(stream)).map_err(read_err)?;
    let mut out = Vec::with_capacity(max.min(4096));
    for entry in table.range(from_seq.max(1)..).map_err(read_err)?.take(max) {
        let (seq, bytes) = entry.map_err(read_err)?;
        let seq = seq.value();
        out.push(match ktd_model::decode(bytes.value()) {
            Ok(mut env) => {
                env.seq = seq;
                Ok(env)
            }
            Err(error) => Err(UnreadableRecord { seq, error }),
        });
    }
    Ok(out)
}

/// The last sequence of a stream (0 when empty).
pub(crate) fn last_seq(db: &Database, stream: Stream) -> Result<u64, LogError> {
    let txn = db.begin_read().map_err(read_err)?;
    let table = txn.open_table(tables::events(stream)).map_err(read_err)?;
    Ok(table
        .last()
        .map_err(read_err)?
        .map_or(0, |(k, _)| k.value()))
}

/// The number of records of a stream (equals [`last_seq`] unless the file was edited).
pub(crate) fn len(db: &Database, stream: Stream) -> Result<u64, LogError> {
    let txn = db.begin_read().map_err(read_err)?;
    let table = txn.open_table(tables::events(stream)).map_err(read_err)?;
    table.len().map_err(read_err)
}

/// The sequence of an event id.
pub(crate) fn find(
    db: &Database,
    pending: &Mutex<Pending>,
    stream: Stream,
    id: EventId,
) -> Result<Option<u64>, LogError> {
    if let Some(seq) = lock(pending)?.get(stream, id.as_u128()) {
        return Ok(Some(seq));
    }
    let txn = db.begin_read().map_err(read_err)?;
    let ids = txn.open_table(tables::ids(stream)).map_err(read_err)?;
    Ok(ids.get(id.as_u128()).map_err(read_err)?.map(|v| v.value()))
}

/// A consumer's checkpoint.
pub(crate) fn load(db: &Database, consumer: &str) -> Result<Option<Checkpoint>, LogError> {
    let txn = db.begin_read().map_err(read_err)?;
    let table = txn.open_table(tables::CHECKPOINTS).map_err(read_err)?;
    let Some(value) = table.get(consumer).map_err(read_err)? else {
        return Ok(None);
    };
    Checkpoint::from_bytes(value.value())
        .map(Some)
        .ok_or_else(|| {
            LogError::Read(format!(
                "the checkpoint of consumer {consumer:?} is truncated; store a new one or rebuild the consumer"
            ))
        })
}

/// Stores a consumer's checkpoint durably.
pub(crate) fn store(
    db: &Database,
    consumer: &str,
    checkpoint: &Checkpoint,
) -> Result<(), LogError> {
    let mut txn = db.begin_write().map_err(write_err)?;
    txn.set_durability(Durability::Immediate)
        .map_err(write_err)?;
    {
        let mut table = txn.open_table(tables::CHECKPOINTS).map_err(write_err)?;
        let value = checkpoint.to_bytes();
        table
            .insert(consumer, value.as_slice())
            .map_err(write_err)?;
    }
    txn.commit().map_err(write_err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn encode_writes_what_the_model_codec_writes_in_order() {
        let env = ktd_model::Envelope::new(
            ktd_model::SourceId::truenas("nas01"),
            ktd_model::Timestamp::from_unix_secs(1),
            ktd_model::Event::DatasetRemoved {
                name: "tank/a".into(),
            },
            b"1",
        );
        let mut other = env.clone();
        other.seq = 7;
        // Enough events for the parallel path, too.
        for n in [1, 3, super::PARALLEL_ENCODE_MIN + 1] {
            let envs: Vec<_> = (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        env.clone()
                    } else {
                        other.clone()
                    }
                })
                .collect();
            let expected: Vec<Vec<u8>> = envs
                .iter()
                .map(|e| ktd_model::encode(e).expect("encodes"))
                .collect();
            let mut got = Vec::new();
            for part in super::encode(envs).expect("encodes") {
                let mut start = 0;
                for end in part.ends {
                    got.push(part.bytes[start..end].to_vec());
                    start = end;
                }
            }
            assert_eq!(got, expected, "{n} events");
        }
    }
}
