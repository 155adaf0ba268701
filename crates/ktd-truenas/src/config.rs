//! Configuration of one TrueNAS source, and the API key it reads from the environment or a
//! file (never from the configuration itself).
//!
//! ```yaml
//! instance: nas01
//! url: https://nas01.example.com
//! api_key: {file: /run/secrets/truenas/api-key}   # or {env: TRUENAS_API_KEY}
//! username: svc-ktd              # owner of the key (25.04+): auth.login_ex
//! transport: auto                # auto | rest | jsonrpc
//! tls: {verify: true, ca_file: /etc/ktd/truenas-ca.pem}
//! timeouts: {connect: 10000, call: 55000, ping_interval: 20000}   # milliseconds
//! poll_interval: 60000
//! usage_sample_every: 5
//! snapshot_full_read_every: 10
//! retry: {max_attempts: 3, initial_backoff: 500, max_backoff: 10000}
//! circuit_breaker: {failure_threshold: 5, cool_down: 60000}
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One TrueNAS system to observe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrueNasConfig {
    /// Source instance name: part of every event id and NATS subject (`nas01`).
    pub instance: String,
    /// Base URL of the TrueNAS web interface (`https://nas01.example.com`). `http://` is
    /// accepted for loopback addresses only, unless `allow_insecure_api_key` is set.
    pub url: String,
    /// Where the API key comes from. The key itself never appears in a configuration file.
    pub api_key: SecretSource,
    /// User that owns the API key (25.04+ keys are linked to a user). With a username, the
    /// client logs in with `auth.login_ex` (`API_KEY_PLAIN`); without, with
    /// `auth.login_with_api_key` (removed from API v27).
    pub username: Option<String>,
    /// Which API to use: `auto` (JSON-RPC on 25.04+, REST below), `rest` or `jsonrpc`.
    pub transport: TransportChoice,
    /// TLS settings for `https://` / `wss://`.
    pub tls: TlsConfig,
    /// Allow sending the API key over plain `http://`/`ws://` to a non-loopback host.
    /// TrueNAS 25.04+ **revokes** an API key used that way on a WebSocket; keep this false
    /// and use HTTPS.
    pub allow_insecure_api_key: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Time between two polls (default 60 s).
    #[serde(with = "duration_ms")]
    #[schemars(with = "u64")]
    pub poll_interval: Duration,
    /// Emit `UsageSampled` (space figures of datasets whose figures moved) every this many
    /// polls (default 5; 1 = every poll). Space figures alone never produce
    /// `DatasetChanged`.
    pub usage_sample_every: u64,
    /// Read every snapshot with its properties every this many polls (default 10; 1 = every
    /// poll), and on the first poll of a process. Other polls read only new snapshots
    /// (`extra.min_txg`), find removed ones through the datasets' `snapshot_count`, and
    /// re-read snapshots whose clones changed; a snapshot's `used`, holds, `defer_destroy`
    /// and user properties edited after its creation are refreshed by the full read.
    pub snapshot_full_read_every: u64,
    /// Extra user properties to read on snapshots (besides democratic-csi's and those seen
    /// on datasets).
    pub snapshot_user_properties: Vec<String>,
    /// Retries of retryable failures.
    pub retry: RetryConfig,
    /// Circuit breaker.
    pub circuit_breaker: CircuitBreakerConfig,
}

impl Default for TrueNasConfig {
    fn default() -> Self {
        TrueNasConfig {
            instance: "truenas".into(),
            url: "https://truenas.local".into(),
            api_key: SecretSource::Env {
                env: "TRUENAS_API_KEY".into(),
            },
            username: None,
            transport: TransportChoice::Auto,
            tls: TlsConfig::default(),
            allow_insecure_api_key: false,
            timeouts: Timeouts::default(),
            poll_interval: Duration::from_secs(60),
            usage_sample_every: 5,
            snapshot_full_read_every: 10,
            snapshot_user_properties: Vec::new(),
            retry: RetryConfig::default(),
            circuit_breaker: CircuitBreakerConfig::default(),
        }
    }
}

/// Which API the client speaks.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TransportChoice {
    /// JSON-RPC 2.0 when `/api/versions` answers (25.04+), REST v2.0 otherwise.
    #[default]
    Auto,
    /// REST v2.0 (22.12 – 25.10; removed in 26).
    Rest,
    /// JSON-RPC 2.0 over WebSocket (25.04+).
    Jsonrpc,
}

/// TLS settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Verify the server certificate (default true). Turning it off lets anyone on the path
    /// read the API key.
    pub verify: bool,
    /// PEM file with extra CA certificates (a self-signed TrueNAS certificate or a private CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            verify: true,
            ca_file: None,
        }
    }
}

