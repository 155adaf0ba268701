//! Filters and options over JSON-RPC and REST (query string and JSON body).

mod truenas_support;

use ktd_sim::world::Personality;
use serde_json::{Value, json};
use truenas_support::*;

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn every_filter_operator() {
    let (server, _token) = start(fixture(Personality::V25_10)).await;
    let mut rpc = Rpc::login(&server).await;
    let sel = json!({"select": ["name"], "order_by": ["name"]});
    let mut q =
        async |filters: Value| names(&rpc.ok("pool.dataset.query", json!([filters, sel])).await);
    assert_eq!(q(json!([["name", "=", "tank/k8s"]])).await, ["tank/k8s"]);
    assert_eq!(
        q(json!([["name", "!=", "tank"], ["name", "!^", "tank/k8s/"]])).await,
        ["tank/k8s"]
    );
    assert_eq!(
        q(json!([["used.parsed", ">", 10u64 << 30]])).await,
        ["tank", "tank/k8s", "tank/k8s/iscsi", "tank/k8s/iscsi/pvc-b"]
    );
    assert_eq!(
        q(json!([["usedbydataset.parsed", ">=", 2u64 << 30]])).await,
        ["tank/k8s/iscsi/pvc-b", "tank/k8s/nfs/pvc-a"]
    );
    assert_eq!(
        q(json!([["usedbydataset.parsed", "<", 1024]])).await,
        ["tank/k8s", "tank/k8s/iscsi", "tank/k8s/nfs"]
    );
    assert_eq!(
        q(json!([["usedbydataset.parsed", "<=", 1024]])).await,
        ["tank", "tank/k8s", "tank/k8s/iscsi", "tank/k8s/nfs"]
    );
    assert_eq!(
        q(json!([["name", "~", ".*pvc-[ab]"]])).await,
        ["tank/k8s/iscsi/pvc-b", "tank/k8s/nfs/pvc-a"]
    );
    assert_eq!(
        q(json!([["name", "in", ["tank", "tank/k8s/nfs"]]])).await,
        ["tank", "tank/k8s/nfs"]
    );
    assert_eq!(
        q(json!([["type", "nin", ["FILESYSTEM"]]])).await,
        ["tank/k8s/iscsi/pvc-b"]
    );
    assert_eq!(
        q(json!([["name", "rin", "pvc-c"]])).await,
        ["tank/k8s/nfs/pvc-c"]
    );
    assert_eq!(q(json!([["name", "rnin", "k8s"]])).await, ["tank"]);
    assert_eq!(
        q(json!([["name", "^", "tank/k8s/n"]])).await,
        ["tank/k8s/nfs", "tank/k8s/nfs/pvc-a", "tank/k8s/nfs/pvc-c"]
    );
    assert_eq!(
        q(json!([["name", "$", "pvc-c"]])).await,
        ["tank/k8s/nfs/pvc-c"]
    );
    assert_eq!(
        q(json!([["name", "!$", "s"], ["name", "^", "tank/k8s/"]])).await,
        [
            "tank/k8s/iscsi",
            "tank/k8s/iscsi/pvc-b",
            "tank/k8s/nfs/pvc-a",
            "tank/k8s/nfs/pvc-c"
        ]
    );
    assert_eq!(
        q(json!([[
            "OR",
            [["name", "=", "tank"], ["type", "=", "VOLUME"]]
        ]]))
        .await,
        ["tank", "tank/k8s/iscsi/pvc-b"]
    );
    assert_eq!(
        q(json!([
            [
                "user_properties.democratic-csi:managed_resource.value",
                "=",
                "true"
            ],
            [
                "user_properties.democratic-csi:managed_resource.source",
                "=",
                "LOCAL"
            ]
        ]))
        .await,
        ["tank/k8s/iscsi/pvc-b", "tank/k8s/nfs/pvc-a"]
    );
    // Inherited user properties are visible to filters too.
    assert_eq!(
        q(json!([[
            "user_properties.ktd:owner.source",
            "=",
            "INHERITED"
        ]]))
        .await,
        ["tank/k8s/nfs/pvc-a", "tank/k8s/nfs/pvc-c"]
    );
    // Invalid operators are validation errors.
    let r = rpc
        .call("pool.dataset.query", json!([[["name", "like", "x"]]]))
        .await;
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["errname"], "EINVAL");
}

