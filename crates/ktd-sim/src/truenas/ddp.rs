//! The legacy DDP-style WebSocket (`/websocket`, every release): `connect`/`connected`,
//! `method`/`result`, `ping`/`pong`, `sub`/`ready` with `added|changed|removed` events.
//! On 25.04+ it speaks the v24.10 API shapes (reference §3.1).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::auth::{self, Who};
use super::methods::{self, CallError, Ctx, Transport};
use super::{Event, Shared};
use crate::faults::FaultAction;
use crate::world::Personality;

/// `GET /websocket`.
pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| connection(socket, shared, peer)),
        Err(e) => e.into_response(),
    }
}

struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    server: Personality,
    connected: AtomicBool,
    authenticated: AtomicBool,
    key_id: AtomicU32,
    in_flight: AtomicUsize,
    subs: Mutex<HashMap<String, String>>,
    tx: mpsc::UnboundedSender<Option<String>>,
    gone: tokio_util::sync::CancellationToken,
}

impl Conn {
    fn send(&self, v: &Value) {
        // A closed writer means the connection is going away.
        let _ = self.tx.send(Some(v.to_string()));
    }

    fn who(&self) -> Who<'_> {
        Who {
            shared: &self.shared,
            server: self.server,
            peer: self.peer,
            authenticated: &self.authenticated,
            key_id: &self.key_id,
        }
    }
}

