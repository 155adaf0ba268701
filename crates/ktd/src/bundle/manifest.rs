//! `bundle.json`: when a bundle was collected and what it holds completely. Optional: a
//! hand-made bundle without it is read with the current time as "now" and the kinds found
//! in `kubernetes.json` as the kinds collected. Its JSON Schema is checked in as
//! `schemas/bundle.schema.json`.

use std::collections::BTreeMap;

use ktd_model::{KubeKind, Timestamp};
use serde::{Deserialize, Serialize};

/// The contents of `bundle.json`. Every field is optional; fields ktd does not know are
/// kept (and reported as warnings) so that bundles of newer versions still read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "ktd bundle manifest (bundle.json)")]
pub struct BundleManifest {
    /// When the bundle was collected (RFC 3339). It is "now" for every age threshold of
    /// the analysis. Default: the time the bundle is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected_at: Option<Timestamp>,
    /// The Kubernetes kinds listed completely (`PersistentVolume`, `CSIDriver`, ...; plurals
    /// and short names such as `pv` are accepted). A kind counts as collected when listed
    /// here, even with no object in `kubernetes.json`. Default: the kinds `kubernetes.json`
    /// holds at least one object of. Kinds that are not collected are never judged.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "kind_names")]
    #[schemars(with = "Option<Vec<KindName>>")]
    pub kubernetes_kinds: Option<Vec<KubeKind>>,
    /// Name of the cluster (the Kubernetes source instance of the events). Default
    /// `bundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The ktd version that wrote the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ktd_version: Option<String>,
    /// What the collection could not read, and why (forbidden kinds, missing CRDs,
    /// TrueNAS methods that failed). For people: readers rely on `kubernetes_kinds` and on
    /// which `truenas/<method>.json` files exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
    /// Fields this version of ktd does not know.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// Something a collection left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeftOut {
    /// A Kubernetes kind (`VolumeSnapshot`), a TrueNAS method (`sharing.smb.query`), or
    /// `kubernetes` / `truenas` for a whole side.
    pub what: String,
    /// Why, and what to do about it.
    pub reason: String,
}

/// A Kubernetes kind as `kind` spells it.
#[derive(schemars::JsonSchema)]
#[schemars(
    description = "A Kubernetes kind as `kind` spells it (PersistentVolume, CSIDriver, ...); plurals and short names (pv, pvc, sc, vs, vsc) are accepted too"
)]
#[allow(dead_code)]
struct KindName(String);

/// `kubernetes_kinds` as Kubernetes spells them, accepting plurals and short names.
mod kind_names {
    use ktd_model::KubeKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        kinds: &Option<Vec<KubeKind>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match kinds {
            Some(kinds) => s.collect_seq(kinds.iter().map(|k| k.as_str())),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<KubeKind>>, D::Error> {
        let Some(names) = Option::<Vec<String>>::deserialize(d)? else {
            return Ok(None);
        };
        let mut kinds = names
            .iter()
            .map(|k| k.parse().map_err(serde::de::Error::custom))
            .collect::<Result<Vec<KubeKind>, _>>()?;
        kinds.sort();
        kinds.dedup();
        Ok(Some(kinds))
    }
}

impl BundleManifest {
    /// Parses `bundle.json` text.
    pub fn from_json(text: &[u8]) -> Result<BundleManifest, serde_json::Error> {
        serde_json::from_slice(text)
    }
}

/// The JSON Schema of `bundle.json` (checked in as `schemas/bundle.schema.json`).
pub fn schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<BundleManifest>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Regenerate with `KTD_UPDATE_SCHEMAS=1 cargo test -p ktd bundle::manifest`.
    #[test]
    fn checked_in_bundle_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/bundle.schema.json");
        let mut want = serde_json::to_string_pretty(&schema()).unwrap();
        want.push('\n');
        if std::env::var_os("KTD_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "schemas/bundle.schema.json is stale: run `KTD_UPDATE_SCHEMAS=1 cargo test -p ktd bundle::manifest` and commit it"
        );
    }

    #[test]
    fn kinds_are_spelled_as_kubernetes_does_and_short_names_read() {
        let m = BundleManifest::from_json(
            br#"{"collected_at": "2025-06-01T12:00:00Z", "kubernetes_kinds": ["pv", "CSIDriver", "volumesnapshots", "PersistentVolume"]}"#,
        )
        .unwrap();
        assert_eq!(
            m.kubernetes_kinds,
            Some(vec![
                KubeKind::PersistentVolume,
                KubeKind::CsiDriver,
                KubeKind::VolumeSnapshot
            ])
        );
        assert_eq!(
            m.collected_at,
            Some(Timestamp::parse_rfc3339("2025-06-01T12:00:00Z").unwrap())
        );
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.contains(r#"["PersistentVolume","CSIDriver","VolumeSnapshot"]"#),
            "{text}"
        );
    }

    #[test]
    fn unknown_kinds_and_bad_times_are_refused_by_name() {
        let err = BundleManifest::from_json(br#"{"kubernetes_kinds": ["Secret"]}"#).unwrap_err();
        assert!(err.to_string().contains("Secret"), "{err}");
        let err = BundleManifest::from_json(br#"{"collected_at": "yesterday"}"#).unwrap_err();
        assert!(err.to_string().contains("yesterday"), "{err}");
    }

    #[test]
    fn unknown_fields_are_kept_for_a_warning() {
        let m = BundleManifest::from_json(br#"{"colected_at": "2025-06-01T12:00:00Z"}"#).unwrap();
        assert_eq!(m.collected_at, None);
        assert!(m.unknown.contains_key("colected_at"));
    }
}
