//! Command-line definitions (clap). Each command's logic lives in [`crate::commands`].

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// ktd: orphans, snapshots, configuration and capacity for Kubernetes + TrueNAS SCALE +
/// democratic-csi, from an append-only event log.
#[derive(Debug, Parser)]
#[command(name = "ktd", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Configuration file (YAML); `KTD_*` environment variables override it.
    #[arg(long, global = true, env = "KTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "KTD_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// Log filter (`info`, `ktd=debug`, ...); also `RUST_LOG`.
    #[arg(
        long,
        global = true,
        env = "KTD_LOG",
        value_name = "FILTER",
        default_value = "warn"
    )]
    pub log: String,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// ktd's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch Kubernetes (and TrueNAS) and append every observation to the
    /// event log, until SIGINT/SIGTERM.
    Run,
    /// Findings: orphaned, leftover and stuck resources on both sides, with evidence,
    /// reclaimable bytes and remediation steps (from the event log, or a bundle).
    Orphans(OrphansArgs),
    /// The snapshot ledger: every volume's snapshots joined across Kubernetes and TrueNAS,
    /// with space, age, clones and retention compliance.
    Snapshots(SnapshotsArgs),
    /// Analyse a bundle written by `ktd collect` (or made by hand: docs/bundle.md): findings
    /// and a summary, without access to the cluster or the NAS.
    Scan(ScanArgs),
    /// Read the event log.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Write a bundle (raw API output of the cluster and the TrueNAS system) for offline
    /// analysis with `ktd scan --bundle`. Secrets are never collected.
    Collect(CollectArgs),
    /// Run ktd against a simulated world on loopback: no cluster, NAS or servers needed.
    Demo(DemoArgs),
    /// The simulated storage stack (fake kube-apiserver + TrueNAS simulator).
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print shell completions.
    Completions {
        /// Shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

/// `ktd events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print events from the log (`-o json` prints one JSON object per line).
    Tail(EventsTailArgs),
}

/// Where `ktd events tail` starts.
#[derive(Clone, Debug, PartialEq)]
pub enum From {
    /// A log sequence.
    Seq(u64),
    /// The first event observed at or after this time.
    Time(ktd_model::Timestamp),
}

impl std::str::FromStr for From {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(seq) = s.parse::<u64>() {
            return Ok(From::Seq(seq));
        }
        ktd_model::Timestamp::parse_rfc3339(s)
            .map(From::Time)
            .map_err(|_| format!("`{s}` is neither a sequence number nor an RFC 3339 time"))
    }
}

/// Which log stream to read.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum StreamArg {
    /// What the sources observed.
    Observations,
    /// What ktd derived (findings, notifications, audit).
    Derived,
}

/// `ktd events tail`.
#[derive(Debug, Args)]
pub struct EventsTailArgs {
    /// Keep printing new events as they are appended.
    #[arg(short, long)]
    pub follow: bool,
    /// Start at this sequence number or RFC 3339 time (default: the beginning).
    #[arg(long, value_name = "SEQ|TIME")]
    pub from: Option<From>,
    /// Only events whose subject matches this NATS-style pattern (`*` one token, `>` the rest),
    /// e.g. `ktd.v1.obs.*.dataset`.
    #[arg(long, value_name = "PATTERN")]
    pub subject: Option<String>,
    /// Which stream.
    #[arg(long, value_enum, default_value = "observations")]
    pub stream: StreamArg,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
}

impl EventsTailArgs {
    /// The log stream to read.
    pub fn log_stream(&self) -> ktd_log::Stream {
        match self.stream {
            StreamArg::Observations => ktd_log::Stream::Observations,
            StreamArg::Derived => ktd_log::Stream::Derived,
        }
    }
}

/// `ktd collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Directory to write the bundle into (created if missing; must not hold a bundle).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Collect only the Kubernetes side (`kubernetes.json`).
    #[arg(long, conflicts_with = "truenas_only")]
    pub kubernetes_only: bool,
    /// Collect only the TrueNAS side (`truenas/<method>.json`; needs a `truenas` section in
    /// the configuration).
    #[arg(long)]
    pub truenas_only: bool,
}

/// Where the views come from.
#[derive(Debug, Args, Clone)]
pub struct ViewSource {
    /// Analyse this bundle directory instead of the event log.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
}

