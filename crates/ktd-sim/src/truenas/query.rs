//! The middleware's `filter_list`: `[filters, options]` on lists of JSON objects.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::methods::CallError;

/// Parsed `query-options`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    pub limit: usize,
    pub offset: usize,
    pub count: bool,
    pub get: bool,
    pub select: Vec<(String, String)>,
    pub order_by: Vec<String>,
    pub extra: Map<String, Value>,
}

const KNOWN_OPTIONS: [&str; 11] = [
    "relationships",
    "extend",
    "extend_context",
    "prefix",
    "extra",
    "order_by",
    "select",
    "count",
    "get",
    "offset",
    "limit",
];

fn invalid(attr: &str, msg: &str) -> CallError {
    CallError::invalid(attr, msg)
}

impl Options {
    /// Parses the options argument (absent/null = defaults).
    pub fn parse(v: Option<&Value>) -> Result<Options, CallError> {
        let mut o = Options::default();
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(o);
        };
        let Value::Object(m) = v else {
            return Err(invalid("query-options", "Not a dictionary"));
        };
        for (k, v) in m {
            let attr = format!("query-options.{k}");
            match k.as_str() {
                "limit" | "offset" => {
                    let n = v.as_u64().ok_or_else(|| invalid(&attr, "Not an integer"))? as usize;
                    if k == "limit" {
                        o.limit = n
                    } else {
                        o.offset = n
                    }
                }
                "count" | "get" => {
                    let b = v.as_bool().ok_or_else(|| invalid(&attr, "Not a boolean"))?;
                    if k == "count" { o.count = b } else { o.get = b }
                }
                "select" => {
                    let list = v.as_array().ok_or_else(|| invalid(&attr, "Not a list"))?;
                    for s in list {
                        match s {
                            Value::String(s) => o.select.push((s.clone(), s.clone())),
                            Value::Array(a) if a.len() == 2 && a.iter().all(Value::is_string) => {
                                let n = |i: usize| a[i].as_str().unwrap_or_default().to_owned();
                                o.select.push((n(0), n(1)));
                            }
                            _ => return Err(invalid(&attr, "Invalid select entry")),
                        }
                    }
                }
                "order_by" => {
                    let list = v.as_array().ok_or_else(|| invalid(&attr, "Not a list"))?;
                    for s in list {
                        let s = s.as_str().ok_or_else(|| invalid(&attr, "Not a string"))?;
                        o.order_by.push(s.to_owned());
                    }
                }
                "extra" => {
                    let m = v
                        .as_object()
                        .ok_or_else(|| invalid(&attr, "Not a dictionary"))?;
                    o.extra = m.clone();
                }
                k if KNOWN_OPTIONS.contains(&k) => {}
                _ => return Err(invalid(&attr, "Field was not expected")),
            }
        }
        Ok(o)
    }

    /// `extra[key]` as a bool (absent → `default`).
    pub fn extra_bool(&self, key: &str, default: bool) -> bool {
        match self.extra.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() != Some(0),
            Some(Value::Null) | None => default,
            Some(_) => true,
        }
    }

    /// `extra[key]` as a list of strings (absent or null → None = all).
    pub fn extra_list(&self, key: &str) -> Option<Vec<String>> {
        match self.extra.get(key) {
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// One filter: `[field, op, value]` or `["OR"|"AND", [branches]]`.
#[derive(Clone, Debug)]
pub(crate) enum Filter {
    Cmp {
        field: String,
        op: String,
        value: Value,
        regex: Option<regex::Regex>,
    },
    Or(Vec<Vec<Filter>>),
    And(Vec<Vec<Filter>>),
}

const OPS: [&str; 16] = [
    "=", "!=", ">", ">=", "<", "<=", "~", "in", "nin", "rin", "rnin", "^", "!^", "$", "!$", "C=",
];

/// Parses the filters argument (absent/null = none).
pub(crate) fn parse_filters(v: Option<&Value>) -> Result<Vec<Filter>, CallError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().map(parse_filter).collect(),
        Some(_) => Err(invalid("query-filters", "Not a list")),
    }
}

