//! HTTP routing: faults, discovery, RBAC, LIST/GET, access reviews, Status errors.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::list::{ContinueToken, Render, list_body, object_body};
use super::resources::{RESOURCES, ResourceType, SNAPSHOT_GROUP, VERBS, by_path};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::AtError;
use super::watch;
use super::{Shared, proto};
use crate::faults::FaultAction;

/// The server version announced on `/version`.
const GIT_VERSION: &str = "v1.34.1";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A JSON response.
fn json_response(code: StatusCode, body: Vec<u8>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok_json(value: &Value) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(value).expect("JSON values serialize"),
    )
}

/// A `Status` object as the apiserver writes it (always with `code`, see the reference).
pub(crate) fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        s["details"] = details;
    }
    s
}

/// A failed response with a `Status` body.
pub(crate) fn failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let body = status(code, reason, message, details);
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        code,
        serde_json::to_vec(&body).expect("JSON values serialize"),
    )
}

fn not_found() -> Response {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

/// Query pairs, percent-decoded; tolerates kube's leading `?&` and empty pairs.
fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = parse_query(uri.query());
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut drop_watch = false;
    match shared.faults.decide() {
        FaultAction::Serve => {}
        FaultAction::Error => {
            return if shared.errors.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                failure(
                    500,
                    "InternalError",
                    "Internal error occurred: injected fault",
                    None,
                )
            } else {
                failure(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                    None,
                )
            };
        }
        FaultAction::Hang => {
            shared.shutdown.cancelled().await;
            return failure(
                503,
                "ServiceUnavailable",
                "the server is shutting down",
                None,
            );
        }
        FaultAction::Drop if is_watch => drop_watch = true,
        FaultAction::Drop => {
            // Headers go out, then the body fails: the client sees the connection die.
            let broken = futures::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("injected connection drop"))
            });
            return (StatusCode::OK, Body::from_stream(broken)).into_response();
        }
    }
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let render = Render::negotiate(accept, query.get("includeObject").map(String::as_str));
    let crds = shared.snapshot_crds.load(Ordering::Relaxed);
    let get = method == Method::GET || method == Method::HEAD;
    match segments[..] {
        ["version"] if get => ok_json(&version()),
        ["healthz" | "readyz" | "livez"] if get => "ok".into_response(),
        ["api"] if get => ok_json(&json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        })),
        ["apis"] if get => ok_json(&group_list(crds)),
        ["api", "v1"] if get => ok_json(&resource_list("", "v1", crds)),
        ["apis", group] if get => match group_list(crds)["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["name"] == group))
        {
            Some(g) => {
                let mut g = g.clone();
                g["kind"] = "APIGroup".into();
                g["apiVersion"] = "v1".into();
                ok_json(&g)
            }
            None => not_found(),
        },
        ["apis", group, version] if get => {
            if !group_served(group, version, crds) {
                return not_found();
            }
            ok_json(&resource_list(group, version, crds))
        }
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => {
            if method != Method::POST {
                return method_not_allowed();
            }
            access_review(&shared, &body)
        }
        ["api", "v1", ref rest @ ..] => {
            resource(&shared, &method, "", "v1", rest, &query, render, drop_watch)
        }
        ["apis", group, version, ref rest @ ..] => {
            if group == SNAPSHOT_GROUP && !crds {
                return not_found();
            }
            resource(
                &shared, &method, group, version, rest, &query, render, drop_watch,
            )
        }
        _ if !get => method_not_allowed(),
        _ => not_found(),
    }
}

