//! # ktd-log
//!
//! The append-only event log every observation lands in, exactly once: two narrow traits
//! ([`EventLog`], [`ConsumerStore`]) and their backends — embedded (redb, the default) and
//! NATS JetStream (scale-out). Both pass the same conformance suite.

mod error;
mod log;

pub use error::LogError;
pub use log::{
    AppendOutcome, Checkpoint, ConsumerStore, EventLog, Record, Stream, UnreadableRecord,
};
