//! # ktd-log
//!
//! The append-only event log every observation lands in, exactly once: two narrow traits
//! ([`EventLog`], [`ConsumerStore`]) and their backends — [`embedded::RedbLog`] (redb, the
//! default; other processes read it meanwhile through [`embedded::RedbReader`]) and
//! [`jetstream::JetStreamLog`] (NATS JetStream, scale-out). Both pass the same conformance
//! suite (`tests/common/`); their trade-offs are in
//! `docs/adr/0003-log-backends-indexes-and-limits.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ktd_log::{EventLog, Stream, embedded::RedbLog};
//! use ktd_model::{Envelope, Event, SourceId, Timestamp};
//!
//! let dir = tempfile::tempdir()?;
//! let log = RedbLog::open(dir.path().join("events.redb")).await?;
//! let removed = Envelope::new(
//!     SourceId::truenas("nas01"),
//!     Timestamp::from_unix_secs(1_700_000_000),
//!     Event::DatasetRemoved { name: "tank/k8s/vols/pvc-1".into() },
//!     b"poll 7",
//! );
//! let first = log.append(Stream::Observations, vec![removed.clone()]).await?;
//! let again = log.append(Stream::Observations, vec![removed]).await?;
//! assert_eq!((first.seqs, again.duplicates), (vec![1], 1));
//! # Ok(())
//! # }
//! ```
//!
//! The JetStream backend needs a server (2.10+):
//!
//! ```no_run
//! # async fn run() -> Result<(), ktd_log::LogError> {
//! use ktd_log::jetstream::{JetStreamConfig, JetStreamLog};
//!
//! let log = JetStreamLog::connect(JetStreamConfig::new("nats://127.0.0.1:4222")).await?;
//! # Ok(())
//! # }
//! ```

pub mod embedded;
mod error;
pub mod jetstream;
mod log;

pub use error::LogError;
pub use log::{
    AppendOutcome, Checkpoint, ConsumerStore, EventLog, Record, Stream, UnreadableRecord,
    record_seq,
};
