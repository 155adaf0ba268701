//! [`TrueNasClient`]: version detection, transport choice, the insecure-transport guard,
//! retries with backoff, the circuit breaker, and typed helpers for the bulk queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use ktd_model::truenas::{ApiTransport, SystemInfo};
use reqwest::Url;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::breaker::{Breaker, BreakerState, backoff};
use crate::config::{ApiKey, TransportChoice, TrueNasConfig};
use crate::error::ClientError;
use crate::json_list::ListSplitter;
use crate::jsonrpc::{self, JsonRpc};
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
    /// through the circuit breaker. The answer is parsed into a [`Value`]: for small
    /// answers; lists of thousands of objects go through [`query_each`](Self::query_each)
    /// or [`call_to_writer`](Self::call_to_writer).
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        let mut tries = Retries::new(&self.inner, method);
        loop {
            let (span, started) = tries.start()?;
            let result = self
                .call_once(method, params)
                .instrument(span.clone())
                .await;
            if let Some(done) = tries.end(&span, started, result, true).await {
                return done;
            }
        }
    }

    async fn call_once(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        match &self.inner.transport {
            Transport::Rest(r) => r.call(method, params).await,
            Transport::JsonRpc(j) => jsonrpc::value(&j.call(method, params).await?, method),
        }
    }

    /// Calls `method`, whose result is a JSON list, and hands each element to `each` as
    /// JSON text, one at a time, as the answer arrives: nothing holds the whole answer as a
    /// value, and over REST not even as text (a JSON-RPC answer is one WebSocket message,
    /// held as text until its last element was handed over). `each` may stop the reading
    /// by returning an error. Retries (like [`call`](Self::call)) only while no element was
    /// handed over. Returns the number of elements.
    pub async fn query_each(
        &self,
        method: &str,
        params: &[Value],
        mut each: impl FnMut(&[u8]) -> Result<(), ClientError> + Send,
    ) -> Result<u64, ClientError> {
        self.stream(method, params, || ListSplitter::list(method), &mut each)
            .await
    }

    /// Like [`query_each`](Self::query_each) with the splitter `splitter` makes.
    pub(crate) async fn stream(
        &self,
        method: &str,
        params: &[Value],
        splitter: impl Fn() -> ListSplitter + Send + Sync,
        each: &mut (dyn FnMut(&[u8]) -> Result<(), ClientError> + Send),
    ) -> Result<u64, ClientError> {
        let mut tries = Retries::new(&self.inner, method);
        loop {
            let (span, started) = tries.start()?;
            let mut split = splitter();
            let result = self
                .stream_once(method, params, &mut split, each)
                .instrument(span.clone())
                .await;
            let untouched = split.elements() == 0;
            let result = result.and_then(|()| split.finish());
            if let Some(done) = tries.end(&span, started, result, untouched).await {
                return done;
            }
        }
    }

    /// Like [`stream`](Self::stream) for several calls of `method`, their elements handed
    /// over in order. Over JSON-RPC up to [`IN_PARALLEL`] calls are in flight (an answer
    /// waits, as text, for its turn); over REST they go one after the other.
    pub(crate) async fn stream_many(
        &self,
        method: &str,
        calls: &[Vec<Value>],
        splitter: impl Fn() -> ListSplitter + Send + Sync,
        each: &mut (dyn FnMut(&[u8]) -> Result<(), ClientError> + Send),
    ) -> Result<u64, ClientError> {
        let mut n = 0;
        let Transport::JsonRpc(j) = &self.inner.transport else {
            for params in calls {
                n += self.stream(method, params, &splitter, each).await?;
            }
            return Ok(n);
        };
        // (A loop rather than `stream::iter(..).map(..).buffered(..)`: with a closure
        // there, the caller's future is not `Send` for every lifetime.)
        let mut frames = futures::stream::FuturesOrdered::new();
        let mut next = calls.iter();
        for params in next.by_ref().take(IN_PARALLEL) {
            frames.push_back(self.frame(j, method, params));
        }
        while let Some(frame) = frames.next().await {
            if let Some(params) = next.next() {
                frames.push_back(self.frame(j, method, params));
            }
            let frame = frame?;
            let mut split = splitter();
            for piece in frame.result().chunks(PIECE) {
                split.feed(piece, each)?;
                tokio::task::yield_now().await;
            }
            n += split.finish()?;
        }
        Ok(n)
    }

    /// One JSON-RPC answer, with retries.
    async fn frame(
        &self,
        j: &JsonRpc,
        method: &str,
        params: &[Value],
    ) -> Result<jsonrpc::Frame, ClientError> {
        let mut tries = Retries::new(&self.inner, method);
        loop {
            let (span, started) = tries.start()?;
            let result = j.call(method, params).instrument(span.clone()).await;
            if let Some(done) = tries.end(&span, started, result, true).await {
                return done;
            }
        }
    }

    async fn stream_once(
        &self,
        method: &str,
        params: &[Value],
        split: &mut ListSplitter,
        each: &mut (dyn FnMut(&[u8]) -> Result<(), ClientError> + Send),
    ) -> Result<(), ClientError> {
        match &self.inner.transport {
            Transport::Rest(r) => {
                let mut resp = r.send(method, params).await?;
                while let Some(chunk) = r.chunk(method, &mut resp).await? {
                    split.feed(&chunk, each)?;
                }
                Ok(())
            }
            Transport::JsonRpc(j) => {
                let frame = j.call(method, params).await?;
                // Read in pieces, letting other tasks run in between.
                for piece in frame.result().chunks(PIECE) {
                    split.feed(piece, each)?;
                    tokio::task::yield_now().await;
                }
                Ok(())
            }
        }
    }

    /// Calls `method` and writes its JSON `result` to `out` as TrueNAS sent it, without
    /// parsing it into a value (over REST the body is copied as it arrives; a JSON-RPC
    /// answer is one WebSocket message, held until written). For offline bundles
    /// (`truenas/<method>.json`) of any size. Retries (like [`call`](Self::call)) only
    /// while nothing was written. Returns the number of bytes written.
    pub async fn call_to_writer<W: std::io::Write + Send>(
        &self,
        method: &str,
        params: &[Value],
        out: &mut W,
    ) -> Result<u64, ClientError> {
        let mut tries = Retries::new(&self.inner, method);
        loop {
            let (span, started) = tries.start()?;
            let mut written = 0u64;
            let result = self
                .write_once(method, params, out, &mut written)
                .instrument(span.clone())
                .await;
            let result = result.and_then(|()| {
                out.flush().map_err(|e| ClientError::output(method, &e))?;
                Ok(written)
            });
            if let Some(done) = tries.end(&span, started, result, written == 0).await {
                return done;
            }
        }
    }

    async fn write_once<W: std::io::Write + Send>(
        &self,
        method: &str,
        params: &[Value],
        out: &mut W,
        written: &mut u64,
    ) -> Result<(), ClientError> {
        let mut write = |bytes: &[u8]| -> Result<(), ClientError> {
            out.write_all(bytes)
                .map_err(|e| ClientError::output(method, &e))?;
            *written += bytes.len() as u64;
            Ok(())
        };
        match &self.inner.transport {
            Transport::Rest(r) => {
                let mut resp = r.send(method, params).await?;
                let mut first = true;
                while let Some(chunk) = r.chunk(method, &mut resp).await? {
                    if first && let Some(b) = chunk.iter().find(|b| !b.is_ascii_whitespace()) {
                        if !b"[{\"-0123456789tfn".contains(b) {
                            let text = String::from_utf8_lossy(&chunk);
                            return Err(ClientError::Malformed {
                                method: method.to_owned(),
                                detail: format!(
                                    "not JSON: {}",
                                    text.trim().chars().take(80).collect::<String>()
                                ),
                            });
                        }
                        first = false;
                    }
                    write(&chunk)?;
                }
                if first {
                    return Err(ClientError::Malformed {
                        method: method.to_owned(),
                        detail: "the answer is empty".into(),
                    });
                }
                Ok(())
            }
            Transport::JsonRpc(j) => {
                let frame = j.call(method, params).await?;
                write(frame.result())
            }
        }
    }

    /// Closes the WebSocket (the next call reconnects); nothing for REST.
    pub async fn disconnect(&self) {
        if let Transport::JsonRpc(j) = &self.inner.transport {
            j.disconnect().await;
        }
    }

    /// `<method> [[], options]`: a whole collection, as a value (small collections).
    pub async fn query(&self, method: &str, options: Value) -> Result<Value, ClientError> {
        self.call(method, &[json!([]), options]).await
    }

    /// `pool.query`.
    pub async fn pools(&self) -> Result<Value, ClientError> {
        self.query("pool.query", json!({})).await
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

    /// The snapshot query of this release with `params` ([`query_each`](Self::query_each);
    /// `each` also gets the method). Falls back to the other snapshot method when this
    /// release lacks the expected one.
    pub(crate) async fn snapshot_query_each(
        &self,
        params: &[Value],
        mut each: impl FnMut(&str, &[u8]) -> Result<(), ClientError> + Send,
    ) -> Result<u64, ClientError> {
        let method = self.snapshot_method();
        match self
            .query_each(method, params, |json| each(method, json))
            .await
        {
            Err(e) if e.is_method_not_found() => {
                self.inner
                    .snapshot_method_flipped
                    .fetch_xor(true, Ordering::Relaxed);
                let other = self.snapshot_method();
                tracing::info!(missing = method, using = other, "snapshot query method");
                self.query_each(other, params, |json| each(other, json))
                    .await
            }
            other => other,
        }
    }
}

