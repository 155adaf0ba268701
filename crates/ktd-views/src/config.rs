//! What the views need to be told: thresholds, parents that cannot be discovered, and
//! snapshot retention policies.
//!
//! ```yaml
//! findings:
//!   grace: 15m                 # in-flight provisioning, helper snapshots, fresh objects
//!   pvc_pending: 24h
//!   snapshot_not_ready: 1h
//!   volume_parents: [tank/k8s/prod/nfs]          # optional: discovered from PVs otherwise
//!   detached_snapshot_parents: [tank/k8s/prod/nfs-snapshots]
//!   retention:
//!     - name: daily-7
//!       storage_class: fast-nfs
//!       max_age: 7d
//!       max_count: 10
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A length of time written like `15m`, `24h`, `7d`, `1h 30m` or ISO 8601 `PT15M`
/// (a day is 24 hours).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Age(pub Duration);

impl Age {
    /// `n` minutes.
    pub const fn minutes(n: u64) -> Age {
        Age(Duration::from_secs(n * 60))
    }
    /// `n` hours.
    pub const fn hours(n: u64) -> Age {
        Age(Duration::from_secs(n * 3600))
    }
    /// Milliseconds, for comparisons with [`ktd_model::Timestamp`] differences.
    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A length of time that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not a length of time: {why} (write e.g. 15m, 24h, 7d or 1h 30m)")]
pub struct AgeParseError {
    input: String,
    why: String,
}

impl FromStr for Age {
    type Err = AgeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| AgeParseError {
            input: s.to_owned(),
            why,
        };
        let span: jiff::Span = s.trim().parse().map_err(|e| err(format!("{e}")))?;
        let signed = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| err(format!("{e}")))?;
        Duration::try_from(signed)
            .map(Age)
            .map_err(|_| err("it is negative".into()))
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        if secs == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (secs / 86_400, "d"),
            (secs % 86_400 / 3600, "h"),
            (secs % 3600 / 60, "m"),
            (secs % 60, "s"),
        ];
        let out: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, unit)| format!("{n}{unit}"))
            .collect();
        f.write_str(&out.join(" "))
    }
}

impl fmt::Debug for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Age {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(n) => Ok(Age(Duration::from_secs(n))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl JsonSchema for Age {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Age".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A length of time: `15m`, `24h`, `7d`, `1h 30m`, ISO 8601 `PT15M`, or a number of seconds.",
            "oneOf": [
                {"type": "string", "examples": ["15m", "24h", "7d"]},
                {"type": "integer", "minimum": 0}
            ]
        })
    }
}

/// Thresholds and ownership hints of the findings views.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FindingsConfig {
    /// Grace for work that may still be in flight: provisioning, helper snapshots,
    /// attach/detach errors, objects younger than this on one side only (default 15m).
    pub grace: Age,
    /// A PVC `Pending` longer than this is a finding (default 24h).
    pub pvc_pending: Age,
    /// A VolumeSnapshot not ready longer than this is a finding (default 1h).
    pub snapshot_not_ready: Age,
    /// Volume parent datasets (democratic-csi `datasetParentName`) of this cluster, in
    /// addition to those discovered (a parent holding one of the cluster's PVs).
    pub volume_parents: Vec<String>,
    /// Detached-snapshot parents (`detachedSnapshotsDatasetParentName`), in addition to
    /// those discovered.
    pub detached_snapshot_parents: Vec<String>,
    /// Snapshot retention policies, checked by the snapshot ledger.
    pub retention: Vec<RetentionPolicy>,
}

impl Default for FindingsConfig {
    fn default() -> Self {
        FindingsConfig {
            grace: Age::minutes(15),
            pvc_pending: Age::hours(24),
            snapshot_not_ready: Age::hours(1),
            volume_parents: Vec::new(),
            detached_snapshot_parents: Vec::new(),
            retention: Vec::new(),
        }
    }
}

/// How many VolumeSnapshots a volume may keep, and for how long. A policy applies to the
/// snapshots of every volume matching all of its selectors (no selector: every volume);
/// when several match, the first one in the list counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Name shown in reports.
    pub name: String,
    /// The source PVC's StorageClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The VolumeSnapshots' namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels the VolumeSnapshot must carry (all of them).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Snapshots older than this violate the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Age>,
    /// More snapshots per volume than this violate the policy (the oldest are the excess).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_in_the_forms_people_write() {
        for (text, secs) in [
            ("15m", 900),
            ("24h", 86_400),
            ("7d", 604_800),
            ("1h 30m", 5400),
            ("PT15M", 900),
            ("1w", 604_800),
        ] {
            assert_eq!(text.parse::<Age>().unwrap().0.as_secs(), secs, "{text}");
        }
        let err = "soon".parse::<Age>().unwrap_err().to_string();
        assert!(err.contains("`soon`") && err.contains("15m"), "{err}");
        assert!("-5m".parse::<Age>().is_err());
    }

    #[test]
    fn ages_print_compactly_and_round_trip() {
        for (secs, text) in [
            (900, "15m"),
            (86_400, "1d"),
            (5400, "1h 30m"),
            (90_061, "1d 1h 1m 1s"),
        ] {
            let age = Age(Duration::from_secs(secs));
            assert_eq!(age.to_string(), text);
            assert_eq!(text.parse::<Age>().unwrap(), age);
        }
    }

    #[test]
    fn config_reads_yaml_shapes() {
        let c: FindingsConfig = serde_json::from_value(serde_json::json!({
            "grace": "10m", "pvc_pending": 3600,
            "retention": [{"name": "p", "namespace": "db", "max_count": 5}]
        }))
        .unwrap();
        assert_eq!(c.grace, Age::minutes(10));
        assert_eq!(c.pvc_pending, Age::hours(1));
        assert_eq!(c.snapshot_not_ready, Age::hours(1));
        assert_eq!(c.retention[0].max_count, Some(5));
        let bad = serde_json::from_value::<FindingsConfig>(serde_json::json!({"grcae": "1m"}));
        assert!(bad.unwrap_err().to_string().contains("grcae"));
    }
}
