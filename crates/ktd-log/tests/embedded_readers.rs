//! Read-only handles on an embedded log beside its writer: the conformance suite with every
//! read made by a reader, a writer in another process followed by a reader in this one
//! (appends, index merges, a crash), and what a read-only open refuses.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{Harness, batch, obs};
use futures::StreamExt;
use futures::stream::BoxStream;
use ktd_log::embedded::{POLL_INTERVAL, RedbLog, RedbOptions, RedbReader, tables};
use ktd_log::{AppendOutcome, Checkpoint, ConsumerStore, EventLog, LogError, Record, Stream};
use ktd_model::{Envelope, EventId};
use redb::ReadableTable;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A writer and a reader of one file: appends and checkpoints go to the writer, every read
/// to the reader, a separate redb handle with its own file locks.
#[derive(Clone)]
struct Split {
    writer: RedbLog,
    reader: RedbReader,
}

impl EventLog for Split {
    async fn append(
        &self,
        stream: Stream,
        events: Vec<Envelope>,
    ) -> Result<AppendOutcome, LogError> {
        self.writer.append(stream, events).await
    }

    async fn read(
        &self,
        stream: Stream,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        self.reader.read(stream, from_seq, max).await
    }

    async fn last_seq(&self, stream: Stream) -> Result<u64, LogError> {
        self.reader.last_seq(stream).await
    }

    async fn find(&self, stream: Stream, id: EventId) -> Result<Option<u64>, LogError> {
        self.reader.find(stream, id).await
    }

    fn tail(&self, stream: Stream, from_seq: u64) -> BoxStream<'static, Result<Record, LogError>> {
        self.reader.tail(stream, from_seq)
    }
}

impl ConsumerStore for Split {
    async fn load(&self, consumer: &str) -> Result<Option<Checkpoint>, LogError> {
        self.reader.load(consumer).await
    }

    async fn store(&self, consumer: &str, checkpoint: Checkpoint) -> Result<(), LogError> {
        self.writer.store(consumer, checkpoint).await
    }
}

/// A [`Split`] log in a fresh temporary directory.
struct Readers {
    dir: tempfile::TempDir,
    log: Option<Split>,
    options: RedbOptions,
}

impl Readers {
    async fn new() -> Readers {
        Readers::with_options(RedbOptions::default()).await
    }

    /// The writer merges its in-memory ids into the on-disk index every few events, so the
    /// reader's lookups cross merges too.
    async fn merging_often() -> Readers {
        Readers::with_options(RedbOptions { index_merge_at: 3 }).await
    }

    async fn with_options(options: RedbOptions) -> Readers {
        let mut h = Readers {
            dir: tempfile::tempdir().expect("temporary directory"),
            log: None,
            options,
        };
        h.restart().await;
        h
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("events.redb")
    }
}

impl Harness for Readers {
    type Log = Split;

    fn log(&self) -> &Split {
        self.log.as_ref().expect("the log is open")
    }

    async fn restart(&mut self) {
        self.log = None;
        let writer = RedbLog::open_with_options(self.path(), self.options.clone())
            .await
            .expect("open the writer");
        let reader = RedbLog::open_read_only(self.path())
            .await
            .expect("open a reader beside the writer");
        self.log = Some(Split { writer, reader });
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

conformance_tests!(Readers::new());

/// The same suite with the writer merging its index every 3 events.
mod merging_often {
    use super::Readers;
    crate::conformance_tests!(Readers::merging_often());
}

// --- A writer in another process -------------------------------------------------------

/// The log file the writer process opens.
const WRITER_LOG: &str = "KTD_TEST_WRITER_LOG";
/// Its `RedbOptions::index_merge_at`.
const WRITER_MERGE_AT: &str = "KTD_TEST_WRITER_MERGE_AT";
/// What starts each of its replies on stdout (libtest prints there too).
const REPLY: &str = "writer: ";

/// A [`RedbLog`] writing in a child process, driven through its stdin.
struct WriterProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl WriterProcess {
    async fn spawn(path: &Path, index_merge_at: usize) -> WriterProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ktd-log-test-writer"))
            .env(WRITER_LOG, path)
            .env(WRITER_MERGE_AT, index_merge_at.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the writer process");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut writer = WriterProcess {
            child,
            stdin,
            stdout,
        };
        assert_eq!(writer.reply().await, "ready");
        writer
    }

    async fn reply(&mut self) -> String {
        loop {
            let line = self
                .stdout
                .next_line()
                .await
                .expect("read the writer's output")
                .expect("the writer process ended early (its error is above)");
            if let Some(reply) = line.strip_prefix(REPLY) {
                return reply.to_owned();
            }
        }
    }

    async fn send(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the writer is running");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("send a command");
        stdin.flush().await.expect("flush");
        self.reply().await
    }

    /// Appends observations `from..to` in the writer; returns its last sequence.
    async fn append(&mut self, from: u64, to: u64) -> u64 {
        let reply = self.send(&format!("append {from} {to}")).await;
        reply.parse().expect("the last sequence")
    }

    /// Ends the writer's input: it closes the log and exits.
    async fn close(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().await.expect("wait for the writer");
        assert!(status.success(), "the writer process failed: {status}");
    }

    /// `kill -9`: the log is left as a crash leaves it.
    async fn kill(mut self) {
        self.child.kill().await.expect("kill the writer");
    }
}

fn open_reason(err: LogError) -> String {
    match err {
        LogError::Open { reason, .. } => reason,
        other => panic!("expected an Open error, got {other:?}"),
    }
}

async fn seqs_and_ids(log: &RedbReader, from: u64) -> Vec<(u64, EventId)> {
    log.read(Stream::Observations, from, usize::MAX >> 1)
        .await
        .expect("read")
        .into_iter()
        .map(|r| {
            let env = r.expect("readable");
            (env.seq, env.id)
        })
        .collect()
}

/// Takes `n` readable records from a tail; fails the test on an error, or when they do not
/// come in 30 s (a hung tail, not a slow one: the writer committed them before).
async fn take(
    tail: &mut BoxStream<'static, Result<Record, LogError>>,
    n: usize,
) -> Vec<(u64, EventId)> {
    let records = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tail.take(n).collect::<Vec<_>>(),
    )
    .await
    .expect("the tail delivers what was committed");
    assert_eq!(records.len(), n, "the tail ended early");
    records
        .into_iter()
        .map(|r| {
            let env = r.expect("tail").expect("readable");
            (env.seq, env.id)
        })
        .collect()
}

