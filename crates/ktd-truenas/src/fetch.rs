//! One poll's view of TrueNAS: the bulk queries, read element by element straight into
//! normalized objects and compared with what the log already says as they arrive, so that
//! only what changed is kept (see the rules in [`crate::poller`]). Objects that could not
//! be read are set aside.

use std::collections::{BTreeSet, HashMap, HashSet};

use ktd_model::normalize::truenas as nt;
use ktd_model::truenas::{ApiTransport, Dataset, Pool, Share, ShareKey, ShareKind, SystemInfo};
use serde::Deserialize;
use serde_json::Value;

use crate::client::TrueNasClient;
use crate::error::ClientError;
use crate::json_list::ListSplitter;
use crate::snapshots::{self, SnapshotRead, SnapshotView};
use crate::state::{Digest, PollerState, Usage, dataset_digest, usage};

/// ZFS properties read on datasets (everything `Dataset` holds; user properties come along).
pub const DATASET_PROPERTIES: &[&str] = &[
    "used",
    "available",
    "usedbydataset",
    "usedbysnapshots",
    "usedbychildren",
    "usedbyrefreservation",
    "volsize",
    "volblocksize",
    "quota",
    "refquota",
    "reservation",
    "refreservation",
    "origin",
    "creation",
    "compressratio",
    "readonly",
];

/// ZFS properties read on snapshots.
pub const SNAPSHOT_PROPERTIES: &[&str] =
    &["used", "referenced", "creation", "clones", "defer_destroy"];

/// democratic-csi user properties that may be set on snapshots themselves. With an explicit
/// property list a snapshot query returns only the listed user properties, so the poller
/// asks for these plus every user property seen on a dataset in the same poll (snapshots
/// inherit those).
pub const SNAPSHOT_USER_PROPERTIES: &[&str] = &[
    "democratic-csi:managed_resource",
    "democratic-csi:csi_snapshot_name",
    "democratic-csi:csi_snapshot_source_volume_id",
    "democratic-csi:csi_volume_name",
];

/// A query failure that fails the whole poll.
pub(crate) struct Failure {
    pub method: String,
    pub error: ClientError,
}

impl Failure {
    pub(crate) fn new(method: &str, error: ClientError) -> Self {
        Failure {
            method: method.to_owned(),
            error,
        }
    }
}

/// Which removals an unreadable object forbids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Kind {
    Pool,
    Dataset,
    Snapshot,
    Share(ShareKind),
    System,
}

/// A dataset as this poll saw it: what the diff needs, and the dataset itself only when
/// the log does not know it in this form (a 30,000-dataset poll keeps a few hundred).
pub(crate) struct SeenDataset {
    pub name: String,
    /// The dataset, when new or changed (anything but its space figures).
    pub changed: Option<Box<Dataset>>,
    /// Whether the log does not know it at all.
    pub new: bool,
    pub usage: Option<Usage>,
    pub snapshot_count: Option<u64>,
}

/// The key of an object that could not be normalized, read on its own.
#[derive(Deserialize, Default)]
pub(crate) struct RawKey {
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub id: Option<Value>,
}

impl RawKey {
    /// The key, as far as it can be read from the element's text.
    pub(crate) fn of(json: &[u8]) -> RawKey {
        serde_json::from_slice(json).unwrap_or_default()
    }

    fn of_value(v: &Value) -> RawKey {
        RawKey {
            name: v.get("name").cloned(),
            id: v.get("id").cloned(),
        }
    }

    /// The key of an object of `kind`.
    pub(crate) fn key(&self, kind: Kind) -> Option<String> {
        match kind {
            Kind::Share(k) => self
                .id
                .as_ref()
                .and_then(Value::as_i64)
                .map(|id| ShareKey { kind: k, id }.to_string()),
            _ => self
                .name
                .as_ref()
                .or(self.id.as_ref())
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        }
    }
}

/// Fails the query when `json` (an element that could not be normalized) is not JSON at
/// all: the answer is broken, not just one object.
pub(crate) fn check_json(method: &str, json: &[u8]) -> Result<(), ClientError> {
    match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
        Ok(_) => Ok(()),
        Err(e) => Err(ClientError::Malformed {
            method: method.to_owned(),
            detail: format!("not JSON: {e}"),
        }),
    }
}

