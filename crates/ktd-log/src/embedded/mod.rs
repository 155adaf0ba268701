//! The embedded event log: one redb file, one writer, fsync per batch
//! (`docs/adr/0001-embedded-log-on-redb.md`), and any number of read-only handles in other
//! processes ([`RedbReader`]) that follow the writer's commits.
//!
//! Layout ([`tables`]): per stream a table `seq → encoded envelope` and an index
//! `event id → seq`; one table of consumer checkpoints (`name → seq + state`, one value, so
//! both change atomically); a meta table with a format marker and version, so that ktd never
//! mistakes another redb file for its log.
//!
//! redb is synchronous: every operation runs on `tokio::task::spawn_blocking`. Live tails
//! wait on a `tokio::sync::watch` of each stream's last sequence, updated after each commit;
//! a [`RedbReader`] in another process cannot share it, so its tails poll.
//!
//! The writer opens the file in redb's `ConcurrencyMode::SingleWriter`: one process writes,
//! others may open it read-only (`docs/adr/0003-log-backends-indexes-and-limits.md`).

mod index;
mod reader;
mod store;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::stream::{self, BoxStream, StreamExt};
use ktd_model::{Envelope, EventId};
use redb::{Database, StorageBackend};
use tokio::sync::watch;
use tracing::{Instrument, debug, debug_span};

pub use reader::{POLL_INTERVAL, RedbReader};
pub use store::{FORMAT, FORMAT_VERSION, tables};

use crate::{
    AppendOutcome, Checkpoint, ConsumerStore, EventLog, LogError, Record, Stream, record_seq,
};

/// How many records a live tail reads per transaction.
const TAIL_PAGE: usize = 1024;

/// Tuning of the embedded log. The defaults suit ktd; tests use small values to exercise
/// rare paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedbOptions {
    /// How many ids of new events are kept in memory before they are merged, sorted, into
    /// the on-disk id index (in the transaction of the append that reaches the number).
    /// Larger values make appends cheaper and use more memory (about 40 bytes per id) and
    /// open time (the ids after the last merge are read back). Default: 65,536.
    pub index_merge_at: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            index_merge_at: index::MERGE_AT,
        }
    }
}

/// The embedded event log. Cheap to clone (all clones share one database).
#[derive(Clone)]
pub struct RedbLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Ids appended since the last index merge (see `index`).
    pending: Mutex<index::Pending>,
    options: RedbOptions,
    /// Last committed sequence of each stream, in [`Stream::ALL`] order.
    last: [watch::Sender<u64>; 2],
    label: String,
}

impl std::fmt::Debug for RedbLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLog")
            .field("path", &self.inner.label)
            .finish_non_exhaustive()
    }
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Observations => 0,
        Stream::Derived => 1,
    }
}

impl RedbLog {
    /// Opens the log at `path` for writing, creating the file if it does not exist. Other
    /// processes may read it meanwhile with [`RedbLog::open_read_only`].
    ///
    /// Fails with [`LogError::Open`] when the directory is missing, the file is not writable,
    /// another process writes to it, or it is not a ktd log (or one written by a newer ktd).
    pub async fn open(path: impl AsRef<Path>) -> Result<RedbLog, LogError> {
        RedbLog::open_with_options(path, RedbOptions::default()).await
    }

    /// Opens an existing log read-only, while a `ktd run` in another process writes to it
    /// or while none does: see [`RedbReader`]. Takes no lock that would keep a writer out.
    ///
    /// Fails with [`LogError::Open`], saying what to do, when there is no file at `path`, it
    /// is not a ktd log or was written by a newer ktd, its writer crashed and nobody has
    /// reopened it for writing since (which recovers it), or a process holds it exclusively
    /// (an older ktd).
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<RedbReader, LogError> {
        RedbReader::open(path.as_ref().to_owned()).await
    }

    /// [`RedbLog::open`] with non-default [`RedbOptions`].
    pub async fn open_with_options(
        path: impl AsRef<Path>,
        options: RedbOptions,
    ) -> Result<RedbLog, LogError> {
        let path = path.as_ref().to_owned();
        let label = path.display().to_string();
        let span = debug_span!("ktd_log.open", path = %label);
        let db = blocking(move || store::open_file(&path))
            .instrument(span)
            .await?;
        RedbLog::from_db(db, label, options).await
    }

    /// Opens a log stored on a custom redb storage backend. `label` names it in errors and
    /// traces. Tests use this to inject IO faults (a full disk, a read-only device).
    pub async fn open_with_backend(
        backend: impl StorageBackend,
        label: impl Into<String>,
    ) -> Result<RedbLog, LogError> {
        let label = label.into();
        let l = label.clone();
        let db = blocking(move || store::open_backend(backend, &l)).await?;
        RedbLog::from_db(db, label, RedbOptions::default()).await
    }

