//! A proxy in front of the simulator (REST and JSON-RPC) that corrupts snapshot query
//! answers on demand: the simulator only serves well-formed worlds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State, ws::rejection::WebSocketUpgradeRejection};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as TMessage;
use tokio_util::sync::CancellationToken;

/// What happens to the next snapshot query answers.
#[derive(Clone, Debug, Default)]
pub enum Corruption {
    /// Nothing.
    #[default]
    None,
    /// Not JSON in the middle of the list.
    BrokenJson,
    /// This snapshot's `properties` become a number.
    BadShape(String),
    /// This snapshot loses its `name` and `id`.
    Nameless(String),
}

impl Corruption {
    /// The corrupted text of a snapshot query `result`.
    fn apply(&self, mut result: Value) -> String {
        let find = |items: &mut Vec<Value>, name: &str| -> Option<usize> {
            items
                .iter()
                .position(|s| s.get("name").and_then(Value::as_str) == Some(name))
        };
        match (self, &mut result) {
            (Corruption::BrokenJson, Value::Array(items)) if items.len() > 1 => {
                let (a, b) = items.split_at(items.len() / 2);
                let text = |v: &[Value]| Value::Array(v.to_vec()).to_string();
                let (a, b) = (text(a), text(b));
                format!("{},{{\"oops\": }},{}", &a[..a.len() - 1], &b[1..])
            }
            (Corruption::BadShape(name), Value::Array(items)) => {
                if let Some(i) = find(items, name) {
                    items[i]["properties"] = Value::from(42);
                }
                result.to_string()
            }
            (Corruption::Nameless(name), Value::Array(items)) => {
                if let Some(i) = find(items, name) {
                    let o = items[i].as_object_mut().unwrap();
                    o.remove("name");
                    o.remove("id");
                }
                result.to_string()
            }
            _ => result.to_string(),
        }
    }
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    corruption: Arc<Mutex<Corruption>>,
}

/// The proxy's URL and its corruption switch.
pub struct Corrupting {
    pub url: String,
    pub corruption: Arc<Mutex<Corruption>>,
}

impl Corrupting {
    pub fn set(&self, c: Corruption) {
        *self.corruption.lock().unwrap() = c;
    }
}

pub async fn start(upstream: String, shutdown: CancellationToken) -> Corrupting {
    let corruption = Arc::new(Mutex::new(Corruption::None));
    let state = Proxy {
        upstream,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        corruption: corruption.clone(),
    };
    let app = axum::Router::new()
        .route("/api/{version}", axum::routing::get(api))
        .fallback(rest)
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .unwrap();
    });
    Corrupting { url, corruption }
}

async fn rest(State(p): State<Proxy>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut req = p
        .http
        .get(format!("{}{}", p.upstream, uri))
        .body(body.to_vec());
    if let Some(auth) = headers.get("authorization") {
        req = req.header("authorization", auth.as_bytes());
    }
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let bytes = resp.bytes().await.unwrap();
    let path = uri.path();
    let snapshots = path == "/api/v2.0/pool/snapshot" || path == "/api/v2.0/zfs/snapshot";
    if snapshots && status.is_success() {
        let c = p.corruption.lock().unwrap().clone();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        return (status, c.apply(v)).into_response();
    }
    (status, bytes).into_response()
}

async fn api(
    State(p): State<Proxy>,
    Path(version): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match ws {
        Ok(ws) => ws
            .max_message_size(1 << 30)
            .on_upgrade(move |socket| pump(p, version, socket)),
        Err(_) => rest(State(p), uri, headers, Bytes::new()).await,
    }
}

/// Forwards one WebSocket both ways, corrupting snapshot query results.
async fn pump(p: Proxy, version: String, client: WebSocket) {
    let url = format!(
        "ws://{}/api/{version}",
        p.upstream.trim_start_matches("http://")
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(1 << 30))
        .max_frame_size(None);
    let Ok((upstream, _)) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await
    else {
        return;
    };
    let methods: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let (mut up_tx, mut up_rx) = upstream.split();
    let (mut cl_tx, mut cl_rx) = client.split();
    let to_server = {
        let methods = methods.clone();
        async move {
            while let Some(Ok(msg)) = cl_rx.next().await {
                let out = match msg {
                    AxMessage::Text(t) => {
                        if let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                            && let (Some(id), Some(m)) = (
                                v.get("id").and_then(Value::as_u64),
                                v.get("method").and_then(Value::as_str),
                            )
                        {
                            methods.lock().unwrap().insert(id, m.to_owned());
                        }
                        TMessage::text(t.as_str())
                    }
                    AxMessage::Close(_) => break,
                    _ => continue,
                };
                if up_tx.send(out).await.is_err() {
                    break;
                }
            }
            let _ = up_tx.close().await;
        }
    };
    let to_client = async move {
        while let Some(Ok(msg)) = up_rx.next().await {
            let out = match msg {
                TMessage::Text(t) => {
                    let mut text = t.as_str().to_owned();
                    if let Ok(mut v) = serde_json::from_str::<Value>(&text)
                        && let Some(id) = v.get("id").and_then(Value::as_u64)
                        && let Some(result) = v.get_mut("result").map(Value::take)
                    {
                        let method = methods.lock().unwrap().remove(&id).unwrap_or_default();
                        if method.ends_with("snapshot.query") {
                            let c = p.corruption.lock().unwrap().clone();
                            text = format!(
                                "{{\"jsonrpc\": \"2.0\", \"id\": {id}, \"result\": {}}}",
                                c.apply(result)
                            );
                        }
                    }
                    AxMessage::Text(text.into())
                }
                TMessage::Close(_) => break,
                _ => continue,
            };
            if cl_tx.send(out).await.is_err() {
                break;
            }
        }
        let _ = cl_tx.close().await;
    };
    tokio::join!(to_server, to_client);
}
