//! The NATS JetStream event log (scale-out backend, servers 2.10+).
//!
//! - One stream per [`Stream`]: `KTD_OBS` (`ktd.v1.obs.>`) and `KTD_DERIVED`
//!   (`ktd.v1.findings.>`, `ktd.v1.audit.>`), file storage ([`config`]). They are created at
//!   start when missing, and verified (subjects, storage, retention) when present.
//! - An event is published on its `subject` with `Nats-Msg-Id` = its id (hex) and its
//!   msgpack encoding as payload. Appends keep at most `max_in_flight` acks outstanding and
//!   return once every ack is in (so the batch is stored). A `duplicate` ack is reported as
//!   a duplicate with the sequence of the original message.
//! - The sequence of an event is its JetStream stream sequence; reads use direct gets,
//!   [`EventLog::tail`] an ordered consumer.
//! - Consumer checkpoints live in the KV bucket `KTD_CHECKPOINTS` (sequence and state in one
//!   value, so they change atomically).
//!
//! ## Limits (read this before relying on idempotency or `find`)
//! - **De-duplication is bounded by the duplicate window** (default 2 minutes, configurable).
//!   A retry after a crash or a server restart within the window is dropped by the server
//!   (the window survives server restarts). An event re-published after the window is
//!   appended again: consumers must skip ids they have already applied (ADR 0002).
//! - **`find` scans by default**: it reads the stream's headers (`Nats-Msg-Id`) from the
//!   start with a headers-only ordered consumer and returns the first match. Exact, but its
//!   cost grows with the stream. With [`JetStreamConfig::id_index`] on, `append` also writes
//!   an id index (KV bucket `KTD_IDS`, `<stream>.<id>` → sequence) after the events' acks
//!   and `find` is one lookup; the index is exact for events appended through this type
//!   (a crash between an ack and its index entry is repaired by the retry of the batch,
//!   which rewrites the entries), at the price of one more publish per event (about half
//!   the ingest rate) and server memory per id. An event re-appended after the duplicate
//!   window gets a new sequence, and the index then points to that one, where the scan
//!   finds the first.
//! - **A batch is not atomic**: a failure may leave a prefix of it stored. Retry the same
//!   batch; the stored part de-duplicates.
//! - **Durability**: an ack means the server stored the message; it is on disk after the
//!   server's `sync_interval` (`sync_interval: always` where power loss must lose nothing).

pub mod config;
mod publish;
mod read;

use std::time::Duration;

use async_nats::jetstream::{self, Context, context::GetStreamErrorKind, kv, stream};
use async_nats::{ConnectOptions, ServerAddr};
use futures::stream::BoxStream;
use ktd_model::{Envelope, EventId};
use tracing::{Instrument, debug_span, info, info_span, warn};

pub use config::{JetStreamConfig, stream_config, stream_name};

use crate::{AppendOutcome, Checkpoint, ConsumerStore, EventLog, LogError, Record, Stream};

/// The JetStream event log. Cheap to clone (clones share one connection).
#[derive(Clone, Debug)]
pub struct JetStreamLog {
    js: Context,
    streams: [stream::Stream; 2],
    checkpoints: kv::Store,
    /// The id index, when configured.
    ids: Option<kv::Store>,
    config: JetStreamConfig,
}

/// A retryable error talking to NATS.
pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!(
        "{what}: {e} (retry later; check that the NATS server is reachable and JetStream is enabled)"
    ))
}

fn open_err(config: &JetStreamConfig, reason: impl Into<String>) -> LogError {
    LogError::Open {
        path: config.url.clone(),
        reason: reason.into(),
    }
}

impl JetStreamLog {
    /// Connects to the server(s) in `config.url`, then creates the streams and buckets that
    /// are missing and verifies the ones that exist.
    ///
    /// Errors: [`LogError::Unavailable`] when no server answers (retryable);
    /// [`LogError::Open`] for a malformed URL, an unreadable credentials file, or an existing
    /// stream whose definition is incompatible with ktd's.
    pub async fn connect(config: JetStreamConfig) -> Result<JetStreamLog, LogError> {
        let span = info_span!("ktd_log.connect", backend = "jetstream", url = %config.url);
        JetStreamLog::connect_inner(config).instrument(span).await
    }