#[tokio::test]
async fn options_limit_offset_count_get_select_order_by() {
    let (server, _token) = start(fixture(Personality::V25_04)).await;
    let mut rpc = Rpc::login(&server).await;
    let all = rpc
        .ok(
            "pool.dataset.query",
            json!([[], {"order_by": ["-name"], "select": ["name"]}]),
        )
        .await;
    assert_eq!(names(&all)[0], "tank/k8s/nfs/pvc-c", "descending order");
    let page = rpc
        .ok(
            "pool.dataset.query",
            json!([[], {"order_by": ["name"], "select": ["name"], "offset": 2, "limit": 2}]),
        )
        .await;
    assert_eq!(names(&page), ["tank/k8s/iscsi", "tank/k8s/iscsi/pvc-b"]);
    assert_eq!(
        rpc.ok("pool.dataset.query", json!([[], {"count": true}]))
            .await,
        7
    );
    assert_eq!(
        rpc.ok(
            "zfs.snapshot.query",
            json!([[["dataset", "=", "tank/k8s/nfs/pvc-a"]], {"count": true}])
        )
        .await,
        2
    );
    let one = rpc.ok("pool.dataset.query", json!([[["name", "=", "tank/k8s"]], {"get": true, "select": ["name", "used.parsed", ["type", "kind"]]}])).await;
    assert_eq!(one["name"], "tank/k8s");
    assert!(one["used"]["parsed"].is_u64());
    assert!(
        one["used"].get("value").is_none(),
        "select keeps only the dotted leaf"
    );
    assert_eq!(one["kind"], "FILESYSTEM");
    let by_used = rpc.ok("pool.dataset.query", json!([[["type", "=", "FILESYSTEM"], ["name", "^", "tank/k8s/nfs/"]], {"order_by": ["-usedbydataset.parsed"], "select": ["name"]}])).await;
    assert_eq!(
        names(&by_used),
        ["tank/k8s/nfs/pvc-a", "tank/k8s/nfs/pvc-c"]
    );
    // get with no match: -32602 with ENOENT.
    let r = rpc
        .call(
            "pool.dataset.query",
            json!([[["name", "=", "nope"]], {"get": true}]),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["errname"], "ENOENT");
    let r = rpc.call("sharing.nfs.get_instance", json!([99])).await;
    assert_eq!(r["error"]["data"]["error"], 2);
    // Unknown options are refused.
    let r = rpc
        .call("pool.dataset.query", json!([[], {"sort": ["name"]}]))
        .await;
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["extra"][0][0], "query-options.sort");
}

#[tokio::test]
async fn rest_query_string_and_body() {
    let (server, _token) = start(fixture(Personality::V24_10)).await;
    let (status, v) = rest_get(&server, "/pool/dataset?type=VOLUME").await;
    assert_eq!(status, 200);
    assert_eq!(names(&v), ["tank/k8s/iscsi/pvc-b"]);
    let (_, v) = rest_get(
        &server,
        "/pool/dataset?name__regex=.*nfs/pvc&limit=1&extra.properties=%5B%22used%22%5D",
    )
    .await;
    assert_eq!(names(&v), ["tank/k8s/nfs/pvc-a"]);
    assert!(
        v[0].get("available").is_none() && v[0].get("used").is_some(),
        "extra.properties from the query string"
    );
    let (_, v) = rest_get(&server, "/pool/dataset?count=true").await;
    assert_eq!(v, 7);
    let (_, v) = rest_get(&server, "/pool/dataset?name__neq=tank&offset=5").await;
    assert_eq!(v.as_array().expect("list").len(), 1);
    // Digits coerce to integers, true/false to booleans.
    let (_, v) = rest_get(&server, "/sharing/nfs?id=1&enabled=true").await;
    assert_eq!(v.as_array().expect("list").len(), 1);
    let (_, v) = rest_get(&server, "/zfs/snapshot?createtxg=800").await;
    assert_eq!(
        v,
        json!([]),
        "createtxg is a string: the coerced 800 does not match"
    );
    let (_, v) = rest_get(&server, "/zfs/snapshot?snapshot_name=snapshot-1").await;
    assert_eq!(v[0]["createtxg"], "800");
    // `/id/` with no match: 404 {"message": ""}.
    let (status, v) = rest_get(&server, "/pool/dataset/id/tank%2Fnope").await;
    assert_eq!((status, v), (404, json!({"message": ""})));
    // extra.* on /id/.
    let (_, v) = rest_get(
        &server,
        "/pool/dataset/id/tank%2Fk8s?extra.flat=false&extra.properties=%5B%5D",
    )
    .await;
    assert!(v.get("used").is_none());
    // JSON body when there are no query parameters.
    let body = json!({"query-filters": [["name", "^", "tank/k8s/iscsi"]], "query-options": {"order_by": ["-name"], "select": ["name"]}});
    let resp = http()
        .get(format!("{}/api/v2.0/pool/dataset", server.url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        names(&resp.json::<Value>().await.expect("json")),
        ["tank/k8s/iscsi/pvc-b", "tank/k8s/iscsi"]
    );
    // Bad JSON → 400; unknown body keys → 400; invalid options → 422.
    let send = |b: &'static str| {
        http()
            .get(format!("{}/api/v2.0/pool/dataset", server.url()))
            .bearer_auth(KEY)
            .body(b)
            .send()
    };
    let resp = send("{not json").await.expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.expect("json");
    assert!(
        v["message"]
            .as_str()
            .expect("msg")
            .starts_with("json parse error")
    );
    assert_eq!(v["errno"], 22);
    let resp = send(r#"{"bogus": 1}"#).await.expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["message"],
        "The following attributes are not expected: bogus"
    );
    let resp = send(r#"{"query-options": {"limit": "x"}}"#)
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 422);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["query-options.limit"][0]["errno"],
        22
    );
    // CallError → 422 {"message", "errno"}.
    let resp = http()
        .get(format!("{}/api/v2.0/zfs/snapshot", server.url()))
        .bearer_auth(KEY)
        .json(&json!({"query-options": {"extra": {"retention": true}}}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 422);
    assert_eq!(resp.json::<Value>().await.expect("json")["errno"], 22);
}
