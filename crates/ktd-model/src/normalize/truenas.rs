//! Raw TrueNAS API results (22.12 – 25.10, REST v2.0 or JSON-RPC; the shapes are the same)
//! into normalized resources.
//!
//! Version differences handled here (reference/truenas-api.md):
//! - datetimes as extended JSON `{"$date": ms}` (or the raw seconds string);
//! - ZFS properties as `{parsed, rawvalue, value, source[, source_info]}`, quotas with a
//!   null value for "none", `createtxg` as a string, `filesize` as int or string;
//! - NFS `path` (22.12+) vs `paths` (older);
//! - snapshots from `zfs.snapshot.query` (≤ 25.04) and `pool.snapshot.query` (25.10+),
//!   with user properties mixed into `properties`;
//! - SMB `ro` (≤ 25.04) vs `readonly` (25.10 reshape);
//! - `pool.dataset.query` with `flat: true` (each dataset repeats its subtree) or
//!   `flat: false` (a tree): both are flattened and de-duplicated.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::NormalizeError;
use crate::time::Timestamp;
use crate::truenas::*;

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> NormalizeError {
    NormalizeError::Invalid {
        what: what.into(),
        reason: reason.into(),
    }
}

/// Reads a datetime in any of the shapes TrueNAS uses: `{"$date": ms}`, a number of
/// seconds (ZFS `rawvalue`), a digit string of seconds, or RFC 3339 text.
pub fn parse_datetime(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Object(m) => m
            .get("$date")
            .and_then(Value::as_i64)
            .map(Timestamp::from_unix_ms),
        Value::Number(n) => n.as_i64().map(Timestamp::from_unix_secs),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok().map(Timestamp::from_unix_secs)
        }
        Value::String(s) => Timestamp::parse_rfc3339(s).ok(),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A ZFS property object.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct RawProp {
    parsed: Value,
    rawvalue: Value,
    value: Value,
    source: Option<String>,
    source_info: Value,
}

impl RawProp {
    /// Exact text: `rawvalue`, else `value`, else `parsed` when it is a string.
    fn text(&self) -> Option<&str> {
        self.rawvalue
            .as_str()
            .or(self.value.as_str())
            .or(self.parsed.as_str())
    }

    fn bytes(&self) -> Option<u64> {
        as_u64(&self.rawvalue).or_else(|| as_u64(&self.parsed))
    }

    /// Quotas/reservations: 0 or "none" mean none.
    fn limit(&self) -> Option<u64> {
        self.bytes().filter(|b| *b > 0)
    }

    fn flag(&self) -> Option<bool> {
        if let Some(b) = self.parsed.as_bool() {
            return Some(b);
        }
        match self.text()?.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => None,
        }
    }

    fn time(&self) -> Option<Timestamp> {
        parse_datetime(&self.parsed).or_else(|| parse_datetime(&self.rawvalue))
    }

    fn user_property(&self) -> Option<UserProperty> {
        let value = self.text()?.to_owned();
        let source_text = self.source.as_deref().unwrap_or("");
        let source = PropertySource::parse(source_text);
        let inherited_from = self.source_info.as_str().map(str::to_owned).or_else(|| {
            source_text
                .strip_prefix("inherited from ")
                .map(str::to_owned)
        });
        Some(UserProperty {
            value,
            source,
            inherited_from: inherited_from.filter(|_| source == PropertySource::Inherited),
        })
    }
}

fn user_props(raw: BTreeMap<String, RawProp>) -> UserProperties {
    raw.into_iter()
        .filter_map(|(k, p)| p.user_property().map(|u| (k, u)))
        .collect()
}

// ---- datasets -------------------------------------------------------------------------------

