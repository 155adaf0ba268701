//! The API key never appears in logs (everything at TRACE, every dependency included) or in
//! `Debug`/`Display` output, whatever happens: logins on both transports, polls, failures.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use ktd_sim::{Faults, Personality};
use ktd_truenas::{ApiKey, ClientError, SecretSource, TransportChoice, TrueNasClient};
use support::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_never_reaches_logs_or_debug_output() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut debug_output = String::new();
    let mut keys = Vec::new();
    for (personality, transport) in [
        (Personality::V24_10, TransportChoice::Auto),
        (Personality::V25_04, TransportChoice::Auto),
        (Personality::V25_10, TransportChoice::Rest),
    ] {
        let sim = start(world(personality).nas).await;
        keys.push(sim.key.expose().to_owned());
        // Through a key file, as deployed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-key");
        std::fs::write(&path, format!("{}\n", sim.key.expose())).unwrap();
        let mut config = config(&sim.server.url(), transport);
        config.api_key = SecretSource::File { file: path };
        let client = bounded("connect", TrueNasClient::connect(config.clone()))
            .await
            .unwrap();
        let mut poller = ktd_truenas::Poller::new(
            client.clone(),
            INSTANCE,
            ktd_truenas::PollerState::default(),
        );
        let events = poll(&mut poller).await;
        assert_eq!(completed(&events).0, 1);
        sim.server.faults().set(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        let failed = poll(&mut poller).await;
        sim.server.faults().set(Faults::default());
        debug_output.push_str(&format!(
            "{client:?} {config:?} {:?} {failed:?} {:?}",
            sim.key,
            config.api_key.load().unwrap()
        ));
        debug_output.push_str(&format!("{}", sim.key));
        // A rejected key: its error must not quote it either.
        let bad = ApiKey::new(format!("{}x", sim.key.expose()));
        let e = TrueNasClient::connect_with_key(config.clone(), bad)
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Unauthorized { .. }), "{e}");
        debug_output.push_str(&format!("{e} {e:?}"));
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("truenas.call") && logs.contains("TrueNAS poll completed"),
        "the capture works"
    );
    for key in &keys {
        let secret = key.split_once('-').unwrap().1;
        assert!(!logs.contains(secret), "the API key leaked into the logs");
        assert!(
            !debug_output.contains(secret),
            "the API key leaked into Debug/Display output"
        );
    }
}
