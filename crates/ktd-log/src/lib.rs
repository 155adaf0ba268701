//! # ktd-log
//!
//! The append-only event log every observation lands in, exactly once: two narrow traits
//! ([`EventLog`], [`ConsumerStore`]) and their backends — [`embedded::RedbLog`] (redb, the
//! default) and [`jetstream::JetStreamLog`] (NATS JetStream, scale-out). Both pass the same
//! conformance suite (`tests/common/`).

pub mod embedded;
mod error;
pub mod jetstream;
mod log;

pub use error::LogError;
pub use log::{
    AppendOutcome, Checkpoint, ConsumerStore, EventLog, Record, Stream, UnreadableRecord,
    record_seq,
};