/// `ktd orphans`.
#[derive(Debug, Args)]
pub struct OrphansArgs {
    /// Where to read from.
    #[command(flatten)]
    pub source: ViewSource,
    /// Only these kinds (repeat or comma-separate), e.g. `dataset-orphaned`.
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub kind: Vec<ktd_model::FindingKind>,
    /// Only findings about objects in this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Only findings first seen at least this long ago (`7d`, `24h`).
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<ktd_views::Age>,
    /// Only findings at least this severe.
    #[arg(long, value_name = "SEVERITY")]
    pub severity: Option<ktd_model::Severity>,
    /// Exit with code 2 when a listed finding is at least this severe (for CI pipelines).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<ktd_model::Severity>,
}

/// `ktd snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Where to read from.
    #[command(flatten)]
    pub source: ViewSource,
    /// Only this volume: PV name, volume handle, dataset, or claim `namespace/name`.
    #[arg(long)]
    pub volume: Option<String>,
    /// Only volumes this retention policy applies to.
    #[arg(long)]
    pub policy: Option<String>,
    /// List every snapshot of the selected volumes, not only the per-volume totals.
    #[arg(short, long)]
    pub detail: bool,
}

/// `ktd scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The bundle directory.
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Exit with code 2 when a finding is at least this severe (for CI pipelines).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<ktd_model::Severity>,
}

/// `ktd demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Volumes in the demo world.
    #[arg(long, default_value_t = 60)]
    pub volumes: usize,
    /// Snapshots per volume.
    #[arg(long, default_value_t = 3)]
    pub snapshots: usize,
    /// Seed of the world generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// TrueNAS release to simulate (22.12, 24.10, 25.04, 25.10).
    #[arg(long, default_value = "25.04")]
    pub truenas_version: String,
    /// Keep the simulated servers running after the demo (Ctrl-C to stop).
    #[arg(long)]
    pub serve: bool,
}

/// `ktd sim …`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Write a generated world (`world.json`) and its ground truth (`truth.json`).
    Generate(GenerateArgs),
    /// Serve a world: one fake kube-apiserver per cluster and one TrueNAS simulator.
    Serve(ServeArgs),
}

/// World generator options.
#[derive(Debug, Args, Clone)]
pub struct WorldArgs {
    /// Volumes (PVs with their datasets/zvols).
    #[arg(long, alias = "generate", default_value_t = 100)]
    pub volumes: usize,
    /// Snapshots per volume.
    #[arg(long, default_value_t = 3)]
    pub snapshots: usize,
    /// Clusters sharing the one TrueNAS.
    #[arg(long, default_value_t = 1)]
    pub clusters: usize,
    /// Seed (same seed, same world).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// TrueNAS release to simulate (22.12, 24.10, 25.04, 25.10).
    #[arg(long, default_value = "25.04")]
    pub truenas_version: String,
    /// Generate a healthy world: no planted findings or traps.
    #[arg(long)]
    pub no_faults: bool,
    /// "Now" of the world (RFC 3339); default: the current time.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
}

/// `ktd sim generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(flatten)]
    pub world: WorldArgs,
    /// Directory to write `world.json` and `truth.json` into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `ktd sim serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve this world file instead of generating one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["volumes", "snapshots", "clusters", "seed", "no_faults", "now"])]
    pub world: Option<PathBuf>,
    /// What to generate when no `--world` is given.
    #[command(flatten)]
    pub generate: WorldArgs,
    /// Address to bind (loopback by default; ports are chosen by the OS unless given).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// TrueNAS simulator port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub truenas_port: u16,
    /// First fake apiserver port (one per cluster, consecutive; 0 = any free ports).
    #[arg(long, default_value_t = 0)]
    pub kube_port: u16,
    /// Write a kubeconfig with one context per simulated cluster to this file.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "ktd",
            "sim",
            "generate",
            "--out",
            "/tmp/x",
            "-o",
            "json",
            "--context",
            "prod",
        ])
        .unwrap();
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.context.as_deref(), Some("prod"));
    }

    #[test]
    fn collect_sides_exclude_each_other() {
        assert!(
            Cli::try_parse_from([
                "ktd",
                "collect",
                "--out",
                "b",
                "--kubernetes-only",
                "--truenas-only"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from(["ktd", "collect", "--out", "b", "--truenas-only"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Collect(CollectArgs {
                truenas_only: true,
                ..
            })
        ));
    }

    #[test]
    fn world_and_generator_options_exclude_each_other() {
        assert!(
            Cli::try_parse_from(["ktd", "sim", "serve", "--world", "w.json", "--volumes", "5"])
                .is_err()
        );
    }
}
