//! JSON-RPC 2.0 over WebSocket (`/api/current`, 25.04+): one persistent authenticated
//! connection, request ids, at most [`MAX_IN_FLIGHT`] calls in flight (the server allows
//! 20), pings under nginx's 60 s idle timeout, reconnection on the next call after a drop.

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{Connector, connect_async_tls_with_config};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{ApiKey, Timeouts};
use crate::error::ClientError;

/// Calls in flight on one connection (the middleware runs 10 and accepts 20).
pub const MAX_IN_FLIGHT: usize = 10;

type Reply = oneshot::Sender<Result<Frame, ClientError>>;

/// One answer as it came off the WebSocket: the message text and where its `result` is.
/// Nothing is parsed into values: a 170 MB snapshot list is read element by element from
/// here, then the text is dropped.
#[derive(Debug)]
pub(crate) struct Frame {
    text: Utf8Bytes,
    result: Range<usize>,
}

impl Frame {
    /// The `result`, as JSON text.
    pub(crate) fn result(&self) -> &[u8] {
        &self.text.as_bytes()[self.result.clone()]
    }
}

/// Answers above this size retire their connection: the WebSocket keeps a read buffer as
/// large as the largest message it received, for as long as it stays open.
pub(crate) const RETIRE_ABOVE: usize = 32 << 20;

/// One open WebSocket.
struct Conn {
    out: mpsc::UnboundedSender<Message>,
    pending: Mutex<HashMap<u64, Reply>>,
    closed: CancellationToken,
    /// Takes no new calls; closes when its pending calls are answered.
    retired: std::sync::atomic::AtomicBool,
}

impl Conn {
    fn fail_all(&self, detail: &str) {
        let pending: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, reply) in pending {
            let _ = reply.send(Err(ClientError::Connection {
                method: "(pending call)".into(),
                detail: detail.to_owned(),
            }));
        }
    }
}

/// A JSON-RPC endpoint with its credentials.
pub(crate) struct JsonRpc {
    url: String,
    key: ApiKey,
    username: Option<String>,
    connector: Option<Connector>,
    timeouts: Timeouts,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    slots: Semaphore,
    next_id: AtomicU64,
    /// Stops the connection tasks when the client goes away.
    shutdown: CancellationToken,
}