async fn connection(socket: WebSocket, shared: Arc<Shared>, peer: SocketAddr) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let gone = shared.shutdown.child_token();
    let server = shared.personality();
    let conn = Arc::new(Conn {
        shared: shared.clone(),
        peer,
        server,
        connected: AtomicBool::new(false),
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
            let Some(Some(t)) = out else {
                break;
            };
            if sink.send(Message::Text(t.into())).await.is_err() {
                break;
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
                Some(Ok(Message::Text(t))) => on_text(&conn, t.as_str()),
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    if !gone.is_cancelled() {
        // A closed writer has nothing left to flush.
        let _ = conn.tx.send(None);
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
    if subscribed {
        let mut msg = json!({"msg": e.msg, "collection": e.collection, "id": e.id});
        if let Some(f) = &e.fields {
            msg["fields"] = f.clone();
        }
        if let Some(x) = &e.extra {
            msg["extra"] = x.clone();
        }
        conn.send(&msg);
    }
}

/// The legacy error object.
fn ddp_error(errno: i64, errname: &str, reason: &str, validation: Option<Value>) -> Value {
    let reason = format!("[{errname}] {reason}");
    let kind = if validation.is_some() {
        json!("VALIDATION")
    } else {
        Value::Null
    };
    json!({"error": errno, "errname": errname, "type": kind, "reason": reason,
           "trace": {"class": if validation.is_some() { "ValidationErrors" } else { "CallError" },
                     "frames": [], "formatted": format!("middlewared.service_exception: {reason}"),
                     "repr": format!("CallError('{reason}')")},
           "extra": validation.unwrap_or(Value::Null)})
}

fn call_error(method: &str, e: CallError) -> Value {
    match e {
        CallError::NoMethod => {
            ddp_error(2, "ENOENT", &format!("Method {method:?} not found"), None)
        }
        CallError::NotFound => ddp_error(2, "ENOENT", "Object not found", None),
        CallError::Invalid { attr, msg } => ddp_error(
            22,
            "EINVAL",
            &format!("{attr}: {msg}"),
            Some(json!([[attr, msg, 22]])),
        ),
        CallError::Call {
            errno,
            errname,
            reason,
        } => ddp_error(errno, errname, &reason, None),
    }
}

fn on_text(conn: &Arc<Conn>, text: &str) {
    let limit = if conn.authenticated.load(Ordering::SeqCst) {
        65_536
    } else {
        8_192
    };
    if text.len() > limit {
        // The real server closes the socket; dropping the writer does that.
        conn.gone.cancel();
        return;
    }
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) else {
        conn.send(&json!({"msg": "failed", "version": "1"}));
        return;
    };
    let id = m.get("id").cloned().unwrap_or(Value::Null);
    let msg = m.get("msg").and_then(Value::as_str).unwrap_or_default();
    if !conn.connected.load(Ordering::SeqCst) {
        let ok = msg == "connect"
            && m.get("version").and_then(Value::as_str) == Some("1")
            && m.get("support")
                .and_then(Value::as_array)
                .is_some_and(|s| s.contains(&json!("1")));
        if ok {
            conn.connected.store(true, Ordering::SeqCst);
            conn.send(&json!({"msg": "connected", "session": uuid::Uuid::new_v4().to_string()}));
        } else {
            conn.send(&json!({"msg": "failed", "version": "1"}));
        }
        return;
    }
    match msg {
        "ping" => conn.send(&json!({"msg": "pong", "id": id})),
        "sub" => {
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !conn.authenticated.load(Ordering::SeqCst) {
                let error = ddp_error(13, "EACCES", "Not authorized", None);
                conn.send(&json!({"msg": "result", "id": id, "error": error}));
                return;
            }
            let ident = id.as_str().unwrap_or_default().to_owned();
            conn.subs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ident, name);
            conn.send(&json!({"msg": "ready", "subs": [id]}));
        }
        "unsub" => {
            let ident = id.as_str().unwrap_or_default();
            conn.subs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(ident);
        }
        "method" => {
            let method = m
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let params = m
                .get("params")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if conn.in_flight.load(Ordering::SeqCst) >= 20 {
                let error = ddp_error(
                    109,
                    "ETOOMANYREFS",
                    "Maximum number of concurrent calls (20) has exceeded.",
                    None,
                );
                conn.send(&json!({"msg": "result", "id": id, "error": error}));
                return;
            }
            conn.in_flight.fetch_add(1, Ordering::SeqCst);
            let conn2 = Arc::clone(conn);
            conn.shared.tasks.spawn(async move {
                let reply = run_call(&conn2, &method, params).await;
                conn2.in_flight.fetch_sub(1, Ordering::SeqCst);
                match reply {
                    Some(Ok(result)) => {
                        conn2.send(&json!({"msg": "result", "id": id, "result": result}))
                    }
                    Some(Err(error)) => {
                        conn2.send(&json!({"msg": "result", "id": id, "error": error}))
                    }
                    None => {}
                }
            });
        }
        _ => conn.send(&json!({"msg": "failed", "version": "1"})),
    }
}

async fn run_call(
    conn: &Arc<Conn>,
    method: &str,
    params: Vec<Value>,
) -> Option<Result<Value, Value>> {
    let shared = &conn.shared;
    tokio::select! {
        () = tokio::time::sleep(shared.faults.latency()) => {}
        () = conn.gone.cancelled() => return None,
    }
    match shared.faults.decide() {
        FaultAction::Serve => {}
        FaultAction::Error => {
            return Some(Err(ddp_error(
                14,
                "EFAULT",
                "simulated middleware failure",
                None,
            )));
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
    let login_ex = conn.server >= Personality::V25_04 && method == "auth.login_ex";
    let anonymous = matches!(method, "auth.login_with_api_key" | "auth.login") || login_ex;
    let write = methods::is_write(conn.server, Transport::WebSocket, method);
    if !anonymous && !write && !methods::exists(conn.server, Transport::WebSocket, method) {
        return Some(Err(call_error(method, CallError::NoMethod)));
    }
    if anonymous && let Err(e) = auth::rate_limit(&conn.who(), method).await {
        return Some(Err(call_error(method, e)));
    }
    if !anonymous && !conn.authenticated.load(Ordering::SeqCst) {
        return Some(Err(ddp_error(
            207,
            "ENOTAUTHENTICATED",
            "Not authenticated",
            None,
        )));
    }
    let result = match method {
        "auth.login_with_api_key" => {
            let key = params.first().and_then(Value::as_str).unwrap_or_default();
            Ok(json!(auth::login(&conn.who(), key, None) == "SUCCESS"))
        }
        "auth.login" => Ok(json!(false)),
        "auth.login_ex" => auth::login_ex(&conn.who(), params.first()),
        _ => {
            let shared = Arc::clone(shared);
            let server = conn.server;
            // 25.04+ adapts the legacy endpoint to the v24.10 models.
            let shape = server.min(Personality::V24_10);
            let m = method.to_owned();
            let readonly = conn.who().readonly();
            let done = tokio::task::spawn_blocking(move || {
                let ctx = Ctx {
                    shared: &shared,
                    server,
                    shape,
                    transport: Transport::WebSocket,
                };
                if write {
                    return methods::write(&ctx, &m, &params, readonly);
                }
                methods::call(&ctx, &m, &params).map(methods::Output::into_value)
            })
            .await;
            done.unwrap_or(Err(CallError::einval("internal error")))
        }
    };
    Some(result.map_err(|e| call_error(method, e)))
}
