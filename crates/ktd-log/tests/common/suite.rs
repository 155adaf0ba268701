//! The conformance tests, generic over the backend.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use ktd_log::{Checkpoint, ConsumerStore, EventLog, LogError, Record, Stream, record_seq};
use ktd_model::{Envelope, EventId};

use super::{Harness, batch, derived, obs};

/// How long a tail may take to deliver what a test expects.
const TAIL_TIMEOUT: Duration = Duration::from_secs(30);

fn ids(envs: &[Envelope]) -> Vec<EventId> {
    envs.iter().map(|e| e.id).collect()
}

/// Reads the whole stream, asserting every record is readable.
async fn read_all(log: &impl EventLog, stream: Stream) -> Vec<Envelope> {
    log.read(stream, 1, usize::MAX >> 1)
        .await
        .expect("read the whole stream")
        .into_iter()
        .map(|r| r.expect("every record is readable"))
        .collect()
}

/// Takes `n` records from a tail, failing the test on a log error or a timeout.
async fn take_from_tail(
    tail: &mut futures::stream::BoxStream<'static, Result<Record, LogError>>,
    n: usize,
) -> Vec<Record> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(TAIL_TIMEOUT, tail.next()).await {
            Ok(Some(Ok(record))) => out.push(record),
            Ok(Some(Err(e))) if e.is_retryable() => {} // the tail recovers by itself
            Ok(Some(Err(e))) => panic!("tail failed: {e}"),
            Ok(None) => panic!("tail ended after {} of {n} records", out.len()),
            Err(_) => panic!(
                "tail delivered {} of {n} records in {TAIL_TIMEOUT:?}",
                out.len()
            ),
        }
    }
    out
}

pub async fn append_assigns_dense_seqs_from_one(h: impl Harness) {
    let log = h.log();
    let out = log
        .append(Stream::Observations, batch(0..5))
        .await
        .expect("append");
    assert_eq!(out.seqs, [1, 2, 3, 4, 5]);
    assert_eq!((out.appended, out.duplicates), (5, 0));
    let out = log
        .append(Stream::Observations, batch(5..8))
        .await
        .expect("append");
    assert_eq!(out.seqs, [6, 7, 8]);
    let stored = read_all(log, Stream::Observations).await;
    assert_eq!(ids(&stored), ids(&batch(0..8)));
    let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=8).collect::<Vec<_>>(),
        "read sets each envelope's seq"
    );
    let empty = log
        .append(Stream::Observations, Vec::new())
        .await
        .expect("an empty batch is fine");
    assert_eq!(empty, ktd_log::AppendOutcome::default());
}

