//! Writing a bundle from live systems (`ktd collect --out DIR`).
//!
//! - `kubernetes.json`: every configured kind listed once by `ktd_kube::collect_list`
//!   (never Secrets; Pod environment values redacted; a forbidden kind or missing snapshot
//!   CRDs are left out and reported, not fatal);
//! - `truenas/<method>.json`: the raw result of each query method, with the options the
//!   poller uses, so the bundle reads back exactly as a live poll (snapshots through
//!   `zfs.snapshot.query` or `pool.snapshot.query`, whichever the release has). Never
//!   `iscsi.auth` or any other method that returns credentials;
//! - `bundle.json` last: `collected_at` (when collection started), the kinds actually
//!   collected, the cluster name, ktd's version and what was left out.
//!
//! Every file is written under a temporary name (`.<name>.<random>.partial`) and renamed
//! into place once complete, so an interrupted collection never leaves a half file that
//! looks complete.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ktd_kube::KubeSourceConfig;
use ktd_model::Timestamp;
use ktd_model::normalize::truenas as nt;
use ktd_truenas::poller::{DATASET_PROPERTIES, SNAPSHOT_PROPERTIES, SNAPSHOT_USER_PROPERTIES};
use ktd_truenas::{ClientError, TrueNasClient, TrueNasConfig};
use serde::Serialize;
use serde_json::{Value, json};

use super::manifest::{BundleManifest, LeftOut};
use super::{
    ISCSI_GLOBAL_CONFIG, KUBERNETES_FILE, MANIFEST_FILE, SERVICE_QUERY, TRUENAS_DIR, method_file,
};

/// What to collect, and where.
#[derive(Clone, Copy, Debug)]
pub struct CollectRequest<'a> {
    /// The bundle directory (created if missing; must not hold a bundle already).
    pub dir: &'a Path,
    /// The cluster (None: no Kubernetes side).
    pub kubernetes: Option<&'a KubeSourceConfig>,
    /// The TrueNAS system (None: no TrueNAS side).
    pub truenas: Option<&'a TrueNasConfig>,
}

/// Why nothing usable could be written. Parts that fail on their own (a forbidden kind, an
/// unreachable TrueNAS) are not errors: they are left out and reported in
/// [`CollectReport::left_out`].
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The directory already holds a bundle. Not retryable as is.
    #[error(
        "{dir} already holds a bundle ({found}): choose a new directory, or remove the old bundle first"
    )]
    AlreadyABundle {
        /// The directory.
        dir: PathBuf,
        /// The bundle file found there.
        found: String,
    },
    /// The directory could not be created.
    #[error("cannot create {dir}: check the path and its permissions")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written (disk full, permissions). Retryable once fixed.
    #[error("cannot write {path}: check free space and permissions, then collect again")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing at all could be collected.
    #[error("nothing could be collected:{}", list(.left_out))]
    Nothing {
        /// What failed, and why.
        left_out: Vec<LeftOut>,
    },
}

fn list(left_out: &[LeftOut]) -> String {
    left_out
        .iter()
        .map(|l| format!("\n  - {}: {}", l.what, l.reason))
        .collect()
}

/// One file part of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Collected {
    /// The file, relative to the bundle.
    pub file: String,
    /// The Kubernetes kind or TrueNAS method.
    pub what: String,
    /// Objects written (datasets: every dataset of the tree).
    pub objects: u64,
}

/// What a collection wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CollectReport {
    /// The bundle directory.
    pub dir: PathBuf,
    /// When collection started (`bundle.json` `collected_at`).
    pub collected_at: Timestamp,
    /// The cluster name recorded in `bundle.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// TrueNAS `system.version_short`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truenas_version: Option<String>,
    /// What was written.
    pub collected: Vec<Collected>,
    /// What could not be collected, and why.
    pub left_out: Vec<LeftOut>,
}

/// Collects a bundle into `request.dir`.
pub async fn collect_bundle(request: CollectRequest<'_>) -> Result<CollectReport, CollectError> {
    let dir = request.dir;
    prepare_dir(dir)?;
    let collected_at = Timestamp::now();
    let mut report = CollectReport {
        dir: dir.to_owned(),
        collected_at,
        cluster: None,
        truenas_version: None,
        collected: Vec::new(),
        left_out: Vec::new(),
    };
    let mut manifest = BundleManifest {
        collected_at: Some(collected_at),
        ktd_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        ..BundleManifest::default()
    };

    if let Some(config) = request.kubernetes {
        report.cluster = Some(config.instance.clone());
        manifest.cluster = Some(config.instance.clone());
        if let Some(kinds) = collect_kubernetes(config, dir, &mut report).await? {
            manifest.kubernetes_kinds = Some(kinds);
        }
    }
    if let Some(config) = request.truenas {
        match TrueNasClient::connect(config.clone()).await {
            Ok(client) => {
                report.truenas_version = Some(client.version().to_owned());
                collect_truenas(&client, &dir.join(TRUENAS_DIR), &mut report).await?;
                client.disconnect().await;
            }
            Err(e) => report.left_out.push(LeftOut {
                what: "truenas".into(),
                reason: format!("cannot connect to {}: {e}", config.url),
            }),
        }
    }

    if report.collected.is_empty() {
        return Err(CollectError::Nothing {
            left_out: report.left_out,
        });
    }
    manifest.left_out = report.left_out.clone();
    let path = dir.join(MANIFEST_FILE);
    write_atomically(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, &manifest)?;
        w.write_all(b"\n")
    })?;
    Ok(report)
}

