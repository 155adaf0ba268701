//! `ktd collect --out DIR`: a bundle from the configured cluster and TrueNAS system.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::bundle::{CollectReport, CollectRequest, collect_bundle};
use crate::cli::CollectArgs;
use crate::config::RunConfig;
use crate::output::{self, Format, Table};

/// Collects a bundle.
pub async fn run(
    args: CollectArgs,
    config: Option<&Path>,
    context: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let cfg = RunConfig::load(config)?;
    let kubernetes = (!args.truenas_only).then(|| {
        let configured = cfg.kubernetes.is_some();
        let mut kube = cfg.kubernetes.clone().unwrap_or_default();
        if let Some(context) = context {
            if !configured {
                // Without a configuration the context names the cluster.
                kube.instance = context.clone();
            }
            kube.context = Some(context);
        }
        kube
    });
    let truenas = match (&cfg.truenas, args.kubernetes_only, args.truenas_only) {
        (_, true, _) => None,
        (Some(nas), _, _) => Some(nas.clone()),
        (None, _, true) => anyhow::bail!(
            "--truenas-only needs a `truenas` section in the configuration (url, api_key from a file or the environment; see deploy/ktd.example.yaml): pass it with --config"
        ),
        (None, _, false) => {
            eprintln!(
                "note: the configuration has no `truenas` section: collecting Kubernetes only"
            );
            None
        }
    };
    let report = collect_bundle(CollectRequest {
        dir: &args.out,
        kubernetes: kubernetes.as_ref(),
        truenas: truenas.as_ref(),
    })
    .await?;
    for l in &report.left_out {
        eprintln!("warning: left out {}: {}", l.what, l.reason);
    }
    output::print(format, &report, |out| print_report(out, &report))?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(out: &mut dyn Write, r: &CollectReport) -> std::io::Result<()> {
    writeln!(
        out,
        "Bundle written to {} (collected at {}).",
        r.dir.display(),
        r.collected_at
    )?;
    let mut t = Table::new(["FILE", "COLLECTED", "OBJECTS"]);
    for c in &r.collected {
        t.row([c.file.clone(), c.what.clone(), c.objects.to_string()]);
    }
    t.write(&mut *out)?;
    for l in &r.left_out {
        writeln!(out, "left out: {}: {}", l.what, l.reason)?;
    }
    writeln!(
        out,
        "Analyse it anywhere with: ktd scan --bundle {}",
        r.dir.display()
    )
}
