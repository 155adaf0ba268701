//! # ktd-kube
//!
//! The Kubernetes source: one kube-runtime watcher per storage kind, merged into one stream
//! of events, plus bundle collection. Arrives with the ingest work.
