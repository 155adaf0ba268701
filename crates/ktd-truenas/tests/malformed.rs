//! Malformed answers. A whole query that is not what it should be fails the poll
//! (`PollFailed`, not retryable, naming the method). A single unreadable object does not:
//! the poll completes, `PollCompleted.rejected` names the object and its previous state
//! stands (not removed, not changed). If not even its name can be read, nothing of its kind
//! is removed by that poll — the removal could be the unreadable object itself, and a false
//! "removed" is worse than a late one.
//!
//! The simulator only serves well-formed worlds, so a small proxy in front of it (REST,
//! 24.10) corrupts answers on demand.

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ktd_sim::Personality;
use ktd_truenas::{Poller, PollerState, TransportChoice};
use serde_json::Value;
use support::*;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Corruption {
    /// Datasets whose `type` becomes a number.
    bad_datasets: Vec<String>,
    /// Datasets that lose their `name` and `id` (and get a bad `type`).
    nameless: Vec<String>,
    /// `pool.query` answers with HTML.
    garbage_pools: bool,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    corruption: Arc<Mutex<Corruption>>,
}

fn corrupt(node: &mut Value, c: &Corruption) {
    let name = node
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if c.bad_datasets.contains(&name) {
        node["type"] = Value::from(42);
    }
    if c.nameless.contains(&name) {
        node["type"] = Value::from(42);
        let o = node.as_object_mut().unwrap();
        o.remove("name");
        o.remove("id");
    }
    if let Some(Value::Array(children)) = node.get_mut("children") {
        for child in children {
            corrupt(child, c);
        }
    }
}

async fn forward(State(p): State<Proxy>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
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
    let corruption = p.corruption.lock().unwrap().clone();
    let path = uri.path();
    if path == "/api/v2.0/pool" && corruption.garbage_pools {
        return (StatusCode::OK, "<html>maintenance</html>").into_response();
    }
    if path == "/api/v2.0/pool/dataset" {
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        if let Value::Array(items) = &mut v {
            for item in items {
                corrupt(item, &corruption);
            }
        }
        return (status, v.to_string()).into_response();
    }
    (status, bytes).into_response()
}

async fn proxy(upstream: String, shutdown: CancellationToken) -> (String, Arc<Mutex<Corruption>>) {
    let corruption = Arc::new(Mutex::new(Corruption::default()));
    let state = Proxy {
        upstream,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        corruption: corruption.clone(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .unwrap();
    });
    (url, corruption)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_dataset_is_reported_and_causes_no_false_removals() {
    let sim = start(world(Personality::V24_10).nas).await;
    let (url, corruption) = proxy(sim.server.url(), sim.shutdown.clone()).await;
    let client = connect_with(&sim, config(&url, TransportChoice::Auto)).await;
    let mut poller = Poller::new(client, INSTANCE, PollerState::default());
    let first = poll(&mut poller).await;
    assert_eq!(completed(&first), (1, vec![]));

    let nas = sim.server.nas();
    let bad = leaf(&nas, |d| !snapshots_of(&nas, &d.name).is_empty());
    let gone = leaf(&nas, |d| {
        d.name != bad && snapshots_of(&nas, &d.name).is_empty()
    });
    let new_and_bad = format!("{}/pvc-born-broken", bad.rsplit_once('/').unwrap().0);
    sim.server.update({
        let (gone, new_and_bad, bad) = (gone.clone(), new_and_bad.clone(), bad.clone());
        move |nas| {
            nas.datasets.retain(|d| d.name != gone);
            let mut d = nas.datasets.iter().find(|d| d.name == bad).unwrap().clone();
            d.name = new_and_bad;
            nas.datasets.push(d);
        }
    });
    corruption.lock().unwrap().bad_datasets = vec![bad.clone(), new_and_bad.clone()];

    // Poll 2: completes, names both bad datasets, does not remove the known bad one, goes
    // on with everything else.
    let second = poll(&mut poller).await;
    let (n, rejected) = completed(&second);
    assert_eq!(n, 2);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected
            .iter()
            .any(|r| r.contains(&bad) && r.contains("pool.dataset.query"))
    );
    assert!(rejected.iter().any(|r| r.contains(&new_and_bad)));
    assert_eq!(changes(&second), set(&[("DatasetRemoved", gone.clone())]));
    assert!(
        poller.state().datasets().any(|d| d == bad),
        "previous state stands"
    );
    // The bad dataset's snapshots are read as usual.
    assert!(
        poller
            .state()
            .snapshots()
            .any(|s| s.starts_with(&format!("{bad}@")))
    );

    // Poll 3: a dataset whose name cannot be read (it could be any known one): no dataset
    // removal this poll, everything else goes on.
    let also_gone = leaf(&nas, |d| ![&bad, &gone].contains(&&d.name));
    let nameless = leaf(&nas, |d| ![&bad, &gone, &also_gone].contains(&&d.name));
    sim.server.update({
        let also_gone = also_gone.clone();
        move |nas| nas.datasets.retain(|d| d.name != also_gone)
    });
    *corruption.lock().unwrap() = Corruption {
        bad_datasets: vec![new_and_bad.clone()],
        nameless: vec![nameless.clone()],
        ..Corruption::default()
    };
    let third = poll(&mut poller).await;
    let (_, rejected) = completed(&third);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected.iter().any(|r| r.contains("(unnamed object)")),
        "{rejected:?}"
    );
    assert!(changes(&third).is_empty(), "{:?}", changes(&third));

    // Poll 4, healed: the withheld removal and the new dataset arrive.
    *corruption.lock().unwrap() = Corruption::default();
    let fourth = poll(&mut poller).await;
    assert_eq!(completed(&fourth), (4, vec![]));
    assert_eq!(
        changes(&fourth),
        set(&[
            ("DatasetRemoved", also_gone.clone()),
            ("DatasetObserved", new_and_bad.clone())
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_query_fails_the_poll_by_name_and_the_next_poll_recovers() {
    let sim = start(world(Personality::V24_10).nas).await;
    let (url, corruption) = proxy(sim.server.url(), sim.shutdown.clone()).await;
    let client = connect_with(&sim, config(&url, TransportChoice::Auto)).await;
    let mut poller = Poller::new(client, INSTANCE, PollerState::default());
    corruption.lock().unwrap().garbage_pools = true;
    let failed = poll(&mut poller).await;
    assert_eq!(types(&failed), vec!["PollFailed"]);
    let ktd_model::Event::PollFailed {
        poll: n,
        error,
        method,
        retryable,
    } = &failed[0].event
    else {
        unreachable!()
    };
    assert_eq!(
        (*n, method.as_deref(), *retryable),
        (1, Some("pool.query"), false)
    );
    assert!(error.contains("malformed"), "{error}");
    corruption.lock().unwrap().garbage_pools = false;
    let ok = poll(&mut poller).await;
    assert_eq!(completed(&ok), (1, vec![]));
}