pub async fn reappend_is_idempotent(h: impl Harness) {
    let log = h.log();
    let first = log
        .append(Stream::Observations, batch(0..10))
        .await
        .expect("append");
    let again = log
        .append(Stream::Observations, batch(0..10))
        .await
        .expect("re-append");
    assert_eq!(
        again.seqs, first.seqs,
        "duplicates report their existing seqs"
    );
    assert_eq!((again.appended, again.duplicates), (0, 10));
    let overlap = log
        .append(Stream::Observations, batch(5..15))
        .await
        .expect("overlapping append");
    assert_eq!(
        overlap.seqs,
        [6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        "old ids keep their seqs, new ones continue densely"
    );
    assert_eq!((overlap.appended, overlap.duplicates), (5, 5));
    assert_eq!(
        ids(&read_all(log, Stream::Observations).await),
        ids(&batch(0..15))
    );
    assert_eq!(log.last_seq(Stream::Observations).await.expect("last"), 15);
}

pub async fn duplicates_inside_a_batch_are_skipped(h: impl Harness) {
    let log = h.log();
    let events = vec![obs(1), obs(2), obs(1), obs(3), obs(2), obs(2)];
    let out = log
        .append(Stream::Observations, events)
        .await
        .expect("append");
    assert_eq!(out.seqs, [1, 2, 1, 3, 2, 2]);
    assert_eq!((out.appended, out.duplicates), (3, 3));
    assert_eq!(
        ids(&read_all(log, Stream::Observations).await),
        ids(&[obs(1), obs(2), obs(3)])
    );
}

pub async fn read_respects_ranges_and_bounds(h: impl Harness) {
    let log = h.log();
    assert!(
        log.read(Stream::Observations, 1, 10)
            .await
            .expect("read empty")
            .is_empty()
    );
    log.append(Stream::Observations, batch(0..20))
        .await
        .expect("append");
    let seqs = |records: Vec<Record>| records.iter().map(record_seq).collect::<Vec<_>>();
    let r = log.read(Stream::Observations, 0, 3).await.expect("read");
    assert_eq!(seqs(r), [1, 2, 3], "from 0 reads from the start");
    let r = log.read(Stream::Observations, 5, 4).await.expect("read");
    assert_eq!(seqs(r), [5, 6, 7, 8]);
    let r = log.read(Stream::Observations, 18, 100).await.expect("read");
    assert_eq!(seqs(r), [18, 19, 20], "a read stops at the end");
    let r = log.read(Stream::Observations, 21, 10).await.expect("read");
    assert!(r.is_empty(), "past the end is empty");
    let r = log.read(Stream::Observations, 3, 0).await.expect("read");
    assert!(r.is_empty(), "max 0 reads nothing");
    let r = log
        .read(Stream::Observations, u64::MAX, 10)
        .await
        .expect("read");
    assert!(r.is_empty());
    let r = log.read(Stream::Observations, 7, 1).await.expect("read");
    let env = r.into_iter().next().expect("one record").expect("readable");
    assert_eq!((env.seq, env.id), (7, obs(6).id));
}

pub async fn last_seq_follows_appends(h: impl Harness) {
    let log = h.log();
    assert_eq!(log.last_seq(Stream::Observations).await.expect("last"), 0);
    log.append(Stream::Observations, batch(0..3))
        .await
        .expect("append");
    assert_eq!(log.last_seq(Stream::Observations).await.expect("last"), 3);
    log.append(Stream::Observations, batch(0..3))
        .await
        .expect("re-append");
    assert_eq!(
        log.last_seq(Stream::Observations).await.expect("last"),
        3,
        "duplicates do not move the end"
    );
    assert_eq!(log.last_seq(Stream::Derived).await.expect("last"), 0);
}

pub async fn find_locates_events(h: impl Harness) {
    let log = h.log();
    log.append(Stream::Observations, batch(0..10))
        .await
        .expect("append");
    log.append(Stream::Derived, vec![derived(1)])
        .await
        .expect("append derived");
    for n in 0..10 {
        assert_eq!(
            log.find(Stream::Observations, obs(n).id)
                .await
                .expect("find"),
            Some(n + 1)
        );
    }
    assert_eq!(
        log.find(Stream::Observations, obs(99).id)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        log.find(Stream::Derived, obs(1).id).await.expect("find"),
        None,
        "ids are per stream"
    );
    assert_eq!(
        log.find(Stream::Derived, derived(1).id)
            .await
            .expect("find"),
        Some(1)
    );
}

pub async fn tail_delivers_history_then_live_events(h: impl Harness) {
    const HISTORY: u64 = 100;
    const BATCHES: u64 = 40;
    const PER_BATCH: u64 = 25;
    let total = HISTORY + BATCHES * PER_BATCH;
    let log = h.log().clone();
    log.append(Stream::Observations, batch(0..HISTORY))
        .await
        .expect("history");
    let mut tail = log.tail(Stream::Observations, 1);
    let history = take_from_tail(&mut tail, 10).await;
    assert_eq!(
        history.iter().map(record_seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for b in 0..BATCHES {
                let start = HISTORY + b * PER_BATCH;
                // Every batch also repeats an old id, which must not reappear in the tail.
                let mut events = batch(start..start + PER_BATCH);
                events.push(obs(b));
                log.append(Stream::Observations, events)
                    .await
                    .expect("concurrent append");
                if b % 5 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    let rest = take_from_tail(&mut tail, (total - 10) as usize).await;
    writer.await.expect("writer task");
    let all: Vec<Envelope> = history
        .into_iter()
        .chain(rest)
        .map(|r| r.expect("readable"))
        .collect();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "in order, without gaps"
    );
    assert_eq!(ids(&all), ids(&batch(0..total)));
    // Nothing more: the next poll waits.
    let more = tokio::time::timeout(Duration::from_millis(300), tail.next()).await;
    assert!(more.is_err(), "no record beyond the end: {more:?}");
    // A tail from the middle starts there.
    let mut mid = log.tail(Stream::Observations, total - 1);
    let got = take_from_tail(&mut mid, 2).await;
    assert_eq!(
        got.iter().map(record_seq).collect::<Vec<_>>(),
        [total - 1, total]
    );
}

pub async fn streams_have_separate_sequences(h: impl Harness) {
    let log = h.log();
    log.append(Stream::Observations, batch(0..3))
        .await
        .expect("append obs");
    let out = log
        .append(Stream::Derived, vec![derived(1), derived(2)])
        .await
        .expect("append derived");
    assert_eq!(out.seqs, [1, 2], "derived events count from 1 on their own");
    assert_eq!(log.last_seq(Stream::Observations).await.expect("last"), 3);
    assert_eq!(log.last_seq(Stream::Derived).await.expect("last"), 2);
    assert_eq!(
        ids(&read_all(log, Stream::Derived).await),
        ids(&[derived(1), derived(2)])
    );
}

pub async fn wrong_stream_is_refused(h: impl Harness) {
    let log = h.log();
    let err = log
        .append(Stream::Observations, vec![obs(1), derived(1)])
        .await
        .expect_err("a derived event is not an observation");
    assert!(
        matches!(err, LogError::WrongStream { .. }) && !err.is_retryable(),
        "{err}"
    );
    assert!(err.to_string().contains("derived"), "{err}");
    assert_eq!(
        log.last_seq(Stream::Observations).await.expect("last"),
        0,
        "nothing of the batch was stored"
    );
    let mut bad = obs(2);
    bad.subject = "ktd.v1.audit.datasetremoved".into();
    assert!(log.append(Stream::Observations, vec![bad]).await.is_err());
}

pub async fn checkpoints_round_trip(h: impl Harness) {
    let log = h.log();
    assert_eq!(log.load("views/inventory").await.expect("load"), None);
    let cp = Checkpoint {
        seq: 42,
        state: b"inventory state".to_vec(),
    };
    log.store("views/inventory", cp.clone())
        .await
        .expect("store");
    assert_eq!(log.load("views/inventory").await.expect("load"), Some(cp));
    let stateless = Checkpoint {
        seq: 7,
        state: Vec::new(),
    };
    log.store("notify.slack", stateless.clone())
        .await
        .expect("store");
    assert_eq!(
        log.load("notify.slack").await.expect("load"),
        Some(stateless)
    );
    let big = Checkpoint {
        seq: u64::MAX,
        state: (0..200_000u32).map(|i| (i % 251) as u8).collect(),
    };
    log.store("views/inventory", big.clone())
        .await
        .expect("store a large state");
    assert_eq!(log.load("views/inventory").await.expect("load"), Some(big));
    assert_eq!(log.load("views/other").await.expect("load"), None);
}

pub async fn checkpoints_are_atomic(h: impl Harness) {
    // Concurrent writers of one consumer: whatever is read back is one of the written
    // checkpoints, never the seq of one with the state of another.
    let log = h.log().clone();
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let log = log.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let seq = w * 1000 + i;
                log.store(
                    "views/orphans",
                    Checkpoint {
                        seq,
                        state: seq.to_string().into_bytes(),
                    },
                )
                .await
                .expect("store");
            }
        }));
    }
    for _ in 0..50 {
        if let Some(cp) = log.load("views/orphans").await.expect("load") {
            assert_eq!(cp.state, cp.seq.to_string().into_bytes(), "torn checkpoint");
        }
    }
    for w in writers {
        w.await.expect("writer");
    }
    let last = log
        .load("views/orphans")
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(last.state, last.seq.to_string().into_bytes());
}

