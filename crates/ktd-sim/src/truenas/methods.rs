//! The method table per personality and the read-only method implementations shared by
//! REST and JSON-RPC.

use serde_json::{Map, Value, json};
use std::borrow::Cow;

use super::Shared;
use super::query::{self, Filter, Options};
use super::records;
use super::render::{NON_PROPERTY_KEYS, Rendered, zfs_name};
use super::snapshots;
use crate::world::Personality;

/// How a failed call surfaces (the transports map it to their own wire shapes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CallError {
    /// Unknown or unavailable method (-32601; REST 404).
    NoMethod,
    /// Validation error on one attribute (-32602; REST 422 keyed by attribute).
    Invalid { attr: String, msg: String },
    /// A `CallError` (-32001; REST 422 `{"message", "errno"}`).
    Call {
        errno: i64,
        errname: &'static str,
        reason: String,
    },
    /// `MatchNotFound` from `get: true` (-32602 ENOENT; REST 404 `{"message": ""}`).
    NotFound,
}

impl CallError {
    pub(crate) fn invalid(attr: &str, msg: &str) -> CallError {
        CallError::Invalid {
            attr: attr.to_owned(),
            msg: msg.to_owned(),
        }
    }

    pub(crate) fn einval(reason: &str) -> CallError {
        CallError::Call {
            errno: 22,
            errname: "EINVAL",
            reason: reason.to_owned(),
        }
    }
}

/// Which transport a call came in on (the method table differs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// REST v2.0.
    Rest,
    /// JSON-RPC 2.0 over WebSocket.
    WebSocket,
}

/// A call context: the server's release decides which methods exist, the API version of
/// the endpoint decides the shapes.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub server: Personality,
    pub shape: Personality,
    pub transport: Transport,
}

/// CRUD services whose `query`/`get_instance` the simulator serves.
const CRUD: [&str; 10] = [
    "pool",
    "pool.dataset",
    "zfs.snapshot",
    "pool.snapshot",
    "sharing.nfs",
    "sharing.smb",
    "iscsi.extent",
    "iscsi.target",
    "iscsi.targetextent",
    "service",
];

/// Other read methods.
const PLAIN: [&str; 7] = [
    "iscsi.global.config",
    "system.info",
    "system.version",
    "system.version_short",
    "alert.list",
    "core.ping",
    "core.get_jobs",
];

/// Whether a CRUD service exists (publicly, or privately over WebSocket) on a release.
pub(crate) fn service_exists(server: Personality, transport: Transport, service: &str) -> bool {
    match service {
        "pool.snapshot" => server >= Personality::V25_10,
        // Private from 25.10: no REST route, still callable over a WebSocket.
        "zfs.snapshot" => server < Personality::V25_10 || transport == Transport::WebSocket,
        s => CRUD.contains(&s),
    }
}

/// Whether `method` can be called on this release and transport.
pub(crate) fn exists(server: Personality, transport: Transport, method: &str) -> bool {
    if PLAIN.contains(&method) {
        return true;
    }
    match method.rsplit_once('.') {
        Some((svc, "query" | "get_instance")) => service_exists(server, transport, svc),
        _ => false,
    }
}

/// Whether `method` is a write method (`create`/`update`/`delete`) of a simulated service.
pub(crate) fn is_write(server: Personality, transport: Transport, method: &str) -> bool {
    match method.rsplit_once('.') {
        Some((svc, "create" | "update" | "delete")) => service_exists(server, transport, svc),
        _ => false,
    }
}

/// Calls a write method: refused for read-only keys (EACCES); deletes and user-property
/// updates are performed, other writes (create, ...) are not simulated (ENOTSUP).
pub(crate) fn write(
    ctx: &Ctx<'_>,
    method: &str,
    params: &[Value],
    readonly: bool,
) -> Result<Value, CallError> {
    if readonly {
        return Err(CallError::Call {
            errno: 13,
            errname: "EACCES",
            reason: "Not authorized".into(),
        });
    }
    if super::writes::performs(method) {
        return super::writes::call(ctx.shared, ctx.shape, method, params);
    }
    Err(CallError::Call {
        errno: 95,
        errname: "ENOTSUP",
        reason: "The simulator does not implement this write method".into(),
    })
}