fn expected(range: std::ops::Range<u64>) -> Vec<(u64, EventId)> {
    range.map(|n| (n + 1, obs(n).id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_follows_a_writer_in_another_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    // The writer merges its in-memory ids into the index once 64 are pending.
    let mut writer = WriterProcess::spawn(&path, 64).await;
    assert_eq!(writer.append(0, 50).await, 50);

    let reader = RedbLog::open_read_only(&path).await.expect("open a reader");
    assert_eq!(seqs_and_ids(&reader, 1).await, expected(0..50));
    assert_eq!(
        reader.last_seq(Stream::Observations).await.expect("last"),
        50
    );
    assert_eq!(reader.last_seq(Stream::Derived).await.expect("last"), 0);
    // These ids are only in the writer's memory so far; the reader finds them anyway.
    let find = |n: u64| {
        let reader = reader.clone();
        async move {
            reader
                .find(Stream::Observations, obs(n).id)
                .await
                .expect("find")
        }
    };
    assert_eq!(find(10).await, Some(11));
    assert_eq!(find(49).await, Some(50));
    assert_eq!(find(50).await, None);

    // A live tail from the start: the history, then what the writer commits from now on.
    let mut tail = reader.tail(Stream::Observations, 1);
    assert_eq!(take(&mut tail, 50).await, expected(0..50));
    // Nothing more yet: the tail waits for the writer's next commit.
    let more = tokio::time::timeout(POLL_INTERVAL * 2, tail.next()).await;
    assert!(more.is_err(), "no record beyond the end: {more:?}");
    // 70 pending ids: the writer merges them into its index in this commit.
    assert_eq!(writer.append(50, 70).await, 70);
    assert_eq!(writer.append(70, 75).await, 75);
    assert_eq!(
        take(&mut tail, 25).await,
        expected(50..75),
        "the tail delivers the other process's commits, in order, once"
    );
    // Before and after the merge the reader saw: in the index, and in the writer's memory.
    assert_eq!(find(10).await, Some(11));
    assert_eq!(find(69).await, Some(70));
    assert_eq!(find(72).await, Some(73));
    assert_eq!(find(75).await, None);

    // Checkpoints: the reader loads what the writer stored, and stores nothing.
    assert_eq!(writer.send("checkpoint 75").await, "stored");
    assert_eq!(
        reader.load("views/test").await.expect("load"),
        Some(Checkpoint {
            seq: 75,
            state: b"from the writer".to_vec()
        })
    );
    let err = reader
        .store("views/test", Checkpoint::default())
        .await
        .expect_err("a reader stores nothing");
    assert!(
        matches!(err, LogError::ReadOnly { .. }) && !err.is_retryable(),
        "{err:?}"
    );
    // Nor does it append, and the message says who does.
    let err = reader
        .append(Stream::Observations, batch(100..101))
        .await
        .expect_err("a reader appends nothing");
    assert!(
        matches!(err, LogError::ReadOnly { .. }) && !err.is_retryable(),
        "{err:?}"
    );
    assert!(err.to_string().contains("ktd run"), "{err}");
    assert_eq!(find(100).await, None);

    // One writer only: a second one is refused while the first runs.
    let reason = open_reason(RedbLog::open(&path).await.expect_err("a second writer"));
    assert!(reason.contains("another process"), "{reason}");
    // Readers are not limited.
    let second = RedbLog::open_read_only(&path)
        .await
        .expect("a second reader");
    assert_eq!(
        second.last_seq(Stream::Observations).await.expect("last"),
        75
    );

    // The writer stops cleanly; the readers stay open and do not keep a new writer out.
    writer.close().await;
    assert_eq!(seqs_and_ids(&reader, 1).await, expected(0..75));
    let again = RedbLog::open(&path)
        .await
        .expect("a new writer beside the readers");
    again
        .append(Stream::Observations, batch(75..80))
        .await
        .expect("append");
    assert_eq!(
        take(&mut tail, 5).await,
        expected(75..80),
        "the tail follows the next writer too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_left_by_a_crashed_writer_is_recovered_by_the_next_writer_before_it_opens_for_reading()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    let mut writer = WriterProcess::spawn(&path, 64).await;
    assert_eq!(writer.append(0, 10).await, 10);
    let before = RedbLog::open_read_only(&path).await.expect("a reader");
    writer.kill().await;

    // A reader that was open keeps what was committed.
    assert_eq!(seqs_and_ids(&before, 1).await, expected(0..10));
    drop(before);
    // A new reader is refused until a writer has recovered the file, and says so.
    let reason = open_reason(
        RedbLog::open_read_only(&path)
            .await
            .expect_err("the file needs recovery"),
    );
    assert!(
        reason.contains("not closed cleanly") && reason.contains("start `ktd run`"),
        "{reason}"
    );
    // The next writer recovers it: nothing committed is lost.
    let recovered = RedbLog::open(&path)
        .await
        .expect("a writer recovers the file");
    assert_eq!(
        recovered
            .last_seq(Stream::Observations)
            .await
            .expect("last"),
        10
    );
    let reader = RedbLog::open_read_only(&path)
        .await
        .expect("readable again");
    assert_eq!(seqs_and_ids(&reader, 1).await, expected(0..10));
    assert_eq!(
        reader
            .find(Stream::Observations, obs(9).id)
            .await
            .expect("find"),
        Some(10)
    );
}

// --- What a read-only open refuses, and old files --------------------------------------

#[tokio::test]
async fn a_missing_log_says_that_ktd_run_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    let reason = open_reason(RedbLog::open_read_only(&path).await.expect_err("no file"));
    assert!(reason.contains("`ktd run` creates it"), "{reason}");
    assert!(!path.exists(), "a reader creates nothing");
    let reason = open_reason(
        RedbLog::open_read_only(dir.path())
            .await
            .expect_err("a directory"),
    );
    assert!(reason.contains("directory"), "{reason}");
}

#[tokio::test]
async fn a_file_that_is_not_a_ktd_log_is_refused_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in [
        ("junk.redb", vec![0x5a; 64 * 1024]),
        ("empty.redb", Vec::new()),
    ] {
        let junk = dir.path().join(name);
        std::fs::write(&junk, &bytes).expect("write");
        let reason = open_reason(RedbLog::open_read_only(&junk).await.expect_err(name));
        assert!(reason.contains("not a ktd event log"), "{name}: {reason}");
        assert_eq!(
            std::fs::read(&junk).expect("read back"),
            bytes,
            "left as it was"
        );
    }
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
    let reason = open_reason(
        RedbLog::open_read_only(&other)
            .await
            .expect_err("another database"),
    );
    assert!(reason.contains("not a ktd event log"), "{reason}");
}

#[tokio::test]
async fn a_log_from_a_newer_ktd_is_refused_read_only() {
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
    let reason = open_reason(
        RedbLog::open_read_only(&path)
            .await
            .expect_err("newer format"),
    );
    assert!(reason.contains("upgrade ktd"), "{reason}");
}

/// Older ktd versions opened the log in redb's default mode: the whole file locked while
/// they ran, one-phase commits. Their files read and write as any other; while one of them
/// runs, a reader says what keeps it out.
#[tokio::test]
async fn a_log_of_an_older_ktd_is_readable_and_an_exclusive_writer_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    {
        let log = RedbLog::open(&path).await.expect("create");
        log.append(Stream::Observations, batch(0..3))
            .await
            .expect("append");
    }
    // Another record, committed in the default mode as an older ktd did.
    let old = redb::Database::create(&path).expect("open in redb's default mode");
    {
        let txn = old.begin_write().expect("write");
        {
            let mut table = txn
                .open_table(tables::events(Stream::Observations))
                .expect("table");
            let mut env = obs(3);
            env.seq = 4;
            let bytes = ktd_model::encode(&env).expect("encode");
            table.insert(4, bytes.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }
    let reason = open_reason(
        RedbLog::open_read_only(&path)
            .await
            .expect_err("the file is locked as a whole"),
    );
    assert!(reason.contains("older than this one"), "{reason}");
    drop(old);

    let reader = RedbLog::open_read_only(&path).await.expect("readable");
    assert_eq!(seqs_and_ids(&reader, 1).await, expected(0..4));
    assert_eq!(
        reader
            .find(Stream::Observations, obs(3).id)
            .await
            .expect("find"),
        Some(4)
    );
    let writer = RedbLog::open(&path).await.expect("and writable");
    let out = writer
        .append(Stream::Observations, batch(2..6))
        .await
        .expect("append");
    assert_eq!(out.seqs, [3, 4, 5, 6]);
}