fn parse_branch(v: &Value) -> Result<Vec<Filter>, CallError> {
    match v {
        // A single filter, or a list of filters (AND-ed).
        Value::Array(a) if a.first().is_some_and(Value::is_array) => {
            a.iter().map(parse_filter).collect()
        }
        other => Ok(vec![parse_filter(other)?]),
    }
}

fn parse_filter(v: &Value) -> Result<Filter, CallError> {
    let bad = || invalid("query-filters", &format!("Invalid filter {v}"));
    let a = v.as_array().ok_or_else(bad)?;
    match a.as_slice() {
        [Value::String(conj), Value::Array(branches)] if conj == "OR" || conj == "AND" => {
            let b = branches
                .iter()
                .map(parse_branch)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if conj == "OR" {
                Filter::Or(b)
            } else {
                Filter::And(b)
            })
        }
        [Value::String(field), Value::String(op), value] => {
            let base = op.strip_prefix('C').filter(|b| !b.is_empty()).unwrap_or(op);
            if !OPS.contains(&op.as_str()) && !OPS.contains(&base) {
                return Err(invalid(
                    "query-filters",
                    &format!("Invalid operation: {op}"),
                ));
            }
            let regex = if base == "~" {
                let pat = value.as_str().ok_or_else(bad)?;
                let ci = if op.starts_with('C') { "(?i)" } else { "" };
                Some(regex::Regex::new(&format!("{ci}^(?:{pat})")).map_err(|_| bad())?)
            } else {
                None
            };
            Ok(Filter::Cmp {
                field: field.clone(),
                op: op.clone(),
                value: value.clone(),
                regex,
            })
        }
        _ => Err(bad()),
    }
}

/// Resolves a dotted path; keys that contain dots are tried whole first.
pub(crate) fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(path) {
        return Some(x);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(x) = obj.get(&path[..i])
            && let Some(found) = lookup(x, &path[i + 1..])
        {
            return Some(found);
        }
    }
    None
}

fn cmp_values(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eq_values(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn lower(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.to_lowercase()),
        Value::Array(a) => Value::Array(a.iter().map(lower).collect()),
        other => other.clone(),
    }
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::Array(a), n) => a.iter().any(|x| eq_values(x, n)),
        (Value::String(s), Value::String(n)) => s.contains(n.as_str()),
        (Value::Object(m), Value::String(n)) => m.contains_key(n),
        _ => false,
    }
}

fn matches_one(f: &Filter, item: &Value) -> bool {
    match f {
        Filter::Or(branches) => branches.iter().any(|b| matches(b, item)),
        Filter::And(branches) => branches.iter().all(|b| matches(b, item)),
        Filter::Cmp {
            field,
            op,
            value,
            regex,
        } => {
            let null = Value::Null;
            let got = lookup(item, field).unwrap_or(&null);
            let (op, got, value) = match op.strip_prefix('C').filter(|b| !b.is_empty()) {
                Some(base) => (base, Cow::Owned(lower(got)), Cow::Owned(lower(value))),
                None => (op.as_str(), Cow::Borrowed(got), Cow::Borrowed(value)),
            };
            let (got, value) = (got.as_ref(), value.as_ref());
            let ord = || cmp_values(got, value);
            let s = |v: &Value| v.as_str().map(str::to_owned);
            match op {
                "=" => eq_values(got, value),
                "!=" => !eq_values(got, value),
                ">" => ord() == Some(Ordering::Greater),
                ">=" => matches!(ord(), Some(Ordering::Greater | Ordering::Equal)),
                "<" => ord() == Some(Ordering::Less),
                "<=" => matches!(ord(), Some(Ordering::Less | Ordering::Equal)),
                "~" => got
                    .as_str()
                    .zip(regex.as_ref())
                    .is_some_and(|(g, r)| r.is_match(g)),
                "in" => contains(value, got),
                "nin" => !contains(value, got),
                "rin" => !got.is_null() && contains(got, value),
                "rnin" => !got.is_null() && !contains(got, value),
                "^" => s(got).zip(s(value)).is_some_and(|(g, v)| g.starts_with(&v)),
                "!^" => s(got)
                    .zip(s(value))
                    .is_some_and(|(g, v)| !g.starts_with(&v)),
                "$" => s(got).zip(s(value)).is_some_and(|(g, v)| g.ends_with(&v)),
                "!$" => s(got).zip(s(value)).is_some_and(|(g, v)| !g.ends_with(&v)),
                _ => false,
            }
        }
    }
}

