//! Configuration of the JetStream backend and the streams and buckets it creates.
//!
//! The stream definitions here are also checked in as `deploy/nats/streams.json` (for
//! operators who create streams themselves with `nats stream add --config`); a test keeps
//! the two equal.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{kv, stream};
use serde::Deserialize;

use crate::Stream;

/// Name of the JetStream stream of observations.
pub const OBSERVATIONS_STREAM: &str = "KTD_OBS";
/// Name of the JetStream stream of derived events.
pub const DERIVED_STREAM: &str = "KTD_DERIVED";
/// Name of the key-value bucket of consumer checkpoints.
pub const CHECKPOINTS_BUCKET: &str = "KTD_CHECKPOINTS";
/// Name of the key-value bucket mapping event ids to stream sequences (for `find`).
pub const IDS_BUCKET: &str = "KTD_IDS";

/// How ktd connects to NATS and which streams it expects. Every field has a default, so an
/// empty configuration connects to a local server.
#[derive(Clone, Debug, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JetStreamConfig {
    /// Server URL(s), comma-separated (`nats://host:4222,nats://other:4222`). Default: a
    /// local server on the standard port, `nats://127.0.0.1:4222`.
    pub url: String,
    /// A NATS `.creds` file (JWT + nkey seed) to authenticate with. Default: none.
    pub credentials_file: Option<PathBuf>,
    /// The streams' duplicate window in seconds: a re-publish of an event id within this
    /// window is dropped by the server. Size it to cover a restart of ktd (crash, reschedule,
    /// upgrade). Default: 120 s, the JetStream default.
    pub duplicate_window_secs: u64,
    /// Publishes awaiting their ack at most, per append (bounded in-flight acks). Default:
    /// 256, enough to keep a 1 ms round trip busy at > 100k events/s.
    pub max_in_flight: usize,
    /// How long to wait for a publish ack or an API reply before the operation fails with
    /// a retryable `Unavailable`. Default: 10 s.
    pub timeout_secs: u64,
    /// Stream replicas (1 for a single server, 3 for a cluster). Default: 1.
    pub replicas: usize,
    /// Keep an id index (KV bucket `KTD_IDS`: `<stream>.<id>` → sequence) so that `find`
    /// is one lookup. It costs one more publish per event (about half the ingest rate, see
    /// `bench/RESULTS.md`) and server memory per event. Without it, `find` scans the
    /// stream's headers (exact, but proportional to the stream's length). Default: false,
    /// because `find` is rare (API lookups, tools) and ingest is not.
    pub id_index: bool,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            credentials_file: None,
            duplicate_window_secs: 120,
            max_in_flight: 256,
            timeout_secs: 10,
            replicas: 1,
            id_index: false,
        }
    }
}

impl JetStreamConfig {
    /// The default configuration for a server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        JetStreamConfig {
            url: url.into(),
            ..JetStreamConfig::default()
        }
    }

    /// The duplicate window.
    pub fn duplicate_window(&self) -> Duration {
        Duration::from_secs(self.duplicate_window_secs)
    }

    /// The request and ack timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

/// The JetStream stream that holds `stream`.
pub const fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Observations => OBSERVATIONS_STREAM,
        Stream::Derived => DERIVED_STREAM,
    }
}

/// The definition of the JetStream stream that holds `stream`: file storage, limits
/// retention with no limits (the log is kept until an operator sets limits), direct gets
/// allowed (reads by sequence), deletes denied (an audit log is append-only).
pub fn stream_config(stream: Stream, config: &JetStreamConfig) -> stream::Config {
    let description = match stream {
        Stream::Observations => "ktd observations: Kubernetes and TrueNAS sources, ticks",
        Stream::Derived => "ktd derived events: findings, notifications, remediation, audit",
    };
    stream::Config {
        name: stream_name(stream).to_owned(),
        description: Some(description.to_owned()),
        subjects: stream
            .subject_prefixes()
            .iter()
            .map(|p| format!("{p}>"))
            .collect(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: config.duplicate_window(),
        num_replicas: config.replicas,
        allow_direct: true,
        deny_delete: true,
        ..stream::Config::default()
    }
}

/// The definition of the checkpoints bucket: one value per consumer, no history.
pub fn checkpoints_config(config: &JetStreamConfig) -> kv::Config {
    kv::Config {
        bucket: CHECKPOINTS_BUCKET.to_owned(),
        description: "ktd consumer checkpoints: sequence and state, one value each".to_owned(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        ..kv::Config::default()
    }
}

/// The definition of the id index bucket: `<stream>.<event id>` → sequence.
pub fn ids_config(config: &JetStreamConfig) -> kv::Config {
    kv::Config {
        bucket: IDS_BUCKET.to_owned(),
        description: "ktd event id index: <stream>.<event id> -> stream sequence".to_owned(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        ..kv::Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default_and_unknown_fields_are_rejected() {
        let parsed: JetStreamConfig = serde_json::from_str("{}").expect("empty config parses");
        assert_eq!(parsed, JetStreamConfig::default());
        let err = serde_json::from_str::<JetStreamConfig>(r#"{"urll":"x"}"#)
            .expect_err("unknown fields are rejected");
        assert!(err.to_string().contains("urll"), "{err}");
    }

    #[test]
    fn streams_cover_the_design_subjects() {
        let c = JetStreamConfig::default();
        assert_eq!(
            stream_config(Stream::Observations, &c).subjects,
            ["ktd.v1.obs.>"]
        );
        assert_eq!(
            stream_config(Stream::Derived, &c).subjects,
            ["ktd.v1.findings.>", "ktd.v1.audit.>"]
        );
        assert_eq!(
            stream_config(Stream::Derived, &c).duplicate_window,
            Duration::from_secs(120)
        );
    }
}
