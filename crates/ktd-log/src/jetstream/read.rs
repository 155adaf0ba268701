//! Reads (direct gets by sequence) and live tails (ordered consumers).

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, DirectGetErrorKind};
use futures::stream::{BoxStream, StreamExt};
use tracing::warn;

use super::{JetStreamLog, pause, unavailable};
use crate::{LogError, Record, Stream, UnreadableRecord};

/// Direct gets in flight at once during a read.
const READ_CONCURRENCY: usize = 64;

/// Decodes a stored message; the sequence comes from the stream, not from the payload.
fn decode(seq: u64, payload: &[u8]) -> Record {
    match ktd_model::decode(payload) {
        Ok(mut env) => {
            env.seq = seq;
            Ok(env)
        }
        Err(error) => Err(UnreadableRecord { seq, error }),
    }
}

pub(super) async fn read(
    log: &JetStreamLog,
    which: Stream,
    from_seq: u64,
    max: usize,
) -> Result<Vec<Record>, LogError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let stream = log.stream(which);
    let state = stream
        .get_info()
        .await
        .map_err(|e| unavailable("cannot read stream info", e))?
        .state;
    let first = from_seq.max(state.first_sequence).max(1);
    if state.messages == 0 || first > state.last_sequence {
        return Ok(Vec::new());
    }
    let end = state
        .last_sequence
        .min(first.saturating_add(max as u64 - 1));
    let gets = futures::stream::iter(first..=end)
        .map(|seq| async move { (seq, stream.direct_get(seq).await) })
        .buffered(READ_CONCURRENCY);
    futures::pin_mut!(gets);
    let mut out = Vec::with_capacity((end - first + 1) as usize);
    while let Some((seq, got)) = gets.next().await {
        match got {
            Ok(message) => out.push(decode(message.sequence, &message.payload)),
            // A message removed by limits or by hand: there is no record at this sequence.
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => {}
            Err(e) => return Err(unavailable(&format!("cannot read message {seq}"), e)),
        }
    }
    Ok(out)
}

/// `find` without an id index: the first message of the stream whose `Nats-Msg-Id` is
/// `id`, read with a headers-only ordered consumer up to the stream's last sequence at the
/// start of the scan.
pub(super) async fn scan_for(
    stream: &stream::Stream,
    id: ktd_model::EventId,
) -> Result<Option<u64>, LogError> {
    let state = stream
        .get_info()
        .await
        .map_err(|e| unavailable("cannot read stream info", e))?
        .state;
    if state.messages == 0 {
        return Ok(None);
    }
    let wanted = id.to_string();
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            headers_only: true,
            deliver_policy: DeliverPolicy::All,
            ..pull::OrderedConfig::default()
        })
        .await
        .map_err(|e| unavailable("cannot create a consumer to scan for an id", e))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| unavailable("cannot scan for an id", e))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| unavailable("scan for an id interrupted", e))?;
        let seq = message
            .info()
            .map_err(|e| unavailable("message without JetStream metadata", e))?
            .stream_sequence;
        let matches = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .is_some_and(|v| v.as_str() == wanted);
        if matches {
            return Ok(Some(seq));
        }
        if seq >= state.last_sequence {
            break;
        }
    }
    Ok(None)
}

struct TailState {
    stream: stream::Stream,
    /// The next sequence to deliver.
    next: u64,
    messages: Option<pull::Ordered>,
    /// Errors in a row, for the retry delay.
    failures: u32,
}

/// History from `from_seq`, then live messages, through an ordered consumer. The
/// consumer recreates itself on gaps and server restarts; errors it reports are yielded as
/// retryable [`LogError::Unavailable`] items and the tail keeps going from where it was.
pub(super) fn tail(
    stream: stream::Stream,
    from_seq: u64,
) -> BoxStream<'static, Result<Record, LogError>> {
    let state = TailState {
        stream,
        next: from_seq.max(1),
        messages: None,
        failures: 0,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            let Some(messages) = st.messages.as_mut() else {
                if st.failures > 0 {
                    pause(Duration::from_millis(100 * u64::from(st.failures.min(20)))).await;
                }
                match start(&st.stream, st.next).await {
                    Ok(m) => st.messages = Some(m),
                    Err(e) => {
                        st.failures += 1;
                        return Some((Err(e), st));
                    }
                }
                continue;
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    let seq = match message.info() {
                        Ok(info) => info.stream_sequence,
                        Err(e) => {
                            warn!(error = %e, "message without JetStream metadata; restarting tail");
                            st.messages = None;
                            st.failures += 1;
                            continue;
                        }
                    };
                    if seq < st.next {
                        continue; // redelivered after a recreate
                    }
                    st.next = seq + 1;
                    st.failures = 0;
                    return Some((Ok(decode(seq, &message.payload)), st));
                }
                Some(Err(e)) => {
                    // The ordered consumer recovers by itself; report and keep polling it.
                    st.failures += 1;
                    if st.failures > 3 {
                        st.messages = None;
                    }
                    return Some((Err(unavailable("live tail interrupted", e)), st));
                }
                None => {
                    st.messages = None;
                    st.failures += 1;
                }
            }
        }
    })
    .boxed()
}

async fn start(stream: &stream::Stream, from: u64) -> Result<pull::Ordered, LogError> {
    let config = pull::OrderedConfig {
        deliver_policy: if from <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: from,
            }
        },
        ..pull::OrderedConfig::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| unavailable("cannot create a consumer for the live tail", e))?;
    consumer
        .messages()
        .await
        .map_err(|e| unavailable("cannot start the live tail", e))
}
