//! Appends: pipelined publishes with bounded in-flight acks, then the id index entries.

use std::collections::{HashMap, VecDeque};

use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use ktd_model::Envelope;
use tracing::debug;

use super::{JetStreamLog, config::IDS_BUCKET, id_key, stream_name, unavailable};
use crate::{AppendOutcome, LogError, Stream};

/// Where an event of the batch goes.
enum Slot {
    /// Published; its ack tells the sequence.
    Published,
    /// Same id as the event at this index of the batch.
    SameAs(usize),
}

/// Maps a failed publish to a log error. Timeouts and broken connections are retryable.
fn publish_err(e: PublishError) -> LogError {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => LogError::Write(format!(
            "an event is larger than the server's max_payload ({e}); raise max_payload"
        )),
        _ => unavailable("publish failed or was not acknowledged", e),
    }
}

/// Publishes messages keeping at most `max` acks outstanding, awaiting them in order.
struct Pipeline {
    max: usize,
    pending: VecDeque<(usize, PublishAckFuture)>,
}

impl Pipeline {
    fn new(max: usize) -> Self {
        Pipeline {
            max: max.max(1),
            pending: VecDeque::with_capacity(max.max(1)),
        }
    }

    /// Adds a sent publish; when the window is full, waits for the oldest ack and returns it.
    async fn push(
        &mut self,
        index: usize,
        ack: PublishAckFuture,
    ) -> Result<Option<(usize, async_nats::jetstream::publish::PublishAck)>, LogError> {
        self.pending.push_back((index, ack));
        if self.pending.len() >= self.max {
            return self.pop().await;
        }
        Ok(None)
    }

    /// Waits for the oldest outstanding ack.
    async fn pop(
        &mut self,
    ) -> Result<Option<(usize, async_nats::jetstream::publish::PublishAck)>, LogError> {
        match self.pending.pop_front() {
            None => Ok(None),
            Some((index, fut)) => Ok(Some((index, fut.await.map_err(publish_err)?))),
        }
    }
}

pub(super) async fn append(
    log: &JetStreamLog,
    stream: Stream,
    events: Vec<Envelope>,
) -> Result<AppendOutcome, LogError> {
    for env in &events {
        stream.check(env)?;
    }
    let name = stream_name(stream);
    // Encode everything first: an encoding error refuses the whole batch before any publish.
    let mut slots = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut first: HashMap<u128, usize> = HashMap::with_capacity(events.len());
    for (i, env) in events.iter().enumerate() {
        match first.get(&env.id.as_u128()) {
            Some(&j) => {
                slots.push(Slot::SameAs(j));
                payloads.push(None);
            }
            None => {
                first.insert(env.id.as_u128(), i);
                slots.push(Slot::Published);
                payloads.push(Some(Bytes::from(
                    ktd_model::encode(env).map_err(LogError::Encode)?,
                )));
            }
        }
    }

    let mut seqs = vec![0u64; events.len()];
    let mut duplicate = vec![false; events.len()];
    let mut pipeline = Pipeline::new(log.config.max_in_flight);
    let mut record = |(i, ack): (usize, async_nats::jetstream::publish::PublishAck)| {
        seqs[i] = ack.sequence;
        duplicate[i] = ack.duplicate;
    };
    for (i, (env, payload)) in events.iter().zip(payloads).enumerate() {
        let Some(payload) = payload else { continue };
        let message = PublishMessage::build()
            .payload(payload)
            .message_id(env.id.to_string())
            .expected_stream(name);
        let ack = log
            .js
            .send_publish(env.subject.clone(), message)
            .await
            .map_err(publish_err)?;
        if let Some(done) = pipeline.push(i, ack).await? {
            record(done);
        }
    }
    while let Some(done) = pipeline.pop().await? {
        record(done);
    }

    let mut outcome = AppendOutcome {
        seqs: Vec::with_capacity(events.len()),
        ..AppendOutcome::default()
    };
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Published if !duplicate[i] => {
                outcome.seqs.push(seqs[i]);
                outcome.appended += 1;
            }
            Slot::Published => {
                outcome.seqs.push(seqs[i]);
                outcome.duplicates += 1;
            }
            Slot::SameAs(j) => {
                outcome.seqs.push(seqs[*j]);
                outcome.duplicates += 1;
            }
        }
    }

    // The id index, after the events: every distinct id of the batch, duplicates included,
    // so that a retried batch repairs entries a crash left unwritten.
    if log.ids.is_none() {
        debug!(
            appended = outcome.appended,
            duplicates = outcome.duplicates,
            "appended"
        );
        return Ok(outcome);
    }
    let mut pipeline = Pipeline::new(log.config.max_in_flight);
    for (i, env) in events.iter().enumerate() {
        if !matches!(slots[i], Slot::Published) {
            continue;
        }
        let subject = format!("$KV.{IDS_BUCKET}.{}", id_key(stream, env.id));
        let ack = log
            .js
            .publish(subject, Bytes::copy_from_slice(&seqs[i].to_le_bytes()))
            .await
            .map_err(publish_err)?;
        pipeline.push(i, ack).await?;
    }
    while pipeline.pop().await?.is_some() {}
    debug!(
        appended = outcome.appended,
        duplicates = outcome.duplicates,
        "appended"
    );
    Ok(outcome)
}
