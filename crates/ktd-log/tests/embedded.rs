//! The conformance suite and the embedded log's own tests: opening errors, IO faults.

mod common;

use std::path::PathBuf;

use common::Harness;
use ktd_log::embedded::{RedbLog, RedbOptions, tables};
use ktd_log::{EventLog, Stream};
use redb::{ReadableDatabase, ReadableTable};

/// A log in a fresh temporary directory.
struct Embedded {
    dir: tempfile::TempDir,
    log: Option<RedbLog>,
    options: RedbOptions,
}

impl Embedded {
    async fn new() -> Embedded {
        Embedded::with_options(RedbOptions::default()).await
    }

    /// Merges the in-memory ids into the on-disk index every few events, so that every
    /// test also runs across merges (and restarts between them).
    async fn merging_often() -> Embedded {
        Embedded::with_options(RedbOptions { index_merge_at: 3 }).await
    }

    async fn with_options(options: RedbOptions) -> Embedded {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = RedbLog::open_with_options(dir.path().join("events.redb"), options.clone())
            .await
            .expect("open a new log");
        Embedded {
            dir,
            log: Some(log),
            options,
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
        let log = RedbLog::open_with_options(self.path(), self.options.clone()).await;
        self.log = Some(log.expect("reopen"));
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

/// The same suite with index merges every 3 events.
mod merging_often {
    use super::Embedded;
    crate::conformance_tests!(Embedded::merging_often());
}

#[test]
fn property_appends_equal_first_occurrences() {
    property(Embedded::new());
}

#[test]
fn property_appends_equal_first_occurrences_across_index_merges() {
    property(Embedded::merging_often());
}

fn property(make: impl Future<Output = Embedded>) {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let harness = std::sync::Mutex::new(rt.block_on(make));
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
