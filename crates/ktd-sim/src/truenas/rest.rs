//! REST v2.0 (`/api/v2.0/...`), routed the way `restful.py` generates routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::methods::{self, CallError, Ctx, Transport};
use super::{KeyCheck, Shared};
use crate::faults::FaultAction;
use crate::world::Personality;

/// What a REST path resolves to.
enum Route {
    /// `GET /a/b` (query) or `/a/b/id/{id}` (query with `get`).
    Crud { service: String, id: Option<Value> },
    /// A method without arguments or a filterable method (`GET /a/b/m`).
    Plain(&'static str),
    /// `GET /api/v2.0` or `/api/v2.0/openapi.json`.
    OpenApi,
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// aiohttp's 404 for unknown routes.
pub(crate) async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404: Not Found")
}

/// Decodes a query-string key or value (`+` is a space there).
fn pct_decode(s: &str) -> String {
    path_decode(&s.replace('+', " "))
}

/// Decodes a path segment (`+` stays a plus).
fn path_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn coerce(v: &str) -> Value {
    if !v.is_empty()
        && v.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = v.parse::<i64>()
    {
        return json!(n);
    }
    match v {
        "true" => json!(true),
        "false" => json!(false),
        "null" => Value::Null,
        _ => json!(v),
    }
}

fn resolve(server: Personality, path: &str) -> Option<Route> {
    let path = path.trim_matches('/');
    if path.is_empty() || path == "openapi.json" {
        return Some(Route::OpenApi);
    }
    let segs: Vec<&str> = path.split('/').collect();
    if let Some(k) = segs.iter().position(|s| *s == "id").filter(|k| *k > 0) {
        // Item methods (`/id/{id}/m`) are not simulated.
        if segs.len() != k + 2 {
            return None;
        }
        let service = segs[..k].join(".");
        let id = coerce(&path_decode(segs[k + 1]));
        return methods::service_exists(server, Transport::Rest, &service).then_some(Route::Crud {
            service,
            id: Some(id),
        });
    }
    let name = segs.join(".");
    if methods::service_exists(server, Transport::Rest, &name) {
        return Some(Route::Crud {
            service: name,
            id: None,
        });
    }
    let plain: &[&'static str] = &[
        "system.info",
        "system.version",
        "system.version_short",
        "alert.list",
        "core.ping",
        "core.get_jobs",
    ];
    if name == "iscsi.global" {
        return Some(Route::Plain("iscsi.global.config"));
    }
    plain.iter().find(|m| **m == name).map(|m| Route::Plain(m))
}

/// Query string → `[filters, options]` (restful.py rules).
fn parse_query_string(q: &str) -> (Vec<Value>, Map<String, Value>) {
    let mut filters = Vec::new();
    let mut opts = Map::new();
    let mut extra = Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (pct_decode(k), pct_decode(v));
        if let Some(e) = k.strip_prefix("extra.") {
            let val = serde_json::from_str(&v).unwrap_or(Value::String(v.clone()));
            extra.insert(e.to_owned(), val);
            continue;
        }
        match k.as_str() {
            "limit" | "offset" => {
                opts.insert(k.clone(), coerce(&v));
            }
            "count" => {
                opts.insert(k.clone(), coerce(&v));
            }
            _ => {
                let (field, op) = match k.rsplit_once("__") {
                    Some((f, op)) => {
                        let op = match op {
                            "eq" => "=",
                            "neq" => "!=",
                            "gt" => ">",
                            "lt" => "<",
                            "gte" => ">=",
                            "lte" => "<=",
                            "regex" => "~",
                            other => other,
                        };
                        (f.to_owned(), op.to_owned())
                    }
                    None => (k.clone(), "=".to_owned()),
                };
                filters.push(json!([field, op, coerce(&v)]));
            }
        }
    }
    if !extra.is_empty() {
        opts.insert("extra".into(), Value::Object(extra));
    }
    (filters, opts)
}

