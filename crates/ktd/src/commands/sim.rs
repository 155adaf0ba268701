//! `ktd sim generate` and `ktd sim serve`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use ktd_model::Timestamp;
use ktd_sim::serve::{Bind, SimServers};
use ktd_sim::{GenerateOptions, Personality, World};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cli::{GenerateArgs, ServeArgs, SimCommand, WorldArgs};
use crate::output::{self, Format, Table};

/// Runs a `ktd sim` command.
pub async fn run(cmd: SimCommand, format: Format) -> anyhow::Result<ExitCode> {
    match cmd {
        SimCommand::Generate(args) => generate(args, format),
        SimCommand::Serve(args) => serve(args, format).await,
    }
}

/// Generator options from the command line. "Now" is the wall clock unless `--now` is
/// given, so a served world's ages are right for a ktd that reads the real clock.
pub fn options(args: &WorldArgs) -> anyhow::Result<GenerateOptions> {
    let personality: Personality = args
        .truenas_version
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let now = match &args.now {
        Some(t) => Timestamp::parse_rfc3339(t)?.unix_secs(),
        None => Timestamp::now().unix_secs(),
    };
    Ok(GenerateOptions {
        volumes: args.volumes,
        snapshots_per_volume: args.snapshots,
        clusters: args.clusters.max(1),
        seed: args.seed,
        personality,
        now,
        faults: !args.no_faults,
    })
}

fn generate(args: GenerateArgs, format: Format) -> anyhow::Result<ExitCode> {
    let opts = options(&args.world)?;
    let world = ktd_sim::generate(&opts);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_json(&args.out.join("world.json"), &world)?;
    write_json(&args.out.join("truth.json"), &world.truth)?;
    let summary = Summary::of(&world);
    output::print(format, &summary, |out| {
        writeln!(
            out,
            "wrote {}/world.json and truth.json",
            args.out.display()
        )?;
        summary.table().write(out)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    serde_json::to_writer(&mut w, value)?;
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a world file written by `ktd sim generate` (or by hand).
pub fn read_world(path: &Path) -> anyhow::Result<World> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    serde_json::from_reader(std::io::BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("{} is not a ktd world file", path.display()))
}

/// Counts of a world, for people and scripts.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Clusters and their object counts per kind.
    pub clusters: BTreeMap<String, BTreeMap<String, usize>>,
    /// TrueNAS release simulated.
    pub truenas_version: String,
    /// NAS resource counts.
    pub nas: BTreeMap<&'static str, usize>,
    /// Planted findings per kind (what a correct ktd reports).
    pub expected_findings: BTreeMap<String, usize>,
    /// False-positive traps planted.
    pub traps: usize,
}

impl Summary {
    /// Counts `world`.
    pub fn of(world: &World) -> Summary {
        let clusters = world
            .clusters
            .iter()
            .map(|c| {
                let mut kinds = BTreeMap::new();
                for o in &c.objects {
                    let kind = o.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
                    *kinds.entry(kind.to_owned()).or_insert(0) += 1;
                }
                (c.name.clone(), kinds)
            })
            .collect();
        let nas = &world.nas;
        let mut expected = BTreeMap::new();
        for f in &world.truth.findings {
            *expected.entry(f.kind.as_str().to_owned()).or_insert(0) += 1;
        }
        Summary {
            clusters,
            truenas_version: nas.personality.version_string().to_owned(),
            nas: BTreeMap::from([
                ("pools", nas.pools.len()),
                ("datasets", nas.datasets.len()),
                ("snapshots", nas.snapshots.len()),
                ("nfs shares", nas.nfs_shares.len()),
                ("smb shares", nas.smb_shares.len()),
                ("iscsi targets", nas.iscsi_targets.len()),
                ("iscsi extents", nas.iscsi_extents.len()),
            ]),
            expected_findings: expected,
            traps: world.truth.traps.len(),
        }
    }

    /// As a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(["SIDE", "WHAT", "COUNT"]);
        for (cluster, kinds) in &self.clusters {
            for (kind, n) in kinds {
                t.row([format!("kubernetes/{cluster}"), kind.clone(), n.to_string()]);
            }
        }
        for (what, n) in &self.nas {
            t.row([
                format!("truenas ({})", self.truenas_version),
                (*what).to_owned(),
                n.to_string(),
            ]);
        }
        for (kind, n) in &self.expected_findings {
            t.row(["ground truth".to_owned(), kind.clone(), n.to_string()]);
        }
        t.row([
            "ground truth".to_owned(),
            "traps (must not be reported)".to_owned(),
            self.traps.to_string(),
        ]);
        t
    }
}

async fn serve(args: ServeArgs, format: Format) -> anyhow::Result<ExitCode> {
    let world = match &args.world {
        Some(path) => read_world(path)?,
        None => ktd_sim::generate(&options(&args.generate)?),
    };
    let personality = world.nas.personality;
    let summary = Summary::of(&world);
    let shutdown = CancellationToken::new();
    let bind = Bind {
        ip: args.bind,
        truenas_port: args.truenas_port,
        kube_port: args.kube_port,
    };
    let servers = SimServers::start(world, bind, shutdown.clone())
        .await
        .context("cannot start the simulated servers")?;
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, servers.kubeconfig())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let endpoints = Endpoints {
        kubernetes: servers
            .clusters
            .iter()
            .map(|(name, s)| (name.clone(), s.url()))
            .collect(),
        truenas: servers.truenas.url(),
        truenas_version: personality.version_string().to_owned(),
        api_key: servers.api_key.clone(),
        kubeconfig: args
            .kubeconfig_out
            .as_ref()
            .map(|p| p.display().to_string()),
        summary,
    };
    output::print(format, &endpoints, |out| {
        for (name, url) in &endpoints.kubernetes {
            writeln!(out, "kubernetes {name:<12} {url}")?;
        }
        writeln!(
            out,
            "truenas    {:<12} {}",
            endpoints.truenas_version, endpoints.truenas
        )?;
        if let Some(key) = &endpoints.api_key {
            writeln!(out, "api key    {key}")?;
        }
        if let Some(path) = &endpoints.kubeconfig {
            writeln!(out, "kubeconfig {path}")?;
        }
        writeln!(out)?;
        endpoints.summary.table().write(&mut *out)?;
        writeln!(out, "\nserving until Ctrl-C")
    })?;
    std::io::stdout().flush()?;
    super::run::wait_for_signal().await;
    shutdown.cancel();
    Ok(ExitCode::SUCCESS)
}

/// What `ktd sim serve` prints.
#[derive(Debug, Serialize)]
struct Endpoints {
    kubernetes: BTreeMap<String, String>,
    truenas: String,
    truenas_version: String,
    api_key: Option<String>,
    kubeconfig: Option<String>,
    summary: Summary,
}
