//! [`TrueNasClient`]: version detection, transport choice, the insecure-transport guard,
//! retries with backoff, the circuit breaker, and typed helpers for the bulk queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ktd_model::truenas::{ApiTransport, SystemInfo};
use reqwest::Url;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::breaker::{Breaker, BreakerState, backoff};
use crate::config::{ApiKey, TransportChoice, TrueNasConfig};
use crate::error::ClientError;
use crate::jsonrpc::JsonRpc;
use crate::rest::{Rest, status_error, transport_error};
use crate::tls;

/// Whether `host` is a loopback address (`localhost`, `127.0.0.0/8`, `::1`). Names other
/// than `localhost` count as remote: resolving them is not proof.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses to send an API key in clear text (`http://`, `ws://`) to a non-loopback host
/// unless `allow_insecure` is set. TrueNAS 25.04+ revokes an API key that logs in that way.
/// Checked before any network traffic.
pub fn check_api_key_transport(url: &str, allow_insecure: bool) -> Result<(), ClientError> {
    let parsed = Url::parse(url).map_err(|e| ClientError::Config(format!("url {url:?}: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| ClientError::Config(format!("url {url:?} has no host")))?;
    match parsed.scheme() {
        "https" | "wss" => Ok(()),
        scheme @ ("http" | "ws") => {
            if is_loopback_host(host) || allow_insecure {
                Ok(())
            } else {
                Err(ClientError::InsecureTransport {
                    scheme: scheme.to_owned(),
                    host: host.to_owned(),
                })
            }
        }
        other => Err(ClientError::Config(format!(
            "url {url:?}: scheme {other} is not http or https"
        ))),
    }
}

enum Transport {
    Rest(Rest),
    JsonRpc(JsonRpc),
}

struct Inner {
    config: TrueNasConfig,
    transport: Transport,
    version: String,
    release: Vec<u32>,
    breaker: Breaker,
    /// Set once `pool.snapshot.query` turned out to be missing (or present) on this server.
    snapshot_method_flipped: AtomicBool,
}

/// A connected TrueNAS client (cheap to clone: clones share the connection).
#[derive(Clone)]
pub struct TrueNasClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TrueNasClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrueNasClient")
            .field("instance", &self.inner.config.instance)
            .field("url", &self.inner.config.url)
            .field("endpoint", &self.endpoint())
            .field("version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

impl TrueNasClient {
    /// Loads the API key from `config.api_key`, checks the transport is safe for it,
    /// detects the release (`GET /api/versions`, then `system.version_short`) and picks the
    /// transport.
    pub async fn connect(config: TrueNasConfig) -> Result<TrueNasClient, ClientError> {
        let key = config
            .api_key
            .load()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Self::connect_with_key(config, key).await
    }

    /// Like [`connect`](Self::connect) with a key obtained elsewhere.
    pub async fn connect_with_key(
        config: TrueNasConfig,
        key: ApiKey,
    ) -> Result<TrueNasClient, ClientError> {
        let span =
            tracing::info_span!("truenas.connect", instance = %config.instance, url = %config.url);
        async move {
            check_api_key_transport(&config.url, config.allow_insecure_api_key)?;
            let base = config.url.trim_end_matches('/').to_owned();
            let http = tls::http_client(&config.tls, config.timeouts.connect)?;
            let versions = probe_versions(&http, &base, &config).await?;
            let jsonrpc_capable = versions.is_some();
            let use_jsonrpc = match config.transport {
                TransportChoice::Auto => jsonrpc_capable,
                TransportChoice::Rest => false,
                TransportChoice::Jsonrpc if jsonrpc_capable => true,
                TransportChoice::Jsonrpc => {
                    return Err(ClientError::Config(format!(
                        "transport jsonrpc: {base} has no JSON-RPC API (/api/versions does not \
                         answer; TrueNAS before 25.04): use transport auto or rest"
                    )));
                }
            };
            let transport = if use_jsonrpc {
                let api = pick_api_version(versions.as_deref().unwrap_or_default());
                let ws_url = if let Some(rest) = base.strip_prefix("https://") {
                    format!("wss://{rest}/api/{api}")
                } else {
                    format!("ws://{}/api/{api}", base.trim_start_matches("http://"))
                };
                let connector = if ws_url.starts_with("wss://") {
                    Some(tls::ws_connector(&config.tls)?)
                } else {
                    None
                };
                Transport::JsonRpc(JsonRpc::new(
                    ws_url,
                    key,
                    config.username.clone(),
                    connector,
                    config.timeouts.clone(),
                ))
            } else {
                Transport::Rest(Rest::new(http, &base, key, config.timeouts.call))
            };
            let mut client = TrueNasClient {
                inner: Arc::new(Inner {
                    breaker: Breaker::new(config.circuit_breaker.clone()),
                    config,
                    transport,
                    version: String::new(),
                    release: Vec::new(),
                    snapshot_method_flipped: AtomicBool::new(false),
                }),
            };
            let version = client.call("system.version_short", &[]).await?;
            let version = version
                .as_str()
                .ok_or_else(|| ClientError::Malformed {
                    method: "system.version_short".into(),
                    detail: format!("expected a string, got {version}"),
                })?
                .to_owned();
            let inner = Arc::get_mut(&mut client.inner).expect("not shared yet");
            inner.release = SystemInfo::parse_release(&version);
            inner.version = version;
            tracing::info!(version = %client.inner.version, transport = ?client.transport(), "connected to TrueNAS");
            Ok(client)
        }
        .instrument(span)
        .await
    }

    /// The transport in use.
    pub fn transport(&self) -> ApiTransport {
        match self.inner.transport {
            Transport::Rest(_) => ApiTransport::RestV2,
            Transport::JsonRpc(_) => ApiTransport::JsonRpc,
        }
    }

    /// The API endpoint in use (`wss://nas/api/v25.10.1`, `https://nas/api/v2.0`).
    pub fn endpoint(&self) -> &str {
        match &self.inner.transport {
            Transport::Rest(r) => r.url(),
            Transport::JsonRpc(j) => j.url(),
        }
    }

    /// `system.version_short` as read at connect (`25.04.2.6`).
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The release numbers (`[25, 4, 2, 6]`).
    pub fn release(&self) -> &[u32] {
        &self.inner.release
    }

    /// The configuration.
    pub fn config(&self) -> &TrueNasConfig {
        &self.inner.config
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// Calls `method` with positional `params`, retrying retryable failures with backoff,
    /// through the circuit breaker.
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        let retry = &self.inner.config.retry;
        let mut attempt = 0;
        let mut last: Option<ClientError> = None;
        loop {
            attempt += 1;
            if let Err(open) = self.inner.breaker.admit() {
                return Err(last.unwrap_or(open));
            }
            let span = tracing::debug_span!("truenas.call", method, attempt);
            let started = Instant::now();
            let result = self
                .call_once(method, params)
                .instrument(span.clone())
                .await;
            let ms = started.elapsed().as_millis() as u64;
            self.inner.breaker.record(result.as_ref().map(|_| ()));
            match result {
                Ok(v) => {
                    span.in_scope(|| tracing::debug!(duration_ms = ms, "ok"));
                    return Ok(v);
                }
                Err(e) if e.retryable() && attempt < retry.max_attempts => {
                    let wait = backoff(retry, attempt);
                    span.in_scope(|| {
                        tracing::warn!(duration_ms = ms, error = %e, retry_in_ms = wait.as_millis() as u64, "retrying")
                    });
                    last = Some(e);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    span.in_scope(|| tracing::warn!(duration_ms = ms, error = %e, "failed"));
                    return Err(e);
                }
            }
        }
    }

    async fn call_once(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        match &self.inner.transport {
            Transport::Rest(r) => r.call(method, params).await,
            Transport::JsonRpc(j) => j.call(method, params).await,
        }
    }

    /// Closes the WebSocket (the next call reconnects); nothing for REST.
    pub async fn disconnect(&self) {
        if let Transport::JsonRpc(j) = &self.inner.transport {
            j.disconnect().await;
        }
    }

    /// `<method> [[], options]`: a whole collection.
    pub async fn query(&self, method: &str, options: Value) -> Result<Value, ClientError> {
        self.call(method, &[json!([]), options]).await
    }

    /// `pool.query`.
    pub async fn pools(&self) -> Result<Value, ClientError> {
        self.query("pool.query", json!({})).await
    }

    /// `pool.dataset.query` as a tree (`flat: false`, so each dataset comes once) with only
    /// `properties` (user properties always come along).
    pub async fn datasets(&self, properties: &[&str]) -> Result<Value, ClientError> {
        let opts = json!({"extra": {"flat": false, "properties": properties}});
        self.query("pool.dataset.query", opts).await
    }

    /// The snapshot query method of this release: `pool.snapshot.query` from 25.10,
    /// `zfs.snapshot.query` before.
    pub fn snapshot_method(&self) -> &'static str {
        let newer = self.inner.release.as_slice() >= [25, 10].as_slice();
        let flipped = self.inner.snapshot_method_flipped.load(Ordering::Relaxed);
        if newer != flipped {
            "pool.snapshot.query"
        } else {
            "zfs.snapshot.query"
        }
    }

    /// Every snapshot with exactly `properties` (ZFS and user properties: when a list is
    /// given only the listed ones come back, and 26+ returns none without a list) and holds.
    /// Falls back to the other snapshot method when this release lacks the expected one.
    pub async fn snapshots(&self, properties: &[String]) -> Result<Value, ClientError> {
        let opts = json!({"extra": {"properties": properties, "holds": true}});
        let method = self.snapshot_method();
        match self.query(method, opts.clone()).await {
            Err(e) if e.is_method_not_found() => {
                self.inner
                    .snapshot_method_flipped
                    .fetch_xor(true, Ordering::Relaxed);
                let other = self.snapshot_method();
                tracing::info!(missing = method, using = other, "snapshot query method");
                self.query(other, opts).await
            }
            other => other,
        }
    }
}

/// API versions whose shapes ktd's normalizers know, newest first.
const KNOWN_API_VERSIONS: [&str; 2] = ["v25.10", "v25.04"];

/// The JSON-RPC endpoint to use: the newest listed version of the newest release ktd
/// knows (`v25.10.1`), so a newer server keeps answering in known shapes; `current` when
/// none is listed.
pub fn pick_api_version(listed: &[String]) -> String {
    let numbers = |v: &str| -> Vec<u32> {
        v.trim_start_matches('v')
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect()
    };
    for known in KNOWN_API_VERSIONS {
        let best = listed
            .iter()
            .filter(|v| *v == known || v.starts_with(&format!("{known}.")))
            .max_by_key(|v| numbers(v));
        if let Some(v) = best {
            return v.clone();
        }
    }
    "current".into()
}

/// `GET /api/versions`: 200 with a JSON list on 25.04+ (JSON-RPC), a redirect before.
async fn probe_versions(
    http: &reqwest::Client,
    base: &str,
    config: &TrueNasConfig,
) -> Result<Option<Vec<String>>, ClientError> {
    let method = "GET /api/versions";
    let resp = http
        .get(format!("{base}/api/versions"))
        .timeout(config.timeouts.connect)
        .send()
        .await
        .map_err(|e| transport_error(method, &e, config.timeouts.connect))?;
    let status = resp.status();
    if status.is_server_error() {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(status_error(method, status, &body));
    }
    if !status.is_success() {
        return Ok(None);
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| transport_error(method, &e, config.timeouts.connect))?;
    Ok(serde_json::from_slice::<Vec<Value>>(&body)
        .ok()
        .map(|list| {
            list.into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_key_to_a_remote_host_is_refused() {
        let e = check_api_key_transport("http://198.51.100.10", false).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ClientError::InsecureTransport { .. }));
        assert!(msg.contains("revokes") && msg.contains("https://"), "{msg}");
        assert!(check_api_key_transport("http://nas.example.com:80", false).is_err());
        assert!(check_api_key_transport("http://198.51.100.10", true).is_ok());
        assert!(check_api_key_transport("https://198.51.100.10", false).is_ok());
        assert!(check_api_key_transport("http://127.0.0.1:8080", false).is_ok());
        assert!(check_api_key_transport("http://[::1]:8080", false).is_ok());
        assert!(check_api_key_transport("http://localhost", false).is_ok());
        assert!(check_api_key_transport("ftp://x", false).is_err());
    }

    #[test]
    fn pins_the_newest_known_api_version() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let l = list(&["v25.04.0", "v25.04.2", "v25.04.1", "v25.10.0", "v25.10.1"]);
        assert_eq!(pick_api_version(&l), "v25.10.1");
        assert_eq!(
            pick_api_version(&list(&["v25.04.0", "v25.04.2"])),
            "v25.04.2"
        );
        assert_eq!(pick_api_version(&list(&["v27.0"])), "current");
        assert_eq!(
            pick_api_version(&list(&["v25.10.0", "v26.0", "v25.100"])),
            "v25.10.0"
        );
    }
}