#[derive(Deserialize, Debug)]
struct RawDataset {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    mountpoint: Option<String>,
    #[serde(default)]
    encrypted: Option<bool>,
    #[serde(default)]
    locked: Option<bool>,
    #[serde(default)]
    children: Vec<RawDataset>,
    #[serde(default)]
    user_properties: BTreeMap<String, RawProp>,
    #[serde(default)]
    snapshot_count: Option<u64>,
    #[serde(default)]
    used: Option<RawProp>,
    #[serde(default)]
    available: Option<RawProp>,
    #[serde(default)]
    usedbydataset: Option<RawProp>,
    #[serde(default)]
    usedbysnapshots: Option<RawProp>,
    #[serde(default)]
    usedbychildren: Option<RawProp>,
    #[serde(default)]
    usedbyrefreservation: Option<RawProp>,
    #[serde(default)]
    volsize: Option<RawProp>,
    #[serde(default)]
    volblocksize: Option<RawProp>,
    #[serde(default)]
    quota: Option<RawProp>,
    #[serde(default)]
    refquota: Option<RawProp>,
    #[serde(default)]
    reservation: Option<RawProp>,
    #[serde(default)]
    refreservation: Option<RawProp>,
    #[serde(default)]
    origin: Option<RawProp>,
    #[serde(default)]
    creation: Option<RawProp>,
    #[serde(default)]
    compressratio: Option<RawProp>,
    #[serde(default)]
    readonly: Option<RawProp>,
}

impl RawDataset {
    fn into_model(self) -> Result<(Dataset, Vec<RawDataset>), NormalizeError> {
        let name = self
            .name
            .or(self.id)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("dataset", "neither `name` nor `id` is set"))?;
        let kind = match self.kind.as_deref() {
            Some(k) if k.eq_ignore_ascii_case("VOLUME") => DatasetType::Volume,
            Some(k) if k.eq_ignore_ascii_case("FILESYSTEM") => DatasetType::Filesystem,
            None => DatasetType::Filesystem,
            Some(other) => {
                return Err(invalid(
                    format!("dataset {name}"),
                    format!("unknown type `{other}`"),
                ));
            }
        };
        let pool = self
            .pool
            .unwrap_or_else(|| name.split('/').next().unwrap_or_default().to_owned());
        let b = |p: &Option<RawProp>| p.as_ref().and_then(RawProp::bytes);
        let l = |p: &Option<RawProp>| p.as_ref().and_then(RawProp::limit);
        let dataset = Dataset {
            pool,
            kind,
            mountpoint: self
                .mountpoint
                .filter(|m| !m.is_empty() && m != "none" && m != "legacy"),
            used: b(&self.used),
            available: b(&self.available),
            used_by_dataset: b(&self.usedbydataset),
            used_by_snapshots: b(&self.usedbysnapshots),
            used_by_children: b(&self.usedbychildren),
            used_by_refreservation: b(&self.usedbyrefreservation),
            volsize: b(&self.volsize),
            volblocksize: b(&self.volblocksize),
            quota: l(&self.quota),
            refquota: l(&self.refquota),
            reservation: l(&self.reservation),
            refreservation: l(&self.refreservation),
            origin: self
                .origin
                .as_ref()
                .and_then(RawProp::text)
                .filter(|o| !o.is_empty() && *o != "-" && *o != "none")
                .map(str::to_owned),
            creation: self.creation.as_ref().and_then(RawProp::time),
            compressratio: self
                .compressratio
                .as_ref()
                .and_then(|p| p.parsed.as_str().or(p.text()))
                .map(|s| s.trim_end_matches('x').to_owned()),
            encrypted: self.encrypted.unwrap_or(false),
            locked: self.locked.unwrap_or(false),
            readonly: self.readonly.as_ref().and_then(RawProp::flag),
            snapshot_count: self.snapshot_count,
            user_properties: user_props(self.user_properties),
            name,
        };
        Ok((dataset, self.children))
    }
}

/// Flattens `pool.dataset.query` output (flat or tree form), skipping repeats.
struct DatasetFlattener<'a, F> {
    seen: HashSet<String>,
    sink: &'a mut F,
}

