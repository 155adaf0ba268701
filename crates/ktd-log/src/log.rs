//! The two narrow traits every backend implements: [`EventLog`] (idempotent batch
//! append, reads and live tail) and [`ConsumerStore`] (durable consumer checkpoints that
//! hold the consumer's state and position together).

use std::future::Future;

use futures::stream::BoxStream;
use ktd_model::{CodecError, Envelope, Event, EventId};

/// The two logs of ktd: what sources observed, and what ktd derived from it. They are
/// separate so that rebuilding a view never re-reads its own output, and so JetStream can
/// keep them as two streams with their own retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Observations (`ktd.v1.obs.>`): Kubernetes and TrueNAS sources, ticks.
    Observations,
    /// Derived events (`ktd.v1.findings.>`, `ktd.v1.audit.>`): findings, notifications,
    /// remediation, API audit.
    Derived,
}

impl Stream {
    /// The stream an event belongs to.
    pub fn of(event: &Event) -> Stream {
        if event.is_derived() {
            Stream::Derived
        } else {
            Stream::Observations
        }
    }

    /// Both streams.
    pub const ALL: [Stream; 2] = [Stream::Observations, Stream::Derived];

    /// Lower-case name (`observations`, `derived`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Stream::Observations => "observations",
            Stream::Derived => "derived",
        }
    }
}

/// What an append did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The sequence of each input event, in input order: the new sequence for appended
    /// events, the existing one for duplicates.
    pub seqs: Vec<u64>,
    /// Events appended.
    pub appended: u64,
    /// Events skipped because their id was already in the log (or earlier in the batch).
    pub duplicates: u64,
}

/// A record that is in the log but cannot be read by this build (corrupt, or written by a
/// newer ktd). Readers skip it and report it; they never stop or loop on it.
#[derive(Debug, thiserror::Error)]
#[error("log record {seq} is unreadable")]
pub struct UnreadableRecord {
    /// Its sequence.
    pub seq: u64,
    /// Why.
    #[source]
    pub error: CodecError,
}

/// One entry of a read: an event, or a record that could not be decoded.
pub type Record = Result<Envelope, UnreadableRecord>;

/// An append-only, de-duplicating event log.
///
/// Sequences start at 1 and are dense per [`Stream`]. Appends are atomic per batch and
/// durable when they return (fsync for the embedded log, a stream ack for JetStream).
pub trait EventLog: Send + Sync + 'static {
    /// Appends `events` to `stream`. Events whose id is already in the stream are not
    /// appended again; their existing sequence is returned instead.
    fn append(
        &self,
        stream: Stream,
        events: Vec<Envelope>,
    ) -> impl Future<Output = Result<AppendOutcome, crate::LogError>> + Send;

    /// Reads up to `max` records of `stream` starting at `from_seq` (inclusive).
    fn read(
        &self,
        stream: Stream,
        from_seq: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Record>, crate::LogError>> + Send;

    /// The sequence of the last record of `stream` (0 when empty).
    fn last_seq(&self, stream: Stream)
    -> impl Future<Output = Result<u64, crate::LogError>> + Send;

    /// Whether an event with this id is in `stream`, and at which sequence.
    fn find(
        &self,
        stream: Stream,
        id: EventId,
    ) -> impl Future<Output = Result<Option<u64>, crate::LogError>> + Send;

    /// Every record of `stream` from `from_seq` on, then new ones as they are appended
    /// (live tail). The stream ends only on an error that makes the log unusable.
    fn tail(
        &self,
        stream: Stream,
        from_seq: u64,
    ) -> BoxStream<'static, Result<Record, crate::LogError>>;
}

/// A consumer's durable position and state, written together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last sequence the consumer applied.
    pub seq: u64,
    /// The consumer's serialized state as of `seq` (empty for stateless consumers).
    pub state: Vec<u8>,
}

/// Durable consumer checkpoints.
pub trait ConsumerStore: Send + Sync + 'static {
    /// The consumer's last checkpoint, if any.
    fn load(
        &self,
        consumer: &str,
    ) -> impl Future<Output = Result<Option<Checkpoint>, crate::LogError>> + Send;

    /// Stores a checkpoint atomically (state and position together, or neither).
    fn store(
        &self,
        consumer: &str,
        checkpoint: Checkpoint,
    ) -> impl Future<Output = Result<(), crate::LogError>> + Send;
}
