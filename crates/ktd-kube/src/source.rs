//! The source: one kube-runtime watcher per kind, each driving its own state machine
//! (the private `state` module), merged into one stream of envelopes with `select_all`.

use std::sync::Arc;

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use ktd_model::{Envelope, KubeKind};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};

use crate::clock::{Clock, SystemClock};
use crate::config::KubeSourceConfig;
use crate::known::KnownObjects;
use crate::state::KindState;

/// Watches every configured kind with the default clock and nothing known: see
/// [`KubeSource`] for the semantics. The stream never ends and never yields an error:
/// failures are `WatchFailed` events and every watcher retries with backoff. Drop the
/// stream to stop watching.
pub fn kube_source(
    client: Client,
    config: &KubeSourceConfig,
) -> impl Stream<Item = Envelope> + Send + 'static {
    KubeSource::new(client, config.clone()).stream()
}

/// The Kubernetes source, configured.
///
/// Per kind: `SyncStarted`, one `ObjectApplied` (or `ObjectRejected`) per listed object
/// whose resourceVersion is not already known, `ObjectDeleted { missing_from_relist }` for
/// known objects absent from the list, `SyncCompleted`; then one event per change. A 410
/// or a dropped connection makes the watcher relist or resume; because unchanged objects
/// are skipped and ids are derived from resourceVersions (ADR 0002), a relist adds only
/// what really changed.
///
/// # Event ids (the `version` part, ADR 0002)
/// - `ObjectApplied`, `ObjectRejected`: the object's resourceVersion;
/// - `ObjectDeleted`: the deletion's resourceVersion (stamped on the DELETED object), or
///   for an object missing from a relist (or replaced by a new uid under the same name)
///   its last known resourceVersion;
/// - `SyncStarted`/`SyncCompleted`: `sync/<n>`, `n` = the kind's sync count, continued
///   from [`KnownObjects::syncs`] — two fresh runs give the same ids, a restart that was
///   seeded from the log gives new ones;
/// - `WatchFailed`: `failed/<n>/<i>`, the `i`-th failure report during sync `n`.
///
/// `WatchFailed` does not undo a completed sync: a watch that resumes from its
/// resourceVersion misses nothing, and one that must relist emits a new `SyncStarted` …
/// `SyncCompleted` pair. Failures are reported once per episode (a different failure, or
/// the same one after the kind was healthy or quiet for [`crate::FAILURE_QUIET_PERIOD`]);
/// `410 Expired` and a broken established stream are routine and only logged.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use futures::StreamExt;
/// use ktd_kube::{KnownObjects, KubeSource, KubeSourceConfig};
///
/// let config = KubeSourceConfig { instance: "prod".into(), ..KubeSourceConfig::default() };
/// let client = config.client().await?;
/// let known = KnownObjects::new("prod"); // fold the log's events into it at start-up
/// let mut events = KubeSource::new(client, config).known(known).stream().boxed();
/// while let Some(envelope) = events.next().await {
///     println!("{} {}", envelope.subject, envelope.id);
/// }
/// # Ok(()) }
/// ```
pub struct KubeSource {
    client: Client,
    config: KubeSourceConfig,
    clock: Arc<dyn Clock>,
    known: KnownObjects,
}

impl KubeSource {
    /// A source with the system clock and nothing known.
    pub fn new(client: Client, config: KubeSourceConfig) -> Self {
        let known = KnownObjects::new(config.instance.clone());
        KubeSource {
            client,
            config,
            clock: Arc::new(SystemClock),
            known,
        }
    }

    /// Uses `clock` for `observed_at` (and for rate-limiting failure reports).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Starts from what the log already records (see [`KnownObjects::apply`]): objects
    /// deleted while ktd was down are then reported at the first relist, unchanged ones
    /// produce no event at all, and sync markers continue their numbering.
    ///
    /// Memories of another source instance are ignored (with a warning).
    pub fn known(mut self, known: KnownObjects) -> Self {
        if known.source().instance == self.config.instance {
            self.known = known;
        } else {
            tracing::warn!(
                expected = %self.config.instance,
                got = %known.source(),
                "ignoring known objects of another source"
            );
        }
        self
    }

    /// The merged stream of every kind's events.
    pub fn stream(self) -> impl Stream<Item = Envelope> + Send + 'static {
        let KubeSource {
            client,
            config,
            clock,
            mut known,
        } = self;
        let watchers: Vec<BoxStream<'static, Envelope>> = config
            .watched_kinds()
            .into_iter()
            .map(|kind| {
                let state = KindState::new(
                    known.source().clone(),
                    kind,
                    known.take(kind),
                    (kind == KubeKind::Event).then(|| config.events.clone()),
                );
                watch_kind(client.clone(), &config, kind, state, clock.clone())
            })
            .collect();
        stream::select_all(watchers)
    }
}

/// The `ApiResource` of a kind, built from the model's table (no discovery).
pub fn api_resource(kind: KubeKind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(kind.group(), kind.version(), kind.as_str());
    ApiResource::from_gvk_with_plural(&gvk, kind.plural())
}

/// The `Api` and watcher configuration of a kind, honouring the Pod and Event selections.
pub(crate) fn api_and_config(
    client: Client,
    config: &KubeSourceConfig,
    kind: KubeKind,
) -> (Api<DynamicObject>, watcher::Config) {
    let ar = api_resource(kind);
    let mut wc = watcher::Config::default().page_size(config.page_size.max(1));
    let (namespace, labels, fields) = match kind {
        KubeKind::Pod => (
            config.pods.namespace.as_deref(),
            config.pods.label_selector.as_deref(),
            config.pods.field_selector.as_deref(),
        ),
        KubeKind::Event => (
            config.events.namespace.as_deref(),
            None,
            config.events.field_selector.as_deref(),
        ),
        _ => (None, None, None),
    };
    if let Some(labels) = labels.filter(|s| !s.is_empty()) {
        wc = wc.labels(labels);
    }
    if let Some(fields) = fields.filter(|s| !s.is_empty()) {
        wc = wc.fields(fields);
    }
    let api = match namespace {
        Some(ns) if kind.namespaced() => Api::namespaced_with(client, ns, &ar),
        _ => Api::all_with(client, &ar),
    };
    (api, wc)
}

fn watch_kind(
    client: Client,
    config: &KubeSourceConfig,
    kind: KubeKind,
    mut state: KindState,
    clock: Arc<dyn Clock>,
) -> BoxStream<'static, Envelope> {
    let (api, wc) = api_and_config(client, config, kind);
    let span = tracing::info_span!("kube_watch", kind = %kind, instance = %config.instance);
    let mut events = watcher(api, wc)
        .default_backoff()
        .map(move |item| stream::iter(state.handle(item, clock.now())))
        .flatten()
        .boxed();
    // Enter the kind's span around every poll, so kube-runtime's own logs carry it too.
    stream::poll_fn(move |cx| {
        let _entered = span.enter();
        events.poll_next_unpin(cx)
    })
    .boxed()
}
