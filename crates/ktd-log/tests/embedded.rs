//! The conformance suite and the embedded log's own tests: opening errors, IO faults.

mod common;

use std::path::PathBuf;

use common::Harness;
use ktd_log::embedded::{RedbLog, tables};
use ktd_log::{EventLog, Stream};
use redb::{ReadableDatabase, ReadableTable};

/// A log in a fresh temporary directory.
struct Embedded {
    dir: tempfile::TempDir,
    log: Option<RedbLog>,
}

impl Embedded {
    async fn new() -> Embedded {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = RedbLog::open(dir.path().join("events.redb"))
            .await
            .expect("open a new log");
        Embedded {
            dir,
            log: Some(log),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("events.redb")
    }
}

impl Harness for Embedded {
    type Log = RedbLog;

    fn log(&self) -> &RedbLog {
        self.log.as_ref().expect("the log is open")
    }

    async fn restart(&mut self) {
        self.log = None;
        self.log = Some(RedbLog::open(self.path()).await.expect("reopen"));
    }

    async fn inject_garbage(&mut self, stream: Stream, bytes: &[u8]) {
        self.log = None;
        {
            let db = redb::Database::open(self.path()).expect("open with redb");
            let txn = db.begin_write().expect("write");
            {
                let mut table = txn.open_table(tables::events(stream)).expect("table");
                let next = table.last().expect("last").map_or(0, |(k, _)| k.value()) + 1;
                table.insert(next, bytes).expect("insert garbage");
            }
            txn.commit().expect("commit");
        }
        self.restart().await;
    }

    async fn reset(&mut self) {
        self.log = None;
        std::fs::remove_file(self.path()).expect("remove the log file");
        self.restart().await;
    }
}

conformance_tests!(Embedded::new());

#[test]
fn property_appends_equal_first_occurrences() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let harness = std::sync::Mutex::new(rt.block_on(Embedded::new()));
    let batches = prop::collection::vec(prop::collection::vec(0u64..30, 0..12), 1..8);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(&batches, |batches| {
            let mut h = harness.lock().expect("harness lock");
            rt.block_on(common::appends_equal_first_occurrences(&mut *h, &batches));
            Ok(())
        })
        .expect("property holds");
}

#[tokio::test]
async fn reopen_in_place_reads_what_was_written_by_seq() {
    let h = Embedded::new().await;
    let out = h
        .log()
        .append(Stream::Observations, common::batch(0..3))
        .await
        .expect("append");
    assert_eq!(out.seqs, [1, 2, 3]);
    // The stored bytes carry the assigned seq (not only the key).
    let path = h.path();
    drop(h.log);
    let db = redb::ReadOnlyDatabase::open(&path).expect("open read-only");
    let txn = db.begin_read().expect("read");
    let table = txn
        .open_table(tables::events(Stream::Observations))
        .expect("table");
    let bytes = table.get(2).expect("get").expect("present");
    let env = ktd_model::decode(bytes.value()).expect("decodes");
    assert_eq!(env.seq, 2);
    assert_eq!(env.id, common::obs(1).id);
}