/// Creates `dir`, refusing one that already holds a bundle.
fn prepare_dir(dir: &Path) -> Result<(), CollectError> {
    std::fs::create_dir_all(dir.join(TRUENAS_DIR)).map_err(|source| CollectError::CreateDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut found = vec![MANIFEST_FILE, KUBERNETES_FILE]
        .into_iter()
        .filter(|f| dir.join(f).exists())
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let nas = std::fs::read_dir(dir.join(TRUENAS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".json"));
    found.extend(nas.map(|n| format!("{TRUENAS_DIR}/{n}")));
    match found.first() {
        Some(found) => Err(CollectError::AlreadyABundle {
            dir: dir.to_owned(),
            found: found.clone(),
        }),
        None => Ok(()),
    }
}

/// Writes `kubernetes.json`; returns the kinds collected (None when the cluster could not
/// be listed at all).
async fn collect_kubernetes(
    config: &KubeSourceConfig,
    dir: &Path,
    report: &mut CollectReport,
) -> Result<Option<Vec<ktd_model::KubeKind>>, CollectError> {
    let client = match config.client().await {
        Ok(client) => client,
        Err(e) => {
            report.left_out.push(LeftOut {
                what: "kubernetes".into(),
                reason: e.to_string(),
            });
            return Ok(None);
        }
    };
    let path = dir.join(KUBERNETES_FILE);
    let write_error = |source| CollectError::Write {
        path: path.clone(),
        source,
    };
    let file = AtomicFile::create(&path).map_err(write_error)?;
    let listed = {
        let mut out = BufWriter::with_capacity(1 << 16, file.as_file());
        let listed = ktd_kube::collect_list(&client, config, &mut out).await;
        out.flush().map_err(write_error)?;
        listed
    };
    let summary = match listed {
        Ok(summary) => summary,
        Err(ktd_kube::CollectError::Write { source, .. }) => return Err(write_error(source)),
        Err(e) => {
            report.left_out.push(LeftOut {
                what: "kubernetes".into(),
                reason: error_chain(&e),
            });
            return Ok(None);
        }
    };
    file.commit().map_err(write_error)?;
    for (kind, reason) in &summary.skipped {
        report.left_out.push(LeftOut {
            what: kind.as_str().into(),
            reason: reason.clone(),
        });
    }
    let mut kinds = Vec::new();
    for (kind, objects) in &summary.objects {
        kinds.push(*kind);
        report.collected.push(Collected {
            file: KUBERNETES_FILE.into(),
            what: kind.as_str().into(),
            objects: *objects,
        });
    }
    Ok(Some(kinds))
}

/// Writes `truenas/<method>.json` for every method of a bundle. A method that fails is left
/// out (its class is then not collected); a write that fails stops the collection.
async fn collect_truenas(
    client: &TrueNasClient,
    dir: &Path,
    report: &mut CollectReport,
) -> Result<(), CollectError> {
    let mut left_out = |method: &str, e: ClientError| {
        tracing::warn!(method, error = %e, "left out of the bundle");
        report.left_out.push(LeftOut {
            what: method.into(),
            reason: e.to_string(),
        });
    };
    let mut written: Vec<(String, u64)> = Vec::new();

    let method = "pool.dataset.query";
    let mut dataset_props: BTreeSet<String> = BTreeSet::new();
    let params = [
        json!([]),
        json!({"extra": {"flat": false, "properties": DATASET_PROPERTIES, "snapshots_count": true}}),
    ];
    match save_streamed(client, dir, method, &params).await? {
        Ok(path) => {
            // The snapshot query asks for the user properties seen on datasets (snapshots
            // inherit them), like the poller: read them back from the file.
            let mut n = 0;
            let file = std::fs::File::open(&path).map_err(|source| CollectError::Write {
                path: path.clone(),
                source,
            })?;
            let _ = nt::read_datasets(file, |r| {
                if let Ok(d) = r {
                    n += 1;
                    dataset_props.extend(d.user_properties.into_keys());
                }
            });
            written.push((method.into(), n));
        }
        Err(e) => left_out(method, e),
    }

    let mut props: BTreeSet<String> = SNAPSHOT_PROPERTIES.iter().map(|s| s.to_string()).collect();
    props.extend(SNAPSHOT_USER_PROPERTIES.iter().map(|s| s.to_string()));
    props.extend(client.config().snapshot_user_properties.iter().cloned());
    props.extend(dataset_props);
    let props: Vec<String> = props.into_iter().collect();
    let params = [
        json!([]),
        json!({"extra": {"properties": props, "holds": true}}),
    ];
    // The method of this release (25.10 renamed it); the other one if it is missing.
    let first = client.snapshot_method();
    let other = if first == "pool.snapshot.query" {
        "zfs.snapshot.query"
    } else {
        "pool.snapshot.query"
    };
    let mut saved = (first, save_streamed(client, dir, first, &params).await?);
    if matches!(&saved.1, Err(e) if e.is_method_not_found()) {
        tracing::info!(missing = first, using = other, "snapshot query method");
        saved = (other, save_streamed(client, dir, other, &params).await?);
    }
    match saved {
        (method, Ok(path)) => {
            let file = std::fs::File::open(&path).map_err(|source| CollectError::Write {
                path: path.clone(),
                source,
            })?;
            let mut n = 0;
            let _ = nt::read_snapshots(file, |_| n += 1);
            written.push((method.into(), n));
        }
        (method, Err(e)) => left_out(method, e),
    }

    for method in [
        "pool.query",
        "sharing.nfs.query",
        "sharing.smb.query",
        "iscsi.target.query",
        "iscsi.extent.query",
        "iscsi.targetextent.query",
        SERVICE_QUERY,
    ] {
        match client.query(method, json!({})).await {
            Ok(value) => {
                save(dir, method, &value)?;
                written.push((method.into(), entries(&value)));
            }
            Err(e) => left_out(method, e),
        }
    }
    for method in [ISCSI_GLOBAL_CONFIG, "system.info"] {
        match client.call(method, &[]).await {
            Ok(value) => {
                save(dir, method, &value)?;
                written.push((method.into(), 1));
            }
            Err(e) => left_out(method, e),
        }
    }
    for (method, objects) in written {
        report.collected.push(Collected {
            file: method_file(&method),
            what: method,
            objects,
        });
    }
    Ok(())
}

/// Writes one method's result to `dir/<method>.json`. The one place that turns an API
/// answer into a bundle file (a streaming client call can replace it).
/// Calls `method` and streams its raw JSON result into `<dir>/<method>.json` (atomically:
/// a failed call leaves no file). The outer error is a failed write, the inner one the call.
async fn save_streamed(
    client: &TrueNasClient,
    dir: &Path,
    method: &str,
    params: &[Value],
) -> Result<Result<PathBuf, ClientError>, CollectError> {
    let path = dir.join(format!("{method}.json"));
    let error = |source| CollectError::Write {
        path: path.clone(),
        source,
    };
    let file = AtomicFile::create(&path).map_err(error)?;
    let mut out = BufWriter::with_capacity(1 << 16, file.as_file());
    if let Err(e) = client.call_to_writer(method, params, &mut out).await {
        return Ok(Err(e));
    }
    out.write_all(b"\n").map_err(error)?;
    out.flush().map_err(error)?;
    drop(out);
    file.commit().map_err(error)?;
    Ok(Ok(path))
}

fn save(dir: &Path, method: &str, value: &Value) -> Result<PathBuf, CollectError> {
    let path = dir.join(format!("{method}.json"));
    write_atomically(&path, |w| {
        serde_json::to_writer(&mut *w, value)?;
        w.write_all(b"\n")
    })?;
    Ok(path)
}

/// Top-level entries of a query result.
fn entries(value: &Value) -> u64 {
    value.as_array().map_or(1, |a| a.len() as u64)
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Writes `path` through `write` under a temporary name, then renames it into place.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CollectError> {
    let error = |source| CollectError::Write {
        path: path.to_owned(),
        source,
    };
    let file = AtomicFile::create(path).map_err(error)?;
    {
        let mut out = BufWriter::with_capacity(1 << 16, file.as_file());
        write(&mut out).map_err(error)?;
        out.flush().map_err(error)?;
    }
    file.commit().map_err(error)
}

/// A file being written under a temporary name in its final directory; dropped without
/// [`commit`](Self::commit), it is removed.
pub(crate) struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates `.<name>.<random>.partial` beside `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<AtomicFile> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            tmp,
            path: path.to_owned(),
        })
    }

    /// The file to write to.
    pub(crate) fn as_file(&self) -> &std::fs::File {
        self.tmp.as_file()
    }

    /// Syncs the data to disk and renames the file to its final name.
    pub(crate) fn commit(self) -> std::io::Result<()> {
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(&self.path).map_err(|e| e.error)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_write_leaves_no_file_under_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.query.json");
        let err = write_atomically(&path, |w| {
            w.write_all(b"[{\"id\": 1, \"name\": \"tank\"")?;
            Err(std::io::Error::other("connection lost"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("pool.query.json"), "{err}");
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        write_atomically(&path, |w| w.write_all(b"[]")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_directory_holding_a_bundle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        prepare_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("truenas/pool.query.json"), "[]").unwrap();
        let err = prepare_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("truenas/pool.query.json"), "{err}");
    }
}