pub async fn restart_keeps_everything(mut h: impl Harness) {
    {
        let log = h.log();
        log.append(Stream::Observations, batch(0..50))
            .await
            .expect("append");
        log.append(Stream::Derived, vec![derived(1)])
            .await
            .expect("append");
        log.store(
            "views/inventory",
            Checkpoint {
                seq: 50,
                state: b"s".to_vec(),
            },
        )
        .await
        .expect("store");
    }
    h.restart().await;
    let log = h.log();
    assert_eq!(log.last_seq(Stream::Observations).await.expect("last"), 50);
    assert_eq!(log.last_seq(Stream::Derived).await.expect("last"), 1);
    assert_eq!(
        ids(&read_all(log, Stream::Observations).await),
        ids(&batch(0..50))
    );
    assert_eq!(
        log.find(Stream::Observations, obs(49).id)
            .await
            .expect("find"),
        Some(50)
    );
    assert_eq!(
        log.load("views/inventory").await.expect("load"),
        Some(Checkpoint {
            seq: 50,
            state: b"s".to_vec()
        })
    );
    let out = log
        .append(Stream::Observations, batch(45..55))
        .await
        .expect("append after restart");
    assert_eq!(out.seqs, [46, 47, 48, 49, 50, 51, 52, 53, 54, 55]);
    assert_eq!((out.appended, out.duplicates), (5, 5));
}

