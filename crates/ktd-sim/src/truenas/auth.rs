//! API-key logins shared by the WebSocket transports (REST checks the bearer key itself).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use super::methods::CallError;
use super::{KeyCheck, Shared};
use crate::world::Personality;

/// Who is logging in: the connection's server, peer and authentication flag.
pub(crate) struct Who<'a> {
    pub shared: &'a Shared,
    pub server: Personality,
    pub peer: SocketAddr,
    pub authenticated: &'a AtomicBool,
    /// The id of the key that logged in (0 = none).
    pub key_id: &'a AtomicU32,
}

impl Who<'_> {
    /// Whether the logged-in key is read-only.
    pub(crate) fn readonly(&self) -> bool {
        self.shared.key_readonly(self.key_id.load(Ordering::SeqCst))
    }
}

/// API-key login; returns the `response_type`.
pub(crate) fn login(who: &Who<'_>, key: &str, username: Option<&str>) -> &'static str {
    let shared = who.shared;
    match shared.check_key(key) {
        KeyCheck::Invalid => "AUTH_ERR",
        KeyCheck::Revoked(_) => "EXPIRED",
        KeyCheck::Valid(id) => {
            let owner_ok = username.is_none_or(|u| {
                shared
                    .nas_read()
                    .api_keys
                    .iter()
                    .any(|k| k.id == id && k.username == u)
            });
            if !owner_ok {
                return "AUTH_ERR";
            }
            // 25.04+: an API key sent in the clear from a non-loopback peer is revoked.
            if who.server >= Personality::V25_04 && shared.is_remote(who.peer) {
                shared.revoke_key(id);
                return "EXPIRED";
            }
            who.key_id.store(id, Ordering::SeqCst);
            who.authenticated.store(true, Ordering::SeqCst);
            "SUCCESS"
        }
    }
}

/// `auth.login_ex` (25.04+).
pub(crate) fn login_ex(who: &Who<'_>, arg: Option<&Value>) -> Result<Value, CallError> {
    let Some(Value::Object(a)) = arg else {
        return Err(CallError::invalid(
            "auth_login_ex.login_data",
            "attribute required",
        ));
    };
    let mechanism = a
        .get("mechanism")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match mechanism {
        "API_KEY_PLAIN" => {
            let key = a.get("api_key").and_then(Value::as_str).unwrap_or_default();
            let user = a.get("username").and_then(Value::as_str);
            let response_type = login(who, key, user);
            let want_user = a
                .get("login_options")
                .and_then(|o| o.get("user_info"))
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if response_type != "SUCCESS" {
                return Ok(json!({"response_type": response_type}));
            }
            let user_info = want_user.then(|| json!({"pw_name": user.unwrap_or("truenas_admin"), "pw_uid": 950,
                "pw_gid": 950, "pw_gecos": "", "pw_dir": "/home/truenas_admin", "pw_shell": "/usr/bin/zsh",
                "privilege": {"roles": {"$set": ["READONLY_ADMIN"]}}, "account_attributes": ["LOCAL", "API_KEY"]}));
            Ok(
                json!({"response_type": "SUCCESS", "user_info": user_info, "authenticator": "LEVEL_1"}),
            )
        }
        "PASSWORD_PLAIN" | "AUTH_TOKEN_PLAIN" | "OTP_TOKEN" => {
            Ok(json!({"response_type": "AUTH_ERR"}))
        }
        _ => Err(CallError::invalid(
            "auth_login_ex.login_data.mechanism",
            "Invalid choice",
        )),
    }
}

/// Calls allowed per window before the limiter answers.
const RATE_LIMIT_CALLS: usize = 20;
/// The limiter's window.
const RATE_LIMIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// 24.10+ limiter of unauthenticated calls, per (method, client address).
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    calls: std::sync::Mutex<HashMap<(String, IpAddr), VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Records a call; true when it is over the limit.
    fn over(&self, method: &str, ip: IpAddr) -> bool {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let seen = calls.entry((method.to_owned(), ip)).or_default();
        while seen
            .front()
            .is_some_and(|t| now.duration_since(*t) > RATE_LIMIT_WINDOW)
        {
            seen.pop_front();
        }
        seen.push_back(now);
        seen.len() > RATE_LIMIT_CALLS
    }
}

/// Applies the 24.10+ rate limit to a call made before authentication: over the limit,
/// the middleware sleeps 1–10 s and fails with EBUSY "Rate Limit Exceeded".
pub(crate) async fn rate_limit(who: &Who<'_>, method: &str) -> Result<(), CallError> {
    if who.server < Personality::V24_10 || who.authenticated.load(Ordering::SeqCst) {
        return Ok(());
    }
    if !who.shared.rate_limiter.over(method, who.peer.ip()) {
        return Ok(());
    }
    let secs = rand::random_range(1..=10u64);
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    Err(CallError::Call {
        errno: 16,
        errname: "EBUSY",
        reason: "Rate Limit Exceeded".into(),
    })
}