/// Whether `item` passes every filter.
pub(crate) fn matches(filters: &[Filter], item: &Value) -> bool {
    filters.iter().all(|f| matches_one(f, item))
}

fn order_key(a: &Value, b: &Value, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => cmp_values(a, b).unwrap_or(Ordering::Equal),
    }
}

fn set_path(out: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        Some((head, rest)) => {
            let child = out
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = child {
                set_path(m, rest, v);
            }
        }
        None => {
            out.insert(path.to_owned(), v);
        }
    }
}

/// Rows left after filtering, ordering and paging, or their count.
pub(crate) enum Selected<T> {
    /// `count: true`.
    Count(usize),
    /// The page of rows, in order.
    Rows(Vec<T>),
}

/// Filters, orders and pages rows of any type through `key` (everything but `select`/`get`).
pub(crate) fn select_rows<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> &Value,
    filters: &[Filter],
    opts: &Options,
) -> Selected<T> {
    let mut rows: Vec<T> = items
        .into_iter()
        .filter(|v| matches(filters, key(v)))
        .collect();
    if opts.count {
        return Selected::Count(rows.len());
    }
    for order in opts.order_by.iter().rev() {
        let (order, nulls_first) = match order.strip_prefix("nulls_first:") {
            Some(k) => (k, true),
            None => (order.strip_prefix("nulls_last:").unwrap_or(order), false),
        };
        let (field, desc) = match order.strip_prefix('-') {
            Some(f) => (f, true),
            None => (order, false),
        };
        let null = Value::Null;
        rows.sort_by(|a, b| {
            let (x, y) = (
                lookup(key(a), field).unwrap_or(&null),
                lookup(key(b), field).unwrap_or(&null),
            );
            let o = order_key(x, y, nulls_first);
            if desc && !(x.is_null() || y.is_null()) {
                o.reverse()
            } else {
                o
            }
        });
    }
    let rows = rows.into_iter().skip(opts.offset);
    Selected::Rows(if opts.limit > 0 {
        rows.take(opts.limit).collect()
    } else {
        rows.collect()
    })
}

