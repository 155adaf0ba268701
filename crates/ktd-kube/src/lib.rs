//! # ktd-kube
//!
//! The Kubernetes source: one kube-runtime watcher per storage kind (every kind as a
//! `DynamicObject`, normalized by `ktd-model`), merged into one stream of [`Envelope`]s with
//! deterministic ids, so that relists, 410 storms and restarts add nothing twice.
//!
//! - [`config`]: [`KubeSourceConfig`] and client construction;
//! - [`source`]: [`kube_source`] / [`KubeSource`], the stream;
//! - [`known`]: [`KnownObjects`], the source's memory (rebuilt from the log at start-up);
//! - [`clock`]: where `observed_at` comes from;
//! - [`rbac`]: the permissions the source needs (for `deploy/`);
//! - [`collect`]: bundle collection (`kubernetes.json`).
//!
//! [`Envelope`]: ktd_model::Envelope

pub mod clock;
pub mod collect;
pub mod config;
mod failure;
pub mod known;
pub mod rbac;
pub mod source;
mod state;

pub use clock::{Clock, SystemClock};
pub use collect::{CollectError, CollectSummary, collect_list, collect_to_dir};
pub use config::{ClientError, EventSelection, KubeSourceConfig, PodSelection};
pub use failure::QUIET as FAILURE_QUIET_PERIOD;
pub use known::KnownObjects;
pub use source::{KubeSource, api_resource, kube_source};