pub async fn unreadable_record_is_reported_and_skipped(mut h: impl Harness) {
    h.log()
        .append(Stream::Observations, batch(0..2))
        .await
        .expect("append");
    h.inject_garbage(Stream::Observations, b"\xc1 not msgpack at all")
        .await;
    let out = h
        .log()
        .append(Stream::Observations, batch(2..4))
        .await
        .expect("append after garbage");
    assert_eq!(out.seqs, [4, 5], "the garbage record holds seq 3");
    let records = h
        .log()
        .read(Stream::Observations, 1, 100)
        .await
        .expect("read past garbage");
    assert_eq!(
        records.iter().map(record_seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let bad = records[2].as_ref().expect_err("seq 3 is unreadable");
    assert_eq!(bad.seq, 3);
    assert!(records.iter().filter(|r| r.is_err()).count() == 1);
    let mut tail = h.log().tail(Stream::Observations, 1);
    let got = take_from_tail(&mut tail, 5).await;
    assert!(
        got[2].is_err() && got[3].is_ok() && got[4].is_ok(),
        "{got:?}"
    );
    // The tail goes on with live events after the garbage.
    h.log()
        .append(Stream::Observations, vec![obs(10)])
        .await
        .expect("append");
    let got = take_from_tail(&mut tail, 1).await;
    assert_eq!(got[0].as_ref().expect("readable").id, obs(10).id);
}

/// The property: any sequence of batches (with repeated ids within and across batches)
/// yields a log equal to the de-duplicated sequence of first occurrences, and every
/// outcome reports each id's seq in that log.
pub async fn appends_equal_first_occurrences(h: &mut impl Harness, batches: &[Vec<u64>]) {
    h.reset().await;
    let log = h.log();
    let mut first: Vec<u64> = Vec::new();
    let mut seen = HashSet::new();
    for b in batches {
        let out = log
            .append(Stream::Observations, b.iter().map(|&n| obs(n)).collect())
            .await
            .expect("append");
        for &n in b {
            if seen.insert(n) {
                first.push(n);
            }
        }
        let expected: Vec<u64> = b
            .iter()
            .map(|n| first.iter().position(|f| f == n).expect("seen") as u64 + 1)
            .collect();
        assert_eq!(out.seqs, expected, "seqs of batch {b:?}");
    }
    let stored = read_all(log, Stream::Observations).await;
    let expected: Vec<EventId> = first.iter().map(|&n| obs(n).id).collect();
    assert_eq!(ids(&stored), expected);
    assert_eq!(
        log.last_seq(Stream::Observations).await.expect("last"),
        first.len() as u64
    );
}