impl Drop for JsonRpc {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Maps a JSON-RPC `error` object.
pub(crate) fn rpc_error(method: &str, err: &Value) -> ClientError {
    let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let data = err.get("data");
    let errname = data
        .and_then(|d| d.get("errname"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let errno = data.and_then(|d| d.get("error")).and_then(Value::as_i64);
    let reason = data
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or(message);
    let mut detail = format!("{reason} (JSON-RPC {code})");
    if let Some(extra) = data.and_then(|d| d.get("extra")).filter(|e| !e.is_null()) {
        detail.push_str(&format!(": {extra}"));
    }
    let method = method.to_owned();
    match code {
        -32601 => ClientError::method_not_found(&method),
        -32000 => ClientError::Busy { method, detail },
        -32603 => ClientError::Server { method, detail },
        _ if errname == "ENOTAUTHENTICATED" || errno == Some(207) => {
            ClientError::Unauthorized { detail }
        }
        _ if errname == "EACCES" || errno == Some(13) => ClientError::Forbidden { method, detail },
        _ if errname == "EBUSY" || errno == Some(16) => ClientError::Busy { method, detail },
        _ => ClientError::Call { method, detail },
    }
}

impl JsonRpc {
    /// An endpoint at `url` (`ws://host/api/current` or `wss://…`).
    pub(crate) fn new(
        url: String,
        key: ApiKey,
        username: Option<String>,
        connector: Option<Connector>,
        timeouts: Timeouts,
    ) -> JsonRpc {
        JsonRpc {
            url,
            key,
            username,
            connector,
            timeouts,
            conn: tokio::sync::Mutex::new(None),
            slots: Semaphore::new(MAX_IN_FLIGHT),
            next_id: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
        }
    }

    /// The endpoint.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method`, connecting and logging in first when needed.
    pub(crate) async fn call(&self, method: &str, params: &[Value]) -> Result<Frame, ClientError> {
        let conn = self.connection().await?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| ClientError::Connection {
                method: method.into(),
                detail: "client closed".into(),
            })?;
        let result = self.request(&conn, method, params).await;
        if let Err(ClientError::Unauthorized { .. }) = &result {
            // The session lost its login (expired, key revoked): log in afresh next time.
            conn.closed.cancel();
        }
        result
    }

    /// Closes the connection (the next call reconnects).
    pub(crate) async fn disconnect(&self) {
        if let Some(c) = self.conn.lock().await.take() {
            c.closed.cancel();
        }
    }

    async fn request(
        &self,
        conn: &Arc<Conn>,
        method: &str,
        params: &[Value],
    ) -> Result<Frame, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        conn.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if conn.out.send(Message::text(msg.to_string())).is_err() || conn.closed.is_cancelled() {
            conn.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(ClientError::Connection {
                method: method.into(),
                detail: "the WebSocket is closed".into(),
            });
        }
        let timeout = self.timeouts.call;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(frame))) => {
                if frame.text.len() > RETIRE_ABOVE {
                    tracing::debug!(
                        bytes = frame.text.len(),
                        "TrueNAS WebSocket retired after a large answer (frees its buffer)"
                    );
                    conn.retired.store(true, Ordering::SeqCst);
                }
                if conn.retired.load(Ordering::SeqCst)
                    && conn
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .is_empty()
                {
                    conn.closed.cancel();
                }
                Ok(frame)
            }
            Ok(Ok(Err(e))) => Err(e.with_method(method)),
            Ok(Err(_)) => Err(ClientError::Connection {
                method: method.into(),
                detail: "the WebSocket closed before the answer".into(),
            }),
            Err(_) => {
                conn.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                // A hung call holds a server slot and may mean a dead peer: start afresh.
                conn.closed.cancel();
                Err(ClientError::Timeout {
                    method: method.into(),
                    timeout,
                })
            }
        }
    }

    /// The open connection, or a new authenticated one.
    async fn connection(&self) -> Result<Arc<Conn>, ClientError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && !c.closed.is_cancelled()
            && !c.retired.load(Ordering::SeqCst)
        {
            return Ok(c.clone());
        }
        *guard = None;
        let conn = self.open().await?;
        if let Err(e) = self.login(&conn).await {
            conn.closed.cancel();
            return Err(e);
        }
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn open(&self) -> Result<Arc<Conn>, ClientError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(1 << 30))
            .max_frame_size(None);
        let connect =
            connect_async_tls_with_config(&self.url, Some(config), true, self.connector.clone());
        let (ws, _) = match tokio::time::timeout(self.timeouts.connect, connect).await {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) => {
                return Err(ClientError::Connection {
                    method: "connect".into(),
                    detail: format!("WebSocket {}: {e}", self.url),
                });
            }
            Err(_) => {
                return Err(ClientError::Timeout {
                    method: "connect".into(),
                    timeout: self.timeouts.connect,
                });
            }
        };
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        let closed = self.shutdown.child_token();
        let conn = Arc::new(Conn {
            out,
            pending: Mutex::new(HashMap::new()),
            closed: closed.clone(),
            retired: std::sync::atomic::AtomicBool::new(false),
        });
        let ping_every = self.timeouts.ping_interval;
        let writer_closed = closed.clone();
        tokio::spawn(
            async move {
                let mut ping = tokio::time::interval(ping_every);
                ping.tick().await;
                loop {
                    tokio::select! {
                        () = writer_closed.cancelled() => break,
                        msg = rx.recv() => match msg {
                            Some(m) => if sink.send(m).await.is_err() { break },
                            None => break,
                        },
                        _ = ping.tick() => {
                            if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                writer_closed.cancel();
                let _ = sink.send(Message::Close(None)).await;
            }
            .in_current_span(),
        );
        let reader = conn.clone();
        tokio::spawn(
            async move {
                let why = loop {
                    let msg = tokio::select! {
                        () = reader.closed.cancelled() => break "the connection was closed",
                        m = stream.next() => m,
                    };
                    match msg {
                        Some(Ok(Message::Text(text))) => dispatch(&reader, text),
                        Some(Ok(Message::Close(_))) | None => break "TrueNAS closed the WebSocket",
                        Some(Ok(_)) => {}
                        Some(Err(_)) => break "the WebSocket failed",
                    }
                };
                reader.closed.cancel();
                reader.fail_all(why);
                tracing::debug!(reason = why, "TrueNAS WebSocket closed");
            }
            .in_current_span(),
        );
        Ok(conn)
    }

    async fn login(&self, conn: &Arc<Conn>) -> Result<(), ClientError> {
        if let Some(user) = &self.username {
            let arg = json!({"mechanism": "API_KEY_PLAIN", "username": user,
                "api_key": self.key.expose(), "login_options": {"user_info": false}});
            match self.request(conn, "auth.login_ex", &[arg]).await {
                Ok(frame) => {
                    let v = value(&frame, "auth.login_ex")?;
                    let rt = v
                        .get("response_type")
                        .and_then(Value::as_str)
                        .unwrap_or("(none)");
                    return match rt {
                        "SUCCESS" => Ok(()),
                        "EXPIRED" => Err(ClientError::Unauthorized {
                            detail: "auth.login_ex: EXPIRED (the key expired or was revoked)"
                                .into(),
                        }),
                        other => Err(ClientError::Unauthorized {
                            detail: format!("auth.login_ex: {other} for user {user}"),
                        }),
                    };
                }
                Err(e) if e.is_method_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let key = json!(self.key.expose());
        let frame = self
            .request(conn, "auth.login_with_api_key", &[key])
            .await?;
        match value(&frame, "auth.login_with_api_key")? {
            Value::Bool(true) => Ok(()),
            other => Err(ClientError::Unauthorized {
                detail: format!("auth.login_with_api_key answered {other}"),
            }),
        }
    }
}

/// The `result` of an answer as a value (for small answers).
pub(crate) fn value(frame: &Frame, method: &str) -> Result<Value, ClientError> {
    serde_json::from_slice(frame.result()).map_err(|e| ClientError::Malformed {
        method: method.to_owned(),
        detail: format!("not JSON: {e}"),
    })
}

/// The envelope of a server message; `result` stays text.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Value>,
}

/// A key that is present, even with a `null` value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Routes one server message to its pending call.
fn dispatch(conn: &Conn, text: Utf8Bytes) {
    let (id, result) = match serde_json::from_str::<Answer<'_>>(text.as_str()) {
        Ok(answer) => {
            let Some(id) = answer.id.as_ref().and_then(Value::as_u64) else {
                return; // a notification (collection_update, ...) or an error without id
            };
            let result = match (answer.result, answer.error) {
                (_, Some(err)) if !err.is_null() => Err(rpc_error("", &err)),
                (Some(raw), _) => {
                    let start = raw.get().as_ptr() as usize - text.as_str().as_ptr() as usize;
                    Ok(start..start + raw.get().len())
                }
                _ => Err(ClientError::Malformed {
                    method: String::new(),
                    detail: "a JSON-RPC answer with neither result nor error".into(),
                }),
            };
            (id, result)
        }
        Err(e) => {
            // Not JSON: fail the call it answers (when its id can be found), not just drop it.
            let Some(id) = top_level_id(text.as_bytes()) else {
                tracing::warn!(
                    len = text.len(),
                    "TrueNAS sent a WebSocket message that is not JSON"
                );
                return;
            };
            let detail = format!("not JSON: {e}");
            (
                id,
                Err(ClientError::Malformed {
                    method: String::new(),
                    detail,
                }),
            )
        }
    };
    let Some(reply) = conn
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id)
    else {
        return; // answer to a call that timed out
    };
    let _ = reply.send(result.map(|result| Frame { text, result }));
    if conn.retired.load(Ordering::SeqCst)
        && conn
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    {
        conn.closed.cancel();
    }
}

