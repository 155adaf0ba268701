//! Bundles: raw API output of a cluster and a TrueNAS system in a directory, for offline
//! analysis (`ktd collect --out DIR`, `ktd scan --bundle DIR`). The format is described in
//! `docs/bundle.md`:
//!
//! ```text
//! DIR/bundle.json                  optional: collected_at, kubernetes_kinds, cluster, ...
//! DIR/kubernetes.json              `kubectl get pv,pvc,... -A -o json` (a `kind: List`)
//! DIR/truenas/<method>.json        the raw JSON result of one TrueNAS API method
//! ```
//!
//! - [`manifest`]: `bundle.json` ([`BundleManifest`], its JSON Schema);
//! - [`read`]: [`read_bundle`], files streamed in parallel straight into events;
//! - [`collect`]: [`collect_bundle`], a bundle written from live systems;
//! - [`summary`]: [`BundleSummary`], what a bundle holds (`ktd scan --bundle`).

pub mod collect;
pub mod manifest;
pub mod read;
pub mod summary;

pub use collect::{CollectError, CollectReport, CollectRequest, Collected, collect_bundle};
pub use manifest::{BundleManifest, LeftOut};
pub use read::{
    BundleError, BundleInfo, KindsFrom, KubernetesInfo, ReadOptions, Rejected, TrueNasInfo,
    read_bundle, read_bundle_with,
};
pub use summary::{BundleSummary, summarize_bundle};

use ktd_model::truenas::NasCollection;

/// `bundle.json`.
pub const MANIFEST_FILE: &str = "bundle.json";
/// `kubernetes.json`.
pub const KUBERNETES_FILE: &str = "kubernetes.json";
/// The directory of TrueNAS method results.
pub const TRUENAS_DIR: &str = "truenas";
/// The snapshot query method of TrueNAS 25.10 and later (`zfs.snapshot.query` before).
pub const POOL_SNAPSHOT_QUERY: &str = "pool.snapshot.query";
/// `iscsi.global.config` (fills the system's iSCSI basename).
pub const ISCSI_GLOBAL_CONFIG: &str = "iscsi.global.config";
/// `service.query` (fills the system's service states; optional).
pub const SERVICE_QUERY: &str = "service.query";

/// The method files that can hold a class of TrueNAS resources, preferred first.
pub fn methods_of(class: NasCollection) -> &'static [&'static str] {
    match class {
        NasCollection::Snapshots => &["zfs.snapshot.query", POOL_SNAPSHOT_QUERY],
        NasCollection::Pools => &["pool.query"],
        NasCollection::Datasets => &["pool.dataset.query"],
        NasCollection::NfsShares => &["sharing.nfs.query"],
        NasCollection::SmbShares => &["sharing.smb.query"],
        NasCollection::IscsiTargets => &["iscsi.target.query"],
        NasCollection::IscsiExtents => &["iscsi.extent.query"],
        NasCollection::IscsiTargetExtents => &["iscsi.targetextent.query"],
        NasCollection::System => &["system.info"],
    }
}

/// `truenas/<method>.json`, relative to the bundle.
pub fn method_file(method: &str) -> String {
    format!("{TRUENAS_DIR}/{method}.json")
}
