//! Authentication: REST 401/403, JSON-RPC ENOTAUTHENTICATED, login responses, and the
//! 25.04+ revocation of API keys sent over plain HTTP from a non-loopback client.

mod truenas_support;

use ktd_sim::world::Personality;
use serde_json::json;
use truenas_support::*;

async fn rest_with(
    server: &ktd_sim::TrueNasServer,
    auth: Option<&str>,
    method: reqwest::Method,
    path: &str,
) -> (u16, String) {
    let mut req = http().request(method, format!("{}/api/v2.0{path}", server.url()));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn rest_rejects_missing_invalid_and_revoked_keys() {
    let (server, _token) = start(fixture(Personality::V24_10)).await;
    let get = reqwest::Method::GET;
    let (status, body) = rest_with(&server, None, get.clone(), "/pool/dataset").await;
    assert_eq!((status, body.as_str()), (401, "401: Unauthorized"));
    let bad = format!("Bearer 1-{}", "z".repeat(64));
    let (status, body) = rest_with(&server, Some(&bad), get.clone(), "/pool/dataset").await;
    assert_eq!((status, body.as_str()), (401, "Invalid API key"));
    let revoked = format!("Bearer {REVOKED_KEY}");
    let (status, _) = rest_with(&server, Some(&revoked), get.clone(), "/core/ping").await;
    assert_eq!(status, 401);
    let (status, _) = rest_with(
        &server,
        Some("Basic dXNlcjpwYXNz"),
        get.clone(),
        "/core/ping",
    )
    .await;
    assert_eq!(status, 401, "only API keys are simulated");
    // Unknown routes are 404 before authentication (aiohttp route matching).
    let (status, body) = rest_with(&server, None, get.clone(), "/no/such/thing").await;
    assert_eq!((status, body.as_str()), (404, "404: Not Found"));
    // A read-only key may read but not write: 403 with an empty body.
    let ro = format!("Bearer {RO_KEY}");
    let (status, body) = rest_with(&server, Some(&ro), get, "/core/ping").await;
    assert_eq!((status, body.as_str()), (200, "\"pong\""));
    let (status, body) =
        rest_with(&server, Some(&ro), reqwest::Method::POST, "/pool/dataset").await;
    assert_eq!((status, body.as_str()), (403, ""));
}

#[tokio::test]
async fn jsonrpc_requires_login() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::connect(&server, "/api/current").await;
    let r = rpc.call("pool.dataset.query", json!([])).await;
    let err = &r["error"];
    assert_eq!(err["code"], -32001);
    assert_eq!(err["message"], "Method call error");
    assert_eq!(err["data"]["error"], 207);
    assert_eq!(err["data"]["errname"], "ENOTAUTHENTICATED");
    assert_eq!(
        err["data"]["reason"],
        "[ENOTAUTHENTICATED] Not authenticated"
    );
    assert_eq!(err["data"]["trace"]["class"], "CallError");
    assert!(err["data"]["extra"].is_null());
    // core.set_options is allowed before login; legacy_jobs only exists on 25.10.
    assert_eq!(
        rpc.ok("core.set_options", json!([{"py_exceptions": false}]))
            .await,
        json!(null)
    );
    let r = rpc
        .call("core.set_options", json!([{"legacy_jobs": false}]))
        .await;
    assert_eq!(r["error"]["code"], -32602);
    // Wrong key → AUTH_ERR; wrong owner → AUTH_ERR; revoked → EXPIRED.
    let login = |key: &str, user: &str| json!([{"mechanism": "API_KEY_PLAIN", "username": user, "api_key": key}]);
    let bad = format!("1-{}", "z".repeat(64));
    assert_eq!(
        rpc.ok("auth.login_ex", login(&bad, "truenas_admin")).await["response_type"],
        "AUTH_ERR"
    );
    assert_eq!(
        rpc.ok("auth.login_ex", login(KEY, "someone")).await["response_type"],
        "AUTH_ERR"
    );
    assert_eq!(
        rpc.ok("auth.login_ex", login(REVOKED_KEY, "truenas_admin"))
            .await["response_type"],
        "EXPIRED"
    );
    assert_eq!(
        rpc.ok("auth.login_with_api_key", json!([bad])).await,
        json!(false)
    );
    assert_eq!(
        rpc.call("core.ping", json!([])).await["error"]["data"]["error"],
        207
    );
    let ok = rpc.ok("auth.login_ex", login(KEY, "truenas_admin")).await;
    assert_eq!(ok["response_type"], "SUCCESS");
    assert_eq!(ok["authenticator"], "LEVEL_1");
    assert_eq!(rpc.ok("core.ping", json!([])).await, "pong");
    // login_with_api_key on a fresh connection.
    let mut other = Rpc::connect(&server, "/api/v25.04.2").await;
    assert_eq!(
        other.ok("auth.login_with_api_key", json!([KEY])).await,
        json!(true)
    );
    assert_eq!(
        other.ok("system.version_short", json!([])).await,
        "25.04.2.6"
    );
}

