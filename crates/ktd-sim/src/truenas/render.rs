//! World → wire JSON for ZFS resources: datasets, snapshots, pools.
//!
//! Rendering happens once per (world generation, personality) into a [`Rendered`] cache;
//! queries then filter, project and assemble `children` trees from it, so a full query
//! of 100,000 snapshots costs one pass over cached values.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::snapshots::{self, SnapRow};
use crate::world::{Dataset, DatasetType, Nas, Personality, Pool};

/// Where a property value comes from (`zfs get -o source`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Read-only / native statistic.
    None,
    /// Not set anywhere.
    Default,
    /// Set on this dataset.
    Local,
    /// Received by `zfs recv`.
    Received,
    /// Inherited from the named dataset.
    Inherited(String),
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Source::None => "NONE",
            Source::Default => "DEFAULT",
            Source::Local => "LOCAL",
            Source::Received => "RECEIVED",
            Source::Inherited(_) => "INHERITED",
        }
    }

    fn info(&self) -> Value {
        match self {
            Source::Inherited(from) => Value::String(from.clone()),
            _ => Value::Null,
        }
    }

    /// What a child sees when it inherits a value with this source from `holder`.
    fn inherited_via(&self, holder: &str) -> Source {
        match self {
            Source::Inherited(from) => Source::Inherited(from.clone()),
            _ => Source::Inherited(holder.to_owned()),
        }
    }
}

/// Extended-JSON datetime from Unix seconds.
pub(crate) fn date(secs: i64) -> Value {
    json!({ "$date": secs.saturating_mul(1000) })
}

/// `zfs_nicenum` in bytes format: `0B`, `512B`, `10G`, `10.0G`, `1.20M`, `6.85T`.
pub(crate) fn nicenum(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "K", "M", "G", "T", "P", "E"];
    let mut index = 0;
    let mut v = n;
    while v >= 1024 && index < 6 {
        v /= 1024;
        index += 1;
    }
    if index == 0 {
        return format!("{n}B");
    }
    let unit = UNITS[index];
    if n & ((1u64 << (10 * index)) - 1) == 0 {
        return format!("{v}{unit}");
    }
    let val = n as f64 / (1u64 << (10 * index)) as f64;
    for precision in (0..=2).rev() {
        let s = format!("{val:.precision$}{unit}");
        if s.len() <= 5 || precision == 0 {
            return s;
        }
    }
    unreachable!("the loop returns at precision 0")
}

/// `ctime`-like creation value: `Thu Nov  7 17:20 2024` (UTC).
pub(crate) fn ctime(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%a %b %e %H:%M %Y").to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// A dataset property object `{parsed, rawvalue, value, source, source_info}`.
fn dprop(parsed: Value, raw: impl Into<String>, value: Value, source: &Source) -> Value {
    json!({"parsed": parsed, "rawvalue": raw.into(), "value": value,
           "source": source.name(), "source_info": source.info()})
}

fn bytes_prop(n: u64, source: &Source) -> Value {
    dprop(json!(n), n.to_string(), json!(nicenum(n)), source)
}

/// quota-like: 0 → `{parsed: null, rawvalue: "0", value: null}`.
fn quota_prop(n: Option<u64>) -> Value {
    match n {
        Some(n) if n > 0 => bytes_prop(n, &Source::Local),
        _ => dprop(Value::Null, "0", Value::Null, &Source::Default),
    }
}

fn string_prop(raw: &str, upper: bool, source: &Source) -> Value {
    let value = if upper {
        raw.to_uppercase()
    } else {
        raw.to_owned()
    };
    dprop(json!(raw), raw, json!(value), source)
}

fn onoff_prop(on: bool, source: &Source) -> Value {
    let raw = if on { "on" } else { "off" };
    dprop(json!(on), raw, json!(raw.to_uppercase()), source)
}

/// An effective user property of a dataset.
#[derive(Clone, Debug)]
pub(crate) struct UserProp {
    pub value: String,
    pub source: Source,
}

fn user_prop_json(p: &UserProp) -> Value {
    json!({"value": p.value, "rawvalue": p.value, "parsed": p.value, "source": p.source.name()})
}

/// Names hidden from `pool.dataset.query` on this release.
pub(crate) fn is_internal(name: &str, p: Personality) -> bool {
    let comps: Vec<&str> = name.split('/').collect();
    if comps[0] == "boot-pool" || comps[0] == "freenas-boot" {
        return true;
    }
    comps.iter().skip(1).any(|c| {
        c.starts_with(".system")
            || *c == "ix-applications"
            || (p >= Personality::V24_10 && (c.starts_with("ix-apps") || c.starts_with(".ix-virt")))
            || (p < Personality::V24_10 && *c == ".glusterfs")
    })
}

/// Everything rendered once per (generation, personality).
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    /// Visible datasets, own object without `children`, parents before children.
    pub datasets: Vec<Value>,
    /// Name → index in `datasets`.
    pub ds_index: HashMap<String, usize>,
    /// Direct children (indices) of each dataset.
    pub children: Vec<Vec<usize>>,
    /// Indices of pool root datasets.
    pub roots: Vec<usize>,
    /// Every snapshot with all properties.
    pub snapshots: Vec<SnapRow>,
    /// Dataset name → indices of its snapshots.
    pub snaps_by_dataset: HashMap<String, Vec<usize>>,
    /// `pool.query` entries.
    pub pools: Vec<Value>,
}

