//! The conformance suite every [`EventLog`] + [`ConsumerStore`] backend passes. Each test
//! file (`embedded.rs`, `jetstream.rs`) implements [`Harness`] and runs every function
//! here through the [`conformance_tests!`] macro.
//!
//! Shared by several test binaries, each of which uses a different part of it.
#![allow(dead_code)]

pub mod nats;
mod suite;

#[allow(unused_imports)] // not every test binary runs the suite
pub use suite::*;

use ktd_log::{ConsumerStore, EventLog, Stream};
use ktd_model::{Envelope, Event, SourceId, Timestamp};

/// What the suite needs from a backend besides the traits.
pub trait Harness: Send + 'static {
    /// The backend.
    type Log: EventLog + ConsumerStore + Clone;

    /// The log under test.
    fn log(&self) -> &Self::Log;

    /// Closes and reopens the log (embedded: reopen the file; JetStream: kill the server,
    /// start it on the same store directory, reconnect). Callers drop their tails first.
    fn restart(&mut self) -> impl Future<Output = ()> + Send;

    /// Stores `bytes` as the next record of `stream`, bypassing the log's checks.
    fn inject_garbage(&mut self, stream: Stream, bytes: &[u8]) -> impl Future<Output = ()> + Send;

    /// Empties the log (a fresh file, or fresh streams and buckets).
    fn reset(&mut self) -> impl Future<Output = ()> + Send;
}

/// An observation with a unique id per `n` (a dataset removal seen by `nas01`).
pub fn obs(n: u64) -> Envelope {
    Envelope::new(
        SourceId::truenas("nas01"),
        Timestamp::from_unix_secs(1_700_000_000 + n as i64),
        Event::DatasetRemoved {
            name: format!("tank/k8s/vols/pvc-{n:08}"),
        },
        &n.to_le_bytes(),
    )
}

/// A derived event with a unique id per `n` (an audited API call).
pub fn derived(n: u64) -> Envelope {
    Envelope::new(
        SourceId::ktd("api"),
        Timestamp::from_unix_secs(1_700_000_000 + n as i64),
        Event::ApiCallAudited {
            principal: "admin".into(),
            method: "GET".into(),
            path: "/api/v1/findings".into(),
            status: 200,
            request_id: format!("req-{n}"),
        },
        b"1",
    )
}

/// Observations `range`.
pub fn batch(range: std::ops::Range<u64>) -> Vec<Envelope> {
    range.map(obs).collect()
}

/// Generates one `#[tokio::test]` per conformance function, each with a fresh harness from
/// the async expression `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            append_assigns_dense_seqs_from_one,
            reappend_is_idempotent,
            duplicates_inside_a_batch_are_skipped,
            read_respects_ranges_and_bounds,
            last_seq_follows_appends,
            find_locates_events,
            tail_delivers_history_then_live_events,
            streams_have_separate_sequences,
            wrong_stream_is_refused,
            checkpoints_round_trip,
            checkpoints_are_atomic,
            restart_keeps_everything,
            unreadable_record_is_reported_and_skipped,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $make.await;
                $crate::common::$name(harness).await;
            }
        )*
    };
}