    async fn connect_inner(config: JetStreamConfig) -> Result<JetStreamLog, LogError> {
        let addrs = config
            .url
            .split(',')
            .map(|u| u.trim().parse::<ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                open_err(
                    &config,
                    format!("not a NATS URL ({e}); use nats://host:port[,nats://host:port]"),
                )
            })?;
        let mut options = ConnectOptions::new()
            .name("ktd")
            .connection_timeout(config.timeout())
            .request_timeout(Some(config.timeout()));
        if let Some(creds) = &config.credentials_file {
            options = options.credentials_file(creds).await.map_err(|e| {
                open_err(
                    &config,
                    format!(
                        "cannot read the credentials file {} ({e}); fix credentials_file",
                        creds.display()
                    ),
                )
            })?;
        }
        let client = options
            .connect(addrs)
            .await
            .map_err(|e| unavailable(&format!("cannot connect to NATS at {}", config.url), e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.timeout())
            .ack_timeout(config.timeout())
            .build(client);
        let streams = [
            ensure_stream(&js, Stream::Observations, &config).await?,
            ensure_stream(&js, Stream::Derived, &config).await?,
        ];
        let checkpoints = ensure_bucket(&js, config::checkpoints_config(&config)).await?;
        let ids = if config.id_index {
            Some(ensure_bucket(&js, config::ids_config(&config)).await?)
        } else {
            None
        };
        info!("JetStream event log ready");
        Ok(JetStreamLog {
            js,
            streams,
            checkpoints,
            ids,
            config,
        })
    }

    /// The JetStream context (for tools and tests that publish or inspect directly).
    pub fn context(&self) -> &Context {
        &self.js
    }

    /// The configuration this log was connected with.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    fn stream(&self, stream: Stream) -> &stream::Stream {
        match stream {
            Stream::Observations => &self.streams[0],
            Stream::Derived => &self.streams[1],
        }
    }
}

/// Creates the stream when missing; verifies it otherwise.
async fn ensure_stream(
    js: &Context,
    which: Stream,
    config: &JetStreamConfig,
) -> Result<stream::Stream, LogError> {
    let wanted = stream_config(which, config);
    match js.get_stream(&wanted.name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| unavailable(&format!("cannot read stream {}", wanted.name), e))?;
            verify_stream(&wanted, &info.config).map_err(|reason| open_err(config, reason))?;
            Ok(existing)
        }
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            info!(stream = %wanted.name, "creating JetStream stream");
            js.create_stream(wanted.clone()).await.map_err(|e| {
                open_err(
                    config,
                    format!(
                        "cannot create stream {} ({e}); create it from deploy/nats/streams.json \
                         or give ktd the permission",
                        wanted.name
                    ),
                )
            })
        }
        Err(e) => Err(unavailable(
            &format!("cannot look up stream {}", wanted.name),
            e,
        )),
    }
}

/// Checks that an existing stream can hold ktd's log: same subjects, file storage, limits
/// retention. A different duplicate window is only warned about (operators may tune it).
pub fn verify_stream(wanted: &stream::Config, found: &stream::Config) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut a = wanted.subjects.clone();
    let mut b = found.subjects.clone();
    a.sort();
    b.sort();
    if a != b {
        problems.push(format!("subjects are {b:?}, ktd needs {a:?}"));
    }
    if found.storage != wanted.storage {
        problems.push(format!(
            "storage is {:?}, ktd needs {:?}",
            found.storage, wanted.storage
        ));
    }
    if found.retention != wanted.retention {
        problems.push(format!(
            "retention is {:?}, ktd needs {:?} (the log is read many times)",
            found.retention, wanted.retention
        ));
    }
    if !found.allow_direct {
        problems.push("allow_direct is off, ktd reads by sequence with direct gets".to_owned());
    }
    if found.duplicate_window != wanted.duplicate_window {
        warn!(
            stream = %wanted.name,
            found = ?found.duplicate_window,
            configured = ?wanted.duplicate_window,
            "the stream's duplicate window differs from ktd's configuration; the stream's applies"
        );
    }
    if found.duplicate_window.is_zero() {
        problems.push("duplicate_window is 0: re-published events would be duplicated".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "stream {} exists but {}; fix it (nats stream edit) or delete it so ktd recreates it \
             from deploy/nats/streams.json",
            wanted.name,
            problems.join("; ")
        ))
    }
}