impl<F: FnMut(Result<Dataset, NormalizeError>)> DatasetFlattener<'_, F> {
    fn push(&mut self, raw: RawDataset) {
        let mut stack = vec![raw];
        while let Some(raw) = stack.pop() {
            match raw.into_model() {
                Ok((dataset, children)) => {
                    stack.extend(children.into_iter().rev());
                    if self.seen.insert(dataset.name.clone()) {
                        (self.sink)(Ok(dataset));
                    }
                }
                Err(e) => (self.sink)(Err(e)),
            }
        }
    }
}

/// A dataset object of a `pool.dataset.query` result that could not be normalized.
#[derive(Debug)]
pub struct RejectedDataset {
    /// Its `name` (or `id`), when that much could be read.
    pub name: Option<String>,
    /// What is wrong with it.
    pub error: NormalizeError,
}

/// Where streamed datasets go.
type DatasetSink<'s> = dyn FnMut(Result<Dataset, RejectedDataset>) + 's;

/// One dataset object and its `children` subtree, each dataset handed to the sink as soon
/// as its object closes (children before their parent when, as TrueNAS sends them,
/// `children` comes before the parent's properties). Only the fields of the dataset being
/// read and of its ancestors are held, never a whole tree.
struct DatasetNodeSeed<'a, 's> {
    sink: &'a mut DatasetSink<'s>,
}

impl<'de> serde::de::DeserializeSeed<'de> for DatasetNodeSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl DatasetNodeSeed<'_, '_> {
    fn not_an_object(self, got: &str) {
        (self.sink)(Err(RejectedDataset {
            name: None,
            error: invalid("dataset", format!("expected an object, got {got}")),
        }));
    }
}

impl<'de> serde::de::Visitor<'de> for DatasetNodeSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a dataset object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let sink = self.sink;
        let mut own = serde_json::Map::new();
        let mut bad_children = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "children" {
                map.next_value_seed(ChildrenSeed {
                    sink: &mut *sink,
                    bad: &mut bad_children,
                })?;
            } else {
                own.insert(key, map.next_value::<Value>()?);
            }
        }
        let node = Value::Object(own);
        let name = node
            .get("name")
            .or_else(|| node.get("id"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let what = || format!("dataset {}", name.as_deref().unwrap_or("(unnamed)"));
        let result = match bad_children {
            Some(got) => Err(invalid(what(), format!("`children` is {got}, not a list"))),
            None => RawDataset::deserialize(&node)
                .map_err(|e| invalid(what(), e.to_string()))
                .and_then(|raw| raw.into_model().map(|(d, _)| d)),
        };
        sink(result.map_err(|error| RejectedDataset { name, error }));
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        self.not_an_object("a list");
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_object("a string");
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_object("a boolean");
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_object("a number");
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_object("a number");
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_object("a number");
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_an_object("null");
        Ok(())
    }
}

/// A dataset's `children`: a list of dataset objects (null or absent: none).
struct ChildrenSeed<'a, 's> {
    sink: &'a mut DatasetSink<'s>,
    /// Set to what `children` was when it is not a list.
    bad: &'a mut Option<&'static str>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ChildrenSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ChildrenSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of datasets")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(DatasetNodeSeed {
                sink: &mut *self.sink,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        *self.bad = Some("an object");
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        *self.bad = Some("a string");
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        *self.bad = Some("a boolean");
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        *self.bad = Some("a number");
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        *self.bad = Some("a number");
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        *self.bad = Some("a number");
        Ok(())
    }
}

/// A whole `pool.dataset.query` result: a list of dataset objects.
struct DatasetListSeed<'a, 's> {
    sink: &'a mut DatasetSink<'s>,
}

impl<'de> serde::de::DeserializeSeed<'de> for DatasetListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DatasetListSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array (the result of pool.dataset.query)")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(DatasetNodeSeed {
                sink: &mut *self.sink,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// Streams one dataset object of a `pool.dataset.query` result, read from `json`, and its