/// Calls a read method. `params` are the positional JSON-RPC params.
pub(crate) fn call(ctx: &Ctx<'_>, method: &str, params: &[Value]) -> Result<Output, CallError> {
    let snapshot_query = method == "zfs.snapshot.query" || method == "pool.snapshot.query";
    if snapshot_query && exists(ctx.server, ctx.transport, method) {
        let filters = query::parse_filters(params.first())?;
        let opts = Options::parse(params.get(1))?;
        let (out, served) = snapshots::query(&ctx.shared.rendered(ctx.shape), &filters, &opts)?;
        ctx.shared.served_snapshots(served);
        return Ok(out);
    }
    call_value(ctx, method, params).map(Output::Value)
}

/// A method result: a value, or JSON text rendered ahead of time (big snapshot lists).
#[derive(Debug)]
pub(crate) enum Output {
    /// A JSON value.
    Value(Value),
    /// JSON text.
    Raw(String),
}

impl Output {
    /// As a value (parses raw text).
    pub(crate) fn into_value(self) -> Value {
        match self {
            Output::Value(v) => v,
            Output::Raw(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
        }
    }

    /// As JSON text.
    pub(crate) fn into_text(self, pretty: bool) -> String {
        match self {
            Output::Value(v) if pretty => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Output::Value(v) => v.to_string(),
            Output::Raw(t) => t,
        }
    }
}

fn call_value(ctx: &Ctx<'_>, method: &str, params: &[Value]) -> Result<Value, CallError> {
    if !exists(ctx.server, ctx.transport, method) {
        return Err(CallError::NoMethod);
    }
    let nas = ctx.shared.nas_read();
    let p = ctx.shape;
    match method {
        "core.ping" => return Ok(json!("pong")),
        // The release is the server's, whatever API version the endpoint speaks.
        "system.version" => return Ok(json!(ctx.server.version_string())),
        "system.version_short" => return Ok(json!(ctx.server.version_short())),
        "system.info" => return Ok(records::system_info(&nas, ctx.server, p)),
        "iscsi.global.config" => return Ok(records::iscsi_global(&nas, p)),
        "alert.list" => {
            let mut alerts = records::alerts(&nas, ctx.server);
            alerts.extend(records::rest_usage_alert(
                ctx.server,
                &ctx.shared.rest_use(),
                nas.boottime,
            ));
            return Ok(Value::Array(alerts));
        }
        _ => {}
    }
    let (svc, verb) = method.rsplit_once('.').ok_or(CallError::NoMethod)?;
    let (filters, opts) = if verb == "get_instance" {
        let id = params
            .first()
            .cloned()
            .ok_or_else(|| CallError::invalid("id", "attribute required"))?;
        let mut opts = Options::parse(params.get(1))?;
        opts.get = true;
        (query::parse_filters(Some(&json!([["id", "=", id]])))?, opts)
    } else {
        (
            query::parse_filters(params.first())?,
            Options::parse(params.get(1))?,
        )
    };
    let list = |rows: Vec<Value>| query::apply(rows.into_iter().map(Cow::Owned), &filters, &opts);
    match svc {
        "core" => list(Vec::new()), // core.get_jobs: the simulator runs no jobs
        "sharing.nfs" => list(records::nfs_shares(&nas, p)),
        "sharing.smb" => list(records::smb_shares(&nas, p)),
        "iscsi.extent" => list(records::iscsi_extents(&nas, p)),
        "iscsi.target" => list(records::iscsi_targets(&nas, p)),
        "iscsi.targetextent" => list(records::iscsi_targetextents(&nas, p)),
        "service" => list(records::services(&nas, p)),
        _ => {
            drop(nas);
            let r = ctx.shared.rendered(p);
            match svc {
                "pool" => query::apply(r.pools.iter().map(Cow::Borrowed), &filters, &opts),
                "pool.dataset" => dataset_query(&r, p, &filters, &opts),
                _ => {
                    let (out, served) = snapshots::query(&r, &filters, &opts)?;
                    ctx.shared.served_snapshots(served);
                    Ok(out.into_value())
                }
            }
        }
    }
}

struct DsExtras {
    properties: Option<Vec<String>>,
    user_props: bool,
    children: bool,
    snapshots: bool,
    snapshots_recursive: bool,
    snapshots_properties: Option<Vec<String>>,
    snapshots_count: bool,
}

/// One dataset node: own object projected per `extra`, plus its `children` subtree.
fn dataset_node(r: &Rendered, i: usize, x: &DsExtras, with_children: bool) -> Value {
    let mut o = project_dataset(&r.datasets[i], x);
    let name = r.datasets[i]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if x.snapshots_count {
        let n = r.snaps_by_dataset.get(&name).map_or(0, Vec::len);
        o.insert("snapshot_count".into(), json!(n));
    }
    if x.snapshots {
        let mut snaps = Vec::new();
        let mut stack = vec![i];
        while let Some(d) = stack.pop() {
            let dn = r.datasets[d]["name"].as_str().unwrap_or_default();
            for &s in r.snaps_by_dataset.get(dn).map_or(&[][..], Vec::as_slice) {
                let props = x.snapshots_properties.as_deref();
                snaps.push(snapshots::projected(&r.snapshots[s], props, false, false));
            }
            if x.snapshots_recursive {
                stack.extend(r.children[d].iter().rev());
            }
        }
        o.insert("snapshots".into(), Value::Array(snaps));
    }
    let children = if with_children {
        r.children[i]
            .iter()
            .map(|&c| dataset_node(r, c, x, true))
            .collect()
    } else {
        Vec::new()
    };
    o.insert("children".into(), Value::Array(children));
    Value::Object(o)
}

fn project_dataset(own: &Value, x: &DsExtras) -> Map<String, Value> {
    let src = own.as_object().cloned().unwrap_or_default();
    if x.properties.is_none() && x.user_props {
        return src;
    }
    src.into_iter()
        .filter(|(k, _)| {
            if k == "user_properties" {
                return x.user_props;
            }
            NON_PROPERTY_KEYS.contains(&k.as_str())
                || x.properties
                    .as_ref()
                    .is_none_or(|ps| ps.iter().any(|p| p == k || p == zfs_name(k)))
        })
        .collect()
}

fn dataset_query(
    r: &Rendered,
    p: Personality,
    filters: &[Filter],
    opts: &Options,
) -> Result<Value, CallError> {
    let x = DsExtras {
        properties: opts.extra_list("properties"),
        // retrieve_user_props exists from 25.04; earlier releases ignore it.
        user_props: p < Personality::V25_04 || opts.extra_bool("retrieve_user_props", true),
        children: opts.extra_bool("retrieve_children", true),
        snapshots: opts.extra_bool("snapshots", false),
        snapshots_recursive: opts.extra_bool("snapshots_recursive", false),
        snapshots_properties: match opts.extra.get("snapshots_properties") {
            Some(Value::Null) => None,
            _ => Some(opts.extra_list("snapshots_properties").unwrap_or_default()),
        },
        snapshots_count: opts.extra_bool("snapshots_count", false),
    };
    let flat = opts.extra_bool("flat", true);
    let tops: Vec<usize> = match snapshots::pushed_down_ids(filters) {
        Some(ids) => ids
            .iter()
            .filter_map(|id| r.ds_index.get(id).copied())
            .collect(),
        None => r.roots.clone(),
    };
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in tops {
        if !seen.insert(t) {
            continue;
        }
        if flat && x.children {
            let mut stack = vec![t];
            while let Some(d) = stack.pop() {
                if d != t && !seen.insert(d) {
                    continue;
                }
                order.push(d);
                stack.extend(r.children[d].iter().rev());
            }
        } else {
            order.push(t);
        }
    }
    // Filter and page on the nodes without their subtrees, then build only the survivors.
    let shallow: Vec<(usize, Value)> = order
        .into_iter()
        .map(|i| (i, Value::Object(project_dataset(&r.datasets[i], &x))))
        .collect();
    let shallow = shallow.into_iter();
    let rows = match query::select_rows(shallow, |(_, v)| v, filters, opts) {
        query::Selected::Count(n) => return Ok(json!(n)),
        query::Selected::Rows(rows) => rows,
    };
    let rows = rows
        .into_iter()
        .map(|(i, _)| Cow::Owned(dataset_node(r, i, &x, x.children)));
    query::finish(rows, opts)
}

/// A dataset as `pool.dataset.query` returns it by default (events' `fields`).
pub(crate) fn dataset_entry(r: &Rendered, name: &str) -> Option<Value> {
    let i = *r.ds_index.get(name)?;
    let x = DsExtras {
        properties: None,
        user_props: true,
        children: true,
        snapshots: false,
        snapshots_recursive: false,
        snapshots_properties: None,
        snapshots_count: false,
    };
    Some(dataset_node(r, i, &x, true))
}