/// One REST request.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::time::sleep(shared.faults.latency()).await;
    match shared.faults.decide() {
        FaultAction::Serve => {}
        FaultAction::Error => {
            // Alternate between a middleware exception (500) and nginx with the
            // middleware down (503).
            return if shared.injected_errors.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({
                    "message": "[EFAULT] simulated middleware failure",
                    "traceback": "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/middlewared/restful.py\", line 1, in do\nmiddlewared.service_exception.CallError: [EFAULT] simulated middleware failure\n"}),
                )
            } else {
                let html = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "text/html")],
                    html,
                )
                    .into_response()
            };
        }
        FaultAction::Hang => {
            tokio::select! {
                () = tokio::time::sleep(shared.gateway_timeout()) => {}
                () = shared.shutdown.cancelled() => {}
            }
            let html = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
            return (
                StatusCode::GATEWAY_TIMEOUT,
                [(header::CONTENT_TYPE, "text/html")],
                html,
            )
                .into_response();
        }
        FaultAction::Drop => {
            // Headers go out, then the connection dies mid-body.
            let stream = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated drop",
                ))
            });
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    }
    let server = shared.personality();
    let path = uri.path().strip_prefix("/api/v2.0").unwrap_or_default();
    let Some(route) = resolve(server, path) else {
        return not_found().await;
    };
    if let Route::OpenApi = route {
        return json_response(
            StatusCode::OK,
            &json!({
                "openapi": "3.0.0",
                "info": {"title": "TrueNAS RESTful API", "version": "v2.0"},
                "paths": {}
            }),
        );
    }
    // aiohttp matches the method with the route, before authentication.
    let allowed: &[Method] = match &route {
        Route::Crud { id: None, .. } => &[Method::GET, Method::POST],
        Route::Crud { id: Some(_), .. } => &[Method::GET, Method::PUT, Method::DELETE],
        Route::Plain("iscsi.global.config") => &[Method::GET, Method::PUT],
        Route::Plain(_) | Route::OpenApi => &[Method::GET],
    };
    if !allowed.contains(&method) {
        let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
        if let Ok(v) = header::HeaderValue::from_str(&allow.join(",")) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        return resp;
    }
    // Authentication: `Authorization: Bearer <api key>`.
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key_id = match auth.and_then(|a| a.strip_prefix("Bearer ")) {
        Some(key) => match shared.check_key(key.trim()) {
            KeyCheck::Valid(id) => id,
            KeyCheck::Revoked(_) | KeyCheck::Invalid => {
                return text(StatusCode::UNAUTHORIZED, "Invalid API key");
            }
        },
        None => return text(StatusCode::UNAUTHORIZED, "401: Unauthorized"),
    };
    shared.record_rest_use(peer);
    if method != Method::GET {
        if shared.key_readonly(key_id) {
            return StatusCode::FORBIDDEN.into_response();
        }
        return write(&shared, server, &route, &method, &body).await;
    }
    let (rpc_method, params) = match route {
        Route::OpenApi => unreachable!("answered above"),
        Route::Plain(m) if m != "core.get_jobs" => (m.to_owned(), Vec::new()),
        Route::Plain(m) => match query_params(server, &uri, &body) {
            Ok(p) => (m.to_owned(), p),
            Err(r) => return *r,
        },
        Route::Crud {
            service,
            id: Some(id),
        } => {
            let (_, mut opts) = parse_query_string(uri.query().unwrap_or(""));
            opts.insert("get".into(), json!(true));
            (
                format!("{service}.query"),
                vec![json!([["id", "=", id]]), Value::Object(opts)],
            )
        }
        Route::Crud { service, id: None } => match query_params(server, &uri, &body) {
            Ok(p) => (format!("{service}.query"), p),
            Err(r) => return *r,
        },
    };
    let shared2 = shared.clone();
    let result = tokio::task::spawn_blocking(move || {
        let ctx = Ctx {
            shared: &shared2,
            server,
            shape: server,
            transport: Transport::Rest,
        };
        methods::call(&ctx, &rpc_method, &params).map(|out| out.into_text(true))
    })
    .await;
    match result {
        Ok(Ok(body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Ok(Err(e)) => error_response(e),
        Err(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"message": "internal error", "traceback": ""}),
        ),
    }
}