/// The `"id": N` of a message's top-level object, found without parsing it (the message
/// may be broken further on).
fn top_level_id(text: &[u8]) -> Option<u64> {
    let mut depth = 0u32;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < text.len() && text[j] != b'"' {
                    j += if text[j] == b'\\' { 2 } else { 1 };
                }
                let key = text.get(start..j)?;
                i = j + 1;
                if depth == 1
                    && key == b"id"
                    && let Some(rest) = text.get(i..)?.trim_ascii_start().strip_prefix(b":")
                {
                    let rest = rest.trim_ascii_start();
                    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                    return std::str::from_utf8(&rest[..digits]).ok()?.parse().ok();
                }
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i64, errno: i64, errname: &str) -> Value {
        json!({"code": code, "message": "Method call error",
               "data": {"error": errno, "errname": errname, "reason": format!("[{errname}] x")}})
    }

    #[test]
    fn the_id_of_a_broken_answer_is_still_found() {
        assert_eq!(
            top_level_id(br#"{"jsonrpc": "2.0", "id": 17, "result": [{"a": }"#),
            Some(17)
        );
        assert_eq!(
            top_level_id(br#"{"result": [{"id": 3, "x": "\"id\": 4"}], "method": "id", "id" : 9"#),
            Some(9)
        );
        assert_eq!(top_level_id(br#"{"result": [{"id": 3}]"#), None);
        assert_eq!(top_level_id(b"<html>"), None);
    }

    #[test]
    fn errors_map_by_code_and_errno() {
        let e = rpc_error("pool.query", &err(-32001, 207, "ENOTAUTHENTICATED"));
        assert!(matches!(e, ClientError::Unauthorized { .. }));
        let e = rpc_error("pool.query", &err(-32001, 13, "EACCES"));
        assert!(matches!(e, ClientError::Forbidden { .. }));
        assert!(e.to_string().contains("READONLY_ADMIN"), "{e}");
        let e = rpc_error(
            "",
            &json!({"code": -32601, "message": "Method does not exist"}),
        )
        .with_method("zfs.snapshot.query");
        assert!(e.is_method_not_found());
        assert!(e.to_string().contains("pool.snapshot.query"), "{e}");
        assert!(rpc_error("m", &err(-32000, 0, "")).retryable());
        assert!(rpc_error("m", &err(-32001, 16, "EBUSY")).retryable());
        assert!(rpc_error("m", &err(-32603, 14, "EFAULT")).retryable());
        assert!(!rpc_error("m", &err(-32602, 22, "EINVAL")).retryable());
    }
}
