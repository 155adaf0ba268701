//! A fake kube-apiserver, faithful enough that kubectl and kube-runtime's watcher cannot
//! tell it from the real one (see `reference/kubernetes-api.md`).
//!
//! Served over plain HTTP/1.1: LIST with `limit`/`continue` paging at a consistent RV,
//! label and field selectors, WATCH (newline-delimited WatchEvents, BOOKMARKs, streaming
//! lists, `410 Expired` as an ERROR event), single-object GET, legacy discovery, kubectl
//! Tables, `PartialObjectMetadata`, SelfSubjectAccessReview and RBAC denials. Writes go
//! through the Rust handle ([`KubeApiServer::apply`], [`KubeApiServer::delete`]); HTTP
//! write verbs get `405 MethodNotAllowed`.
//!
//! Module map: [`resources`] (the kind table), [`store`] (objects, RVs, history),
//! [`selectors`], `server` (routing, discovery, lists), `watch`, `table`, `proto` (the
//! protobuf SelfSubjectAccessReview kubectl posts).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ktd_sim::{Cluster, KubeApiServer};
//! use tokio_util::sync::CancellationToken;
//!
//! let shutdown = CancellationToken::new();
//! let cluster = Cluster { name: "c1".into(), objects: vec![], snapshot_crds: true, denied: vec![] };
//! let server = KubeApiServer::start(cluster, "127.0.0.1:0".parse().unwrap(), shutdown.clone()).await?;
//! // kube: Client::try_from(kube::Config::new(server.url().parse()?))
//! // kubectl --server "$URL" get pv
//! server.expire_watches(); // every watcher gets a 410 and must re-list
//! shutdown.cancel();
//! server.stopped().await;
//! # Ok(()) }
//! ```
//!
//! Not modelled (on purpose, for now): finalizers and graceful deletion (a delete removes
//! the object at once), optimistic concurrency on writes (the handle always wins), the
//! `events.k8s.io` group, subresources, OpenAPI and aggregated discovery (kubectl falls
//! back to the legacy discovery served here), and continue-token expiry by age (tokens
//! expire only when the history is compacted). Several WatchEvents may share one HTTP
//! chunk when changes come in bursts; each is still one complete line, sent at once.

pub mod resources;
pub mod selectors;
pub mod store;

mod list;
mod proto;
mod server;
mod table;
mod watch;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::faults::FaultInjector;
use crate::world::{Cluster, Denied};

pub use store::ApplyError;

/// How many changes per kind the watch history keeps (the real cacher keeps a window
/// too; a watcher that lags further behind gets `410 Expired`).
pub const DEFAULT_HISTORY_CAPACITY: usize = 200_000;

/// Default interval between BOOKMARK events (the real apiserver sends roughly one a minute).
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// State shared by the handle, the HTTP handlers and the watch tasks.
pub(crate) struct Shared {
    pub(crate) store: store::Store,
    pub(crate) faults: FaultInjector,
    pub(crate) denied: RwLock<Vec<Denied>>,
    pub(crate) snapshot_crds: AtomicBool,
    /// Cancelled (and replaced) by `drop_watches`.
    pub(crate) drops: Mutex<CancellationToken>,
    pub(crate) bookmark_interval_ms: AtomicU64,
    /// Counts injected errors, to alternate 500 and 503.
    pub(crate) errors: AtomicU64,
    /// Requests served per kind of request.
    pub(crate) stats: Stats,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

impl Shared {
    pub(crate) fn drop_token(&self) -> CancellationToken {
        self.drops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn is_denied(&self, verb: &str, group: &str, resource: &str) -> bool {
        let field = |rule: &str, asked: &str| rule == "*" || asked == "*" || rule == asked;
        self.denied
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|d| field(&d.verb, verb) && field(&d.group, group) && field(&d.resource, resource))
    }
}

/// A running fake apiserver for one [`Cluster`].
pub struct KubeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl KubeApiServer {
    /// Binds `addr` (use `127.0.0.1:0` in tests), loads the cluster's objects and serves
    /// until `shutdown` is cancelled. Fails if the address cannot be bound or an object
    /// of the cluster is not a servable Kubernetes object (`InvalidData`).
    pub async fn start(
        cluster: Cluster,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> std::io::Result<KubeApiServer> {
        let store = store::Store::new(DEFAULT_HISTORY_CAPACITY);
        store
            .load(cluster.objects)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let seed = cluster
            .name
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let shared = Arc::new(Shared {
            store,
            faults: FaultInjector::new(seed),
            denied: RwLock::new(cluster.denied),
            snapshot_crds: AtomicBool::new(cluster.snapshot_crds),
            drops: Mutex::new(CancellationToken::new()),
            bookmark_interval_ms: AtomicU64::new(DEFAULT_BOOKMARK_INTERVAL.as_millis() as u64),
            errors: AtomicU64::new(0),
            stats: Stats::default(),
            shutdown: shutdown.clone(),
            tasks: TaskTracker::new(),
        });
        let app = server::router(shared.clone());
        shared.tasks.spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
            if let Err(error) = serve.await {
                tracing::warn!(%error, "fake kube-apiserver stopped with an error");
            }
        });
        tracing::debug!(%addr, cluster = %cluster.name, "fake kube-apiserver listening");
        Ok(KubeApiServer { shared, addr })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Creates or updates an object (by `apiVersion`, `kind`, namespace and name), assigns
    /// the server fields (`uid`, `creationTimestamp`, `generation`, a new
    /// `resourceVersion`), emits ADDED/MODIFIED to watchers and returns the stored object.
    pub fn apply(&self, object: Value) -> Result<Value, ApplyError> {
        self.shared.store.apply(object)
    }

