//! The API key: never sent in clear text to another machine (TrueNAS 25.04+ revokes it),
//! and the guard acts before any login so the key stays valid.

mod support;

use ktd_sim::{Personality, TrueNasServer};
use ktd_truenas::{ClientError, TransportChoice, TrueNasClient};
use support::*;

fn revoked(server: &TrueNasServer) -> bool {
    server.nas().api_keys[0].revoked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_client_setting_keeps_the_key_when_ktd_refuses() {
    for personality in [Personality::V25_04, Personality::V25_10] {
        let sim = start(world(personality).nas).await;
        sim.server.set_client_remote(true);
        let port = sim.server.addr().port();
        // A name is not proof of loopback: refused, nothing sent. (Tests only ever talk to
        // loopback; a remote peer is simulated with `set_client_remote`.)
        let url = format!("http://truenas.example.invalid:{port}");
        let e =
            TrueNasClient::connect_with_key(config(&url, TransportChoice::Auto), sim.key.clone())
                .await
                .unwrap_err();
        assert!(matches!(e, ClientError::InsecureTransport { .. }), "{e}");
        assert!(!revoked(&sim.server));
        // A WebSocket login the simulator considers remote is revoked (25.04+ behaviour),
        // and ktd says so clearly.
        let e = TrueNasClient::connect_with_key(
            config(&sim.server.url(), TransportChoice::Jsonrpc),
            sim.key.clone(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ClientError::Unauthorized { .. }), "{e}");
        assert!(e.to_string().contains("create a new key"), "{e}");
        assert!(revoked(&sim.server));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_unauthorized_on_both_transports() {
    let sim = start(world(Personality::V25_10).nas).await;
    for transport in [TransportChoice::Rest, TransportChoice::Jsonrpc] {
        let e = TrueNasClient::connect_with_key(
            config(&sim.server.url(), transport),
            ktd_truenas::ApiKey::new("1-not-a-valid-key"),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, ClientError::Unauthorized { .. }),
            "{transport:?}: {e}"
        );
        assert!(!e.retryable());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_http_server_fails_the_tls_handshake() {
    // Verification is on by default: talking TLS to something that is not a verified TLS
    // server fails at connect, with a connection error (the key is never sent).
    let sim = start(world(Personality::V25_04).nas).await;
    let url = sim.server.url().replace("http://", "https://");
    let e = TrueNasClient::connect_with_key(config(&url, TransportChoice::Auto), sim.key.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Connection { .. }), "{e}");
    assert!(!revoked(&sim.server));
}
