//! Raw API JSON into normalized resources.
//!
//! [`kube`] reads what the Kubernetes apiserver (or `kubectl get -o json`) returns;
//! [`truenas`] reads what TrueNAS SCALE 22.12 – 25.10 return over REST v2.0 or JSON-RPC
//! (the result shapes are the same on both transports). Both accept documents as values
//! or as streams, so a 0.5 GB bundle never has to sit in memory as JSON.

pub mod kube;
mod quantity;
pub mod truenas;

pub use quantity::parse_quantity;

/// Why a raw object could not be normalized. Never retryable: the input itself is wrong;
/// the source records the error (naming the object) and keeps going.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// The object has no `kind` and none was implied by its list.
    #[error("object has no `kind` (and its list does not say one)")]
    MissingKind,
    /// A kind ktd does not watch.
    #[error("kind `{0}` is not one ktd reads")]
    UnsupportedKind(String),
    /// The object is malformed or has unexpected field types.
    #[error("{what}: {reason}")]
    Invalid {
        /// The object (kind and name, as far as they could be read).
        what: String,
        /// What is wrong.
        reason: String,
    },
}