/// `select` on one row.
pub(crate) fn project(row: Cow<'_, Value>, opts: &Options) -> Value {
    if opts.select.is_empty() {
        return row.into_owned();
    }
    let mut out = Map::new();
    for (path, alias) in &opts.select {
        if let Some(v) = lookup(&row, path) {
            if path == alias {
                set_path(&mut out, path, v.clone());
            } else {
                out.insert(alias.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `select` and `get` on the selected rows.
pub(crate) fn finish<'a>(
    rows: impl IntoIterator<Item = Cow<'a, Value>>,
    opts: &Options,
) -> Result<Value, CallError> {
    let mut rows = rows.into_iter().map(|r| project(r, opts));
    if opts.get {
        return rows.next().ok_or(CallError::NotFound);
    }
    Ok(Value::Array(rows.collect()))
}

/// Every field path the filters, `order_by` and `select` look at.
pub(crate) fn fields_used<'a>(filters: &'a [Filter], opts: &'a Options) -> Vec<&'a str> {
    fn walk<'a>(f: &'a Filter, out: &mut Vec<&'a str>) {
        match f {
            Filter::Cmp { field, .. } => out.push(field),
            Filter::Or(b) | Filter::And(b) => b.iter().flatten().for_each(|f| walk(f, out)),
        }
    }
    let mut out = Vec::new();
    filters.iter().for_each(|f| walk(f, &mut out));
    for o in &opts.order_by {
        let o = o
            .strip_prefix("nulls_first:")
            .or_else(|| o.strip_prefix("nulls_last:"))
            .unwrap_or(o);
        out.push(o.strip_prefix('-').unwrap_or(o));
    }
    out.extend(opts.select.iter().map(|(p, _)| p.as_str()));
    out
}

/// Applies filters and options (except `extra`, which the method handles) to `items`.
pub(crate) fn apply<'a>(
    items: impl IntoIterator<Item = Cow<'a, Value>>,
    filters: &[Filter],
    opts: &Options,
) -> Result<Value, CallError> {
    match select_rows(items, |v| v.as_ref(), filters, opts) {
        Selected::Count(n) => Ok(Value::from(n)),
        Selected::Rows(rows) => finish(rows, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(filters: Value, opts: Value) -> Value {
        let items = [
            json!({"a": 1, "s": "tank/x", "l": [1, 2], "p": {"u": {"v": 5}}}),
            json!({"a": 2, "s": "pool/y", "l": [], "p": {"u": {"v": 7}}}),
        ];
        let f = parse_filters(Some(&filters)).expect("filters");
        let o = Options::parse(Some(&opts)).expect("options");
        apply(items.iter().map(Cow::Borrowed), &f, &o).expect("apply")
    }

    #[test]
    fn ops_and_options() {
        assert_eq!(
            run(json!([["a", ">", 1]]), json!({"count": true})),
            json!(1)
        );
        assert_eq!(
            run(json!([["p.u.v", "<", 6]]), json!({"select": ["a"]})),
            json!([{"a": 1}])
        );
        assert_eq!(
            run(json!([["l", "rin", 2]]), json!({"count": true})),
            json!(1)
        );
        assert_eq!(
            run(json!([["s", "~", "t.nk"]]), json!({"count": true})),
            json!(1)
        );
        assert_eq!(
            run(
                json!([["OR", [["a", "=", 1], ["a", "=", 2]]]]),
                json!({"count": true})
            ),
            json!(2)
        );
        assert_eq!(
            run(
                json!([]),
                json!({"order_by": ["-a"], "get": true, "select": ["a"]})
            ),
            json!({"a": 2})
        );
    }

    #[test]
    fn nested_branches_case_insensitive_ops_and_nulls() {
        // An OR branch may be a list of filters (AND-ed).
        let f = json!([[
            "OR",
            [[["a", "=", 1], ["s", "^", "pool"]], ["s", "$", "/y"]]
        ]]);
        assert_eq!(run(f, json!({"select": ["a"]})), json!([{"a": 2}]));
        assert_eq!(
            run(json!([["s", "C^", "TANK"]]), json!({"count": true})),
            json!(1)
        );
        assert_eq!(
            run(json!([["s", "C~", "POOL/."]]), json!({"count": true})),
            json!(1)
        );
        // Missing fields compare as null: `!=` matches, ordering puts nulls last.
        assert_eq!(
            run(json!([["missing", "!=", 1]]), json!({"count": true})),
            json!(2)
        );
        let items = [
            json!({"n": null, "k": 1}),
            json!({"n": 3, "k": 2}),
            json!({"n": 1, "k": 3}),
        ];
        let o =
            Options::parse(Some(&json!({"order_by": ["n"], "select": ["k"]}))).expect("options");
        let v = apply(items.iter().map(Cow::Borrowed), &[], &o).expect("apply");
        assert_eq!(v, json!([{"k": 3}, {"k": 2}, {"k": 1}]));
        let o = Options::parse(Some(
            &json!({"order_by": ["nulls_first:-n"], "select": ["k"]}),
        ))
        .expect("options");
        let v = apply(items.iter().map(Cow::Borrowed), &[], &o).expect("apply");
        assert_eq!(v, json!([{"k": 1}, {"k": 2}, {"k": 3}]));
        // Bad input.
        assert!(parse_filters(Some(&json!([["a", "=="]]))).is_err());
        assert!(Options::parse(Some(&json!({"limit": -1}))).is_err());
    }
}