fn method_not_allowed() -> Response {
    failure(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "93248f9ae092f571eb870b7664c534bfc7d00f03",
        "gitTreeState": "clean",
        "buildDate": "2025-09-09T19:37:31Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group_served(group: &str, version: &str, crds: bool) -> bool {
    version == "v1"
        && (group == "authorization.k8s.io"
            || RESOURCES
                .iter()
                .any(|r| r.group == group && (crds || r.group != SNAPSHOT_GROUP)))
}

fn group_list(crds: bool) -> Value {
    let mut names = vec!["storage.k8s.io", "authorization.k8s.io"];
    if crds {
        names.push(SNAPSHOT_GROUP);
    }
    let groups: Vec<Value> = names
        .iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(group: &str, version: &str, crds: bool) -> Value {
    let mut resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .filter(|r| crds || r.group != SNAPSHOT_GROUP)
        .map(|r| {
            let mut v = json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
            });
            if !r.short_names.is_empty() {
                v["shortNames"] = json!(r.short_names);
            }
            if r.group == SNAPSHOT_GROUP {
                v["categories"] = json!([]);
            }
            v
        })
        .collect();
    if group == "authorization.k8s.io" {
        resources.push(json!({
            "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
            "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"],
        }));
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

fn access_review(shared: &Shared, body: &[u8]) -> Response {
    let parsed = if proto::is_protobuf(body) {
        proto::access_review(body)
    } else {
        serde_json::from_slice::<Value>(body).ok()
    };
    let Some(mut review) = parsed else {
        return failure(
            400,
            "BadRequest",
            "the request body is not a SelfSubjectAccessReview",
            None,
        );
    };
    let attrs = review.pointer("/spec/resourceAttributes").cloned();
    let (allowed, reason) = match attrs {
        Some(a) => {
            let f = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let denied = shared.is_denied(&f("verb"), &f("group"), &f("resource"));
            (
                !denied,
                if denied {
                    ""
                } else {
                    "RBAC: allowed by ClusterRoleBinding \"ktd\""
                },
            )
        }
        // Non-resource URLs (/healthz, /version, ...) are allowed.
        None => (true, ""),
    };
    review["kind"] = "SelfSubjectAccessReview".into();
    review["apiVersion"] = "authorization.k8s.io/v1".into();
    if review.get("metadata").is_none() {
        review["metadata"] = json!({});
    }
    review["status"] = if allowed {
        json!({"allowed": true, "reason": reason})
    } else {
        json!({"allowed": false})
    };
    json_response(
        StatusCode::CREATED,
        serde_json::to_vec(&review).expect("JSON values serialize"),
    )
}

/// `/api/v1/...` and `/apis/G/V/...` below the group version.
#[allow(clippy::too_many_arguments)]
fn resource(
    shared: &Arc<Shared>,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
    render: Render,
    drop_watch: bool,
) -> Response {
    let (namespace, plural, name) = match rest {
        [plural] => (None, *plural, None),
        ["namespaces", name] if group.is_empty() => (None, "namespaces", Some(*name)),
        [plural, name] => (None, *plural, Some(*name)),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        _ => return not_found(),
    };
    let Some(rt) = by_path(group, version, plural) else {
        return not_found();
    };
    if namespace.is_some() && !rt.namespaced {
        return not_found();
    }
    if *method != Method::GET && *method != Method::HEAD {
        return method_not_allowed();
    }
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (watching, name) {
        (true, _) => "watch",
        (false, Some(_)) => "get",
        (false, None) => "list",
    };
    if shared.is_denied(verb, group, plural) {
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        let message = format!(
            "{plural}{} is forbidden: User \"system:serviceaccount:ktd:ktd\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}",
            group_suffix(rt),
        );
        return failure(
            403,
            "Forbidden",
            &message,
            Some(json!({"kind": plural, "group": group})),
        );
    }
    let labels = match LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str)) {
        Ok(l) => l,
        Err(e) => return failure(400, "BadRequest", &e.0, None),
    };
    let mut fields =
        match FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), rt) {
            Ok(f) => f,
            Err(e) => return failure(400, "BadRequest", &e.0, None),
        };
    let selected = !labels.is_empty() || !fields.is_empty();
    if let Some(ns) = namespace {
        fields = fields.and(FieldSelector::namespace(ns));
    }
    if watching {
        // The legacy single-object watch path: a watch restricted to that name.
        if let Some(name) = name {
            fields = fields.and(FieldSelector::name(name));
        }
        shared.stats.watches.fetch_add(1, Ordering::Relaxed);
        return watch::start(
            shared.clone(),
            rt,
            query,
            labels,
            fields,
            render,
            drop_watch,
        );
    }
    if let Some(name) = name {
        let ns = if rt.namespaced {
            namespace.unwrap_or("")
        } else {
            ""
        };
        return match shared.store.get(rt, ns, name) {
            Some(object) => ok_json(&object_body(rt, render, &object)),
            None => failure(
                404,
                "NotFound",
                &format!("{}{} \"{name}\" not found", rt.plural, group_suffix(rt)),
                Some(json!({"name": name, "group": group, "kind": plural})),
            ),
        };
    }
    shared.stats.lists.fetch_add(1, Ordering::Relaxed);
    list(shared, rt, query, &labels, &fields, selected, render)
}

