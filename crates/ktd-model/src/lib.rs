//! # ktd-model
//!
//! The vocabulary every other ktd crate speaks: the [`Envelope`] and its [`Event`]s, the
//! normalized Kubernetes ([`kube`]) and TrueNAS ([`truenas`]) resources they carry, the
//! [`normalize`]rs that build those from raw API JSON, deterministic [`id`]s, the finding
//! catalogue ([`finding`]), and the msgpack [`codec`] with schema versions and upcasting.
//!
//! Pure data and pure functions: no IO, no async runtime.

pub mod codec;
pub mod envelope;
pub mod event;
pub mod finding;
pub mod id;
pub mod kube;
pub mod normalize;
pub mod schema;
pub mod time;
pub mod truenas;

pub use codec::{CodecError, SCHEMA_VERSION, decode, encode};
pub use envelope::{Envelope, SourceId, content_digest, subject_for, subject_token};
pub use event::{Event, PollCounts, UsageSample};
pub use finding::{Finding, FindingKind, Related, ResourceRef, Severity, System};
pub use id::{EventId, FindingId, IdHasher};
pub use kube::{KubeKind, KubeObject, ObjectKey};
pub use time::Timestamp;
