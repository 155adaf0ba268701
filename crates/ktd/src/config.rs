//! `ktd run`'s configuration: one YAML file (`--config`) with `KTD_*` environment
//! overrides (`KTD_LOG__PATH=/var/lib/ktd/events.redb` sets `log.path`: nested keys are
//! separated by `__`). Secrets never live here: sources read them from the environment,
//! files or Kubernetes Secrets named in their own sections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use ktd_kube::KubeSourceConfig;
use ktd_log::jetstream::JetStreamConfig;
use ktd_truenas::TrueNasConfig;
use ktd_views::FindingsConfig;
use serde::Deserialize;

/// Everything `ktd run` needs.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of this ktd instance: the source of its ticks and derived events.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// Where events are stored.
    #[serde(default)]
    pub log: LogConfig,
    /// The Kubernetes cluster to watch (omit to watch none).
    #[serde(default)]
    pub kubernetes: Option<KubeSourceConfig>,
    /// The TrueNAS system to poll (omit to poll none). Its API key comes from the
    /// environment or a file named here, never from this file.
    #[serde(default)]
    pub truenas: Option<TrueNasConfig>,
    /// Seconds between `Tick` events (time thresholds fire on ticks).
    #[serde(default = "default_tick")]
    pub tick_seconds: u64,
    /// Thresholds, parents and retention policies of the findings.
    #[serde(default)]
    pub findings: FindingsConfig,
}

fn default_instance() -> String {
    "ktd".to_owned()
}

fn default_tick() -> u64 {
    30
}

impl RunConfig {
    /// The tick interval.
    pub fn tick_interval(&self) -> Duration {
        Duration::from_secs(self.tick_seconds.max(1))
    }

    /// Loads `path` (if given) and applies `KTD_*` environment overrides.
    pub fn load(path: Option<&Path>) -> anyhow::Result<RunConfig> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                anyhow::bail!("configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Yaml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("KTD_")
                .ignore(&["CONFIG", "CONTEXT", "LOG"])
                .split("__")
                .lowercase(true),
        );
        figment.extract().map_err(|e| {
            let mut msg = String::from("invalid configuration");
            for err in e {
                msg.push_str(&format!("\n  - {err}"));
            }
            anyhow::anyhow!(msg)
        })
    }
}

/// The event log backend.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum LogConfig {
    /// A redb file on local disk (the default; one `ktd run` process owns it).
    Embedded {
        /// The file (created if missing).
        #[serde(default = "default_log_path")]
        path: PathBuf,
    },
    /// NATS JetStream (scale-out; several processes share the log).
    Nats(JetStreamConfig),
}

fn default_log_path() -> PathBuf {
    PathBuf::from("ktd-events.redb")
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::Embedded {
            path: default_log_path(),
        }
    }
}

/// The JSON Schema of the configuration file (checked in as `schemas/config.schema.json`).
pub fn schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<RunConfig>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regenerate with `KTD_UPDATE_SCHEMAS=1 cargo test -p ktd config::tests`.
    #[test]
    fn checked_in_config_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/config.schema.json");
        let mut want = serde_json::to_string_pretty(&schema()).unwrap();
        want.push('\n');
        if std::env::var_os("KTD_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "schemas/config.schema.json is stale: run `KTD_UPDATE_SCHEMAS=1 cargo test -p ktd config::tests` and commit it"
        );
    }

    #[test]
    fn the_example_configuration_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ktd.example.yaml");
        let cfg = figment::Figment::new()
            .merge(Yaml::file_exact(&path))
            .extract::<RunConfig>()
            .unwrap();
        assert!(matches!(cfg.log, LogConfig::Embedded { .. }));
        assert_eq!(cfg.kubernetes.unwrap().instance, "prod");
        let nas = cfg.truenas.unwrap();
        assert_eq!(nas.instance, "nas01");
        assert_eq!(nas.poll_interval, Duration::from_secs(60));
        assert_eq!(cfg.findings.grace, ktd_views::Age::minutes(15));
        assert_eq!(cfg.findings.retention[0].max_count, Some(14));
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let err = figment::Figment::new()
            .merge(Yaml::string("instance: x\nlgo:\n  backend: embedded\n"))
            .extract::<RunConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("lgo"), "{err}");
    }

    #[test]
    fn nats_backend_is_selected_by_tag() {
        let cfg: RunConfig = figment::Figment::new()
            .merge(Yaml::string(
                "log:\n  backend: nats\n  url: nats://127.0.0.1:4222\n",
            ))
            .extract()
            .unwrap();
        assert!(matches!(cfg.log, LogConfig::Nats(_)));
    }
}
