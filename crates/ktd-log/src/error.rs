//! Log errors.

/// What went wrong with the log. Each variant says whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store could not be opened (missing directory, permissions, another process holds
    /// the lock, not a ktd log). Not retryable: fix the path or stop the other process.
    #[error("cannot open the event log at {path}: {reason}")]
    Open {
        /// Where.
        path: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Writing failed (disk full, read-only file system, I/O error). Nothing of the batch
    /// was stored. Retryable once the cause is fixed; the daemon exits non-zero.
    #[error("cannot write to the event log: {0}")]
    Write(String),
    /// Reading failed (I/O error, corruption detected by checksums). Not retryable.
    #[error("cannot read the event log: {0}")]
    Read(String),
    /// The log server is unreachable or timed out (JetStream). Retryable.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The batch was refused as a whole because an event does not belong to the stream it
    /// was appended to (its subject or kind is for the other stream). Nothing was stored.
    /// Not retryable: a bug in the caller, which must append it to [`crate::Stream::of`].
    #[error(
        "event {id} ({subject}) does not belong to the {stream} stream; append it to the {expected} stream"
    )]
    WrongStream {
        /// The event's id.
        id: ktd_model::EventId,
        /// The event's subject.
        subject: String,
        /// The stream it was appended to.
        stream: &'static str,
        /// The stream it belongs to.
        expected: &'static str,
    },
    /// A write (an append, a checkpoint) was asked of a read-only handle
    /// ([`crate::embedded::RedbLog::open_read_only`]). Nothing was stored. Not retryable:
    /// only the `ktd run` that has the log open writes to it.
    #[error(
        "the event log at {path} is open read-only, so {operation} is refused; only `ktd run` writes to its embedded log"
    )]
    ReadOnly {
        /// Which log.
        path: String,
        /// What was refused (`appending`, `storing a checkpoint`).
        operation: &'static str,
    },
    /// An event could not be encoded. Not retryable (a bug).
    #[error("cannot encode an event")]
    Encode(#[source] ktd_model::CodecError),
}

impl LogError {
    /// Whether the same operation may succeed if retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LogError::Unavailable(_) | LogError::Write(_))
    }
}
