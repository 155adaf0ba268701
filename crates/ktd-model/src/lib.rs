//! # ktd-model
//!
//! The vocabulary every other ktd crate speaks: the envelope and its events,
//! the normalized Kubernetes and TrueNAS resources they carry, deterministic ids, the
//! finding catalogue, and the msgpack codec. Pure data and pure functions: no IO,
//! no async runtime.

pub mod finding;
pub mod id;
pub mod time;

pub use finding::{Finding, FindingKind, Related, ResourceRef, Severity, System};
pub use id::{EventId, FindingId, IdHasher};
pub use time::Timestamp;
