//! Snapshots: rendered once per generation straight to JSON text (plus a small `head`
//! object for filtering), so a full query of 100,000 snapshots is a concatenation.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::methods::{CallError, Output};
use super::query::{self, Filter, Options, Selected};
use super::render::{Rendered, Source, UserProp, ctime, fake_guid, nicenum};
use crate::world::Snapshot;

/// Top-level keys of a snapshot entry (everything but `properties`).
const HEAD_KEYS: [&str; 7] = [
    "id",
    "name",
    "pool",
    "type",
    "snapshot_name",
    "dataset",
    "createtxg",
];

/// One rendered snapshot.
#[derive(Debug)]
pub(crate) struct SnapRow {
    /// The top-level keys (without `properties`), for filters and ordering.
    pub head: Value,
    /// The whole entry (with every property) as JSON text.
    pub json: String,
    /// `userrefs` (for `extra.holds`).
    pub holds: u32,
    /// `org.truenas:destroy_at_*` (for `extra.retention`), Unix seconds.
    pub destroy_at: Option<i64>,
}

impl SnapRow {
    /// The whole entry as a value (slow path).
    pub fn full(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

fn esc(out: &mut String, s: &str) {
    out.push('"');
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
    } else {
        // Rare: names with quotes, backslashes or control characters.
        let quoted = serde_json::to_string(s).unwrap_or_default();
        out.push_str(&quoted[1..quoted.len() - 1]);
    }
    out.push('"');
}

/// Appends a string known to need no escaping (numbers, sizes, dates, constants).
fn lit(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(s);
    out.push('"');
}

/// `"name":{"parsed":P,"rawvalue":"R","value":"V","source":"S"}` with `P` already JSON;
/// `escape` says whether name and values may need escaping (user data).
fn prop(
    out: &mut String,
    name: &str,
    parsed: &str,
    raw: &str,
    value: &str,
    source: &str,
    escape: bool,
) {
    if !out.ends_with('{') {
        out.push(',');
    }
    let put = if escape { esc } else { lit };
    put(out, name);
    out.push_str(":{\"parsed\":");
    out.push_str(parsed);
    out.push_str(",\"rawvalue\":");
    put(out, raw);
    out.push_str(",\"value\":");
    put(out, value);
    out.push_str(",\"source\":\"");
    out.push_str(source);
    out.push_str("\"}");
}

fn num_prop(out: &mut String, name: &str, n: u64) {
    let raw = n.to_string();
    prop(out, name, &raw, &raw, &nicenum(n), "NONE", false);
}

/// A constant string property.
fn const_prop(out: &mut String, name: &str, v: &str, source: &str) {
    prop(out, name, &format!("\"{v}\""), v, v, source, false);
}

/// A string property holding user data.
fn str_prop(out: &mut String, name: &str, v: &str, source: &str) {
    let mut parsed = String::with_capacity(v.len() + 2);
    esc(&mut parsed, v);
    prop(out, name, &parsed, v, v, source, true);
}

/// Renders one snapshot; `user` are the dataset's effective user properties.
pub(crate) fn row(
    s: &Snapshot,
    full: String,
    filesystem: bool,
    user: &[(String, UserProp)],
    clones: &str,
) -> SnapRow {
    let pool = s.dataset.split('/').next().unwrap_or_default();
    let txg = s.createtxg.to_string();
    let head = json!({"id": full, "name": full, "pool": pool, "type": "SNAPSHOT",
                      "snapshot_name": s.name, "dataset": s.dataset, "createtxg": txg});
    let mut out = String::with_capacity(2048);
    out.push('{');
    for key in HEAD_KEYS {
        if key != "id" {
            out.push(',');
        }
        lit(&mut out, key);
        out.push(':');
        esc(&mut out, head[key].as_str().unwrap_or_default());
    }
    out.push_str(",\"properties\":{");
    const_prop(&mut out, "type", "snapshot", "NONE");
    let created = s.creation.to_string();
    let parsed_date = format!("{{\"$date\":{}}}", s.creation.saturating_mul(1000));
    prop(
        &mut out,
        "creation",
        &parsed_date,
        &created,
        &ctime(s.creation),
        "NONE",
        false,
    );
    num_prop(&mut out, "used", s.used);
    num_prop(&mut out, "referenced", s.referenced);
    num_prop(&mut out, "logicalreferenced", s.referenced);
    num_prop(&mut out, "written", s.used);
    prop(
        &mut out,
        "compressratio",
        "\"1.00\"",
        "1.00",
        "1.00x",
        "NONE",
        false,
    );
    prop(
        &mut out,
        "refcompressratio",
        "\"1.00\"",
        "1.00",
        "1.00x",
        "NONE",
        false,
    );
    prop(&mut out, "createtxg", &txg, &txg, &txg, "NONE", false);
    let guid = fake_guid(&full).to_string();
    prop(&mut out, "guid", &guid, &guid, &guid, "NONE", false);
    let dd = if s.defer_destroy { "on" } else { "off" };
    prop(
        &mut out,
        "defer_destroy",
        if s.defer_destroy { "true" } else { "false" },
        dd,
        dd,
        "NONE",
        false,
    );
    let refs = s.holds.to_string();
    prop(&mut out, "userrefs", &refs, &refs, &refs, "NONE", false);
    str_prop(&mut out, "clones", clones, "NONE");
    if filesystem {
        const_prop(&mut out, "casesensitivity", "sensitive", "NONE");
        prop(&mut out, "exec", "true", "on", "on", "DEFAULT", false);
        const_prop(&mut out, "xattr", "sa", "DEFAULT");
    }
    const_prop(&mut out, "encryption", "off", "DEFAULT");
    let mut destroy_at = None;
    // The dataset's user properties are inherited, unless the snapshot sets its own.
    let mut local = s.user_properties.iter().peekable();
    for (k, up) in user {
        while let Some((lk, lv)) = local.next_if(|(lk, _)| lk.as_str() < k.as_str()) {
            str_prop(&mut out, lk, lv, "LOCAL");
            destroy_at = destroy_at.or_else(|| parse_destroy_at(lk, lv));
        }
        if local.peek().is_some_and(|(lk, _)| *lk == k) {
            continue;
        }
        let source = match up.source {
            Source::Received | Source::Local | Source::Inherited(_) => "INHERITED",
            _ => "NONE",
        };
        str_prop(&mut out, k, &up.value, source);
        destroy_at = destroy_at.or_else(|| parse_destroy_at(k, &up.value));
    }
    for (lk, lv) in local {
        str_prop(&mut out, lk, lv, "LOCAL");
        destroy_at = destroy_at.or_else(|| parse_destroy_at(lk, lv));
    }
    out.push_str("}}");
    SnapRow {
        head,
        json: out,
        holds: s.holds,
        destroy_at,
    }
}

fn parse_destroy_at(k: &str, v: &str) -> Option<i64> {
    k.starts_with("org.truenas:destroy_at_")
        .then(|| v.parse().ok())
        .flatten()
}

/// The entry projected per `extra` (`properties` list, `holds`, `retention`).
pub(crate) fn projected(
    r: &SnapRow,
    props: Option<&[String]>,
    holds: bool,
    retention: bool,
) -> Value {
    let mut v = r.full();
    if let (Some(props), Some(Value::Object(m))) = (props, v.get_mut("properties")) {
        m.retain(|k, _| props.iter().any(|p| p == k));
    }
    if holds {
        v["holds"] = if r.holds > 0 {
            json!({"truenas": r.holds})
        } else {
            json!({})
        };
    }
    if retention {
        v["retention"] = r.destroy_at.map_or(
            Value::Null,
            |t| json!({"datetime": super::render::date(t), "source": "property"}),
        );
    }
    v
}

/// The ids named by a single `id|name =|in` filter (what the middleware pushes to libzfs).
pub(crate) fn pushed_down_ids(filters: &[Filter]) -> Option<Vec<String>> {
    let [
        Filter::Cmp {
            field, op, value, ..
        },
    ] = filters
    else {
        return None;
    };
    if field != "id" && field != "name" {
        return None;
    }
    match (op.as_str(), value) {
        ("=", Value::String(s)) => Some(vec![s.clone()]),
        ("in", Value::Array(a)) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// `zfs.snapshot.query` / `pool.snapshot.query`, and how many entries it answered with
/// their properties.
pub(crate) fn query(
    r: &Rendered,
    filters: &[Filter],
    opts: &Options,
) -> Result<(Output, u64), CallError> {
    let props = opts.extra_list("properties");
    let holds = opts.extra_bool("holds", false);
    let retention = opts.extra_bool("retention", false);
    let has_id_filter = filters
        .iter()
        .any(|f| matches!(f, Filter::Cmp { field, .. } if field == "id" || field == "name"));
    if retention && !has_id_filter && opts.limit == 0 {
        return Err(CallError::einval(
            "`id` filter or `limit` option must be specified when retrieving retention",
        ));
    }
    let txg = |k: &str| opts.extra.get(k).and_then(Value::as_u64);
    let (min_txg, max_txg) = (txg("min_txg"), txg("max_txg"));
    let in_range = |row: &SnapRow| {
        let t: u64 = row.head["createtxg"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        min_txg.is_none_or(|m| t >= m) && max_txg.is_none_or(|m| t <= m)
    };
    let candidates: Vec<&SnapRow> = match pushed_down_ids(filters) {
        Some(ids) => {
            let wanted: std::collections::HashSet<String> = ids.into_iter().collect();
            r.snapshots
                .iter()
                .filter(|s| wanted.contains(s.head["id"].as_str().unwrap_or_default()))
                .collect()
        }
        None => r.snapshots.iter().collect(),
    };
    let candidates = candidates.into_iter().filter(|s| in_range(s));
    let plain = props.is_none() && !holds && !retention;
    let head_only = query::fields_used(filters, opts)
        .iter()
        .all(|f| HEAD_KEYS.contains(f));
    if plain && head_only {
        // Fast path: filter on the heads, answer with the cached text.
        let rows = match query::select_rows(candidates, |s| &s.head, filters, opts) {
            Selected::Count(n) => return Ok((Output::Value(json!(n)), 0)),
            Selected::Rows(rows) => rows,
        };
        if !opts.select.is_empty() {
            let heads = rows.into_iter().map(|s| Cow::Borrowed(&s.head));
            return query::finish(heads, opts).map(|v| (Output::Value(v), 0));
        }
        if opts.get {
            return rows
                .first()
                .map(|s| (Output::Raw(s.json.clone()), 1))
                .ok_or(CallError::NotFound);
        }
        let total: usize = rows.iter().map(|s| s.json.len() + 1).sum();
        let mut out = String::with_capacity(total + 2);
        out.push('[');
        for (i, s) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&s.json);
        }
        out.push(']');
        return Ok((Output::Raw(out), rows.len() as u64));
    }
    let rows = candidates.map(|s| Cow::Owned(projected(s, props.as_deref(), holds, retention)));
    let out = query::apply(rows, filters, opts)?;
    let served = match &out {
        _ if !opts.select.is_empty() || opts.count => 0,
        Value::Array(a) => a.len() as u64,
        _ => 1,
    };
    Ok((Output::Value(out), served))
}