/// Per-dataset space accounting (computed, not stored in the world).
#[derive(Clone, Copy, Debug, Default)]
struct Space {
    used: u64,
    children: u64,
    refreservation: u64,
    available: u64,
}

/// Usable bytes of a pool: the simulator models one 4-disk RAIDZ1 vdev (¼ parity).
pub(crate) fn usable_size(pool: &Pool) -> u64 {
    pool.size / 4 * 3
}

fn parent_of(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(p, _)| p)
}

/// Renders the whole world for one personality.
pub(crate) fn render(nas: &Nas, p: Personality) -> Rendered {
    let n = nas.datasets.len();
    let index: HashMap<&str, usize> = nas
        .datasets
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();

    // Space, bottom-up (parents come before children in the world).
    let mut space = vec![Space::default(); n];
    for (i, d) in nas.datasets.iter().enumerate().rev() {
        let s = &mut space[i];
        s.refreservation = d
            .refreservation
            .unwrap_or(0)
            .saturating_sub(d.used_by_dataset);
        s.used = d.used_by_dataset + d.used_by_snapshots + s.children + s.refreservation;
        let used = s.used;
        if let Some(&pi) = parent_of(&d.name).and_then(|p| index.get(p)) {
            space[pi].children += used;
        }
    }
    let mut pool_free: HashMap<&str, u64> = HashMap::new();
    for pool in &nas.pools {
        let root_used = index.get(pool.name.as_str()).map_or(0, |&i| space[i].used);
        pool_free.insert(&pool.name, usable_size(pool).saturating_sub(root_used));
    }
    for (i, d) in nas.datasets.iter().enumerate() {
        let pool = d.name.split('/').next().unwrap_or_default();
        let mut avail = pool_free.get(pool).copied().unwrap_or(0);
        if let Some(q) = d.refquota.filter(|q| *q > 0) {
            avail = avail.min(q.saturating_sub(d.used_by_dataset));
        }
        space[i].available = avail;
    }

    // Effective user properties, top-down.
    let mut eff: Vec<Vec<(String, UserProp)>> = Vec::with_capacity(n);
    for d in &nas.datasets {
        let mut map: std::collections::BTreeMap<String, UserProp> = Default::default();
        if let Some(&pi) = parent_of(&d.name).and_then(|p| index.get(p)) {
            let parent = &nas.datasets[pi].name;
            for (k, up) in &eff[pi] {
                let source = up.source.inherited_via(parent);
                map.insert(
                    k.clone(),
                    UserProp {
                        value: up.value.clone(),
                        source,
                    },
                );
            }
        }
        for (k, v) in &d.received_properties {
            let up = UserProp {
                value: v.clone(),
                source: Source::Received,
            };
            map.insert(k.clone(), up);
        }
        for (k, v) in &d.user_properties {
            let up = UserProp {
                value: v.clone(),
                source: Source::Local,
            };
            map.insert(k.clone(), up);
        }
        eff.push(map.into_iter().collect());
    }

    let mut clones: HashMap<&str, Vec<&str>> = HashMap::new();
    for d in &nas.datasets {
        if let Some(o) = &d.origin {
            clones.entry(o.as_str()).or_default().push(&d.name);
        }
    }

    let mut out = Rendered::default();
    for (i, d) in nas.datasets.iter().enumerate() {
        if is_internal(&d.name, p) {
            continue;
        }
        let idx = out.datasets.len();
        out.datasets.push(dataset_json(d, &space[i], &eff[i]));
        out.ds_index.insert(d.name.clone(), idx);
        out.children.push(Vec::new());
        match parent_of(&d.name).and_then(|p| out.ds_index.get(p)) {
            Some(&pi) => out.children[pi].push(idx),
            None => out.roots.push(idx),
        }
    }
    for s in &nas.snapshots {
        let Some(&di) = index.get(s.dataset.as_str()) else {
            continue;
        };
        if is_internal(&s.dataset, p) {
            continue;
        }
        let full = s.full_name();
        let cl = clones
            .get(full.as_str())
            .map(|v| v.join(","))
            .unwrap_or_default();
        let filesystem = nas.datasets[di].kind == DatasetType::Filesystem;
        let idx = out.snapshots.len();
        out.snapshots
            .push(snapshots::row(s, full, filesystem, &eff[di], &cl));
        out.snaps_by_dataset
            .entry(s.dataset.clone())
            .or_default()
            .push(idx);
    }
    for pool in &nas.pools {
        out.pools.push(pool_json(pool, p));
    }
    out
}

