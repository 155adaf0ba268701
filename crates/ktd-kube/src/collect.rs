//! Bundle collection: every watched kind listed once and written as `kubernetes.json`, a
//! `kind: List` document like `kubectl get <kinds> -A -o json` prints, which
//! `ktd_model::normalize::kube::read_list` (and `ktd scan --bundle`) reads back.
//!
//! Only the twelve storage kinds are listed — never Secrets — with the same Pod and Event
//! selection as the source. `managedFields` are dropped and Pod environment values are
//! replaced by `<redacted>` (they may hold credentials). Items are written page by page, so
//! memory follows the page size, not the cluster.

use std::io::Write;
use std::path::{Path, PathBuf};

use ktd_model::KubeKind;
use kube::Client;
use kube::api::{ListParams, TypeMeta};
use serde_json::Value;

use crate::config::KubeSourceConfig;
use crate::failure::{self, Failure};
use crate::source::api_and_config;

/// Why a bundle could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Listing a kind failed for another reason than a missing permission or API (those
    /// are skipped and reported in [`CollectSummary::skipped`]). Retryable.
    #[error("listing {plural} failed; check that the apiserver is reachable and retry")]
    List {
        /// The kind's plural.
        plural: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Writing the bundle failed (disk full, permissions).
    #[error("cannot write {path}: check the directory exists and is writable")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// What a collection wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectSummary {
    /// Objects written, per kind.
    pub objects: Vec<(KubeKind, u64)>,
    /// Kinds left out, with the reason (forbidden, CRDs not installed).
    pub skipped: Vec<(KubeKind, String)>,
}

/// Lists every configured kind and writes `dir/kubernetes.json`.
pub async fn collect_to_dir(
    client: &Client,
    config: &KubeSourceConfig,
    dir: &Path,
) -> Result<CollectSummary, CollectError> {
    let path = dir.join("kubernetes.json");
    let write_error = |source| CollectError::Write {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::create(&path).map_err(write_error)?;
    let mut out = std::io::BufWriter::new(file);
    let summary = collect_list(client, config, &mut out).await;
    let summary = match summary {
        Err(CollectError::Write { source, .. }) => return Err(write_error(source)),
        other => other?,
    };
    out.flush().map_err(write_error)?;
    Ok(summary)
}

/// Lists every configured kind and writes one `kind: List` JSON document to `out`.
pub async fn collect_list<W: Write>(
    client: &Client,
    config: &KubeSourceConfig,
    mut out: W,
) -> Result<CollectSummary, CollectError> {
    let io = |source| CollectError::Write {
        path: PathBuf::from("<output>"),
        source,
    };
    out.write_all(
        br#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},"items":["#,
    )
    .map_err(io)?;
    let mut summary = CollectSummary::default();
    let mut first = true;
    for kind in config.watched_kinds() {
        match list_kind(client, config, kind, &mut out, &mut first).await {
            Ok(n) => summary.objects.push((kind, n)),
            Err(ListError::Skip(reason)) => {
                tracing::warn!(%kind, %reason, "kind left out of the bundle");
                summary.skipped.push((kind, reason));
            }
            Err(ListError::Fatal(e)) => return Err(e),
        }
    }
    out.write_all(b"]}\n").map_err(io)?;
    Ok(summary)
}

enum ListError {
    Skip(String),
    Fatal(CollectError),
}

async fn list_kind<W: Write>(
    client: &Client,
    config: &KubeSourceConfig,
    kind: KubeKind,
    out: &mut W,
    first: &mut bool,
) -> Result<u64, ListError> {
    let (api, wc) = api_and_config(client.clone(), config, kind);
    let mut params = ListParams::default().limit(config.page_size.max(1));
    params.label_selector = wc.label_selector.clone();
    params.field_selector = wc.field_selector.clone();
    let types = TypeMeta {
        api_version: kind.api_version(),
        kind: kind.as_str().to_owned(),
    };
    let mut written = 0;
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(e) => {
                let err = kube::runtime::watcher::Error::InitialListFailed(e);
                let (failure, _) = failure::classify(&err);
                if matches!(failure, Failure::Forbidden { .. } | Failure::NotServed) {
                    return Err(ListError::Skip(failure::message(kind, &failure, &err)));
                }
                let kube::runtime::watcher::Error::InitialListFailed(source) = err else {
                    unreachable!("constructed above")
                };
                return Err(ListError::Fatal(CollectError::List {
                    plural: kind.plural(),
                    source,
                }));
            }
        };
        for mut item in page.items {
            if kind == KubeKind::Event && !config.events.keeps(&item.data) {
                continue;
            }
            item.types = Some(types.clone());
            item.metadata.managed_fields = None;
            if kind == KubeKind::Pod {
                redact_env(&mut item.data);
            }
            if !std::mem::take(first) {
                out.write_all(b",").map_err(write_fatal)?;
            }
            serde_json::to_writer(&mut *out, &item)
                .map_err(|e| write_fatal(std::io::Error::other(e)))?;
            written += 1;
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => return Ok(written),
        }
    }
}

fn write_fatal(source: std::io::Error) -> ListError {
    ListError::Fatal(CollectError::Write {
        path: PathBuf::from("<output>"),
        source,
    })
}

/// Replaces every container's `env[].value` with `<redacted>`.
fn redact_env(pod: &mut Value) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(containers) = pod.pointer_mut(&format!("/spec/{list}")) else {
            continue;
        };
        for container in containers.as_array_mut().into_iter().flatten() {
            for env in container
                .get_mut("env")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(value) = env.get_mut("value") {
                    *value = Value::String("<redacted>".into());
                }
            }
        }
    }
}
