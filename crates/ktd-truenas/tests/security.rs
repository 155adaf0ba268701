//! The API key: never sent in clear text to another machine (TrueNAS 25.04+ revokes it),
//! and the guard acts before any login so the key stays valid.

mod support;

use std::net::{IpAddr, UdpSocket};

use ktd_sim::{Personality, TrueNasServer};
use ktd_truenas::{ClientError, TransportChoice, TrueNasClient};
use support::*;
use tokio_util::sync::CancellationToken;

/// This machine's outbound non-loopback address, if it has one (UDP `connect` sends nothing).
fn lan_address() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("198.51.100.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn revoked(server: &TrueNasServer) -> bool {
    server.nas().api_keys[0].revoked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_remote_host_is_refused_before_login_and_the_key_survives() {
    let nas = world(Personality::V25_04).nas;
    let key = ktd_truenas::ApiKey::new(nas.api_keys[0].key.clone());
    let shutdown = CancellationToken::new();
    let _guard = shutdown.clone().drop_guard();
    // Reachable from the network: the simulator sees a non-loopback peer by itself.
    let server = TrueNasServer::start(nas, "0.0.0.0:0".parse().unwrap(), shutdown.clone())
        .await
        .unwrap();
    let port = server.addr().port();
    let loopback = format!("http://127.0.0.1:{port}");

    if let Some(ip) = lan_address() {
        let remote = format!("http://{ip}:{port}");
        for transport in [TransportChoice::Auto, TransportChoice::Rest] {
            let e = TrueNasClient::connect_with_key(config(&remote, transport), key.clone())
                .await
                .unwrap_err();
            assert!(matches!(e, ClientError::InsecureTransport { .. }), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("revokes") && msg.contains("https://"),
                "the error explains why and what to do: {msg}"
            );
        }
        assert!(
            !revoked(&server),
            "refused before logging in: the key is intact"
        );
        let client = bounded(
            "loopback connect",
            TrueNasClient::connect_with_key(config(&loopback, TransportChoice::Auto), key.clone()),
        )
        .await
        .expect("the key still works");
        drop(client);

        // What the guard prevents: the same login with the guard off revokes the key.
        let mut unsafe_config = config(&remote, TransportChoice::Auto);
        unsafe_config.allow_insecure_api_key = true;
        let e = TrueNasClient::connect_with_key(unsafe_config, key.clone())
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Unauthorized { .. }), "{e}");
        assert!(e.to_string().contains("revoked"), "{e}");
        assert!(revoked(&server), "TrueNAS 25.04+ revoked the key");
    } else {
        eprintln!("no non-loopback address: the remote-peer half of this test did not run");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_client_setting_keeps_the_key_when_ktd_refuses() {
    for personality in [Personality::V25_04, Personality::V25_10] {
        let sim = start(world(personality).nas).await;
        sim.server.set_client_remote(true);
        let port = sim.server.addr().port();
        // A name is not proof of loopback: refused, nothing sent.
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