/// Timeouts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP + TLS + WebSocket handshake (default 10 s).
    #[serde(with = "duration_ms")]
    #[schemars(with = "u64")]
    pub connect: Duration,
    /// One API call (default 55 s: under nginx's 60 s proxy timeout, which answers 504).
    #[serde(with = "duration_ms")]
    #[schemars(with = "u64")]
    pub call: Duration,
    /// WebSocket ping interval, keeping idle connections open through nginx (default 20 s).
    #[serde(with = "duration_ms")]
    #[schemars(with = "u64")]
    pub ping_interval: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            call: Duration::from_secs(55),
            ping_interval: Duration::from_secs(20),
        }
    }
}

/// Retries with exponential backoff and full jitter, for retryable errors only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts per call, the first included (default 3; 1 = no retry).
    pub max_attempts: u32,
    /// First backoff (default 500 ms); doubles per attempt.
    #[serde(with = "duration_ms")]
    #[schemars(with = "u64")]
    pub initial_backoff: Duration,
    /// Backoff ceiling (default 10 s).
    #[serde(with = "duration_ms")]
    #[schemars(with = "u64")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Circuit breaker: after `failure_threshold` consecutive failed calls the client stops
/// calling for `cool_down`, then lets one probe call through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerConfig {
    /// Consecutive failed attempts (retries included; only retryable failures count:
    /// timeouts, 5xx, lost connections) that open the circuit (default 5).
    pub failure_threshold: u32,
    /// How long the circuit stays open before a probe (default 60 s).
    #[serde(with = "duration_ms")]
    #[schemars(with = "u64")]
    pub cool_down: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(60),
        }
    }
}

/// Where a secret comes from: `{env: NAME}` or `{file: PATH}` (a map with exactly one of
/// the two keys, in JSON and YAML alike).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable: `api_key: {env: TRUENAS_API_KEY}`.
    Env {
        /// The variable's name.
        env: String,
    },
    /// A file (e.g. a mounted Kubernetes Secret; surrounding whitespace is trimmed):
    /// `api_key: {file: /run/secrets/truenas-api-key}`.
    File {
        /// The file.
        file: PathBuf,
    },
}

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or not UTF-8.
    #[error("environment variable {0} is not set: export the TrueNAS API key in it")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("cannot read the API key file {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The secret is empty.
    #[error("the API key from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret.
    pub fn load(&self) -> Result<ApiKey, SecretError> {
        let (raw, from) = match self {
            SecretSource::Env { env } => (
                std::env::var(env).map_err(|_| SecretError::MissingEnv(env.clone()))?,
                format!("${env}"),
            ),
            SecretSource::File { file } => (
                std::fs::read_to_string(file).map_err(|source| SecretError::File {
                    path: file.clone(),
                    source,
                })?,
                file.display().to_string(),
            ),
        };
        let key = raw.trim();
        if key.is_empty() {
            return Err(SecretError::Empty(from));
        }
        Ok(ApiKey(key.to_owned()))
    }
}

/// A TrueNAS API key. `Debug` and `Display` print `***`; only [`ApiKey::expose`] gives the
/// text, for the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (tests, or keys obtained elsewhere).
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Durations as integer milliseconds in configuration files.
mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("1-abcdefsecret");
        assert_eq!(format!("{key}"), "***");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert!(!format!("{:?}", Some(&key)).contains("secret"));
    }

    #[test]
    fn config_parses_and_rejects_unknown_fields() {
        let c: TrueNasConfig = serde_json::from_value(serde_json::json!({
            "instance": "nas01", "url": "https://nas01", "api_key": {"file": "/run/key"},
            "transport": "jsonrpc", "timeouts": {"call": 1000}
        }))
        .unwrap();
        assert_eq!(c.transport, TransportChoice::Jsonrpc);
        assert_eq!(c.timeouts.call, Duration::from_secs(1));
        assert_eq!(c.timeouts.connect, Duration::from_secs(10));
        assert!(c.tls.verify);
        assert!(
            serde_json::from_value::<TrueNasConfig>(serde_json::json!({"api_key_inline": "x"}))
                .is_err()
        );
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let yaml: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| {
                format!(
                    "{}\n",
                    l.trim_start_matches("//!").strip_prefix(' ').unwrap_or("")
                )
            })
            .collect();
        let c: TrueNasConfig = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(c.instance, "nas01");
        assert_eq!(
            c.api_key,
            SecretSource::File {
                file: "/run/secrets/truenas/api-key".into()
            }
        );
        assert_eq!(c.username.as_deref(), Some("svc-ktd"));
        assert_eq!(c.timeouts.call, Duration::from_secs(55));
        assert_eq!(c.circuit_breaker, CircuitBreakerConfig::default());
    }

    #[test]
    fn secret_from_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  1-xyz\n").unwrap();
        let key = SecretSource::File { file: path }.load().unwrap();
        assert_eq!(key.expose(), "1-xyz");
    }
}