/// Set-aside objects of one poll.
#[derive(Default)]
pub(crate) struct Rejections {
    pub rejected: Vec<String>,
    /// Unreadable objects whose key could be read: not removed, previous state stands.
    protected: HashSet<(Kind, String)>,
    /// Kinds with an unreadable object whose key could not be read: no removals at all.
    tainted: HashSet<Kind>,
}

impl Rejections {
    pub(crate) fn reject(
        &mut self,
        kind: Kind,
        method: &str,
        key: Option<String>,
        error: impl std::fmt::Display,
    ) {
        let label = key.clone().unwrap_or_else(|| "(unnamed object)".into());
        let text = format!("{method} {label}: {error}");
        tracing::warn!(rejected = %text, "TrueNAS object skipped");
        self.rejected.push(text);
        match key {
            Some(key) => {
                self.protected.insert((kind, key));
            }
            None => {
                self.tainted.insert(kind);
            }
        }
    }

    /// Whether a known object absent from this view may be reported removed.
    pub(crate) fn removable(&self, kind: Kind, key: &str) -> bool {
        !self.tainted.contains(&kind) && !self.protected.contains(&(kind, key.to_owned()))
    }

    /// Whether a named object of `kind` was set aside.
    pub(crate) fn is_protected(&self, kind: Kind, key: &str) -> bool {
        self.protected.contains(&(kind, key.to_owned()))
    }
}

/// One poll's complete view.
#[derive(Default)]
pub(crate) struct View {
    pub pools: Vec<Pool>,
    pub datasets: Vec<SeenDataset>,
    pub snapshots: SnapshotView,
    pub shares: Vec<Share>,
    pub system: Option<SystemInfo>,
    pub rejections: Rejections,
    /// `origin` of every clone seen (for the next poll's incremental snapshot read).
    pub origins: HashMap<String, String>,
}

/// How this poll reads snapshots.
pub(crate) struct SnapshotPlan<'a> {
    /// Read every snapshot (else only what changed: see [`crate::snapshots`]).
    pub full: bool,
    /// The clones' origins of the previous poll (to re-read snapshots whose clones changed).
    pub previous_origins: &'a HashMap<String, String>,
}

/// Reads a small list answer element by element into `f`'s objects.
async fn small_list<T>(
    client: &TrueNasClient,
    method: &str,
    kind: Kind,
    rejections: &mut Rejections,
    f: impl Fn(&Value) -> Result<T, ktd_model::normalize::NormalizeError> + Send + Sync,
) -> Result<Vec<T>, Failure>
where
    T: Send,
{
    let mut out = Vec::new();
    client
        .query_each(
            method,
            &[serde_json::json!([]), serde_json::json!({})],
            |json| {
                let v: Value =
                    serde_json::from_slice(json).map_err(|e| ClientError::Malformed {
                        method: method.to_owned(),
                        detail: format!("not JSON: {e}"),
                    })?;
                match f(&v) {
                    Ok(t) => out.push(t),
                    Err(e) => rejections.reject(kind, method, RawKey::of_value(&v).key(kind), e),
                }
                Ok(())
            },
        )
        .await
        .map_err(|e| Failure::new(method, e))?;
    Ok(out)
}

async fn plain(client: &TrueNasClient, method: &str) -> Result<Value, Failure> {
    client
        .call(method, &[])
        .await
        .map_err(|error| Failure::new(method, error))
}

/// The digest deciding whether a dataset changed, computed in place (no copy).
fn stable_digest(d: &mut Dataset) -> Digest {
    // `dataset_digest` clears the space figures of a copy; doing it in place and putting
    // them back saves a copy of each of 30,000 datasets per poll.
    let saved = (
        d.used.take(),
        d.available.take(),
        d.used_by_dataset.take(),
        d.used_by_snapshots.take(),
        d.used_by_children.take(),
        d.used_by_refreservation.take(),
        d.compressratio.take(),
        d.snapshot_count.take(),
    );
    let digest = ktd_model::content_digest(&*d);
    (
        d.used,
        d.available,
        d.used_by_dataset,
        d.used_by_snapshots,
        d.used_by_children,
        d.used_by_refreservation,
        d.compressratio,
        d.snapshot_count,
    ) = saved;
    debug_assert_eq!(digest, dataset_digest(d));
    digest
}

