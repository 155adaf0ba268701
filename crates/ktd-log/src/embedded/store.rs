//! The synchronous half of the embedded log: the redb tables and the transactions on them.
//! Everything here blocks (file IO, fsync); [`super::RedbLog`] runs it on
//! `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use ktd_model::Envelope;
use redb::{
    Builder, ConcurrencyMode, Database, DatabaseError, Durability, ReadOnlyDatabase,
    ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend, StorageError,
};
use tracing::warn;

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
            "the file is locked by another process (another `ktd run` writing to it, or an older \
             ktd reading it); stop it or use another path"
                .to_owned()
        }
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            format!("permission denied ({io}); make the file and its directory writable by ktd")
        }
        other => common_open_reason(other),
    };
    open_err(path, reason)
}

/// Why a read-only open failed. `exclusive`: it took the whole-file lock (a file system
/// without byte-range locks), which a running writer holds too.
fn read_only_open_err(path: &str, e: DatabaseError, exclusive: bool) -> LogError {
    let reason = match e {
        DatabaseError::DatabaseAlreadyOpen if exclusive => {
            "`ktd run` has the log open, and its file system has no byte-range locks, so no \
             other process can read it meanwhile; stop `ktd run`, or keep the log on a local \
             file system"
                .to_owned()
        }
        DatabaseError::DatabaseAlreadyOpen => {
            "another process has the log open exclusively (a ktd older than this one, or a tool \
             opening it with redb directly), which lets nobody read it meanwhile; stop it, or \
             upgrade it to this ktd"
                .to_owned()
        }
        DatabaseError::LockProtocolMismatch => {
            "the process that has the log open uses another version of its database library \
             (redb); read the log with the same ktd version as the `ktd run` that writes it"
                .to_owned()
        }
        DatabaseError::RepairAborted => {
            "the log was not closed cleanly (the `ktd run` that wrote it crashed, was killed or \
             lost power) and must be recovered before it can be read; start `ktd run` on it \
             once (it recovers the log when it opens it), then retry"
                .to_owned()
        }
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            format!("permission denied ({io}); make the file readable by this user")
        }
        other => common_open_reason(other),
    };
    open_err(path, reason)
}

/// Why an open failed, for the reasons a writer and a reader share.
fn common_open_reason(e: DatabaseError) -> String {
    match e {
        DatabaseError::UpgradeRequired(v) => format!(
            "the file uses redb file format {v}, which this ktd cannot read; open it with the ktd \
             version that wrote it and export it"
        ),
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
    }
}

/// redb's builder in a concurrency mode.
fn builder(mode: ConcurrencyMode) -> Builder {
    let mut builder = Database::builder();
    builder.set_concurrency_mode(mode);
    builder
}

/// Whether an open failed because the file system has no byte-range locks.
fn lacks_range_locks(e: &DatabaseError) -> bool {
    matches!(e, DatabaseError::Storage(StorageError::Unsupported))
}

