//! A TrueNAS SCALE simulator: REST v2.0, JSON-RPC 2.0 WebSocket and the legacy DDP
//! `/websocket` over one simulated [`Nas`], in the wire shapes of a chosen release
//! ([`Personality`]: 22.12, 24.10, 25.04, 25.10).
//!
//! - `render` / `records` / `snapshots` turn the world into per-release JSON, cached per
//!   world generation (snapshots as ready-made JSON text, so 100,000 of them cost a copy);
//! - `query` is the middleware's `filter_list` (filters and options);
//! - `methods` is the method table and the read methods shared by the transports,
//!   `writes` the few write methods a cleanup tool needs;
//! - `rest`, `jsonrpc` and `ddp` are the transports, `auth` the API-key logins, `events`
//!   the `collection_update` events of [`TrueNasServer::update`].
//!
//! Modelling choices (the world stores less than a real NAS knows):
//! - each pool is one 4-disk RAIDZ1 vdev: usable bytes are ¾ of `size`, and a dataset's
//!   `available` is the pool's usable bytes minus the root dataset's `used` (capped by
//!   `refquota`);
//! - `used` = `usedbydataset` + `usedbysnapshots` + `usedbychildren` + `usedbyrefreservation`;
//! - `compression=lz4`, `atime=off`, `acltype=posix`, `aclmode=discard`, `xattr=sa` are set
//!   LOCAL on each pool's root dataset and INHERITED below it; everything else is DEFAULT;
//! - user properties: LOCAL (`user_properties`), RECEIVED (`received_properties`), otherwise
//!   INHERITED from the nearest ancestor; snapshots inherit their dataset's;
//! - writes: deleting snapshots (`defer` for clone origins), datasets (`recursive`),
//!   shares and iSCSI objects, and `pool.dataset.update` `user_properties_update` are
//!   performed (as API changes, with their events); other writes (create, ...) answer
//!   ENOTSUP (REST 422); read-only keys get EACCES (REST 403);
//! - clients are local unless [`TrueNasServer::set_client_remote`] says otherwise; plain
//!   HTTP is assumed (there is no TLS), so on 25.04+ a WebSocket API-key login from a
//!   remote client revokes the key;
//! - faults: every REST request and every WebSocket call asks the [`FaultInjector`]; a hung
//!   REST request gets nginx's 504 after [`TrueNasServer::set_gateway_timeout`] (60 s).
//!
//! ```no_run
//! # async fn demo(nas: ktd_sim::Nas) -> std::io::Result<()> {
//! use tokio_util::sync::CancellationToken;
//! let server = ktd_sim::truenas::TrueNasServer::start(
//!     nas, "127.0.0.1:0".parse().expect("addr"), CancellationToken::new()).await?;
//! println!("TrueNAS at {}", server.url());
//! # Ok(()) }
//! ```

mod auth;
mod ddp;
mod events;
mod jsonrpc;
mod methods;
mod query;
mod records;
mod render;
mod rest;
mod snapshots;
mod writes;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::faults::FaultInjector;
use crate::world::{Nas, Personality};
use render::Rendered;

pub(crate) use events::Event;

/// nginx's default `proxy_read_timeout`: a hung REST request becomes a 504 after this.
pub const NGINX_TIMEOUT: Duration = Duration::from_secs(60);

/// State shared by the transports.
pub(crate) struct Shared {
    nas: RwLock<Nas>,
    generation: AtomicU64,
    cache: Mutex<Vec<(u64, Personality, Arc<Rendered>)>>,
    faults: FaultInjector,
    events: broadcast::Sender<Event>,
    client_remote: AtomicBool,
    gateway_timeout: Mutex<Duration>,
    boot_id: String,
    /// Injected REST errors so far (alternates 500 and 503).
    injected_errors: AtomicU64,
    /// 24.10+ limiter of unauthenticated WebSocket calls.
    rate_limiter: auth::RateLimiter,
    /// Successful REST authentications per client address (25.10.1 `RESTAPIUsage`).
    rest_use: Mutex<std::collections::BTreeMap<std::net::IpAddr, u64>>,
    /// Snapshot query entries served with their properties (what a client made ZFS read).
    snapshots_served: AtomicU64,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// What an API key check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyCheck {
    /// A valid key (its id).
    Valid(u32),
    /// A known key that was revoked.
    Revoked(u32),
    /// Unknown key.
    Invalid,
}