/// whole `children` subtree into `sink`: each dataset as soon as its object closes, so a
/// tree of 30,000 datasets never sits in memory. A dataset that cannot be normalized is
/// handed over as a [`RejectedDataset`] (named when its name could be read) and its
/// children are still read. Repeats (the `flat: true` form) are not removed here. Fails
/// only when `json` is not JSON.
pub fn read_dataset_tree(
    json: &[u8],
    mut sink: impl FnMut(Result<Dataset, RejectedDataset>),
) -> Result<(), NormalizeError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::de::DeserializeSeed::deserialize(DatasetNodeSeed { sink: &mut sink }, &mut de)
        .and_then(|()| de.end())
        .map_err(|e| invalid("pool.dataset.query", e.to_string()))
}

/// Streams a `pool.dataset.query` result (flat or tree form) into `sink`: each dataset once,
/// children included, in the order their objects close (see [`read_dataset_tree`]).
/// Returns the number of distinct datasets.
pub fn read_datasets<R: std::io::Read>(
    reader: R,
    mut sink: impl FnMut(Result<Dataset, NormalizeError>),
) -> Result<u64, NormalizeError> {
    let mut seen = HashSet::new();
    let mut each = |r: Result<Dataset, RejectedDataset>| match r {
        Ok(d) => {
            if seen.insert(d.name.clone()) {
                sink(Ok(d));
            }
        }
        Err(rejected) => sink(Err(rejected.error)),
    };
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    serde::de::DeserializeSeed::deserialize(DatasetListSeed { sink: &mut each }, &mut de)
        .and_then(|()| de.end())
        .map_err(|e| invalid("pool.dataset.query", e.to_string()))?;
    Ok(seen.len() as u64)
}

/// Normalizes a `pool.dataset.query` result already parsed as JSON; fails on the first
/// malformed entry.
pub fn datasets(value: &Value) -> Result<Vec<Dataset>, NormalizeError> {
    let raws = Vec::<RawDataset>::deserialize(value)
        .map_err(|e| invalid("pool.dataset.query", e.to_string()))?;
    let mut out = Vec::new();
    let mut first_err = None;
    let mut sink = |r: Result<Dataset, NormalizeError>| match r {
        Ok(d) => out.push(d),
        Err(e) => {
            first_err.get_or_insert(e);
        }
    };
    let mut flat = DatasetFlattener {
        seen: HashSet::new(),
        sink: &mut sink,
    };
    for raw in raws {
        flat.push(raw);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

// ---- snapshots ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawSnapshot {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    snapshot_name: Option<String>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    createtxg: Option<Value>,
    #[serde(default)]
    properties: BTreeMap<String, RawProp>,
    #[serde(default)]
    holds: Option<Value>,
}

impl RawSnapshot {
    fn into_model(mut self) -> Result<Snapshot, NormalizeError> {
        let name = self
            .name
            .or(self.id)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("snapshot", "neither `name` nor `id` is set"))?;
        let (ds, snap) = name
            .split_once('@')
            .ok_or_else(|| invalid(format!("snapshot {name}"), "name has no `@`"))?;
        let dataset = self
            .dataset
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| ds.to_owned());
        let snapshot_name = self
            .snapshot_name
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| snap.to_owned());
        let pool = self
            .pool
            .unwrap_or_else(|| dataset.split('/').next().unwrap_or_default().to_owned());
        let mut take = |k: &str| self.properties.remove(k);
        let used = take("used").and_then(|p| p.bytes());
        let referenced = take("referenced").and_then(|p| p.bytes());
        let creation = take("creation").and_then(|p| p.time());
        let defer_destroy = take("defer_destroy")
            .and_then(|p| p.flag())
            .unwrap_or(false);
        let clones = take("clones")
            .and_then(|p| p.text().map(str::to_owned))
            .map(|c| {
                c.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && *s != "-")
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let holds = self.holds.as_ref().and_then(|h| match h {
            Value::Object(m) => Some(m.values().filter_map(as_u64).sum()),
            other => as_u64(other),
        });
        let user = self
            .properties
            .into_iter()
            .filter(|(k, _)| k.contains(':'))
            .collect();
        Ok(Snapshot {
            createtxg: self.createtxg.as_ref().and_then(as_u64),
            user_properties: user_props(user),
            name,
            dataset,
            snapshot_name,
            pool,
            creation,
            used,
            referenced,
            clones,
            defer_destroy,
            holds,
        })
    }
}

