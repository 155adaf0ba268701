//! JSON-RPC 2.0 over WebSocket (`/api/current`, `/api/vX`; 25.04+), `/api/versions`,
//! `/api/boot_id`, logins and `collection_update` subscriptions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth;
use super::methods::{self, CallError, Ctx, Output, Transport};
use super::{Event, Shared};
use crate::faults::FaultAction;
use crate::world::Personality;

/// Calls that may be in flight on one connection before −32000.
const MAX_IN_FLIGHT: usize = 20;

fn redirect_to_ui() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/ui/")], "").into_response()
}

fn api_versions(p: Personality) -> Vec<(&'static str, Personality)> {
    let mut v = vec![
        ("v25.04.0", Personality::V25_04),
        ("v25.04.1", Personality::V25_04),
        ("v25.04.2", Personality::V25_04),
    ];
    if p >= Personality::V25_10 {
        v.extend([
            ("v25.10.0", Personality::V25_10),
            ("v25.10.1", Personality::V25_10),
        ]);
    }
    v
}

/// `GET /api/versions`: JSON list on 25.04+, nginx's redirect to the UI before.
pub(crate) async fn versions(State(shared): State<Arc<Shared>>) -> Response {
    let p = shared.personality();
    if !p.has_jsonrpc() {
        return redirect_to_ui();
    }
    let names: Vec<&str> = api_versions(p).into_iter().map(|(n, _)| n).collect();
    axum::Json(names).into_response()
}

/// `GET /api/boot_id` (25.10+).
pub(crate) async fn boot_id(State(shared): State<Arc<Shared>>) -> Response {
    let p = shared.personality();
    match p {
        p if !p.has_jsonrpc() => redirect_to_ui(),
        p if p >= Personality::V25_10 => axum::Json(shared.boot_id.clone()).into_response(),
        _ => super::rest::not_found().await,
    }
}

/// `GET /api/{version}`: the WebSocket upgrade.
pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(version): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let server = shared.personality();
    if !server.has_jsonrpc() {
        return redirect_to_ui();
    }
    let shape = if version == "current" {
        server
    } else if version == "v24.10" {
        // Served but hidden from `/api/versions`.
        Personality::V24_10
    } else {
        match api_versions(server)
            .into_iter()
            .find(|(n, _)| *n == version)
        {
            Some((_, p)) => p,
            None => return super::rest::not_found().await,
        }
    };
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| connection(socket, shared, peer, server, shape)),
        Err(e) => e.into_response(),
    }
}

/// What the writer sends.
enum Out {
    Text(String),
    Close(u16, &'static str),
    /// Flush what is queued, then stop.
    End,
}

/// Per-connection state.
struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    server: Personality,
    shape: Personality,
    authenticated: AtomicBool,
    key_id: AtomicU32,
    in_flight: AtomicUsize,
    subs: Mutex<HashMap<String, String>>,
    tx: mpsc::UnboundedSender<Out>,
    /// Cancelled to drop the connection (fault) or when it ends.
    gone: CancellationToken,
}

impl Conn {
    fn who(&self) -> auth::Who<'_> {
        auth::Who {
            shared: &self.shared,
            server: self.server,
            peer: self.peer,
            authenticated: &self.authenticated,
            key_id: &self.key_id,
        }
    }

    fn send(&self, v: &Value) {
        // A closed writer means the connection is going away; nothing to do.
        let _ = self.tx.send(Out::Text(v.to_string()));
    }
}

