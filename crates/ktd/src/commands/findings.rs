//! How findings print for people: shared by `ktd scan`, `ktd orphans` and `ktd demo`.

use std::io::Write;

use ktd_model::Finding;
use ktd_views::Summary;

use crate::output::Table;

pub use ktd_views::rules::human_bytes;

/// One line per finding: severity, kind, subject and reclaimable bytes.
pub fn print_findings(out: &mut dyn Write, findings: &[Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return writeln!(out, "No findings.");
    }
    let mut t = Table::new(["SEVERITY", "KIND", "SUBJECT", "RECLAIMABLE"]);
    for f in findings {
        let subject = match &f.subject.namespace {
            Some(ns) => format!("{} {ns}/{}", f.subject.kind, f.subject.name),
            None => format!("{} {}", f.subject.kind, f.subject.name),
        };
        t.row([
            format!("{:?}", f.severity).to_lowercase(),
            f.kind.as_str().to_owned(),
            subject,
            f.reclaimable_bytes.map(human_bytes).unwrap_or_default(),
        ]);
    }
    t.write(&mut *out)?;
    writeln!(
        out,
        "(`-o yaml` shows each finding's reason, evidence and remediation steps)"
    )
}

/// Totals, what was not judged, and unowned datasets.
pub fn print_summary(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "{} findings, {} reclaimable.",
        s.findings,
        human_bytes(s.reclaimable_bytes)
    )?;
    if !s.volume_parents.is_empty() {
        writeln!(
            out,
            "Parents judged as this cluster's: {}",
            s.volume_parents
                .iter()
                .chain(&s.detached_snapshot_parents)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    for (kind, missing) in &s.not_judged {
        writeln!(
            out,
            "Not judged: {kind} (not completely observed: {})",
            missing.join(", ")
        )?;
    }
    if s.unowned_count > 0 {
        writeln!(
            out,
            "{} democratic-csi datasets belong to parents no observed cluster owns (another cluster's?): not judged.",
            s.unowned_count
        )?;
    }
    Ok(())
}