/// The largest `id in [...]` dataset query sent over JSON-RPC: the middleware closes a
/// connection whose message exceeds 64 KiB.
const MAX_REQUEST: usize = 48 * 1024;

/// The names of every dataset (`pool.dataset.query` as a tree without properties).
async fn dataset_names(
    client: &TrueNasClient,
    rejections: &mut Rejections,
) -> Result<Vec<String>, Failure> {
    let method = "pool.dataset.query";
    // No properties, no user properties (25.04+, where JSON-RPC is).
    let options = serde_json::json!({"extra": {
        "flat": false,
        "properties": [],
        "retrieve_user_props": false,
    }});
    let mut names = Vec::new();
    let mut named = HashSet::new();
    client
        .stream(
            method,
            &[serde_json::json!([]), options],
            || ListSplitter::tree(method, "children"),
            &mut |json: &[u8]| {
                match RawKey::of(json).key(Kind::Dataset) {
                    Some(name) => {
                        if named.insert(name.clone()) {
                            names.push(name);
                        }
                    }
                    None => {
                        check_json(method, json)?;
                        rejections.reject(Kind::Dataset, method, None, "no `name` in the listing");
                    }
                }
                Ok(())
            },
        )
        .await
        .map_err(|e| Failure::new(method, e))?;
    Ok(names)
}

/// `pool.dataset.query` with only `DATASET_PROPERTIES` (user properties always come
/// along) and each dataset's `snapshot_count`, read dataset by dataset. Returns the user
/// property names seen.
///
/// Over REST, one query of the whole tree (`flat: false`, so each dataset comes once),
/// streamed. A JSON-RPC answer is one WebSocket message held whole (80 MB for 30,000
/// datasets, and the connection keeps a buffer that large), so there the tree comes
/// without properties first (names only), then the datasets with their properties by
/// `id in [...]` in bounded batches (a filter the middleware hands to libzfs).
async fn datasets(
    client: &TrueNasClient,
    state: &PollerState,
    view: &mut View,
) -> Result<BTreeSet<String>, Failure> {
    let method = "pool.dataset.query";
    let rest = client.transport() == ApiTransport::RestV2;
    let names = if rest {
        Vec::new()
    } else {
        dataset_names(client, &mut view.rejections).await?
    };
    let mut seen = HashSet::new();
    let mut user_keys = BTreeSet::new();
    let View {
        datasets,
        rejections,
        origins,
        ..
    } = view;
    let mut each = |json: &[u8]| -> Result<(), ClientError> {
        let mut d = match nt::dataset_from_json(json) {
            Ok(d) => d,
            Err(e) => {
                check_json(method, json)?;
                rejections.reject(
                    Kind::Dataset,
                    method,
                    RawKey::of(json).key(Kind::Dataset),
                    e,
                );
                return Ok(());
            }
        };
        if !seen.insert(d.name.clone()) {
            return Ok(());
        }
        for k in d.user_properties.keys() {
            if !user_keys.contains(k) {
                user_keys.insert(k.clone());
            }
        }
        if let Some(o) = &d.origin {
            origins.insert(d.name.clone(), o.clone());
        }
        let known = state.datasets.get(&d.name);
        let changed = known.is_none_or(|k| k.digest != stable_digest(&mut d));
        datasets.push(SeenDataset {
            name: d.name.clone(),
            new: known.is_none(),
            usage: usage(&d),
            snapshot_count: d.snapshot_count,
            changed: changed.then(|| Box::new(d)),
        });
        Ok(())
    };
    let tree = || ListSplitter::tree(method, "children");
    let failed = |e| Failure::new(method, e);
    if rest {
        let options = serde_json::json!({"extra": {
            "flat": false,
            "properties": DATASET_PROPERTIES,
            "snapshots_count": true,
        }});
        client
            .stream(method, &[serde_json::json!([]), options], tree, &mut each)
            .await
            .map_err(failed)?;
    } else {
        let options = serde_json::json!({"extra": {
            "retrieve_children": false,
            "properties": DATASET_PROPERTIES,
            "snapshots_count": true,
        }});
        let mut calls = Vec::new();
        let mut batch: Vec<String> = Vec::new();
        let mut size = 0;
        let mut names = names.into_iter().peekable();
        while let Some(name) = names.next() {
            size += serde_json::to_string(&name).map_or(name.len(), |q| q.len()) + 1;
            batch.push(name);
            if size < MAX_REQUEST && names.peek().is_some() {
                continue;
            }
            let filters = serde_json::json!([["id", "in", std::mem::take(&mut batch)]]);
            calls.push(vec![filters, options.clone()]);
            size = 0;
        }
        client
            .stream_many(method, &calls, || ListSplitter::list(method), &mut each)
            .await
            .map_err(failed)?;
    }
    // Parents before children, whatever order the tree was read in.
    datasets.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(user_keys)
}

