//! The writer process of `tests/embedded_readers.rs`: a [`RedbLog`] in a process of its own,
//! so that the readers under test share the file across processes as they do beside
//! `ktd run`. Built only as a test helper (`ktd-log-test-writer`); not part of ktd.
//!
//! It opens the log named by `KTD_TEST_WRITER_LOG` (index merges every
//! `KTD_TEST_WRITER_MERGE_AT` ids), prints `writer: ready`, then follows its stdin:
//! `append A B` appends observations `A..B` and replies with the last sequence,
//! `checkpoint N` stores a checkpoint at `N`; the end of its input closes the log.

use ktd_log::embedded::{RedbLog, RedbOptions};
use ktd_log::{Checkpoint, ConsumerStore, EventLog, Stream};
use ktd_model::{Envelope, Event, SourceId, Timestamp};

const WRITER_LOG: &str = "KTD_TEST_WRITER_LOG";
const WRITER_MERGE_AT: &str = "KTD_TEST_WRITER_MERGE_AT";
const REPLY: &str = "writer: ";

/// The observations of the conformance suite (`tests/common/mod.rs`, `obs`): the tests
/// compare ids, so a difference fails them.
fn batch(range: std::ops::Range<u64>) -> Vec<Envelope> {
    range
        .map(|n| {
            Envelope::new(
                SourceId::truenas("nas01"),
                Timestamp::from_unix_secs(1_700_000_000 + n as i64),
                Event::DatasetRemoved {
                    name: format!("tank/k8s/vols/pvc-{n:08}"),
                },
                &n.to_le_bytes(),
            )
        })
        .collect()
}

fn main() {
    use std::io::BufRead;
    let path = std::env::var(WRITER_LOG)
        .expect("started by the tests of this file, with KTD_TEST_WRITER_LOG set");
    let index_merge_at = std::env::var(WRITER_MERGE_AT)
        .ok()
        .map_or(RedbOptions::default().index_merge_at, |v| {
            v.parse().expect("a number")
        });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let log = RedbLog::open_with_options(&path, RedbOptions { index_merge_at })
            .await
            .expect("the writer opens the log");
        println!("{REPLY}ready");
        for line in std::io::stdin().lock().lines() {
            let line = line.expect("a command");
            let words: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|w| w.parse().expect("a number"))
                .collect();
            match (line.split_whitespace().next(), &words[..]) {
                (Some("append"), &[from, to]) => {
                    log.append(Stream::Observations, batch(from..to))
                        .await
                        .expect("append");
                    let last = log.last_seq(Stream::Observations).await.expect("last");
                    println!("{REPLY}{last}");
                }
                (Some("checkpoint"), &[seq]) => {
                    let state = b"from the writer".to_vec();
                    log.store("views/test", Checkpoint { seq, state })
                        .await
                        .expect("store");
                    println!("{REPLY}stored");
                }
                _ => panic!("unknown command {line:?}"),
            }
        }
    });
}
