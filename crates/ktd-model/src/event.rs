//! Events: facts in the past tense. Observations come from the sources; derived events
//! come from views, notifiers, remediation and the API.
//!
//! Events are append-only and never edited. Adding a field (with a serde default) is
//! compatible; renaming or removing one, or adding a variant, bumps
//! [`crate::codec::SCHEMA_VERSION`] and needs an upcaster (see [`crate::codec`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, FindingKind, ResourceRef};
use crate::id::FindingId;
use crate::kube::{KubeKind, KubeObject, ObjectKey};
use crate::truenas::{
    ApiTransport, Dataset, NasCollection, Pool, Share, ShareKey, Snapshot, SystemInfo,
};

/// Every event ktd records.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    // ---- Kubernetes observations -------------------------------------------------------
    /// An object was created or changed (or seen during a (re)list).
    ObjectApplied {
        /// The object as now observed.
        object: KubeObject,
    },
    /// An object was deleted, or was missing from a relist.
    ObjectDeleted {
        /// Its kind.
        kind: KubeKind,
        /// Its key.
        key: ObjectKey,
        /// Its uid, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
        /// True when synthesized because the object was absent from a relist.
        #[serde(default)]
        missing_from_relist: bool,
    },
    /// An object could not be understood (malformed or unexpected JSON). The source
    /// keeps going; the object is named so a human can look at it.
    ObjectRejected {
        /// Its kind.
        kind: KubeKind,
        /// Its key, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<ObjectKey>,
        /// What was wrong with it.
        error: String,
    },
    /// A (re)list of a kind started.
    SyncStarted {
        /// The kind.
        kind: KubeKind,
    },
    /// A (re)list of a kind completed: the view of this kind is complete.
    SyncCompleted {
        /// The kind.
        kind: KubeKind,
        /// Objects seen in the list.
        objects: u64,
    },
    /// Watching a kind failed (forbidden, CRD missing, apiserver unreachable).
    WatchFailed {
        /// The kind.
        kind: KubeKind,
        /// Why.
        error: String,
        /// Whether the source keeps retrying by itself.
        retryable: bool,
    },

    // ---- TrueNAS observations ----------------------------------------------------------
    /// A dataset or zvol appeared.
    DatasetObserved {
        /// As observed.
        dataset: Dataset,
    },
    /// A dataset or zvol changed.
    DatasetChanged {
        /// As now observed.
        dataset: Dataset,
    },
    /// A dataset or zvol is gone.
    DatasetRemoved {
        /// Its full name.
        name: String,
    },
    /// A snapshot appeared (or changed).
    SnapshotObserved {
        /// As observed.
        snapshot: Snapshot,
    },
    /// A snapshot is gone.
    SnapshotRemoved {
        /// Its full name.
        name: String,
    },
    /// A share, iSCSI target/extent or association appeared or changed.
    ShareObserved {
        /// As observed.
        share: Share,
    },
    /// A share, iSCSI target/extent or association is gone.
    ShareRemoved {
        /// Its identity.
        share: ShareKey,
    },
    /// A pool appeared or changed.
    PoolObserved {
        /// As observed.
        pool: Pool,
    },
    /// A pool is gone (exported or destroyed).
    PoolRemoved {
        /// Its name.
        name: String,
    },
    /// The system's version, configuration or services changed.
    SystemObserved {
        /// As observed.
        system: SystemInfo,
    },
    /// Space figures of many datasets at once (for capacity history).
    UsageSampled {
        /// One sample per dataset.
        samples: Vec<UsageSample>,
    },
    /// A poll of TrueNAS succeeded; its view of the system is complete.
    PollCompleted {
        /// Poll number (1-based, per source instance).
        poll: u64,
        /// Transport used.
        transport: ApiTransport,
        /// How long the poll took.
        duration_ms: u64,
        /// Counts of what was seen.
        counts: PollCounts,
        /// Objects the poll could not read (method, name or id, and why). Their previous
        /// state stands and nothing of their kind was removed by this poll.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rejected: Vec<String>,
        /// Classes this observation did not read at all (a bundle without that method's
        /// file). Nothing is judged against them. A live poll reads every class.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_collected: Vec<NasCollection>,
    },
    /// A poll failed. The previous state stands but is not confirmed.
    PollFailed {
        /// Poll number.
        poll: u64,
        /// What failed and what to do about it.
        error: String,
        /// The API method that failed, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// Whether the poller retries by itself.
        retryable: bool,
    },

    // ---- time --------------------------------------------------------------------------
    /// Time passed (so thresholds fire deterministically on replay).
    Tick,

    // ---- derived -----------------------------------------------------------------------
    /// A finding opened.
    FindingOpened {
        /// The finding.
        finding: Finding,
    },
    /// An open finding's evidence or severity changed.
    FindingUpdated {
        /// The finding as it now stands.
        finding: Finding,
    },
    /// A finding's evidence went away.
    FindingResolved {
        /// Its id.
        id: FindingId,
        /// Its kind.
        kind: FindingKind,
        /// Its subject.
        subject: ResourceRef,
        /// Why it resolved.
        reason: String,
    },
    /// A notification was delivered.
    NotificationSent {
        /// The finding it was about.
        finding: FindingId,
        /// Sink name from the configuration.
        sink: String,
    },
    /// A notification could not be delivered.
    NotificationFailed {
        /// The finding it was about.
        finding: FindingId,
        /// Sink name.
        sink: String,
        /// Why.
        error: String,
        /// Whether delivery will be retried.
        retryable: bool,
    },
    /// A remediation was proposed.
    RemediationProposed {
        /// Remediation id.
        remediation: String,
        /// The finding it resolves.
        finding: FindingId,
        /// Planned actions, in order.
        actions: Vec<String>,
        /// Dry run only.
        dry_run: bool,
    },
    /// A remediation was approved.
    RemediationApproved {
        /// Remediation id.
        remediation: String,
        /// Who approved it.
        approver: String,
    },
    /// A remediation ran.
    RemediationExecuted {
        /// Remediation id.
        remediation: String,
        /// What happened.
        outcome: String,
        /// Whether it can be undone.
        undoable: bool,
    },
    /// A remediation was undone.
    RemediationUndone {
        /// Remediation id.
        remediation: String,
        /// Who undid it.
        by: String,
    },
    /// An API call was made (who, what, result — never the credential).
    ApiCallAudited {
        /// Authenticated principal.
        principal: String,
        /// HTTP method.
        method: String,
        /// Path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Request id.
        request_id: String,
    },
}