/// Runs the bulk queries and normalizes them, comparing with `state` as they arrive.
pub(crate) async fn fetch(
    client: &TrueNasClient,
    state: &PollerState,
    plan: SnapshotPlan<'_>,
) -> Result<View, Failure> {
    let mut view = View::default();
    view.pools = small_list(
        client,
        "pool.query",
        Kind::Pool,
        &mut view.rejections,
        nt::pool,
    )
    .await?;

    let user_keys = datasets(client, state, &mut view).await?;

    let mut props: BTreeSet<String> = SNAPSHOT_PROPERTIES.iter().map(|s| s.to_string()).collect();
    props.extend(SNAPSHOT_USER_PROPERTIES.iter().map(|s| s.to_string()));
    props.extend(client.config().snapshot_user_properties.iter().cloned());
    props.extend(user_keys);
    let read = SnapshotRead {
        client,
        state,
        properties: props.into_iter().collect(),
    };
    view.snapshots = snapshots::read(&read, &mut view, plan).await?;

    type Normalizer = fn(&Value) -> Result<Share, ktd_model::normalize::NormalizeError>;
    let share_queries: [(&str, ShareKind, Normalizer); 5] = [
        ("sharing.nfs.query", ShareKind::Nfs, |v| {
            nt::nfs_share(v).map(Share::Nfs)
        }),
        ("sharing.smb.query", ShareKind::Smb, |v| {
            nt::smb_share(v).map(Share::Smb)
        }),
        ("iscsi.target.query", ShareKind::IscsiTarget, |v| {
            nt::iscsi_target(v).map(Share::IscsiTarget)
        }),
        ("iscsi.extent.query", ShareKind::IscsiExtent, |v| {
            nt::iscsi_extent(v).map(Share::IscsiExtent)
        }),
        (
            "iscsi.targetextent.query",
            ShareKind::IscsiTargetExtent,
            |v| nt::iscsi_targetextent(v).map(Share::IscsiTargetExtent),
        ),
    ];
    for (method, kind, f) in share_queries {
        let shares = small_list(client, method, Kind::Share(kind), &mut view.rejections, f).await?;
        view.shares.extend(shares);
    }

    let info = plain(client, "system.info").await?;
    let iscsi = plain(client, "iscsi.global.config").await?;
    let services = client
        .query("service.query", serde_json::json!({}))
        .await
        .map_err(|e| Failure::new("service.query", e))?;
    if !services.is_array() {
        return Err(Failure::new(
            "service.query",
            ClientError::Malformed {
                method: "service.query".into(),
                detail: format!(
                    "expected a list, got {}",
                    services.to_string().chars().take(80).collect::<String>()
                ),
            },
        ));
    }
    match nt::system_info(&info, Some(&iscsi), Some(&services)) {
        Ok(s) => view.system = Some(s),
        Err(e) => view.rejections.reject(
            Kind::System,
            "system.info",
            RawKey::of_value(&info).key(Kind::System),
            e,
        ),
    }
    Ok(view)
}