/// Streams a `zfs.snapshot.query` / `pool.snapshot.query` result into `sink`.
pub fn read_snapshots<R: std::io::Read>(
    reader: R,
    mut sink: impl FnMut(Result<Snapshot, NormalizeError>),
) -> Result<u64, NormalizeError> {
    let mut n = 0;
    for_each_element::<RawSnapshot, _>(reader, "snapshot query", |raw| {
        n += 1;
        sink(raw.and_then(RawSnapshot::into_model));
    })?;
    Ok(n)
}

/// Normalizes one snapshot query entry given as JSON text (one element of the result),
/// without building a [`Value`] of it. Not JSON and JSON of the wrong shape both fail; a
/// caller that must tell them apart checks whether `json` is JSON at all.
pub fn snapshot_from_json(json: &[u8]) -> Result<Snapshot, NormalizeError> {
    serde_json::from_slice::<RawSnapshot>(json)
        .map_err(|e| invalid("snapshot", e.to_string()))?
        .into_model()
}

/// Normalizes one snapshot query entry.
pub fn snapshot(value: &Value) -> Result<Snapshot, NormalizeError> {
    RawSnapshot::deserialize(value)
        .map_err(|e| invalid("snapshot", e.to_string()))?
        .into_model()
}

/// Normalizes one dataset query entry given as JSON text, without building a [`Value`] of
/// it (its children are ignored: a tree read with a splitter hands each dataset over with
/// `children` emptied).
pub fn dataset_from_json(json: &[u8]) -> Result<Dataset, NormalizeError> {
    let raw = serde_json::from_slice::<RawDataset>(json)
        .map_err(|e| invalid("dataset", e.to_string()))?;
    raw.into_model().map(|(d, _)| d)
}

/// Normalizes one dataset query entry (its children are ignored).
pub fn dataset(value: &Value) -> Result<Dataset, NormalizeError> {
    RawDataset::deserialize(value)
        .map_err(|e| invalid("dataset", e.to_string()))?
        .into_model()
        .map(|(d, _)| d)
}

// ---- shares ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawNfs {
    id: i64,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    networks: Option<Vec<String>>,
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default)]
    ro: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Normalizes one `sharing.nfs.query` entry.
pub fn nfs_share(value: &Value) -> Result<NfsShare, NormalizeError> {
    let raw = RawNfs::deserialize(value).map_err(|e| invalid("NFS share", e.to_string()))?;
    let mut paths = raw.path.into_iter().chain(raw.paths.unwrap_or_default());
    let path = paths.next().ok_or_else(|| {
        invalid(
            format!("NFS share {}", raw.id),
            "neither `path` nor `paths` is set",
        )
    })?;
    Ok(NfsShare {
        id: raw.id,
        path,
        extra_paths: paths.collect(),
        comment: raw.comment.unwrap_or_default(),
        networks: raw.networks.unwrap_or_default(),
        hosts: raw.hosts.unwrap_or_default(),
        readonly: raw.ro.unwrap_or(false),
        enabled: raw.enabled.unwrap_or(true),
    })
}

#[derive(Deserialize)]
struct RawSmb {
    id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    ro: Option<bool>,
    #[serde(default)]
    readonly: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    purpose: Option<String>,
}

