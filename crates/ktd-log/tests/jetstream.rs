//! The conformance suite against a real nats-server, and the JetStream backend's own tests:
//! stream definitions, verification, server restarts in the middle of publishing.

mod common;

use std::time::Duration;

use async_nats::jetstream::stream;
use common::Harness;
use common::nats::NatsServer;
use ktd_log::jetstream::{JetStreamConfig, JetStreamLog, config, stream_config};
use ktd_log::{EventLog, LogError, Stream};

/// A fresh nats-server and a log connected to it.
struct Jet {
    server: NatsServer,
    log: Option<JetStreamLog>,
    id_index: bool,
}

impl Jet {
    /// The default configuration: `find` scans headers.
    async fn new() -> Jet {
        Jet::start(false).await
    }

    /// With the KV id index.
    async fn with_id_index() -> Jet {
        Jet::start(true).await
    }

    async fn start(id_index: bool) -> Jet {
        let server = NatsServer::start();
        let log = connect(&server, id_index).await;
        Jet {
            server,
            log: Some(log),
            id_index,
        }
    }
}

fn test_config(server: &NatsServer) -> JetStreamConfig {
    JetStreamConfig {
        timeout_secs: 3,
        ..JetStreamConfig::new(server.url())
    }
}

async fn connect(server: &NatsServer, id_index: bool) -> JetStreamLog {
    // Right after a (re)start JetStream may still be recovering: retry briefly.
    let mut last = None;
    for _ in 0..50 {
        let config = JetStreamConfig {
            id_index,
            ..test_config(server)
        };
        match JetStreamLog::connect(config).await {
            Ok(log) => return log,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {}: {last:?}", server.url());
}

impl Harness for Jet {
    type Log = JetStreamLog;

    fn log(&self) -> &JetStreamLog {
        self.log.as_ref().expect("connected")
    }

    async fn restart(&mut self) {
        self.log = None;
        self.server.restart();
        self.log = Some(connect(&self.server, self.id_index).await);
    }

    async fn inject_garbage(&mut self, stream: Stream, bytes: &[u8]) {
        let subject = match stream {
            Stream::Observations => "ktd.v1.obs.garbage.raw",
            Stream::Derived => "ktd.v1.audit.garbage",
        };
        self.log()
            .context()
            .publish(subject, bytes.to_vec().into())
            .await
            .expect("publish garbage")
            .await
            .expect("garbage acked");
    }

    async fn reset(&mut self) {
        // A fresh server: deleting and re-creating the streams on the same server right
        // away is not reliably a clean slate.
        self.log = None;
        self.server = NatsServer::start();
        self.log = Some(connect(&self.server, self.id_index).await);
    }
}

conformance_tests!(Jet::new());

/// The same suite with the KV id index on (`find` by lookup instead of a scan).
mod with_id_index {
    use super::Jet;
    crate::conformance_tests!(Jet::with_id_index());
}

#[test]
fn property_appends_equal_first_occurrences() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let harness = std::sync::Mutex::new(rt.block_on(Jet::new()));
    let batches = prop::collection::vec(prop::collection::vec(0u64..30, 0..12), 1..8);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(16));
    runner
        .run(&batches, |batches| {
            let mut h = harness.lock().expect("harness lock");
            rt.block_on(common::appends_equal_first_occurrences(&mut *h, &batches));
            Ok(())
        })
        .expect("property holds");
}

/// `deploy/nats/streams.json` is what ktd creates, and what a server reports back.
#[tokio::test]
async fn deploy_stream_definitions_match_the_code() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/nats/streams.json"
    ))
    .expect("deploy/nats/streams.json exists");
    let deployed: Vec<stream::Config> = serde_json::from_str(&text).expect("valid stream configs");
    let defaults = JetStreamConfig::default();
    assert_eq!(deployed.len(), 2);
    let h = Jet::new().await;
    for (which, file) in Stream::ALL.into_iter().zip(&deployed) {
        let code = stream_config(which, &defaults);
        assert_eq!(file.name, code.name);
        assert_eq!(file.subjects, code.subjects, "{}", code.name);
        assert_eq!(file.storage, code.storage, "{}", code.name);
        assert_eq!(file.retention, code.retention, "{}", code.name);
        assert_eq!(file.discard, code.discard, "{}", code.name);
        assert_eq!(
            file.duplicate_window, code.duplicate_window,
            "{}",
            code.name
        );
        assert_eq!(file.allow_direct, code.allow_direct, "{}", code.name);
        assert_eq!(file.deny_delete, code.deny_delete, "{}", code.name);
        assert_eq!(file.num_replicas, code.num_replicas, "{}", code.name);
        assert_eq!(file.description, code.description, "{}", code.name);
        // What the server created from the code's definition.
        let mut created = h
            .log()
            .context()
            .get_stream(&code.name)
            .await
            .expect("stream exists");
        let info = created.info().await.expect("info");
        assert_eq!(info.config.subjects, file.subjects);
        assert_eq!(info.config.storage, file.storage);
        assert_eq!(info.config.duplicate_window, file.duplicate_window);
        assert!(info.config.allow_direct);
    }
}