#[tokio::test]
async fn plain_http_login_from_a_remote_client_revokes_the_key_on_25_04_and_later() {
    for p in [Personality::V25_04, Personality::V25_10] {
        let (server, _token) = start(fixture(p)).await;
        // Loopback clients are fine.
        Rpc::login(&server).await;
        server.set_client_remote(true);
        let mut rpc = Rpc::connect(&server, "/api/current").await;
        let r = rpc.ok("auth.login_ex", json!([{"mechanism": "API_KEY_PLAIN", "username": "truenas_admin", "api_key": KEY}])).await;
        assert_eq!(r["response_type"], "EXPIRED", "{p:?}");
        assert_eq!(
            rpc.call("core.ping", json!([])).await["error"]["data"]["error"],
            207
        );
        assert!(
            server.nas().api_keys.iter().any(|k| k.id == 1 && k.revoked),
            "key 1 is revoked in the world"
        );
        // It stays revoked: for loopback clients, over REST, and raises an alert.
        server.set_client_remote(false);
        let mut rpc = Rpc::connect(&server, "/api/current").await;
        assert_eq!(
            rpc.ok("auth.login_with_api_key", json!([KEY])).await,
            json!(false)
        );
        let (status, body) = rest_with(
            &server,
            Some(&format!("Bearer {KEY}")),
            reqwest::Method::GET,
            "/core/ping",
        )
        .await;
        assert_eq!((status, body.as_str()), (401, "Invalid API key"));
        let mut ro = Rpc::connect(&server, "/api/current").await;
        assert_eq!(
            ro.ok("auth.login_with_api_key", json!([RO_KEY])).await,
            json!(true)
        );
        let alerts = ro.ok("alert.list", json!([])).await;
        assert!(
            alerts
                .as_array()
                .expect("list")
                .iter()
                .any(|a| a["klass"] == "ApiKeyRevoked" && a["args"]["key_name"] == "ktd")
        );
    }
}

#[tokio::test]
async fn unauthenticated_calls_are_rate_limited_from_24_10() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::connect(&server, "/api/current").await;
    let bad = format!("1-{}", "z".repeat(64));
    for _ in 0..20 {
        assert_eq!(
            rpc.ok("auth.login_with_api_key", json!([bad])).await,
            json!(false)
        );
    }
    let started = std::time::Instant::now();
    let r = rpc.call("auth.login_with_api_key", json!([bad])).await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "the limiter sleeps first"
    );
    assert_eq!(r["error"]["code"], -32001);
    assert_eq!(r["error"]["data"]["errname"], "EBUSY");
    assert_eq!(r["error"]["data"]["reason"], "[EBUSY] Rate Limit Exceeded");
    // Another method has its own budget.
    let r = rpc
        .ok(
            "auth.login_ex",
            json!([{"mechanism": "API_KEY_PLAIN", "username": "truenas_admin", "api_key": KEY}]),
        )
        .await;
    assert_eq!(r["response_type"], "SUCCESS");
    // Authenticated calls are not limited.
    for _ in 0..25 {
        assert_eq!(rpc.ok("core.ping", json!([])).await, "pong");
    }
}

#[tokio::test]
async fn write_methods_need_a_writable_key() {
    let (server, _token) = start(fixture(Personality::V25_10)).await;
    // Read-only key: EACCES "Not authorized" (REST: 403 with an empty body).
    let mut ro = Rpc::connect(&server, "/api/current").await;
    assert_eq!(
        ro.ok("auth.login_with_api_key", json!([RO_KEY])).await,
        json!(true)
    );
    let r = ro
        .call("pool.dataset.delete", json!(["tank/k8s/nfs/pvc-a"]))
        .await;
    assert_eq!(r["error"]["code"], -32001);
    assert_eq!(r["error"]["data"]["errname"], "EACCES");
    assert_eq!(r["error"]["data"]["reason"], "[EACCES] Not authorized");
    let ro_auth = format!("Bearer {RO_KEY}");
    let (status, body) = rest_with(
        &server,
        Some(&ro_auth),
        reqwest::Method::DELETE,
        "/sharing/nfs/id/1",
    )
    .await;
    assert_eq!((status, body.as_str()), (403, ""));
    // Writes the simulator does not implement (create, ...): ENOTSUP.
    let mut rpc = Rpc::login(&server).await;
    let r = rpc
        .call("pool.dataset.create", json!([{"name": "tank/new"}]))
        .await;
    assert_eq!(r["error"]["data"]["errname"], "ENOTSUP");
    let (status, _) = rest_with(
        &server,
        Some(&format!("Bearer {KEY}")),
        reqwest::Method::POST,
        "/pool/dataset",
    )
    .await;
    assert_eq!(status, 422);
    // zfs.snapshot has no REST route on 25.10.
    let (status, _) = rest_with(
        &server,
        Some(&format!("Bearer {KEY}")),
        reqwest::Method::DELETE,
        "/zfs/snapshot/id/tank%2Fk8s%2Fnfs%2Fpvc-a%40snapshot-1",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(server.nas().snapshots.len(), 4, "nothing was deleted");
    assert_eq!(server.nas().nfs_shares.len(), 1, "nothing was deleted");
}

#[tokio::test]
async fn rest_methods_not_routed_are_405() {
    let (server, _token) = start(fixture(Personality::V22_12)).await;
    let (status, body) = rest_with(&server, None, reqwest::Method::POST, "/core/ping").await;
    assert_eq!((status, body.as_str()), (405, "405: Method Not Allowed"));
    let (status, _) = rest_with(
        &server,
        None,
        reqwest::Method::POST,
        "/pool/dataset/id/tank",
    )
    .await;
    assert_eq!(status, 405);
    // Routed write methods need authentication first.
    let (status, _) = rest_with(
        &server,
        None,
        reqwest::Method::DELETE,
        "/pool/dataset/id/tank",
    )
    .await;
    assert_eq!(status, 401);
}