/// How much of a JSON-RPC answer is read before letting other tasks run.
const PIECE: usize = 1 << 20;

/// Calls of one batch in flight at once on a WebSocket (the middleware runs 10 per
/// connection).
pub(crate) const IN_PARALLEL: usize = 4;

/// The attempts of one call: through the circuit breaker, with backoff between them.
struct Retries<'a> {
    inner: &'a Inner,
    method: &'a str,
    attempt: u32,
    last: Option<ClientError>,
}

impl<'a> Retries<'a> {
    fn new(inner: &'a Inner, method: &'a str) -> Self {
        Retries {
            inner,
            method,
            attempt: 0,
            last: None,
        }
    }

    /// Starts an attempt (its span and start time), unless the breaker is open.
    fn start(&mut self) -> Result<(tracing::Span, Instant), ClientError> {
        self.attempt += 1;
        if let Err(open) = self.inner.breaker.admit() {
            return Err(self.last.take().unwrap_or(open));
        }
        let span =
            tracing::debug_span!("truenas.call", method = self.method, attempt = self.attempt);
        Ok((span, Instant::now()))
    }

    /// Ends an attempt: the call's outcome, or `None` (after the backoff) to try again.
    /// `may_retry` is false once part of the answer was handed on.
    async fn end<T>(
        &mut self,
        span: &tracing::Span,
        started: Instant,
        result: Result<T, ClientError>,
        may_retry: bool,
    ) -> Option<Result<T, ClientError>> {
        let ms = started.elapsed().as_millis() as u64;
        self.inner.breaker.record(result.as_ref().map(|_| ()));
        let retry = &self.inner.config.retry;
        match result {
            Ok(v) => {
                span.in_scope(|| tracing::debug!(duration_ms = ms, "ok"));
                Some(Ok(v))
            }
            Err(e) if may_retry && e.retryable() && self.attempt < retry.max_attempts => {
                let wait = backoff(retry, self.attempt);
                span.in_scope(|| {
                    tracing::warn!(duration_ms = ms, error = %e, retry_in_ms = wait.as_millis() as u64, "retrying")
                });
                self.last = Some(e);
                tokio::time::sleep(wait).await;
                None
            }
            Err(e) => {
                span.in_scope(|| tracing::warn!(duration_ms = ms, error = %e, "failed"));
                Some(Err(e))
            }
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