/// Refuses a path that cannot be a log file: a missing directory, a directory.
fn check_location(path: &Path, label: &str) -> Result<(), LogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(open_err(
            label,
            format!(
                "directory {} does not exist; create it or fix the path",
                dir.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(open_err(
            label,
            "this is a directory; give the path of a file",
        ));
    }
    Ok(())
}

/// Opens (or creates) the file for writing and checks or writes the format marker.
pub(crate) fn open_file(path: &Path) -> Result<Database, LogError> {
    let label = path.display().to_string();
    check_location(path, &label)?;
    let db = open_writer_with(&label, |mode| builder(mode).create(path))?;
    init(db, &label)
}

/// Opens the writer with `open` in [`ConcurrencyMode::SingleWriter`], so that read-only
/// handles in other processes can follow its commits. On a file system without byte-range
/// locks, where that mode cannot work, falls back to redb's default mode, which locks the
/// whole file: the log is then not readable while it is open, as before.
fn open_writer_with(
    label: &str,
    open: impl Fn(ConcurrencyMode) -> Result<Database, DatabaseError>,
) -> Result<Database, LogError> {
    match open(ConcurrencyMode::SingleWriter) {
        Err(e) if lacks_range_locks(&e) => {
            warn!(
                path = label,
                "the file system has no byte-range locks: the event log is locked as a whole, so \
                 other ktd commands cannot read it while this process has it open"
            );
            open(ConcurrencyMode::ExclusiveWriter)
        }
        other => other,
    }
    .map_err(|e| database_open_err(label, e))
}

/// Opens a log on a custom redb storage backend for writing (tests inject faults this way).
pub(crate) fn open_backend(
    backend: impl StorageBackend,
    label: &str,
) -> Result<Database, LogError> {
    let db = builder(ConcurrencyMode::SingleWriter)
        .create_with_backend(backend)
        .map_err(|e| database_open_err(label, e))?;
    init(db, label)
}

/// Opens an existing log read-only and checks its format marker. Beside a writer (in
/// [`ConcurrencyMode::SingleWriter`]), every read transaction sees its latest commit.
pub(crate) fn open_read_only(path: &Path) -> Result<ReadOnlyDatabase, LogError> {
    let label = path.display().to_string();
    check_location(path, &label)?;
    if !path.exists() {
        return Err(open_err(
            &label,
            "there is no log file here; `ktd run` creates it when it first starts (or fix the \
             path)",
        ));
    }
    open_read_only_with(&label, |mode| builder(mode).open_read_only(path))
}

/// Opens read-only with `open`, in the writer's mode; on a file system without byte-range
/// locks, in redb's default mode (a shared whole-file lock, refused while a writer runs).
fn open_read_only_with(
    label: &str,
    open: impl Fn(ConcurrencyMode) -> Result<ReadOnlyDatabase, DatabaseError>,
) -> Result<ReadOnlyDatabase, LogError> {
    let db = match open(ConcurrencyMode::SingleWriter) {
        Err(e) if lacks_range_locks(&e) => open(ConcurrencyMode::ExclusiveWriter)
            .map_err(|e| read_only_open_err(label, e, true))?,
        other => other.map_err(|e| read_only_open_err(label, e, false))?,
    };
    match read_marker(&db, label)? {
        Marker::Ktd(version) => check_version(version, label)?,
        Marker::Missing { .. } | Marker::Foreign => return Err(not_a_log(label)),
    }
    Ok(db)
}

/// What the meta table says a file is.
enum Marker {
    /// A ktd log of this format version.
    Ktd(u32),
    /// No meta table; `has_tables`: other tables exist (a new file has none).
    Missing { has_tables: bool },
    /// A meta table without ktd's marker.
    Foreign,
}

fn read_marker(db: &impl ReadableDatabase, label: &str) -> Result<Marker, LogError> {
    let fail = |e: &dyn Display| open_err(label, format!("{e}"));
    let read = db.begin_read().map_err(|e| fail(&e))?;
    match read.open_table(tables::META) {
        Ok(meta) => {
            let format = meta.get("format").map_err(|e| fail(&e))?;
            let version = meta.get("version").map_err(|e| fail(&e))?;
            let version = version.and_then(|v| v.value().try_into().ok().map(u32::from_le_bytes));
            Ok(match (format, version) {
                (Some(format), Some(version)) if format.value() == FORMAT.as_bytes() => {
                    Marker::Ktd(version)
                }
                _ => Marker::Foreign,
            })
        }
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(Marker::Missing {
            has_tables: read.list_tables().map_err(|e| fail(&e))?.next().is_some(),
        }),
        Err(e) => Err(fail(&e)),
    }
}

fn check_version(version: u32, label: &str) -> Result<(), LogError> {
    if version > FORMAT_VERSION {
        return Err(open_err(
            label,
            format!(
                "the log was written by a newer ktd (format {version}, this ktd reads up to \
                 {FORMAT_VERSION}); upgrade ktd"
            ),
        ));
    }
    Ok(())
}

fn not_a_log(label: &str) -> LogError {
    open_err(
        label,
        "the file is a redb database but not a ktd event log; point ktd at its own log file",
    )
}

/// Checks the format marker, or writes it (and creates every table) in a new file.
fn init(db: Database, label: &str) -> Result<Database, LogError> {
    let fail = |e: &dyn Display| open_err(label, format!("{e}"));
    match read_marker(&db, label)? {
        Marker::Ktd(version) => check_version(version, label)?,
        Marker::Foreign | Marker::Missing { has_tables: true } => return Err(not_a_log(label)),
        Marker::Missing { has_tables: false } => {
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
    db: &impl ReadableDatabase,
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
pub(crate) fn last_seq(db: &impl ReadableDatabase, stream: Stream) -> Result<u64, LogError> {
    let txn = db.begin_read().map_err(read_err)?;
    let table = txn.open_table(tables::events(stream)).map_err(read_err)?;
    Ok(table
        .last()
        .map_err(read_err)?
        .map_or(0, |(k, _)| k.value()))
}

/// The number of records of a stream (equals [`last_seq`] unless the file was edited).
pub(crate) fn len(db: &impl ReadableDatabase, stream: Stream) -> Result<u64, LogError> {
    let txn = db.begin_read().map_err(read_err)?;
    let table = txn.open_table(tables::events(stream)).map_err(read_err)?;
    table.len().map_err(read_err)
}

/// The sequence of an event id, for the writer: its pending ids, then the id table.
pub(crate) fn find(
    db: &Database,
    pending: &Mutex<Pending>,
    stream: Stream,
    id: u128,
) -> Result<Option<u64>, LogError> {
    if let Some(seq) = lock(pending)?.get(stream, id) {
        return Ok(Some(seq));
    }
    let txn = db.begin_read().map_err(read_err)?;
    let ids = txn.open_table(tables::ids(stream)).map_err(read_err)?;
    Ok(ids.get(id).map_err(read_err)?.map(|v| v.value()))
}

/// A consumer's checkpoint.
pub(crate) fn load(
    db: &impl ReadableDatabase,
    consumer: &str,
) -> Result<Option<Checkpoint>, LogError> {
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
    use std::fs::OpenOptions;
    use std::path::Path;

    use redb::backends::FileBackend;
    use redb::{ConcurrencyMode, StorageBackend};

    use super::{builder, lacks_range_locks, open_read_only_with, open_writer_with};

    /// A file without byte-range locks (some network and FUSE file systems): redb's
    /// defaults for the lock methods say `Unsupported`.
    #[derive(Debug)]
    struct NoRangeLocks(FileBackend);

    impl NoRangeLocks {
        fn open(path: &Path, write: bool) -> NoRangeLocks {
            let file = OpenOptions::new()
                .read(true)
                .write(write)
                .create(write)
                .truncate(false)
                .open(path)
                .expect("open the file");
            NoRangeLocks(FileBackend::new(file).expect("file backend"))
        }
    }

    impl StorageBackend for NoRangeLocks {
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.0.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.0.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.0.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.0.write(offset, data)
        }
    }

    #[test]
    fn without_byte_range_locks_the_log_is_locked_as_a_whole_and_still_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.redb");
        let shared = builder(ConcurrencyMode::SingleWriter)
            .create_with_backend(NoRangeLocks::open(&path, true))
            .expect_err("sharing needs byte-range locks");
        assert!(lacks_range_locks(&shared), "{shared:?}");

        let db = open_writer_with("test", |mode| {
            builder(mode).create_with_backend(NoRangeLocks::open(&path, true))
        })
        .expect("the writer falls back to the whole-file lock");
        let db = super::init(db, "test").expect("a new log");
        let env = ktd_model::Envelope::new(
            ktd_model::SourceId::truenas("nas01"),
            ktd_model::Timestamp::from_unix_secs(1),
            ktd_model::Event::DatasetRemoved {
                name: "tank/a".into(),
            },
            b"1",
        );
        let pending = std::sync::Mutex::default();
        let (outcome, _) = super::append(&db, &pending, 10, crate::Stream::Observations, vec![env])
            .expect("append");
        assert_eq!(outcome.seqs, [1]);
        drop(db);

        let reader = open_read_only_with("test", |mode| {
            builder(mode).open_read_only_with_backend(NoRangeLocks::open(&path, false))
        })
        .expect("the reader falls back too");
        assert_eq!(
            super::last_seq(&reader, crate::Stream::Observations).expect("last"),
            1
        );
    }

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