/// Normalizes one `sharing.smb.query` entry (flat ≤ 25.04 or 25.10 shape).
pub fn smb_share(value: &Value) -> Result<SmbShare, NormalizeError> {
    let raw = RawSmb::deserialize(value).map_err(|e| invalid("SMB share", e.to_string()))?;
    Ok(SmbShare {
        name: raw
            .name
            .ok_or_else(|| invalid(format!("SMB share {}", raw.id), "`name` is missing"))?,
        path: raw.path.unwrap_or_default(),
        comment: raw.comment.unwrap_or_default(),
        readonly: raw.readonly.or(raw.ro).unwrap_or(false),
        enabled: raw.enabled.unwrap_or(true),
        purpose: raw.purpose,
        id: raw.id,
    })
}

#[derive(Deserialize)]
struct RawTarget {
    id: i64,
    name: String,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    groups: Vec<RawTargetGroup>,
}

#[derive(Deserialize)]
struct RawTargetGroup {
    #[serde(default)]
    portal: Option<i64>,
}

/// Normalizes one `iscsi.target.query` entry.
pub fn iscsi_target(value: &Value) -> Result<IscsiTarget, NormalizeError> {
    let raw = RawTarget::deserialize(value).map_err(|e| invalid("iSCSI target", e.to_string()))?;
    Ok(IscsiTarget {
        id: raw.id,
        name: raw.name,
        alias: raw.alias.filter(|a| !a.is_empty()),
        portals: raw.groups.into_iter().filter_map(|g| g.portal).collect(),
    })
}

#[derive(Deserialize)]
struct RawExtent {
    id: i64,
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    disk: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    ro: Option<bool>,
}

/// Normalizes one `iscsi.extent.query` entry.
pub fn iscsi_extent(value: &Value) -> Result<IscsiExtent, NormalizeError> {
    let raw = RawExtent::deserialize(value).map_err(|e| invalid("iSCSI extent", e.to_string()))?;
    Ok(IscsiExtent {
        id: raw.id,
        name: raw.name,
        extent_type: raw.kind.unwrap_or_else(|| "DISK".into()),
        disk: raw.disk.filter(|d| !d.is_empty()),
        path: raw.path.filter(|p| !p.is_empty()),
        comment: raw.comment.unwrap_or_default(),
        enabled: raw.enabled.unwrap_or(true),
        readonly: raw.ro.unwrap_or(false),
    })
}

/// Normalizes one `iscsi.targetextent.query` entry.
pub fn iscsi_targetextent(value: &Value) -> Result<IscsiTargetExtent, NormalizeError> {
    #[derive(Deserialize)]
    struct Raw {
        id: i64,
        target: i64,
        extent: i64,
        #[serde(default)]
        lunid: Option<i64>,
    }
    let raw = Raw::deserialize(value).map_err(|e| invalid("iSCSI target-extent", e.to_string()))?;
    Ok(IscsiTargetExtent {
        id: raw.id,
        target: raw.target,
        extent: raw.extent,
        lunid: raw.lunid.unwrap_or(0),
    })
}

/// Normalizes every entry of a share-like query result with `f`.
pub fn each<T>(
    value: &Value,
    method: &str,
    f: impl Fn(&Value) -> Result<T, NormalizeError>,
) -> Result<Vec<Result<T, NormalizeError>>, NormalizeError> {
    match value {
        Value::Array(items) => Ok(items.iter().map(f).collect()),
        _ => Err(invalid(method, "expected a JSON array")),
    }
}

// ---- pools and system -----------------------------------------------------------------------

#[derive(Deserialize)]
struct RawPool {
    id: i64,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    healthy: Option<bool>,
    #[serde(default)]
    size: Option<Value>,
    #[serde(default)]
    allocated: Option<Value>,
    #[serde(default)]
    free: Option<Value>,
    #[serde(default)]
    fragmentation: Option<Value>,
    #[serde(default)]
    scan: Option<RawScan>,
}

