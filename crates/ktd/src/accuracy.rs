//! Accuracy against a simulated world's ground truth: per finding kind, what ktd reported
//! versus what the world holds, and whether any false-positive trap was reported.
//!
//! Used by `ktd demo`, the accuracy tests and `bench/accuracy`.

use std::collections::{BTreeMap, BTreeSet};

use ktd_model::{Finding, FindingKind, ResourceRef};
use ktd_sim::GroundTruth;
use serde::Serialize;

/// Precision and recall of one kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindScore {
    /// Findings the world holds.
    pub expected: usize,
    /// Findings ktd reported.
    pub reported: usize,
    /// Reported and expected.
    pub correct: usize,
    /// `correct / reported` (1 when nothing was reported).
    pub precision: f64,
    /// `correct / expected` (1 when nothing was expected).
    pub recall: f64,
}

/// The comparison of reported findings with the ground truth of one cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Per kind (every kind of the catalogue).
    pub by_kind: BTreeMap<String, KindScore>,
    /// Reported but not expected.
    pub false_positives: Vec<String>,
    /// Expected but not reported.
    pub missed: Vec<String>,
    /// Traps that were reported as a finding subject.
    pub traps_hit: Vec<String>,
    /// Traps in the world.
    pub traps: usize,
    /// Managed datasets the world says no observed cluster owns, that ktd did not list as
    /// unowned.
    pub unowned_missed: Vec<String>,
    /// Datasets ktd listed as unowned (by the observed cluster) that the world lists as
    /// owned by one of its other clusters: correct from where ktd stands, counted only.
    pub unowned_by_other_clusters: usize,
}

impl Accuracy {
    /// Compares `reported` findings and `unowned` datasets with the truth for `cluster`.
    pub fn measure<'a>(
        truth: &GroundTruth,
        cluster: &str,
        reported: impl IntoIterator<Item = &'a Finding>,
        unowned: &[String],
    ) -> Accuracy {
        let expected: BTreeSet<(FindingKind, ResourceRef)> = truth
            .findings
            .iter()
            .filter(|f| f.cluster == cluster)
            .map(|f| (f.kind, f.subject.clone()))
            .collect();
        let reported: BTreeSet<(FindingKind, ResourceRef)> = reported
            .into_iter()
            .map(|f| (f.kind, f.subject.clone()))
            .collect();
        let mut acc = Accuracy {
            traps: truth.traps.len(),
            ..Accuracy::default()
        };
        for kind in FindingKind::ALL {
            let e = expected.iter().filter(|(k, _)| k == kind).count();
            let r = reported.iter().filter(|(k, _)| k == kind).count();
            let c = reported
                .iter()
                .filter(|x| x.0 == *kind && expected.contains(*x))
                .count();
            acc.by_kind.insert(
                kind.as_str().to_owned(),
                KindScore {
                    expected: e,
                    reported: r,
                    correct: c,
                    precision: if r == 0 { 1.0 } else { c as f64 / r as f64 },
                    recall: if e == 0 { 1.0 } else { c as f64 / e as f64 },
                },
            );
        }
        acc.false_positives = reported
            .difference(&expected)
            .map(|(k, s)| format!("{k} {s}"))
            .collect();
        acc.missed = expected
            .difference(&reported)
            .map(|(k, s)| format!("{k} {s}"))
            .collect();
        let subjects: BTreeSet<&ResourceRef> = reported.iter().map(|(_, s)| s).collect();
        acc.traps_hit = truth
            .traps
            .iter()
            .filter(|t| subjects.contains(&t.resource))
            .map(|t| format!("{:?} {}", t.kind, t.resource))
            .collect();
        let want: BTreeSet<&String> = truth.unowned.iter().collect();
        let got: BTreeSet<&String> = unowned.iter().collect();
        acc.unowned_missed = want.difference(&got).map(|s| (*s).clone()).collect();
        acc.unowned_by_other_clusters = got.difference(&want).count();
        acc
    }

    /// Every kind at 100% precision and recall, and no trap reported.
    pub fn perfect(&self) -> bool {
        self.false_positives.is_empty()
            && self.missed.is_empty()
            && self.traps_hit.is_empty()
            && self.unowned_missed.is_empty()
    }
}
