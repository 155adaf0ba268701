//! # ktd-truenas
//!
//! The TrueNAS source: one client for REST v2.0 and JSON-RPC 2.0 over WebSocket
//! ([`TrueNasClient`]), and a [`Poller`] that turns a few bulk queries per poll into change
//! events with exactly-once ids, rebuilding its memory ([`PollerState`]) from the log.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ktd_truenas::ClientError> {
//! use ktd_truenas::{Poller, PollerState, TrueNasClient, TrueNasConfig};
//! let config = TrueNasConfig { url: "https://nas01.example.com".into(), ..Default::default() };
//! let client = TrueNasClient::connect(config).await?;
//! let mut poller = Poller::new(client, "nas01", PollerState::default());
//! let events = poller.poll_once(ktd_model::Timestamp::now()).await;
//! # let _ = events; Ok(()) }
//! ```

mod breaker;
pub mod client;
pub mod config;
pub mod error;
mod fetch;
mod json_list;
mod jsonrpc;
pub mod poller;
mod rest;
mod snapshots;
pub mod state;
mod tls;

pub use breaker::BreakerState;
pub use client::{TrueNasClient, check_api_key_transport, is_loopback_host, pick_api_version};
pub use config::{
    ApiKey, CircuitBreakerConfig, RetryConfig, SecretError, SecretSource, Timeouts, TlsConfig,
    TransportChoice, TrueNasConfig,
};
pub use error::ClientError;
pub use jsonrpc::MAX_IN_FLIGHT;
pub use poller::Poller;
pub use state::PollerState;