async fn connection(
    socket: WebSocket,
    shared: Arc<Shared>,
    peer: SocketAddr,
    server: Personality,
    shape: Personality,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let gone = shared.shutdown.child_token();
    let conn = Arc::new(Conn {
        shared: shared.clone(),
        peer,
        server,
        shape,
        authenticated: AtomicBool::new(false),
        key_id: AtomicU32::new(0),
        in_flight: AtomicUsize::new(0),
        subs: Mutex::new(HashMap::new()),
        tx,
        gone: gone.clone(),
    });
    let writer_gone = gone.clone();
    let writer = shared.tasks.spawn(async move {
        loop {
            let out = tokio::select! {
                () = writer_gone.cancelled() => break,
                out = rx.recv() => out,
            };
            match out {
                Some(Out::Text(t)) => {
                    if sink.send(Message::Text(t.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    // The peer may already be gone.
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
                Some(Out::End) | None => break,
            }
        }
    });
    let mut events = shared.events.subscribe();
    loop {
        tokio::select! {
            () = gone.cancelled() => break,
            ev = events.recv() => match ev {
                Ok(e) => forward_event(&conn, &e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if !on_text(&conn, t.as_str()) {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    // Flush what is queued (a close frame, say), unless the connection is being dropped;
    // then stop the calls still running.
    if !gone.is_cancelled() {
        // A closed writer has nothing left to flush.
        let _ = conn.tx.send(Out::End);
    }
    // The writer's result carries nothing.
    let _ = writer.await;
    gone.cancel();
}

fn forward_event(conn: &Conn, e: &Event) {
    let subscribed = conn
        .subs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .any(|name| {
            let name = name.split(':').next().unwrap_or_default();
            name == "*" || name == e.collection
        });
    if !subscribed {
        return;
    }
    let mut params = json!({"msg": e.msg, "collection": e.collection, "id": e.id});
    if let Some(f) = &e.fields {
        params["fields"] = f.clone();
    }
    if let Some(x) = &e.extra {
        params["extra"] = x.clone();
    }
    conn.send(&json!({"jsonrpc": "2.0", "method": "collection_update", "params": params}));
}

fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut err = json!({"code": code, "message": message});
    if let Some(d) = data {
        err["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

fn error_data(errno: i64, errname: &str, reason: &str, class: &str, extra: Value) -> Value {
    let reason = format!("[{errname}] {reason}");
    json!({"error": errno, "errname": errname, "reason": reason,
           "trace": {"class": class, "frames": [],
                     "formatted": format!("Traceback (most recent call last):\nmiddlewared.service_exception.{class}: {reason}\n"),
                     "repr": format!("{class}('{reason}')")},
           "extra": extra})
}

fn call_error(id: &Value, e: CallError) -> Value {
    match e {
        CallError::NoMethod => error(id, -32601, "Method does not exist", None),
        CallError::Invalid { attr, msg } => error(
            id,
            -32602,
            "Invalid params",
            Some(error_data(
                22,
                "EINVAL",
                &format!("{attr}: {msg}"),
                "ValidationErrors",
                json!([[attr, msg, 22]]),
            )),
        ),
        CallError::NotFound => error(
            id,
            -32602,
            "Invalid params",
            Some(error_data(
                2,
                "ENOENT",
                "Object not found",
                "MatchNotFound",
                json!([["id", "Object not found", 2]]),
            )),
        ),
        CallError::Call {
            errno,
            errname,
            reason,
        } => error(
            id,
            -32001,
            "Method call error",
            Some(error_data(
                errno,
                errname,
                &reason,
                "CallError",
                Value::Null,
            )),
        ),
    }
}

/// Handles one text frame; false = close the connection.
fn on_text(conn: &Arc<Conn>, text: &str) -> bool {
    let limit = if conn.authenticated.load(Ordering::SeqCst) {
        65_536
    } else {
        8_192
    };
    if text.len() > limit {
        // Sent best-effort; the connection closes right after.
        let _ = conn
            .tx
            .send(Out::Close(1009, "Max message length exceeded"));
        return false;
    }
    let null = Value::Null;
    let Ok(req) = serde_json::from_str::<Value>(text) else {
        conn.send(&error(&null, -32700, "Parse error", None));
        return true;
    };
    let Value::Object(m) = &req else {
        conn.send(&error(&null, -32600, "Invalid Request", None));
        return true;
    };
    let id = m.get("id").cloned();
    let reply_id = id.clone().unwrap_or(Value::Null);
    let valid_id = id
        .as_ref()
        .is_none_or(|i| i.is_null() || i.is_string() || i.is_i64() || i.is_u64());
    let params = match m.get("params") {
        None => Some(Vec::new()),
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => None,
    };
    let (Some("2.0"), Some(Value::String(method)), Some(params), true) = (
        m.get("jsonrpc").and_then(Value::as_str),
        m.get("method"),
        params,
        valid_id,
    ) else {
        conn.send(&error(&reply_id, -32600, "Invalid Request", None));
        return true;
    };
    if conn.in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
        conn.send(&error(
            &reply_id,
            -32000,
            "Maximum number of concurrent calls (20) has exceeded.",
            None,
        ));
        return true;
    }
    conn.in_flight.fetch_add(1, Ordering::SeqCst);
    let conn2 = Arc::clone(conn);
    let method = method.clone();
    conn.shared.tasks.spawn(async move {
        let reply = run_call(&conn2, &method, params).await;
        conn2.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let (Some(reply), Some(id)) = (reply, id) {
            let text = match reply {
                Ok(out) => format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#,
                    out.into_text(false)
                ),
                Err(Reply::Call(e)) => call_error(&id, e).to_string(),
                Err(Reply::Raw(code, msg, data)) => error(&id, code, &msg, data).to_string(),
            };
            // A closed writer means the connection is going away.
            let _ = conn2.tx.send(Out::Text(text));
        }
    });
    true
}

enum Reply {
    Call(CallError),
    Raw(i64, String, Option<Value>),
}

/// Runs one call under the fault injector; None = no reply (hang or dropped connection).
async fn run_call(
    conn: &Arc<Conn>,
    method: &str,
    params: Vec<Value>,
) -> Option<Result<Output, Reply>> {
    let shared = &conn.shared;
    tokio::select! {
        () = tokio::time::sleep(shared.faults.latency()) => {}
        () = conn.gone.cancelled() => return None,
    }
    match shared.faults.decide() {
        FaultAction::Serve => {}
        FaultAction::Error => {
            let data = error_data(
                14,
                "EFAULT",
                "simulated middleware failure",
                "CallError",
                Value::Null,
            );
            return Some(Err(Reply::Raw(-32603, "Internal error".into(), Some(data))));
        }
        FaultAction::Hang => {
            conn.gone.cancelled().await;
            return None;
        }
        FaultAction::Drop => {
            conn.gone.cancel();
            return None;
        }
    }
    let unauthenticated_ok = matches!(
        method,
        "auth.login_with_api_key"
            | "auth.login_ex"
            | "auth.login"
            | "core.set_options"
            | "auth.mechanism_choices"
    );
    let known = unauthenticated_ok
        || matches!(method, "core.subscribe" | "core.unsubscribe")
        || methods::exists(conn.server, Transport::WebSocket, method)
        || methods::is_write(conn.server, Transport::WebSocket, method);
    if !known {
        return Some(Err(Reply::Call(CallError::NoMethod)));
    }
    if unauthenticated_ok && let Err(e) = auth::rate_limit(&conn.who(), method).await {
        return Some(Err(Reply::Call(e)));
    }
    if !unauthenticated_ok && !conn.authenticated.load(Ordering::SeqCst) {
        return Some(Err(Reply::Call(CallError::Call {
            errno: 207,
            errname: "ENOTAUTHENTICATED",
            reason: "Not authenticated".into(),
        })));
    }
    let result = match method {
        "auth.login_with_api_key" => {
            let key = params.first().and_then(Value::as_str).unwrap_or_default();
            Ok(json!(auth::login(&conn.who(), key, None) == "SUCCESS"))
        }
        "auth.login_ex" => auth::login_ex(&conn.who(), params.first()),
        "auth.login" => Ok(json!(false)),
        "auth.mechanism_choices" => Ok(json!([
            "API_KEY_PLAIN",
            "PASSWORD_PLAIN",
            "AUTH_TOKEN_PLAIN"
        ])),
        "core.set_options" => set_options(conn, params.first()),
        "core.subscribe" => subscribe(conn, params.first()),
        "core.unsubscribe" => {
            let ident = params.first().and_then(Value::as_str).unwrap_or_default();
            conn.subs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(ident);
            Ok(Value::Null)
        }
        _ => {
            let shared = Arc::clone(shared);
            let (server, shape, method) = (conn.server, conn.shape, method.to_owned());
            let write = methods::is_write(server, Transport::WebSocket, &method);
            let readonly = conn.who().readonly();
            let done = tokio::task::spawn_blocking(move || {
                let ctx = Ctx {
                    shared: &shared,
                    server,
                    shape,
                    transport: Transport::WebSocket,
                };
                if write {
                    return methods::write(&ctx, &method, &params, readonly).map(Output::Value);
                }
                methods::call(&ctx, &method, &params)
            })
            .await;
            return Some(
                done.unwrap_or(Err(CallError::einval("internal error")))
                    .map_err(Reply::Call),
            );
        }
    };
    Some(result.map(Output::Value).map_err(Reply::Call))
}

fn set_options(conn: &Conn, arg: Option<&Value>) -> Result<Value, CallError> {
    let Some(Value::Object(o)) = arg else {
        return Err(CallError::invalid(
            "core_set_options.options",
            "attribute required",
        ));
    };
    for (k, v) in o {
        let allowed =
            k == "py_exceptions" || (k == "legacy_jobs" && conn.server >= Personality::V25_10);
        if !allowed {
            return Err(CallError::invalid(
                &format!("core_set_options.options.{k}"),
                "Extra inputs are not permitted",
            ));
        }
        if !v.is_boolean() {
            return Err(CallError::invalid(
                &format!("core_set_options.options.{k}"),
                "Input should be a valid boolean",
            ));
        }
    }
    Ok(Value::Null)
}

fn subscribe(conn: &Conn, arg: Option<&Value>) -> Result<Value, CallError> {
    let name = arg
        .and_then(Value::as_str)
        .ok_or_else(|| CallError::invalid("core_subscribe.event", "attribute required"))?;
    let base = name.split(':').next().unwrap_or_default();
    let known = base == "*"
        || base == "alert.list"
        || base
            .strip_suffix(".query")
            .is_some_and(|svc| methods::service_exists(conn.server, Transport::WebSocket, svc))
        || base == "core.get_jobs";
    if !known {
        return Err(CallError::Call {
            errno: 2,
            errname: "ENOENT",
            reason: format!("Event {name:?} not found"),
        });
    }
    let ident = uuid::Uuid::new_v4().to_string();
    conn.subs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(ident.clone(), name.to_owned());
    Ok(json!(ident))
}
