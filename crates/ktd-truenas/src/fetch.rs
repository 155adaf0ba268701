//! One poll's view of TrueNAS: the bulk queries, normalized, with the objects that could
//! not be read set aside (see the rules in [`crate::poller`]).

use std::collections::{BTreeSet, HashSet};

use ktd_model::normalize::truenas as nt;
use ktd_model::truenas::{Dataset, Pool, Share, ShareKey, ShareKind, Snapshot, SystemInfo};
use serde_json::Value;

use crate::client::TrueNasClient;
use crate::error::ClientError;

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

/// Which removals an unreadable object forbids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Kind {
    Pool,
    Dataset,
    Snapshot,
    Share(ShareKind),
    System,
}

/// One poll's complete view.
#[derive(Default)]
pub(crate) struct View {
    pub pools: Vec<Pool>,
    pub datasets: Vec<Dataset>,
    pub snapshots: Vec<Snapshot>,
    pub shares: Vec<Share>,
    pub system: Option<SystemInfo>,
    pub rejected: Vec<String>,
    /// Unreadable objects whose key could be read: not removed, previous state stands.
    protected: HashSet<(Kind, String)>,
    /// Kinds with an unreadable object whose key could not be read: no removals at all.
    tainted: HashSet<Kind>,
}

impl View {
    fn reject(&mut self, kind: Kind, method: &str, raw: &Value, error: impl std::fmt::Display) {
        let key = match kind {
            Kind::Share(k) => raw
                .get("id")
                .and_then(Value::as_i64)
                .map(|id| ShareKey { kind: k, id }.to_string()),
            _ => raw
                .get("name")
                .or_else(|| raw.get("id"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        };
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
}

fn array(method: &str, v: Value) -> Result<Vec<Value>, Failure> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(Failure {
            method: method.into(),
            error: ClientError::Malformed {
                method: method.into(),
                detail: format!(
                    "expected a list, got {}",
                    other.to_string().chars().take(80).collect::<String>()
                ),
            },
        }),
    }
}

async fn call(client: &TrueNasClient, method: &str, options: Value) -> Result<Vec<Value>, Failure> {
    let v = client
        .query(method, options)
        .await
        .map_err(|error| Failure {
            method: method.into(),
            error,
        })?;
    array(method, v)
}

async fn plain(client: &TrueNasClient, method: &str) -> Result<Value, Failure> {
    client.call(method, &[]).await.map_err(|error| Failure {
        method: method.into(),
        error,
    })
}

/// Runs the bulk queries and normalizes them.
pub(crate) async fn fetch(client: &TrueNasClient) -> Result<View, Failure> {
    let mut view = View::default();
    for raw in call(client, "pool.query", serde_json::json!({})).await? {
        match nt::pool(&raw) {
            Ok(p) => view.pools.push(p),
            Err(e) => view.reject(Kind::Pool, "pool.query", &raw, e),
        }
    }

    let method = "pool.dataset.query";
    let tree = client
        .datasets(DATASET_PROPERTIES)
        .await
        .map_err(|error| Failure {
            method: method.into(),
            error,
        })?;
    let mut stack = array(method, tree)?;
    stack.reverse();
    let mut seen = HashSet::new();
    while let Some(mut node) = stack.pop() {
        if let Some(Value::Array(children)) =
            node.as_object_mut().and_then(|o| o.remove("children"))
        {
            stack.extend(children.into_iter().rev());
        }
        match nt::dataset(&node) {
            Ok(d) => {
                if seen.insert(d.name.clone()) {
                    view.datasets.push(d);
                }
            }
            Err(e) => view.reject(Kind::Dataset, method, &node, e),
        }
    }

    let mut props: BTreeSet<String> = SNAPSHOT_PROPERTIES.iter().map(|s| s.to_string()).collect();
    props.extend(SNAPSHOT_USER_PROPERTIES.iter().map(|s| s.to_string()));
    props.extend(client.config().snapshot_user_properties.iter().cloned());
    for d in &view.datasets {
        props.extend(d.user_properties.keys().cloned());
    }
    let props: Vec<String> = props.into_iter().collect();
    let snaps = client.snapshots(&props).await.map_err(|error| Failure {
        method: client.snapshot_method().into(),
        error,
    })?;
    let method = client.snapshot_method();
    for raw in array(method, snaps)? {
        match nt::snapshot(&raw) {
            Ok(s) => view.snapshots.push(s),
            Err(e) => view.reject(Kind::Snapshot, method, &raw, e),
        }
    }

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
        for raw in call(client, method, serde_json::json!({})).await? {
            match f(&raw) {
                Ok(s) => view.shares.push(s),
                Err(e) => view.reject(Kind::Share(kind), method, &raw, e),
            }
        }
    }

    let info = plain(client, "system.info").await?;
    let iscsi = plain(client, "iscsi.global.config").await?;
    let services = Value::Array(call(client, "service.query", serde_json::json!({})).await?);
    match nt::system_info(&info, Some(&iscsi), Some(&services)) {
        Ok(s) => view.system = Some(s),
        Err(e) => view.reject(Kind::System, "system.info", &info, e),
    }
    Ok(view)
}
