//! # ktd-sim
//!
//! A simulated storage stack, honest enough that ktd cannot tell it from the real thing:
//!
//! - [`world`]: the data model of a simulated world and its ground truth;
//! - [`kube`]: a fake kube-apiserver (list/watch protocol, discovery, access reviews);
//! - [`truenas`]: a TrueNAS SCALE simulator (REST v2.0 and JSON-RPC 2.0 WebSocket, per
//!   release personality);
//! - [`generate`](mod@generate): a world generator that plants every finding of the catalogue and the
//!   false-positive traps, and records the ground truth;
//! - [`serve`]: every server of a world at once, with a kubeconfig for its clusters;
//! - [`procstat`]: peak memory and CPU time for benchmarks;
//! - [`faults`]: latency, errors, timeouts and dropped connections on demand.
//!
//! Product crates never depend on this one except in tests, benches and `ktd demo`.

pub mod faults;
pub mod generate;
pub mod kube;
pub mod procstat;
pub mod serve;
pub mod truenas;
pub mod world;

pub use faults::{FaultAction, FaultInjector, Faults};
pub use generate::{GenerateOptions, generate};
pub use kube::KubeApiServer;
pub use truenas::TrueNasServer;
pub use world::{Cluster, GroundTruth, Nas, Personality, World};