    /// Deletes an object (`kind` may be a kind, plural or short name); emits DELETED with
    /// the last state stamped with the deletion RV and returns it (`None` if absent).
    pub fn delete(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ApplyError> {
        let rt = kind_of(kind)?;
        let ns = if rt.namespaced {
            namespace.unwrap_or("default")
        } else {
            ""
        };
        Ok(self.shared.store.delete(rt, ns, name))
    }

    /// The current objects of a kind (kind, plural or short name), in key order; empty
    /// for an unknown kind.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        match resources::by_name(kind) {
            Some(rt) => self
                .shared
                .store
                .objects(rt)
                .iter()
                .map(|o| (**o).clone())
                .collect(),
            None => Vec::new(),
        }
    }

    /// The current global resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.current_rv()
    }

    /// The "410 storm": compacts the history to now, so every open watch receives an
    /// ERROR `{code: 410, reason: Expired}` event and closes, and every watch or continue
    /// token at an older RV is refused the same way. Clients must re-list.
    pub fn expire_watches(&self) {
        self.shared.store.expire();
    }

    /// Abruptly closes every open watch connection (no final chunk, like a dropped TCP
    /// connection mid-stream).
    pub fn drop_watches(&self) {
        let mut drops = self.shared.drops.lock().unwrap_or_else(|e| e.into_inner());
        drops.cancel();
        *drops = CancellationToken::new();
    }

    /// The fault injector every request passes through.
    pub fn faults(&self) -> &FaultInjector {
        &self.shared.faults
    }

    /// Replaces the denied permissions (RBAC changed at runtime).
    pub fn set_denied(&self, denied: Vec<Denied>) {
        *self
            .shared
            .denied
            .write()
            .unwrap_or_else(|e| e.into_inner()) = denied;
    }

    /// Installs or removes the snapshot CRDs (their paths 404 and vanish from discovery
    /// while absent; stored snapshot objects are kept).
    pub fn set_snapshot_crds(&self, installed: bool) {
        self.shared
            .snapshot_crds
            .store(installed, Ordering::Relaxed);
    }

    /// Sets how many changes per kind the watch history keeps (default
    /// [`DEFAULT_HISTORY_CAPACITY`]); a watcher that falls further behind, or a continue
    /// token older than the history, gets `410 Expired`.
    pub fn set_history_capacity(&self, changes_per_kind: usize) {
        self.shared.store.set_capacity(changes_per_kind);
    }

    /// Sets the interval between BOOKMARK events for watches started from now on.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        let ms = interval.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        self.shared
            .bookmark_interval_ms
            .store(ms, Ordering::Relaxed);
    }

    /// How many list and watch requests were served so far (tests use this to see
    /// clients re-list or re-watch).
    pub fn stats(&self) -> RequestStats {
        RequestStats {
            lists: self.shared.stats.lists.load(Ordering::Relaxed),
            watches: self.shared.stats.watches.load(Ordering::Relaxed),
        }
    }

    /// Waits until the server and every watch stream have stopped (after `shutdown`).
    pub async fn stopped(&self) {
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

/// Counters of served requests.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) lists: AtomicU64,
    pub(crate) watches: AtomicU64,
}

/// A snapshot of the request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestStats {
    /// LIST requests answered (one per page).
    pub lists: u64,
    /// WATCH requests started.
    pub watches: u64,
}

fn kind_of(kind: &str) -> Result<&'static resources::ResourceType, ApplyError> {
    resources::by_name(kind).ok_or_else(|| ApplyError::UnknownKind {
        api_version: String::new(),
        kind: kind.to_owned(),
    })
}