fn group_suffix(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        String::new()
    } else {
        format!(".{}", rt.group)
    }
}

fn list(
    shared: &Shared,
    rt: &ResourceType,
    query: &HashMap<String, String>,
    labels: &LabelSelector,
    fields: &FieldSelector,
    selected: bool,
    render: Render,
) -> Response {
    let param = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let limit = match param("limit").map(str::parse::<usize>) {
        None => None,
        Some(Ok(0)) => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return failure(
                400,
                "BadRequest",
                "limit must be a non-negative integer",
                None,
            );
        }
    };
    let rv = match param("resourceVersion").map(str::parse::<u64>) {
        None => None,
        Some(Ok(rv)) => Some(rv),
        Some(Err(_)) => return failure(400, "BadRequest", "resourceVersion: Invalid value", None),
    };
    let exact = param("resourceVersionMatch") == Some("Exact");
    let continuing = param("continue");
    let (at, after) = match continuing {
        Some(token) => {
            if rv.is_some_and(|rv| rv != 0) {
                return failure(
                    400,
                    "BadRequest",
                    "specifying resource version is not allowed when using continue",
                    None,
                );
            }
            match ContinueToken::decode(token) {
                Ok(t) => (Some(t.rv), Some(t.cursor())),
                Err(message) => return failure(400, "BadRequest", &message, None),
            }
        }
        None => match rv {
            // "0" = any, unset = most recent: both are served from the current state.
            None | Some(0) => (None, None),
            // With a limit (and no NotOlderThan) or Exact: exactly that RV.
            Some(rv) if exact || (limit.is_some() && param("resourceVersionMatch").is_none()) => {
                (Some(rv), None)
            }
            Some(rv) if rv > shared.store.current_rv() => (Some(rv), None),
            Some(_) => (None, None),
        },
    };
    let filter = |o: &Value| labels.matches(o) && fields.matches(o);
    match shared
        .store
        .list_page(rt, at, after.as_ref(), limit, &filter, !selected)
    {
        Ok(page) => json_response(StatusCode::OK, list_body(rt, render, &page)),
        Err(AtError::Expired(_)) if continuing.is_some() => failure(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            Some(json!({})),
        ),
        Err(AtError::Expired(e)) => failure(
            410,
            "Expired",
            &format!("too old resource version: {} ({})", e.requested, e.oldest),
            Some(json!({})),
        ),
        Err(AtError::TooNew { requested, current }) => {
            let mut response = failure(
                504,
                "Timeout",
                &format!("Too large resource version: {requested}, current: {current}"),
                Some(
                    json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().expect("valid header"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_tolerates_kube_style() {
        let q = parse_query(Some(
            "&limit=500&labelSelector=app%3Ddb%2Ctier+in+(a)&&watch",
        ));
        assert_eq!(q["limit"], "500");
        assert_eq!(q["labelSelector"], "app=db,tier in (a)");
        assert_eq!(q["watch"], "");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
