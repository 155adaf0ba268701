//! # ktd-log
//!
//! The append-only event log every observation lands in. The traits, the embedded (redb)
//! backend and the NATS JetStream backend arrive with the ingest work; this crate marks the
//! boundary: it depends on `ktd-model` only.
