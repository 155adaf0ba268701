//! REST v2.0 (`/api/v2.0`, 22.12 – 25.10): a method call becomes an HTTP request the way
//! the middleware's `restful.py` routes them.
//!
//! - `a.b.query [filters, options]` → `GET /a/b` with simple `=` filters and `extra.*`,
//!   `limit`, `offset`, `count` in the query string; anything the query string cannot express
//!   goes in a JSON body (`{"query-filters", "query-options"}`) of the same GET;
//! - `a.b.get_instance [id]` → `GET /a/b/id/{percent-encoded id}`;
//! - `x.config` → `GET /x`; other methods → `GET /a/b/m` without arguments, `POST` with them.

use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::config::ApiKey;
use crate::error::ClientError;

/// A REST v2.0 endpoint with its bearer key.
pub(crate) struct Rest {
    http: reqwest::Client,
    /// `https://host/api/v2.0`
    base: String,
    key: ApiKey,
    timeout: Duration,
}

/// An HTTP request derived from a method call.
#[derive(Debug, PartialEq)]
pub(crate) struct RestRequest {
    /// `GET` or `POST`.
    pub post: bool,
    /// Path below `/api/v2.0`, with query string.
    pub path: String,
    /// JSON body.
    pub body: Option<Value>,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// A value the query string carries unchanged (`restful.py` coerces digits, `true`,
/// `false` and `null`, so strings that look like those need the body).
fn query_scalar(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s)
            if !s.is_empty()
                && !s.bytes().all(|b| b.is_ascii_digit())
                && !matches!(s.as_str(), "true" | "false" | "null") =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

/// Query string for `[filters, options]`, or None when it needs a body.
fn query_string(filters: &[Value], options: &Map<String, Value>) -> Option<String> {
    let mut parts = Vec::new();
    for f in filters {
        let [Value::String(field), Value::String(op), value] = f.as_array()?.as_slice() else {
            return None;
        };
        if op != "=" {
            return None;
        }
        parts.push(format!("{}={}", enc(field), enc(&query_scalar(value)?)));
    }
    for (k, v) in options {
        match (k.as_str(), v) {
            ("limit" | "offset", Value::Number(n)) => parts.push(format!("{k}={n}")),
            ("count", Value::Bool(b)) => parts.push(format!("count={b}")),
            ("extra", Value::Object(extra)) => {
                for (ek, ev) in extra {
                    parts.push(format!("extra.{}={}", enc(ek), enc(&ev.to_string())));
                }
            }
            _ => return None,
        }
    }
    Some(parts.join("&"))
}

/// How `method` with `params` maps to a REST request.
pub(crate) fn route(method: &str, params: &[Value]) -> Result<RestRequest, ClientError> {
    let Some((service, verb)) = method.rsplit_once('.') else {
        return Err(ClientError::method_not_found(method));
    };
    let svc_path = service.replace('.', "/");
    match verb {
        "query" => {
            let filters = match params.first() {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(f)) => f.clone(),
                Some(other) => {
                    return Err(ClientError::Call {
                        method: method.into(),
                        detail: format!("filters must be a list, not {other}"),
                    });
                }
            };
            let options = match params.get(1) {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            };
            Ok(match query_string(&filters, &options) {
                Some(q) if q.is_empty() => RestRequest {
                    post: false,
                    path: format!("/{svc_path}"),
                    body: None,
                },
                Some(q) => RestRequest {
                    post: false,
                    path: format!("/{svc_path}?{q}"),
                    body: None,
                },
                None => RestRequest {
                    post: false,
                    path: format!("/{svc_path}"),
                    body: Some(json!({"query-filters": filters, "query-options": options})),
                },
            })
        }
        "get_instance" => {
            let id = match params.first() {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(ClientError::Call {
                        method: method.into(),
                        detail: "get_instance needs an id".into(),
                    });
                }
            };
            Ok(RestRequest {
                post: false,
                path: format!("/{svc_path}/id/{}", enc(&id)),
                body: None,
            })
        }
        "config" => Ok(RestRequest {
            post: false,
            path: format!("/{svc_path}"),
            body: None,
        }),
        _ => {
            let path = format!("/{}", method.replace('.', "/"));
            Ok(match params {
                [] => RestRequest {
                    post: false,
                    path,
                    body: None,
                },
                [one] => RestRequest {
                    post: true,
                    path,
                    body: Some(one.clone()),
                },
                many => RestRequest {
                    post: true,
                    path,
                    body: Some(Value::Array(many.to_vec())),
                },
            })
        }
    }
}

/// The `message` of a JSON error body, or the body text.
fn detail(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let msg = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| match v.get("message") {
            Some(Value::String(m)) => Some(m.clone()),
            _ => v.is_object().then(|| v.to_string()),
        })
        .unwrap_or_else(|| {
            // HTML from nginx: keep it short.
            let t = text.trim();
            if t.starts_with('<') {
                String::new()
            } else {
                t.chars().take(200).collect()
            }
        });
    if msg.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {msg}")
    }
}