/// Space figures of one dataset at one moment.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageSample {
    /// Dataset name.
    pub dataset: String,
    /// `used` bytes.
    pub used: u64,
    /// `available` bytes.
    pub available: u64,
    /// `usedbysnapshots` bytes.
    #[serde(default)]
    pub used_by_snapshots: u64,
}

/// Counts of what a poll saw.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct PollCounts {
    /// Pools.
    pub pools: u64,
    /// Datasets and zvols.
    pub datasets: u64,
    /// Snapshots.
    pub snapshots: u64,
    /// Shares, targets, extents, associations.
    pub shares: u64,
    /// Events appended by this poll (changes only).
    pub changes: u64,
}

impl Event {
    /// The variant name (`ObjectApplied`, ...), as in the `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ObjectApplied { .. } => "ObjectApplied",
            Event::ObjectDeleted { .. } => "ObjectDeleted",
            Event::ObjectRejected { .. } => "ObjectRejected",
            Event::SyncStarted { .. } => "SyncStarted",
            Event::SyncCompleted { .. } => "SyncCompleted",
            Event::WatchFailed { .. } => "WatchFailed",
            Event::DatasetObserved { .. } => "DatasetObserved",
            Event::DatasetChanged { .. } => "DatasetChanged",
            Event::DatasetRemoved { .. } => "DatasetRemoved",
            Event::SnapshotObserved { .. } => "SnapshotObserved",
            Event::SnapshotRemoved { .. } => "SnapshotRemoved",
            Event::ShareObserved { .. } => "ShareObserved",
            Event::ShareRemoved { .. } => "ShareRemoved",
            Event::PoolObserved { .. } => "PoolObserved",
            Event::PoolRemoved { .. } => "PoolRemoved",
            Event::SystemObserved { .. } => "SystemObserved",
            Event::UsageSampled { .. } => "UsageSampled",
            Event::PollCompleted { .. } => "PollCompleted",
            Event::PollFailed { .. } => "PollFailed",
            Event::Tick => "Tick",
            Event::FindingOpened { .. } => "FindingOpened",
            Event::FindingUpdated { .. } => "FindingUpdated",
            Event::FindingResolved { .. } => "FindingResolved",
            Event::NotificationSent { .. } => "NotificationSent",
            Event::NotificationFailed { .. } => "NotificationFailed",
            Event::RemediationProposed { .. } => "RemediationProposed",
            Event::RemediationApproved { .. } => "RemediationApproved",
            Event::RemediationExecuted { .. } => "RemediationExecuted",
            Event::RemediationUndone { .. } => "RemediationUndone",
            Event::ApiCallAudited { .. } => "ApiCallAudited",
        }
    }

    /// Whether a view derived it (as opposed to a source observing it).
    pub fn is_derived(&self) -> bool {
        matches!(
            self,
            Event::FindingOpened { .. }
                | Event::FindingUpdated { .. }
                | Event::FindingResolved { .. }
                | Event::NotificationSent { .. }
                | Event::NotificationFailed { .. }
                | Event::RemediationProposed { .. }
                | Event::RemediationApproved { .. }
                | Event::RemediationExecuted { .. }
                | Event::RemediationUndone { .. }
                | Event::ApiCallAudited { .. }
        )
    }

    /// The last subject token: what the event is about (`persistentvolume`, `dataset`,
    /// `pv-released`, `api`, ...).
    pub fn subject_token(&self) -> String {
        match self {
            Event::ObjectApplied { object } => object.kind().as_str().to_ascii_lowercase(),
            Event::ObjectDeleted { kind, .. }
            | Event::ObjectRejected { kind, .. }
            | Event::SyncStarted { kind }
            | Event::SyncCompleted { kind, .. }
            | Event::WatchFailed { kind, .. } => kind.as_str().to_ascii_lowercase(),
            Event::DatasetObserved { .. }
            | Event::DatasetChanged { .. }
            | Event::DatasetRemoved { .. } => "dataset".into(),
            Event::SnapshotObserved { .. } | Event::SnapshotRemoved { .. } => "snapshot".into(),
            Event::ShareObserved { share } => share.key().kind.resource_type().into(),
            Event::ShareRemoved { share } => share.kind.resource_type().into(),
            Event::PoolObserved { .. } | Event::PoolRemoved { .. } => "pool".into(),
            Event::SystemObserved { .. } => "system".into(),
            Event::UsageSampled { .. } => "usage".into(),
            Event::PollCompleted { .. } | Event::PollFailed { .. } => "poll".into(),
            Event::Tick => "tick".into(),
            Event::FindingOpened { finding } | Event::FindingUpdated { finding } => {
                finding.kind.as_str().into()
            }
            Event::FindingResolved { kind, .. } => kind.as_str().into(),
            Event::NotificationSent { .. } | Event::NotificationFailed { .. } => {
                "notification".into()
            }
            Event::RemediationProposed { .. }
            | Event::RemediationApproved { .. }
            | Event::RemediationExecuted { .. }
            | Event::RemediationUndone { .. } => "remediation".into(),
            Event::ApiCallAudited { .. } => "api".into(),
        }
    }
}