impl Shared {
    pub(crate) fn nas_read(&self) -> RwLockReadGuard<'_, Nas> {
        self.nas.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn personality(&self) -> Personality {
        self.nas_read().personality
    }

    /// The world rendered for `p`, cached until the next change.
    pub(crate) fn rendered(&self, p: Personality) -> Arc<Rendered> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.load(Ordering::SeqCst);
        cache.retain(|(g, _, _)| *g == generation);
        if let Some((_, _, r)) = cache.iter().find(|(_, q, _)| *q == p) {
            return r.clone();
        }
        let r = Arc::new(render::render(&self.nas_read(), p));
        cache.push((generation, p, r.clone()));
        r
    }

    /// Mutates the world and publishes the resulting events.
    pub(crate) fn update<R>(&self, origin: events::Origin, f: impl FnOnce(&mut Nas) -> R) -> R {
        let (result, before) = {
            let mut nas = self.nas.write().unwrap_or_else(|e| e.into_inner());
            let before = events::Before::capture(self, &nas, origin);
            let result = f(&mut nas);
            (result, before)
        };
        self.changed();
        events::publish(self, before);
        result
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Checks an API key string.
    pub(crate) fn check_key(&self, key: &str) -> KeyCheck {
        match self.nas_read().api_keys.iter().find(|k| k.key == key) {
            Some(k) if k.revoked => KeyCheck::Revoked(k.id),
            Some(k) => KeyCheck::Valid(k.id),
            None => KeyCheck::Invalid,
        }
    }

    /// Whether the key with this id is read-only.
    pub(crate) fn key_readonly(&self, id: u32) -> bool {
        self.nas_read()
            .api_keys
            .iter()
            .any(|k| k.id == id && k.readonly)
    }

    /// Revokes a key (25.04+ insecure-transport rule).
    pub(crate) fn revoke_key(&self, id: u32) {
        let mut nas = self.nas.write().unwrap_or_else(|e| e.into_inner());
        for k in nas.api_keys.iter_mut().filter(|k| k.id == id) {
            k.revoked = true;
        }
        drop(nas);
        self.changed();
    }

    /// Whether a peer counts as remote (non-loopback) for the insecure-transport rule.
    pub(crate) fn is_remote(&self, peer: SocketAddr) -> bool {
        self.client_remote.load(Ordering::SeqCst) || !peer.ip().is_loopback()
    }

    /// Counts a successfully authenticated REST request.
    pub(crate) fn served_snapshots(&self, n: u64) {
        self.snapshots_served.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn record_rest_use(&self, peer: SocketAddr) {
        let mut uses = self.rest_use.lock().unwrap_or_else(|e| e.into_inner());
        *uses.entry(peer.ip()).or_default() += 1;
    }

    /// Successful REST authentications per client address.
    pub(crate) fn rest_use(&self) -> Vec<(std::net::IpAddr, u64)> {
        let uses = self.rest_use.lock().unwrap_or_else(|e| e.into_inner());
        uses.iter().map(|(ip, n)| (*ip, *n)).collect()
    }

    pub(crate) fn gateway_timeout(&self) -> Duration {
        *self
            .gateway_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// A running TrueNAS simulator.
pub struct TrueNasServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl TrueNasServer {
    /// Binds `addr` (use `127.0.0.1:0` in tests) and serves `nas` until `shutdown`.
    pub async fn start(
        nas: Nas,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> std::io::Result<TrueNasServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(1 << 16);
        let shared = Arc::new(Shared {
            nas: RwLock::new(nas),
            generation: AtomicU64::new(0),
            cache: Mutex::new(Vec::new()),
            faults: FaultInjector::new(0x7275_e4a5),
            events,
            client_remote: AtomicBool::new(false),
            gateway_timeout: Mutex::new(NGINX_TIMEOUT),
            boot_id: uuid::Uuid::new_v4().to_string(),
            injected_errors: AtomicU64::new(0),
            rest_use: Mutex::new(std::collections::BTreeMap::new()),
            snapshots_served: AtomicU64::new(0),
            rate_limiter: auth::RateLimiter::default(),
            shutdown: shutdown.clone(),
            tasks: TaskTracker::new(),
        });
        let app = router(shared.clone());
        let token = shutdown.clone();
        shared.tasks.spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "TrueNAS simulator stopped");
            }
        });
        shared.tasks.close();
        Ok(TrueNasServer { shared, addr })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Mutates the world; subscribers get the `collection_update` events the real
    /// middleware would send if datasets, shares and iSCSI objects changed through the API
    /// and snapshots outside it (periodic tasks, replication, SSH drivers): datasets
    /// ADDED/CHANGED with `fields` and REMOVED, shares and iSCSI objects with only `id`,
    /// pools on creation, export or state change, nothing for snapshots.
    pub fn update<R>(&self, f: impl FnOnce(&mut Nas) -> R) -> R {
        self.update_from(events::Origin::Mixed, f)
    }

    /// Like [`update`](Self::update), with snapshots also changed through the API (the
    /// democratic-csi `freenas-api-*` drivers): snapshot ADDED with `fields`, REMOVED with
    /// `extra.recursive`.
    pub fn update_via_api<R>(&self, f: impl FnOnce(&mut Nas) -> R) -> R {
        self.update_from(events::Origin::Api, f)
    }

    /// Like [`update`](Self::update) for changes made with `zfs` outside the API: only
    /// dataset REMOVED events (seen in ZFS history), nothing else about datasets/snapshots.
    pub fn update_outside_api<R>(&self, f: impl FnOnce(&mut Nas) -> R) -> R {
        self.update_from(events::Origin::Outside, f)
    }

    fn update_from<R>(&self, origin: events::Origin, f: impl FnOnce(&mut Nas) -> R) -> R {
        self.shared.update(origin, f)
    }

    /// How many snapshot entries the snapshot queries have answered with their properties
    /// so far (entries of `select`/`count` queries not included): what clients made the
    /// NAS read.
    pub fn snapshots_served(&self) -> u64 {
        self.shared.snapshots_served.load(Ordering::SeqCst)
    }

    /// A copy of the current world.
    pub fn nas(&self) -> Nas {
        self.shared.nas_read().clone()
    }

    /// The fault injector (every REST request and JSON-RPC call consults it).
    pub fn faults(&self) -> &FaultInjector {
        &self.shared.faults
    }

    /// Switches the release the simulator reproduces.
    pub fn set_personality(&self, p: Personality) {
        self.shared
            .nas
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .personality = p;
        self.shared.changed();
    }

    /// Treats every client as remote (non-loopback), as if connecting over the network
    /// through plain HTTP: on 25.04+ a WebSocket API-key login then revokes the key.
    pub fn set_client_remote(&self, remote: bool) {
        self.shared.client_remote.store(remote, Ordering::SeqCst);
    }

    /// How long nginx waits before answering a hung REST request with 504 (default 60 s).
    pub fn set_gateway_timeout(&self, timeout: Duration) {
        *self
            .shared
            .gateway_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = timeout;
    }

    /// Waits until the server task has finished (after the shutdown token fired).
    pub async fn stopped(&self) {
        self.shared.tasks.wait().await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v2.0", any(rest::handle))
        .route("/api/v2.0/", any(rest::handle))
        .route("/api/v2.0/{*rest}", any(rest::handle))
        .route("/websocket", get(ddp::upgrade))
        .route("/api/versions", get(jsonrpc::versions))
        .route("/api/boot_id", get(jsonrpc::boot_id))
        .route("/api/{version}", any(jsonrpc::upgrade))
        .fallback(rest::not_found)
        .with_state(shared)
}