#[tokio::test]
async fn an_incompatible_existing_stream_is_refused_with_a_clear_error() {
    let server = NatsServer::start();
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    js.create_stream(stream::Config {
        name: config::OBSERVATIONS_STREAM.into(),
        subjects: vec!["ktd.v1.obs.>".into()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .expect("create a memory stream");
    let err = JetStreamLog::connect(test_config(&server))
        .await
        .expect_err("memory storage is refused");
    let text = err.to_string();
    assert!(matches!(err, LogError::Open { .. }), "{text}");
    assert!(
        text.contains("storage") && text.contains("KTD_OBS"),
        "{text}"
    );
}

#[tokio::test]
async fn connecting_to_nothing_is_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = JetStreamConfig {
        timeout_secs: 1,
        ..JetStreamConfig::new(format!("nats://127.0.0.1:{port}"))
    };
    let err = JetStreamLog::connect(config)
        .await
        .expect_err("no server there");
    assert!(err.is_retryable(), "{err}");
    let bad = JetStreamLog::connect(JetStreamConfig::new("nats://exa mple:x"))
        .await
        .expect_err("a malformed URL");
    assert!(matches!(bad, LogError::Open { .. }), "{bad}");
}

/// Kill the server while a big batch is being published: the append fails with a retryable
/// error; after a restart on the same store, retrying the same batch stores every event
/// exactly once (Nats-Msg-Id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_publish_then_retry_does_not_duplicate() {
    let mut h = Jet::new().await;
    let events = common::batch(0..20_000);
    let log = h.log().clone();
    let publishing = tokio::spawn({
        let events = events.clone();
        async move { log.append(Stream::Observations, events).await }
    });
    // Let part of the batch land, then kill -9.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stored = h.log().last_seq(Stream::Observations).await.unwrap_or(0);
        if stored >= 2_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "publishing made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.server.kill();
    let result = publishing.await.expect("append task");
    let err = result.expect_err("the server died during the append");
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, LogError::Unavailable(_)), "{err}");

    h.server.restart();
    let stored_before_retry = {
        let log = connect(&h.server, false).await;
        log.last_seq(Stream::Observations).await.expect("last")
    };
    assert!(
        stored_before_retry > 0 && stored_before_retry < 20_000,
        "part of the batch was stored: {stored_before_retry}"
    );
    // The old client reconnects by itself; retry through it.
    let mut retried = None;
    for _ in 0..50 {
        match h.log().append(Stream::Observations, events.clone()).await {
            Ok(out) => {
                retried = Some(out);
                break;
            }
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("retry failed: {e}"),
        }
    }
    let out = retried.expect("the retry succeeded after the restart");
    // Publishes buffered by the client during the outage, and earlier retry attempts that
    // failed half-way, may have stored more since: at least what was there is recognised.
    assert!(
        out.duplicates >= stored_before_retry,
        "stored events were recognised: {} < {stored_before_retry}",
        out.duplicates
    );
    assert_eq!(out.appended + out.duplicates, 20_000);
    // Every event got its own sequence. The order within the batch is not guaranteed after
    // a server crash: publishes the client buffered during the outage may land after the
    // retry's (ADR 0003); what is guaranteed is exactly once, and truthful sequences.
    let mut seqs = out.seqs.clone();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20_000).collect::<Vec<u64>>());
    assert_eq!(
        h.log().last_seq(Stream::Observations).await.expect("last"),
        20_000,
        "no duplicates"
    );
    let records = h
        .log()
        .read(Stream::Observations, 1, 30_000)
        .await
        .expect("read");
    let ids: Vec<_> = records
        .into_iter()
        .map(|r| r.expect("readable").id)
        .collect();
    for (event, seq) in events.iter().zip(&out.seqs) {
        assert_eq!(
            ids[(*seq - 1) as usize],
            event.id,
            "seq {seq} holds its event"
        );
    }
}