    async fn from_db(
        db: Database,
        label: String,
        options: RedbOptions,
    ) -> Result<RedbLog, LogError> {
        let (db, lasts, pending) = blocking(move || {
            let lasts = [
                store::last_seq(&db, Stream::Observations)?,
                store::last_seq(&db, Stream::Derived)?,
            ];
            let pending = index::Pending::load(&db)?;
            Ok((db, lasts, pending))
        })
        .await?;
        debug!(path = %label, observations = lasts[0], derived = lasts[1], "event log open");
        Ok(RedbLog {
            inner: Arc::new(Inner {
                db,
                pending: Mutex::new(pending),
                options,
                last: lasts.map(|l| watch::channel(l).0),
                label,
            }),
        })
    }

    /// The number of records in `stream` (equal to [`EventLog::last_seq`] for a log written
    /// only through this type).
    pub async fn len(&self, stream: Stream) -> Result<u64, LogError> {
        let inner = self.inner.clone();
        blocking(move || store::len(&inner.db, stream)).await
    }

    /// Whether `stream` is empty.
    pub async fn is_empty(&self, stream: Stream) -> Result<bool, LogError> {
        Ok(self.len(stream).await? == 0)
    }
}

/// Runs a blocking redb operation off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        LogError::Read(format!(
            "an event log task failed ({e}); this is a bug, please report it"
        ))
    })?
}

impl EventLog for RedbLog {
    async fn append(
        &self,
        stream: Stream,
        events: Vec<Envelope>,
    ) -> Result<AppendOutcome, LogError> {
        let inner = self.inner.clone();
        let span = debug_span!(
            "ktd_log.append",
            backend = "redb",
            stream = stream.as_str(),
            events = events.len()
        );
        async move {
            let (outcome, last) = blocking(move || {
                let merge_at = inner.options.index_merge_at.max(1);
                let result = store::append(&inner.db, &inner.pending, merge_at, stream, events)?;
                if result.0.appended > 0 {
                    inner.last[index(stream)].send_replace(result.1);
                }
                Ok(result)
            })
            .await?;
            debug!(
                appended = outcome.appended,
                duplicates = outcome.duplicates,
                last,
                "appended"
            );
            Ok(outcome)
        }
        .instrument(span)
        .await
    }

    async fn read(
        &self,
        stream: Stream,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        let inner = self.inner.clone();
        blocking(move || store::read(&inner.db, stream, from_seq, max)).await
    }

    async fn last_seq(&self, stream: Stream) -> Result<u64, LogError> {
        Ok(*self.inner.last[index(stream)].borrow())
    }

    async fn find(&self, stream: Stream, id: EventId) -> Result<Option<u64>, LogError> {
        let inner = self.inner.clone();
        blocking(move || store::find(&inner.db, &inner.pending, stream, id.as_u128())).await
    }

    fn tail(&self, stream: Stream, from_seq: u64) -> BoxStream<'static, Result<Record, LogError>> {
        struct State {
            inner: Arc<Inner>,
            rx: watch::Receiver<u64>,
            next: u64,
            buf: VecDeque<Record>,
            failed: bool,
        }
        let rx = self.inner.last[index(stream)].subscribe();
        let state = State {
            inner: self.inner.clone(),
            rx,
            next: from_seq.max(1),
            buf: VecDeque::new(),
            failed: false,
        };
        stream::unfold(state, move |mut st| async move {
            loop {
                if st.failed {
                    return None;
                }
                if let Some(record) = st.buf.pop_front() {
                    return Some((Ok(record), st));
                }
                let last = *st.rx.borrow_and_update();
                if last >= st.next {
                    let (inner, from) = (st.inner.clone(), st.next);
                    match blocking(move || store::read(&inner.db, stream, from, TAIL_PAGE)).await {
                        Ok(records) => {
                            if let Some(seq) = records.last().map(record_seq) {
                                st.next = seq + 1;
                            } else {
                                // Nothing at or after `next` although `last` is beyond it:
                                // records were removed by hand. Wait for new ones.
                                st.next = last + 1;
                            }
                            st.buf.extend(records);
                        }
                        Err(e) => {
                            st.failed = true;
                            return Some((Err(e), st));
                        }
                    }
                    continue;
                }
                if st.rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .boxed()
    }
}

impl ConsumerStore for RedbLog {
    async fn load(&self, consumer: &str) -> Result<Option<Checkpoint>, LogError> {
        let inner = self.inner.clone();
        let consumer = consumer.to_owned();
        blocking(move || store::load(&inner.db, &consumer)).await
    }

    async fn store(&self, consumer: &str, checkpoint: Checkpoint) -> Result<(), LogError> {
        let inner = self.inner.clone();
        let consumer = consumer.to_owned();
        blocking(move || store::store(&inner.db, &consumer, &checkpoint)).await
    }
}
