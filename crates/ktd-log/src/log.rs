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

    /// The subject prefixes of this stream's events (JetStream subjects end in `>`).
    pub const fn subject_prefixes(self) -> &'static [&'static str] {
        match self {
            Stream::Observations => &["ktd.v1.obs."],
            Stream::Derived => &["ktd.v1.findings.", "ktd.v1.audit."],
        }
    }

    /// Checks that `envelope` belongs to this stream: by its event kind and by its subject
    /// (JetStream routes by subject, so both must agree).
    pub fn check(self, envelope: &Envelope) -> Result<(), crate::LogError> {
        let by_kind = Stream::of(&envelope.event);
        let by_subject = self
            .subject_prefixes()
            .iter()
            .any(|p| envelope.subject.starts_with(p));
        if by_kind == self && by_subject {
            Ok(())
        } else {
            Err(crate::LogError::WrongStream {
                id: envelope.id,
                subject: envelope.subject.clone(),
                stream: self.as_str(),
                expected: by_kind.as_str(),
            })
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

/// The sequence of a record, readable or not.
pub fn record_seq(record: &Record) -> u64 {
    match record {
        Ok(envelope) => envelope.seq,
        Err(unreadable) => unreadable.seq,
    }
}

/// An append-only, de-duplicating event log.
///
/// Sequences start at 1 and are dense per [`Stream`]. Appends are durable when they return
/// (fsync for the embedded log, a stream ack for every event for JetStream). The embedded
/// log appends a batch atomically; JetStream may store a prefix of a batch that failed,
/// which is harmless because the caller retries the same batch and ids de-duplicate.
///
/// Idempotency: the embedded log de-duplicates by id forever; JetStream de-duplicates
/// within the stream's duplicate window (`Nats-Msg-Id`), and consumers skip ids they have
/// already applied (see `docs/adr/0002-event-ids-and-idempotency.md`).
pub trait EventLog: Send + Sync + 'static {
    /// Appends `events` to `stream`. Events whose id is already in the stream are not
    /// appended again; their existing sequence is returned instead. Every event must belong
    /// to `stream` ([`Stream::check`]), otherwise nothing is appended and the error is
    /// [`crate::LogError::WrongStream`].
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

impl Checkpoint {
    /// The stored form: `seq` (u64, little-endian) followed by the state, one value so that
    /// backends write both at once.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(8 + self.state.len());
        value.extend_from_slice(&self.seq.to_le_bytes());
        value.extend_from_slice(&self.state);
        value
    }

    /// The inverse of [`Checkpoint::to_bytes`]; `None` when shorter than a sequence.
    pub fn from_bytes(value: &[u8]) -> Option<Checkpoint> {
        let (seq, state) = value.split_first_chunk::<8>()?;
        Some(Checkpoint {
            seq: u64::from_le_bytes(*seq),
            state: state.to_vec(),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_bytes_round_trip() {
        let cp = Checkpoint {
            seq: 42,
            state: b"state".to_vec(),
        };
        assert_eq!(Checkpoint::from_bytes(&cp.to_bytes()), Some(cp));
        let empty = Checkpoint::default();
        assert_eq!(Checkpoint::from_bytes(&empty.to_bytes()), Some(empty));
        assert_eq!(Checkpoint::from_bytes(&[1, 2, 3]), None);
    }
}