/// Opens a KV bucket, creating it when missing.
async fn ensure_bucket(js: &Context, wanted: kv::Config) -> Result<kv::Store, LogError> {
    match js.get_key_value(&wanted.bucket).await {
        Ok(store) => Ok(store),
        Err(_) => {
            let name = wanted.bucket.clone();
            info!(bucket = %name, "creating JetStream key-value bucket");
            js.create_key_value(wanted)
                .await
                .map_err(|e| unavailable(&format!("cannot create bucket {name}"), e))
        }
    }
}

/// A KV key for a consumer name: letters, digits, `-` and `_` are kept, every other byte
/// becomes `=XX`, so any name maps to a valid, distinct key.
pub fn checkpoint_key(consumer: &str) -> String {
    if consumer.is_empty() {
        return "=".to_owned();
    }
    let mut key = String::with_capacity(consumer.len());
    for b in consumer.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            key.push(b as char);
        } else {
            key.push_str(&format!("={b:02X}"));
        }
    }
    key
}

/// The id index key of an event.
fn id_key(stream: Stream, id: EventId) -> String {
    let prefix = match stream {
        Stream::Observations => "obs",
        Stream::Derived => "derived",
    };
    format!("{prefix}.{id}")
}

impl EventLog for JetStreamLog {
    async fn append(
        &self,
        stream: Stream,
        events: Vec<Envelope>,
    ) -> Result<AppendOutcome, LogError> {
        let span = debug_span!(
            "ktd_log.append",
            backend = "jetstream",
            stream = stream.as_str(),
            events = events.len()
        );
        publish::append(self, stream, events).instrument(span).await
    }

    async fn read(
        &self,
        stream: Stream,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        read::read(self, stream, from_seq, max).await
    }

    async fn last_seq(&self, stream: Stream) -> Result<u64, LogError> {
        let info = self
            .stream(stream)
            .get_info()
            .await
            .map_err(|e| unavailable("cannot read stream info", e))?;
        Ok(info.state.last_sequence)
    }

    async fn find(&self, stream: Stream, id: EventId) -> Result<Option<u64>, LogError> {
        let Some(ids) = &self.ids else {
            return read::scan_for(self.stream(stream), id).await;
        };
        let value = ids
            .get(id_key(stream, id))
            .await
            .map_err(|e| unavailable("cannot read the id index", e))?;
        Ok(value.and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes)))
    }

    fn tail(&self, stream: Stream, from_seq: u64) -> BoxStream<'static, Result<Record, LogError>> {
        read::tail(self.stream(stream).clone(), from_seq)
    }
}

impl ConsumerStore for JetStreamLog {
    async fn load(&self, consumer: &str) -> Result<Option<Checkpoint>, LogError> {
        let value = self
            .checkpoints
            .get(checkpoint_key(consumer))
            .await
            .map_err(|e| unavailable("cannot read a checkpoint", e))?;
        match value {
            None => Ok(None),
            Some(v) => Checkpoint::from_bytes(&v).map(Some).ok_or_else(|| {
                LogError::Read(format!(
                    "the checkpoint of consumer {consumer:?} is truncated; store a new one or \
                     rebuild the consumer"
                ))
            }),
        }
    }

    async fn store(&self, consumer: &str, checkpoint: Checkpoint) -> Result<(), LogError> {
        self.checkpoints
            .put(checkpoint_key(consumer), checkpoint.to_bytes().into())
            .await
            .map(|_| ())
            .map_err(|e| unavailable("cannot store a checkpoint", e))
    }
}

/// Waits `d`, for retry loops.
pub(crate) async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_keys_are_valid_and_distinct() {
        let names = [
            "views/inventory",
            "a.b",
            "a=2Eb",
            "",
            "ünï",
            "x y",
            "plain-name_1",
        ];
        let keys: Vec<String> = names.iter().map(|n| checkpoint_key(n)).collect();
        for k in &keys {
            assert!(
                k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')),
                "{k}"
            );
        }
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
        assert_eq!(checkpoint_key("plain-name_1"), "plain-name_1");
    }
}
