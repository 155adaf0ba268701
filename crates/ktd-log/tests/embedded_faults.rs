//! The embedded log's failure modes: what `open` refuses, and IO errors while writing.

mod common;

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ktd_log::embedded::{RedbLog, tables};
use ktd_log::{Checkpoint, ConsumerStore, EventLog, LogError, Stream};
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend, TableHandle};

fn open_reason(err: LogError) -> String {
    match err {
        LogError::Open { reason, .. } => reason,
        other => panic!("expected an Open error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope").join("events.redb");
    let err = RedbLog::open(&path).await.expect_err("no such directory");
    assert!(!err.is_retryable());
    let reason = open_reason(err);
    assert!(
        reason.contains("does not exist") && reason.contains("nope"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_directory_is_not_a_log_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reason = open_reason(RedbLog::open(dir.path()).await.expect_err("a directory"));
    assert!(reason.contains("directory"), "{reason}");
}

#[tokio::test]
async fn a_log_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    let _first = RedbLog::open(&path).await.expect("first open");
    let reason = open_reason(RedbLog::open(&path).await.expect_err("second open"));
    assert!(reason.contains("another process"), "{reason}");
}

#[tokio::test]
async fn a_file_that_is_not_a_ktd_log_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not redb at all.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x5a; 64 * 1024]).expect("write junk");
    let reason = open_reason(RedbLog::open(&junk).await.expect_err("junk"));
    assert!(reason.contains("not a ktd event log"), "{reason}");
    // A redb database of something else.
    let other = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other).expect("create");
        let txn = db.begin_write().expect("write");
        {
            let def: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("users");
            txn.open_table(def)
                .expect("table")
                .insert("alice", 1)
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let reason = open_reason(RedbLog::open(&other).await.expect_err("another database"));
    assert!(reason.contains("not a ktd event log"), "{reason}");
    // The refused file was left as it was.
    let db = redb::Database::open(&other).expect("still a redb file");
    assert!(
        redb::ReadableDatabase::begin_read(&db)
            .expect("read")
            .list_tables()
            .expect("tables")
            .all(|t| t.name() == "users")
    );
}

#[tokio::test]
async fn a_log_from_a_newer_ktd_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    drop(RedbLog::open(&path).await.expect("create"));
    {
        let db = redb::Database::open(&path).expect("open");
        let txn = db.begin_write().expect("write");
        txn.open_table(tables::META)
            .expect("meta")
            .insert("version", 99u32.to_le_bytes().as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    let reason = open_reason(RedbLog::open(&path).await.expect_err("newer format"));
    assert!(reason.contains("upgrade ktd"), "{reason}");
}

/// A file backend whose writes fail on demand with a given OS error (ENOSPC, EROFS), like
/// a full disk or a file system remounted read-only under a running ktd.
#[derive(Debug)]
struct Faulty {
    inner: FileBackend,
    fail: Arc<AtomicBool>,
    errno: i32,
}

impl Faulty {
    fn check(&self) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            Err(io::Error::from_raw_os_error(self.errno))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

async fn open_faulty(path: &Path, errno: i32) -> (RedbLog, Arc<AtomicBool>) {
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .expect("open the file");
    let fail = Arc::new(AtomicBool::new(false));
    let backend = Faulty {
        inner: FileBackend::new(file).expect("file backend"),
        fail: fail.clone(),
        errno,
    };
    let log = RedbLog::open_with_backend(backend, path.display().to_string())
        .await
        .expect("open on the faulty backend");
    (log, fail)
}

async fn write_failure_keeps_previous_content(errno: i32, expected_text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    let (log, fail) = open_faulty(&path, errno).await;
    log.append(Stream::Observations, common::batch(0..10))
        .await
        .expect("append before the fault");
    let before = Checkpoint {
        seq: 10,
        state: b"before".to_vec(),
    };
    log.store("views/inventory", before.clone())
        .await
        .expect("store before the fault");

    fail.store(true, Ordering::SeqCst);
    let err = log
        .append(Stream::Observations, common::batch(10..15))
        .await
        .expect_err("the disk refuses writes");
    assert!(matches!(err, LogError::Write(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains(expected_text), "{err}");
    let err = log
        .store(
            "views/inventory",
            Checkpoint {
                seq: 15,
                state: b"after".to_vec(),
            },
        )
        .await
        .expect_err("checkpoints fail too");
    assert!(matches!(err, LogError::Write(_)), "{err:?}");
    assert_eq!(
        log.last_seq(Stream::Observations).await.expect("last"),
        10,
        "readers never see the failed batch"
    );
    drop(log);

    // Reopened normally (the disk is fine again): exactly the content before the fault.
    let log = RedbLog::open(&path).await.expect("reopen");
    assert_eq!(log.last_seq(Stream::Observations).await.expect("last"), 10);
    let records = log.read(Stream::Observations, 1, 100).await.expect("read");
    let ids: Vec<_> = records
        .into_iter()
        .map(|r| r.expect("readable").id)
        .collect();
    assert_eq!(
        ids,
        common::batch(0..10)
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        log.find(Stream::Observations, common::obs(12).id)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        log.load("views/inventory").await.expect("load"),
        Some(before)
    );
    // And it is writable again.
    let out = log
        .append(Stream::Observations, common::batch(10..15))
        .await
        .expect("append after the fault");
    assert_eq!(out.seqs, [11, 12, 13, 14, 15]);
}

#[tokio::test]
async fn a_full_disk_fails_the_batch_and_keeps_the_log() {
    write_failure_keeps_previous_content(28, "No space left on device").await; // ENOSPC
}

#[tokio::test]
async fn a_read_only_file_system_fails_the_batch_and_keeps_the_log() {
    write_failure_keeps_previous_content(30, "Read-only file system").await; // EROFS
}