#[derive(Deserialize)]
struct RawScan {
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    end_time: Option<Value>,
    #[serde(default)]
    errors: Option<Value>,
}

/// Normalizes one `pool.query` entry.
pub fn pool(value: &Value) -> Result<Pool, NormalizeError> {
    let raw = RawPool::deserialize(value).map_err(|e| invalid("pool", e.to_string()))?;
    let status = raw.status.unwrap_or_else(|| "UNKNOWN".into());
    Ok(Pool {
        id: raw.id,
        healthy: raw.healthy.unwrap_or(status == "ONLINE"),
        status,
        size: raw.size.as_ref().and_then(as_u64),
        allocated: raw.allocated.as_ref().and_then(as_u64),
        free: raw.free.as_ref().and_then(as_u64),
        fragmentation: raw.fragmentation.as_ref().and_then(as_u64),
        scan: raw.scan.map(|s| PoolScan {
            function: s.function.unwrap_or_default(),
            state: s.state.unwrap_or_default(),
            end_time: s.end_time.as_ref().and_then(parse_datetime),
            errors: s.errors.as_ref().and_then(as_u64).unwrap_or(0),
        }),
        name: raw.name,
    })
}

/// Normalizes `system.info` (plus, when available, `iscsi.global.config` and
/// `service.query` results).
pub fn system_info(
    info: &Value,
    iscsi_global: Option<&Value>,
    services: Option<&Value>,
) -> Result<SystemInfo, NormalizeError> {
    let version = info
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("system.info", "`version` is missing"))?
        .to_owned();
    let services = match services {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|s| {
                Some(ServiceState {
                    service: s.get("service")?.as_str()?.to_owned(),
                    enable: s.get("enable").and_then(Value::as_bool).unwrap_or(false),
                    state: s
                        .get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("UNKNOWN")
                        .to_owned(),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(SystemInfo {
        release: SystemInfo::parse_release(&version),
        version,
        hostname: info
            .get("hostname")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        boottime: info.get("boottime").and_then(parse_datetime),
        physmem: info.get("physmem").and_then(as_u64),
        iscsi_basename: iscsi_global
            .and_then(|g| g.get("basename"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        services,
    })
}

// ---- streaming helper -----------------------------------------------------------------------

/// Calls `f` for each element of a top-level JSON array read from `reader`, decoding one
/// element at a time. An element that does not fit `T` is reported to `f` as an error
/// and skipped; a document that is not an array fails as a whole.
pub fn for_each_element<T: DeserializeOwned, R: std::io::Read>(
    reader: R,
    what: &str,
    mut f: impl FnMut(Result<T, NormalizeError>),
) -> Result<(), NormalizeError> {
    use serde::de::{SeqAccess, Visitor};
    use std::fmt;

    struct V<'a, T, F> {
        f: &'a mut F,
        what: &'a str,
        _t: std::marker::PhantomData<T>,
    }
    impl<'de, T: DeserializeOwned, F: FnMut(Result<T, NormalizeError>)> Visitor<'de> for V<'_, T, F> {
        type Value = ();
        fn expecting(&self, fm: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(fm, "a JSON array (the result of {})", self.what)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut index = 0usize;
            while let Some(item) = seq.next_element::<Value>()? {
                let label = item
                    .get("name")
                    .or_else(|| item.get("id"))
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| format!("#{index}"));
                (self.f)(
                    T::deserialize(item).map_err(|e| {
                        invalid(format!("{} entry {label}", self.what), e.to_string())
                    }),
                );
                index += 1;
            }
            Ok(())
        }
    }
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    serde::Deserializer::deserialize_seq(
        &mut de,
        V {
            f: &mut f,
            what,
            _t: std::marker::PhantomData,
        },
    )
    .map_err(|e| invalid(what, e.to_string()))?;
    de.end().map_err(|e| invalid(what, e.to_string()))
}