/// Maps a non-success response.
pub(crate) fn status_error(method: &str, status: StatusCode, body: &[u8]) -> ClientError {
    let method = method.to_owned();
    let detail = detail(status, body);
    match status.as_u16() {
        401 => ClientError::Unauthorized { detail },
        403 => ClientError::Forbidden { method, detail },
        404 if serde_json::from_slice::<Value>(body).is_ok() => ClientError::Call {
            method,
            detail: format!("{detail} (no such object)"),
        },
        404 | 405 => ClientError::method_not_found(&method),
        429 => ClientError::Busy { method, detail },
        504 => ClientError::Server {
            method,
            detail: format!("{detail} (nginx gave up after its 60 s proxy timeout)"),
        },
        500..=599 => ClientError::Server { method, detail },
        300..=399 => ClientError::Call {
            method,
            detail: format!(
                "{detail}: TrueNAS redirects (HTTPS redirect on?): use the https:// URL"
            ),
        },
        _ => ClientError::Call { method, detail },
    }
}

/// Maps a reqwest error.
pub(crate) fn transport_error(method: &str, e: &reqwest::Error, timeout: Duration) -> ClientError {
    if e.is_timeout() {
        ClientError::Timeout {
            method: method.to_owned(),
            timeout,
        }
    } else {
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        ClientError::Connection {
            method: method.to_owned(),
            detail,
        }
    }
}

impl Rest {
    /// An endpoint below `base_url` (`https://host`).
    pub(crate) fn new(
        http: reqwest::Client,
        base_url: &str,
        key: ApiKey,
        timeout: Duration,
    ) -> Rest {
        Rest {
            http,
            base: format!("{}/api/v2.0", base_url.trim_end_matches('/')),
            key,
            timeout,
        }
    }

    /// The endpoint (`https://host/api/v2.0`).
    pub(crate) fn url(&self) -> &str {
        &self.base
    }

    /// Sends the request for `method`; a success status returns the response with its body
    /// still to read, any other status is mapped to an error.
    pub(crate) async fn send(
        &self,
        method: &str,
        params: &[Value],
    ) -> Result<reqwest::Response, ClientError> {
        let req = route(method, params)?;
        let url = format!("{}{}", self.base, req.path);
        let mut builder = if req.post {
            self.http.post(&url)
        } else {
            self.http.get(&url)
        };
        builder = builder.bearer_auth(self.key.expose()).timeout(self.timeout);
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let resp = builder
            .send()
            .await
            .map_err(|e| self.transport_error(method, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(method, &e))?;
        Err(status_error(method, status, &body))
    }

    /// The next piece of a response body (`None` at its end).
    pub(crate) async fn chunk(
        &self,
        method: &str,
        resp: &mut reqwest::Response,
    ) -> Result<Option<bytes::Bytes>, ClientError> {
        resp.chunk()
            .await
            .map_err(|e| self.transport_error(method, &e))
    }

    fn transport_error(&self, method: &str, e: &reqwest::Error) -> ClientError {
        transport_error(method, e, self.timeout)
    }

    /// Calls `method` (a small answer, read whole).
    pub(crate) async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ClientError> {
        let resp = self.send(method, params).await?;
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(method, &e))?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Malformed {
            method: method.to_owned(),
            detail: format!("not JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_restful_py() {
        let r = route(
            "pool.dataset.query",
            &[
                json!([]),
                json!({"extra": {"flat": false, "properties": ["used"]}}),
            ],
        )
        .unwrap();
        assert_eq!(
            r.path,
            "/pool/dataset?extra.flat=false&extra.properties=%5B%22used%22%5D"
        );
        let r = route("pool.dataset.get_instance", &[json!("tank/k8s/pvc-1")]).unwrap();
        assert_eq!(r.path, "/pool/dataset/id/tank%2Fk8s%2Fpvc%2D1");
        assert_eq!(
            route("iscsi.global.config", &[]).unwrap().path,
            "/iscsi/global"
        );
        assert_eq!(route("system.info", &[]).unwrap().path, "/system/info");
        // A digit-only string would be coerced to an int in the query string: use a body.
        let r = route("sharing.nfs.query", &[json!([["comment", "=", "42"]])]).unwrap();
        assert!(r.body.is_some());
        assert_eq!(r.path, "/sharing/nfs");
    }

    #[test]
    fn statuses_map_to_errors() {
        assert!(matches!(
            status_error("x.query", StatusCode::UNAUTHORIZED, b"Invalid API key"),
            ClientError::Unauthorized { .. }
        ));
        assert!(matches!(
            status_error(
                "zfs.snapshot.query",
                StatusCode::NOT_FOUND,
                b"404: Not Found"
            ),
            ClientError::MethodNotFound { .. }
        ));
        let e = status_error("x.query", StatusCode::SERVICE_UNAVAILABLE, b"<html>");
        assert!(e.retryable());
    }
}