/// `DELETE`/`PUT` on `/id/{id}` (`<service>.delete` / `.update`); other writes are not
/// simulated (422 ENOTSUP).
async fn write(
    shared: &Arc<Shared>,
    server: Personality,
    route: &Route,
    method: &Method,
    body: &Bytes,
) -> Response {
    let arg = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(e) => {
                let msg = json!({"message": format!("json parse error: {e}"), "errno": 22});
                return json_response(StatusCode::BAD_REQUEST, &msg);
            }
        }
    };
    let rpc_method = match (route, method) {
        (
            Route::Crud {
                service,
                id: Some(_),
            },
            &Method::DELETE,
        ) => format!("{service}.delete"),
        (
            Route::Crud {
                service,
                id: Some(_),
            },
            &Method::PUT,
        ) => format!("{service}.update"),
        (Route::Crud { service, id: None }, _) => format!("{service}.create"),
        _ => "iscsi.global.update".to_owned(),
    };
    let id = match route {
        Route::Crud { id: Some(id), .. } => Some(id.clone()),
        _ => None,
    };
    let params: Vec<Value> = id.into_iter().chain([arg]).collect();
    let shared = Arc::clone(shared);
    let done = tokio::task::spawn_blocking(move || {
        let ctx = Ctx {
            shared: &shared,
            server,
            shape: server,
            transport: Transport::Rest,
        };
        methods::write(&ctx, &rpc_method, &params, false)
    })
    .await;
    match done {
        Ok(Ok(v)) => json_response(StatusCode::OK, &v),
        Ok(Err(e)) => error_response(e),
        Err(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"message": "internal error", "traceback": ""}),
        ),
    }
}

/// `[filters, options]` from the query string, or from the JSON body when there is none.
fn query_params(server: Personality, uri: &Uri, body: &Bytes) -> Result<Vec<Value>, Box<Response>> {
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        let (f, o) = parse_query_string(q);
        return Ok(vec![Value::Array(f), Value::Object(o)]);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(vec![json!([]), json!({})]);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": format!("json parse error: {e}"), "errno": 22}),
        ))
    })?;
    let Value::Object(m) = v else {
        return Err(Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": "Body must be a JSON object", "errno": 22}),
        )));
    };
    // 25.04 also accepts `filters`/`options`.
    let allowed: &[&str] = if server >= Personality::V25_04 {
        &["query-filters", "query-options", "filters", "options"]
    } else {
        &["query-filters", "query-options"]
    };
    let unexpected: Vec<&str> = m
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if !unexpected.is_empty() {
        let message = format!(
            "The following attributes are not expected: {}",
            unexpected.join(", ")
        );
        return Err(Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "message": message }),
        )));
    }
    let f = m
        .get("query-filters")
        .or_else(|| m.get("filters"))
        .cloned()
        .unwrap_or(json!([]));
    let o = m
        .get("query-options")
        .or_else(|| m.get("options"))
        .cloned()
        .unwrap_or(json!({}));
    Ok(vec![f, o])
}

fn error_response(e: CallError) -> Response {
    match e {
        CallError::NoMethod => text(StatusCode::NOT_FOUND, "404: Not Found"),
        CallError::NotFound => json_response(StatusCode::NOT_FOUND, &json!({"message": ""})),
        CallError::Invalid { attr, msg } => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({ attr: [{"message": msg, "errno": 22}] }),
        ),
        CallError::Call { errno, reason, .. } => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"message": reason, "errno": errno}),
        ),
    }
}