/// A stable 64-bit number derived from a name (ZFS guids are random; ours are reproducible).
pub(crate) fn fake_guid(name: &str) -> u64 {
    // FNV-1a.
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Maps a dataset object key to the ZFS property name clients pass in `extra.properties`.
pub(crate) fn zfs_name(key: &str) -> &str {
    match key {
        "deduplication" => "dedup",
        "comments" => "org.freenas:description",
        "managedby" => "org.truenas:managedby",
        "quota_warning" => "org.freenas:quota_warning",
        "quota_critical" => "org.freenas:quota_critical",
        "refquota_warning" => "org.freenas:refquota_warning",
        "refquota_critical" => "org.freenas:refquota_critical",
        "special_small_block_size" => "special_small_blocks",
        "key_format" => "keyformat",
        "encryption_algorithm" => "encryption",
        other => other,
    }
}

/// Keys of a dataset object that are ZFS properties (filtered by `extra.properties`).
pub(crate) const NON_PROPERTY_KEYS: [&str; 12] = [
    "id",
    "name",
    "pool",
    "type",
    "encrypted",
    "encryption_root",
    "key_loaded",
    "locked",
    "mountpoint",
    "children",
    "user_properties",
    "snapshot_count",
];

/// The dataset shape is the same in every simulated release (fields the reference lists).
fn dataset_json(d: &Dataset, s: &Space, user: &[(String, UserProp)]) -> Value {
    let fs = d.kind == DatasetType::Filesystem;
    let pool = d.name.split('/').next().unwrap_or_default();
    let is_root = !d.name.contains('/');
    // TrueNAS sets these on the pool root at creation; children inherit them.
    let set_at_root = |raw: &str, upper: bool| {
        let source = if is_root {
            Source::Local
        } else {
            Source::Inherited(pool.to_owned())
        };
        string_prop(raw, upper, &source)
    };
    let dflt = Source::Default;
    let none = Source::None;
    let mut o = Map::new();
    o.insert("id".into(), json!(d.name));
    o.insert("name".into(), json!(d.name));
    o.insert("pool".into(), json!(pool));
    o.insert(
        "type".into(),
        json!(if fs { "FILESYSTEM" } else { "VOLUME" }),
    );
    o.insert("encrypted".into(), json!(d.encrypted));
    o.insert(
        "encryption_root".into(),
        if d.encrypted {
            json!(d.name)
        } else {
            Value::Null
        },
    );
    o.insert("key_loaded".into(), json!(d.encrypted));
    o.insert("locked".into(), json!(false));
    o.insert(
        "mountpoint".into(),
        if fs {
            json!(format!("/mnt/{}", d.name))
        } else {
            Value::Null
        },
    );
    let mapped = [
        ("comments", "org.freenas:description"),
        ("managedby", "org.truenas:managedby"),
        ("quota_warning", "org.freenas:quota_warning"),
        ("quota_critical", "org.freenas:quota_critical"),
        ("refquota_warning", "org.freenas:refquota_warning"),
        ("refquota_critical", "org.freenas:refquota_critical"),
    ];
    for (key, prop) in mapped {
        if let Some((_, up)) = user.iter().find(|(k, _)| k == prop) {
            o.insert(key.into(), string_prop(&up.value, false, &up.source));
        }
    }
    o.insert("deduplication".into(), string_prop("off", true, &dflt));
    if fs {
        o.insert("aclmode".into(), set_at_root("discard", true));
        o.insert("acltype".into(), set_at_root("posix", true));
        o.insert("xattr".into(), set_at_root("sa", true));
        o.insert("atime".into(), set_at_root("off", true));
        o.insert(
            "casesensitivity".into(),
            string_prop("sensitive", true, &none),
        );
        o.insert("exec".into(), onoff_prop(true, &dflt));
    }
    o.insert("checksum".into(), string_prop("on", true, &dflt));
    o.insert("sync".into(), string_prop("standard", true, &dflt));
    o.insert("compression".into(), set_at_root("lz4", true));
    o.insert(
        "compressratio".into(),
        dprop(json!("1.00"), "1.00", json!("1.00x"), &none),
    );
    let origin = d.origin.clone().unwrap_or_default();
    o.insert(
        "origin".into(),
        dprop(json!(origin), origin.clone(), json!(origin), &none),
    );
    if fs {
        o.insert("quota".into(), quota_prop(None));
        o.insert("refquota".into(), quota_prop(d.refquota));
    }
    o.insert("reservation".into(), quota_prop(None));
    o.insert("refreservation".into(), quota_prop(d.refreservation));
    o.insert("copies".into(), dprop(json!(1), "1", json!("1"), &dflt));
    if fs {
        o.insert("snapdir".into(), string_prop("hidden", true, &dflt));
    }
    o.insert("readonly".into(), onoff_prop(false, &dflt));
    if fs {
        o.insert(
            "recordsize".into(),
            dprop(json!(131072), "131072", json!("128K"), &dflt),
        );
    } else {
        let vs = d.volsize.unwrap_or(0);
        o.insert("volsize".into(), bytes_prop(vs, &Source::Local));
        let bs = d.volblocksize.unwrap_or(16384);
        o.insert(
            "volblocksize".into(),
            dprop(
                json!(bs),
                bs.to_string(),
                json!(nicenum(bs).trim_end_matches('B')),
                &none,
            ),
        );
        let sparse = d.refreservation.unwrap_or(0) == 0;
        let raw = if sparse { "true" } else { "false" };
        o.insert(
            "sparse".into(),
            dprop(json!(sparse), raw, json!(raw), &none),
        );
    }
    o.insert(
        "key_format".into(),
        dprop(json!("none"), "none", json!("none"), &dflt),
    );
    let enc = if d.encrypted { "aes-256-gcm" } else { "off" };
    o.insert(
        "encryption_algorithm".into(),
        dprop(json!(enc), enc, json!(enc.to_uppercase()), &dflt),
    );
    o.insert("used".into(), bytes_prop(s.used, &none));
    o.insert("usedbychildren".into(), bytes_prop(s.children, &none));
    o.insert("usedbydataset".into(), bytes_prop(d.used_by_dataset, &none));
    o.insert(
        "usedbyrefreservation".into(),
        bytes_prop(s.refreservation, &none),
    );
    o.insert(
        "usedbysnapshots".into(),
        bytes_prop(d.used_by_snapshots, &none),
    );
    o.insert("available".into(), bytes_prop(s.available, &none));
    if fs {
        o.insert(
            "special_small_block_size".into(),
            dprop(json!(0), "0", json!("0"), &dflt),
        );
    }
    let iters = if d.encrypted { 350_000 } else { 0 };
    o.insert(
        "pbkdf2iters".into(),
        dprop(
            json!(iters),
            iters.to_string(),
            json!(iters.to_string()),
            &dflt,
        ),
    );
    o.insert(
        "creation".into(),
        dprop(
            date(d.creation),
            d.creation.to_string(),
            json!(ctime(d.creation)),
            &none,
        ),
    );
    o.insert("snapdev".into(), string_prop("hidden", true, &dflt));
    let mut up = Map::new();
    for (k, v) in user {
        up.insert(k.clone(), user_prop_json(v));
    }
    o.insert("user_properties".into(), Value::Object(up));
    Value::Object(o)
}

fn pool_json(pool: &Pool, p: Personality) -> Value {
    let free = pool.size.saturating_sub(pool.allocated);
    let healthy = pool.status == "ONLINE";
    let guid = fake_guid(&pool.name).to_string();
    let disks: Vec<Value> = (0..4)
        .map(|i| {
            json!({"name": format!("sd{}", (b'a' + i) as char), "type": "DISK",
                   "path": format!("/dev/disk/by-partuuid/{:08x}-{i}", fake_guid(&pool.name) as u32),
                   "guid": (fake_guid(&format!("{}/disk{i}", pool.name))).to_string(), "status": "ONLINE",
                   "stats": {"read_errors": 0, "write_errors": 0, "checksum_errors": 0},
                   "children": [], "device": format!("sd{}1", (b'a' + i) as char),
                   "disk": format!("sd{}", (b'a' + i) as char), "unavail_disk": null})
        })
        .collect();
    let scan = pool.last_scrub.map_or(Value::Null, |end| {
        json!({"function": "SCRUB", "state": "FINISHED", "errors": 0, "pause": null,
               "start_time": date(end - 3600), "end_time": date(end),
               "percentage": 100.0, "bytes_to_process": pool.allocated,
               "bytes_processed": pool.allocated, "bytes_issued": pool.allocated})
    });
    let mut o = json!({
        "id": pool.id, "name": pool.name, "guid": guid, "path": format!("/mnt/{}", pool.name),
        "status": pool.status, "status_detail": if healthy { Value::Null } else { json!(format!("One or more devices are {}", pool.status.to_lowercase())) },
        "scan": scan, "is_upgraded": true, "healthy": healthy, "warning": false,
        "size": pool.size, "allocated": pool.allocated, "free": free, "freeing": 0,
        "fragmentation": "3", "size_str": pool.size.to_string(),
        "allocated_str": pool.allocated.to_string(), "free_str": free.to_string(), "freeing_str": "0",
        "autotrim": {"parsed": "off", "rawvalue": "off", "source": "DEFAULT", "value": "off"},
        "topology": {"data": [{"name": "raidz1-0", "type": "RAIDZ1", "path": null,
                      "guid": (fake_guid(&pool.name) >> 1).to_string(), "status": pool.status,
                      "stats": {"read_errors": 0, "write_errors": 0, "checksum_errors": 0},
                      "children": disks, "device": null, "disk": null, "unavail_disk": null}],
                     "log": [], "cache": [], "spare": [], "special": [], "dedup": []},
    });
    let m = o.as_object_mut().expect("object literal");
    if p == Personality::V22_12 {
        m.insert("encrypt".into(), json!(0));
        m.insert("encryptkey".into(), json!(""));
        m.insert("encryptkey_path".into(), Value::Null);
        m.insert("is_decrypted".into(), json!(true));
    } else {
        let code = if healthy { "OK" } else { "UNAVAIL" };
        m.insert("status_code".into(), json!(code));
    }
    if p >= Personality::V25_04 {
        m.insert("dedup_table_size".into(), json!(0));
        m.insert("dedup_table_quota".into(), json!("auto"));
    }
    if p >= Personality::V25_10 {
        m.insert("expand".into(), Value::Null);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicenum_matches_zfs() {
        assert_eq!(nicenum(0), "0B");
        assert_eq!(nicenum(512), "512B");
        assert_eq!(nicenum(10 << 30), "10G");
        assert_eq!(nicenum(10_748_952_576), "10.0G");
        assert_eq!(nicenum(1_253_376), "1.20M");
        assert_eq!(nicenum(7_534_150_254_592), "6.85T");
        assert_eq!(nicenum(131_072), "128K");
    }

    #[test]
    fn ctime_is_zfs_like() {
        assert_eq!(ctime(1_731_000_000), "Thu Nov  7 17:20 2024");
    }
}
