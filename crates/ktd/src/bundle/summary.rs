//! What a bundle holds, for people and scripts (`ktd scan --bundle DIR`): counts per
//! Kubernetes kind and TrueNAS class, what was not collected, `collected_at`, and the
//! objects that could not be read.

use std::io::Write;
use std::path::{Path, PathBuf};

use ktd_model::truenas::NasCollection;
use ktd_model::{Envelope, KubeKind, Timestamp};
use serde::Serialize;

use super::manifest::LeftOut;
use super::read::{BundleError, BundleInfo, KindsFrom, Rejected, read_bundle};
use crate::output::Table;

/// A summary of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BundleSummary {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// "Now" of the analysis.
    pub collected_at: Timestamp,
    /// `bundle.json` when it says `collected_at`, else `clock` (the time of reading).
    pub collected_at_from: &'static str,
    /// The ktd version that collected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ktd_version: Option<String>,
    /// The Kubernetes side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSummary>,
    /// The TrueNAS side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truenas: Option<TrueNasSummary>,
    /// Objects that could not be read.
    pub rejected: Vec<Rejected>,
    /// What the collection left out, and why.
    pub left_out: Vec<LeftOut>,
    /// Things to know about the bundle.
    pub warnings: Vec<String>,
    /// Events the bundle gave.
    pub events: u64,
}

/// The Kubernetes side of a [`BundleSummary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct KubernetesSummary {
    /// The cluster name of its events.
    pub cluster: String,
    /// Collected kinds with their object counts.
    pub kinds: Vec<Count>,
    /// `bundle-json` or `inferred` (from the objects present).
    pub kinds_from: KindsFrom,
    /// Kinds ktd reads that the bundle did not collect: never judged.
    pub not_collected: Vec<String>,
}

/// The TrueNAS side of a [`BundleSummary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TrueNasSummary {
    /// The host name of its events.
    pub host: String,
    /// `system.info` version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Collected classes with the file read and their object counts.
    pub classes: Vec<Count>,
    /// Classes without a method file: never judged.
    pub not_collected: Vec<NasCollection>,
}

/// Objects of one kind or class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Count {
    /// The kind (`PersistentVolume`) or class (`datasets`).
    pub what: String,
    /// The file it came from, relative to the bundle.
    pub file: String,
    /// Objects read (rejected ones included).
    pub objects: u64,
}

/// Reads the bundle in `dir` and summarizes it. Every event goes through `sink` first
/// (where views fold the bundle).
pub fn summarize_bundle(
    dir: &Path,
    sink: &mut dyn FnMut(Envelope),
) -> Result<BundleSummary, BundleError> {
    read_bundle(dir, sink).map(|info| BundleSummary::from_info(&info))
}

impl BundleSummary {
    /// The summary of what [`read_bundle`] reported.
    pub fn from_info(info: &BundleInfo) -> BundleSummary {
        let kubernetes = info.kubernetes.as_ref().map(|k| KubernetesSummary {
            cluster: k.source.instance.clone(),
            kinds: k
                .kinds
                .iter()
                .map(|(kind, n)| Count {
                    what: kind.as_str().to_owned(),
                    file: super::KUBERNETES_FILE.to_owned(),
                    objects: *n,
                })
                .collect(),
            kinds_from: k.kinds_from,
            not_collected: KubeKind::ALL
                .iter()
                .filter(|kind| !k.kinds.contains_key(kind))
                .map(|kind| kind.as_str().to_owned())
                .collect(),
        });
        let truenas = info.truenas.as_ref().map(|t| TrueNasSummary {
            host: t.source.instance.clone(),
            version: t.version.clone(),
            classes: t
                .collected
                .iter()
                .map(|(class, (file, n))| Count {
                    what: class_name(*class),
                    file: file.clone(),
                    objects: *n,
                })
                .collect(),
            not_collected: t.not_collected.clone(),
        });
        BundleSummary {
            bundle: info.dir.clone(),
            collected_at: info.collected_at,
            collected_at_from: if info.collected_at_from_bundle {
                "bundle.json"
            } else {
                "clock"
            },
            ktd_version: info.ktd_version.clone(),
            kubernetes,
            truenas,
            rejected: info.rejected.clone(),
            left_out: info.left_out.clone(),
            warnings: info.warnings.clone(),
            events: info.events,
        }
    }

    /// Prints the summary for people.
    pub fn write_table(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Bundle {} collected at {} ({}).",
            self.bundle.display(),
            self.collected_at,
            match self.collected_at_from {
                "bundle.json" => "from bundle.json",
                _ => "not recorded: the current time is used as now",
            }
        )?;
        let mut t = Table::new(["SYSTEM", "COLLECTED", "OBJECTS", "FILE"]);
        if let Some(k) = &self.kubernetes {
            for c in &k.kinds {
                t.row([
                    format!("kubernetes/{}", k.cluster),
                    c.what.clone(),
                    c.objects.to_string(),
                    c.file.clone(),
                ]);
            }
        }
        if let Some(n) = &self.truenas {
            for c in &n.classes {
                t.row([
                    format!("truenas/{}", n.host),
                    c.what.clone(),
                    c.objects.to_string(),
                    c.file.clone(),
                ]);
            }
        }
        t.write(&mut *out)?;
        match &self.kubernetes {
            Some(k) if !k.not_collected.is_empty() => writeln!(
                out,
                "Kubernetes kinds not collected (not judged): {}",
                k.not_collected.join(", ")
            )?,
            Some(_) => {}
            None => writeln!(out, "No Kubernetes side (no kubernetes.json).")?,
        }
        match &self.truenas {
            Some(n) => {
                if let Some(v) = &n.version {
                    writeln!(out, "TrueNAS {v}.")?;
                }
                if !n.not_collected.is_empty() {
                    let names: Vec<String> =
                        n.not_collected.iter().map(|c| class_name(*c)).collect();
                    writeln!(
                        out,
                        "TrueNAS classes not collected (not judged): {}",
                        names.join(", ")
                    )?;
                }
            }
            None => writeln!(out, "No TrueNAS side (no truenas/<method>.json).")?,
        }
        for l in &self.left_out {
            writeln!(out, "left out: {}: {}", l.what, l.reason)?;
        }
        writeln!(out, "{} objects could not be read.", self.rejected.len())?;
        for r in &self.rejected {
            writeln!(out, "  rejected: {r}")?;
        }
        for w in &self.warnings {
            writeln!(out, "warning: {w}")?;
        }
        Ok(())
    }
}

/// A class as its JSON name says it (`nfs-shares`).
fn class_name(class: NasCollection) -> String {
    serde_json::to_value(class)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{class:?}"))
}
