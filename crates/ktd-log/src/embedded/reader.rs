//! The read-only handle of an embedded log: what `ktd events tail`, `ktd orphans` and
//! `ktd snapshots` use, beside the `ktd run` that writes the file.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use ktd_model::{Envelope, EventId};
use redb::ReadOnlyDatabase;
use tracing::{Instrument, debug, debug_span};

use super::{TAIL_PAGE, blocking, index, store};
use crate::{
    AppendOutcome, Checkpoint, ConsumerStore, EventLog, LogError, Record, Stream, record_seq,
};

/// How often a [`RedbReader`]'s live tail looks for records the writer committed since.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A read-only handle on an embedded log, opened with [`super::RedbLog::open_read_only`].
/// Cheap to clone (all clones share one database handle).
///
/// It reads what the writer — a [`super::RedbLog`], usually in a `ktd run` process — has
/// committed: every read starts from the writer's latest commit, and [`EventLog::tail`]
/// polls for new commits every [`POLL_INTERVAL`]. [`EventLog::find`] answers for every event,
/// including those whose ids the writer still keeps in memory (see `index.rs`): the reader
/// reads their ids from the records after the last index merge. [`EventLog::append`] and
/// [`ConsumerStore::store`] fail with [`LogError::ReadOnly`].
///
/// If the writer crashes, the reader keeps reading what was committed; a new writer recovers
/// the file when it opens it, and the reader follows it.
#[derive(Clone)]
pub struct RedbReader {
    inner: Arc<Inner>,
}

struct Inner {
    db: ReadOnlyDatabase,
    /// The ids of the events after the writer's last index merge.
    recent: Mutex<index::Recent>,
    label: String,
}

impl std::fmt::Debug for RedbReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbReader")
            .field("path", &self.inner.label)
            .finish_non_exhaustive()
    }
}

impl RedbReader {
    pub(super) async fn open(path: PathBuf) -> Result<RedbReader, LogError> {
        let label = path.display().to_string();
        let span = debug_span!("ktd_log.open_read_only", path = %label);
        let db = blocking(move || store::open_read_only(&path))
            .instrument(span)
            .await?;
        debug!(path = %label, "event log open read-only");
        Ok(RedbReader {
            inner: Arc::new(Inner {
                db,
                recent: Mutex::new(index::Recent::default()),
                label,
            }),
        })
    }

    fn refuse(&self, operation: &'static str) -> LogError {
        LogError::ReadOnly {
            path: self.inner.label.clone(),
            operation,
        }
    }
}

impl EventLog for RedbReader {
    async fn append(
        &self,
        _stream: Stream,
        _events: Vec<Envelope>,
    ) -> Result<AppendOutcome, LogError> {
        Err(self.refuse("appending"))
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
        let inner = self.inner.clone();
        blocking(move || store::last_seq(&inner.db, stream)).await
    }

    async fn find(&self, stream: Stream, id: EventId) -> Result<Option<u64>, LogError> {
        let inner = self.inner.clone();
        blocking(move || {
            let mut recent = inner.recent.lock().map_err(|_| {
                LogError::Read(
                    "an earlier lookup panicked; reopen the log (this is a bug, please report it)"
                        .into(),
                )
            })?;
            recent.find(&inner.db, stream, id.as_u128())
        })
        .await
    }

    fn tail(&self, stream: Stream, from_seq: u64) -> BoxStream<'static, Result<Record, LogError>> {
        struct State {
            inner: Arc<Inner>,
            next: u64,
            buf: VecDeque<Record>,
            failed: bool,
        }
        let state = State {
            inner: self.inner.clone(),
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
                let (inner, from) = (st.inner.clone(), st.next);
                match blocking(move || store::read(&inner.db, stream, from, TAIL_PAGE)).await {
                    Ok(records) => match records.last().map(record_seq) {
                        Some(last) => {
                            st.next = last + 1;
                            st.buf.extend(records);
                        }
                        // Nothing new: the writer is another process, so look again later.
                        None => tokio::time::sleep(POLL_INTERVAL).await,
                    },
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                }
            }
        })
        .boxed()
    }
}

impl ConsumerStore for RedbReader {
    async fn load(&self, consumer: &str) -> Result<Option<Checkpoint>, LogError> {
        let inner = self.inner.clone();
        let consumer = consumer.to_owned();
        blocking(move || store::load(&inner.db, &consumer)).await
    }

    async fn store(&self, _consumer: &str, _checkpoint: Checkpoint) -> Result<(), LogError> {
        Err(self.refuse("storing a checkpoint"))
    }
}
