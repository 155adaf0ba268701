//! Shared helpers: a fake apiserver, a running source, folds over its events.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use ktd_kube::{KubeSource, KubeSourceConfig};
use ktd_model::{Envelope, Event, KubeKind, ObjectKey};
use ktd_sim::{Cluster, KubeApiServer};
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

/// A server on a free loopback port; stops when the guard drops.
pub async fn start(cluster: Cluster) -> (KubeApiServer, DropGuard) {
    let token = CancellationToken::new();
    let server = KubeApiServer::start(cluster, "127.0.0.1:0".parse().unwrap(), token.clone())
        .await
        .expect("the fake apiserver starts");
    (server, token.drop_guard())
}

/// A cluster holding `objects`.
pub fn cluster(objects: Vec<Value>) -> Cluster {
    Cluster {
        name: "test".into(),
        objects,
        snapshot_crds: true,
        denied: Vec::new(),
    }
}

/// The source configuration for a server.
pub fn config(server: &KubeApiServer) -> KubeSourceConfig {
    KubeSourceConfig {
        instance: "test".into(),
        url: Some(server.url()),
        page_size: 50,
        ..KubeSourceConfig::default()
    }
}

/// Bounds a wait in a test.
pub async fn within<F: Future>(secs: u64, what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s waiting for {what}"))
}

/// A running source and everything it emitted so far.
pub struct Run {
    stream: BoxStream<'static, Envelope>,
    /// Every envelope, in order.
    pub events: Vec<Envelope>,
}

impl Run {
    /// Starts the source with `config`.
    pub async fn start(config: KubeSourceConfig) -> Run {
        let known = ktd_kube::KnownObjects::new(config.instance.clone());
        Run::start_with(config, known).await
    }

    /// Starts the source with `config`, remembering `known`.
    pub async fn start_with(config: KubeSourceConfig, known: ktd_kube::KnownObjects) -> Run {
        let client = config.client().await.expect("client");
        Run::from_source(KubeSource::new(client, config).known(known))
    }

    /// Runs a configured source.
    pub fn from_source(source: KubeSource) -> Run {
        Run {
            stream: source.stream().boxed(),
            events: Vec::new(),
        }
    }

    /// Reads events until `done(events)` holds; fails after `secs`.
    pub async fn until(&mut self, secs: u64, what: &str, done: impl Fn(&[Envelope]) -> bool) {
        let stream = &mut self.stream;
        let events = &mut self.events;
        let wait = async {
            while !done(events) {
                let e = stream.next().await.expect("the source never ends");
                events.push(e);
            }
        };
        if tokio::time::timeout(Duration::from_secs(secs), wait)
            .await
            .is_err()
        {
            let tail: Vec<String> = events.iter().rev().take(15).map(describe).collect();
            panic!(
                "timed out after {secs}s waiting for {what}; {} events, last ones (newest first):\n{}",
                events.len(),
                tail.join("\n")
            );
        }
    }

    /// Stops the source (drops its watchers); the events stay.
    pub fn stop(&mut self) {
        self.stream = futures::stream::pending().boxed();
    }

    /// Reads whatever arrives within `ms` milliseconds.
    pub async fn drain_for(&mut self, ms: u64) {
        let stream = &mut self.stream;
        let events = &mut self.events;
        let _ = tokio::time::timeout(Duration::from_millis(ms), async {
            while let Some(e) = stream.next().await {
                events.push(e);
            }
        })
        .await;
    }
}

/// One line describing an envelope (for failure messages).
pub fn describe(e: &Envelope) -> String {
    match &e.event {
        Event::ObjectApplied { object } => format!(
            "applied {} {} rv={}",
            object.kind(),
            object.key(),
            object.meta().resource_version
        ),
        other => format!("{other:?}"),
    }
}

/// Kinds whose sync completed at least `n` times.
pub fn completed(events: &[Envelope], n: usize) -> BTreeSet<KubeKind> {
    let mut counts = BTreeMap::<KubeKind, usize>::new();
    for e in events {
        if let Event::SyncCompleted { kind, .. } = e.event {
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|(_, c)| *c >= n)
        .map(|(k, _)| k)
        .collect()
}

/// Whether every kind in `kinds` completed a sync.
pub fn all_completed(events: &[Envelope], kinds: &[KubeKind]) -> bool {
    let done = completed(events, 1);
    kinds.iter().all(|k| done.contains(k))
}

/// The state the events describe: (kind, key) → resourceVersion, applied minus deleted.
pub fn fold(events: &[Envelope]) -> BTreeMap<(KubeKind, ObjectKey), String> {
    let mut state = BTreeMap::new();
    for e in events {
        match &e.event {
            Event::ObjectApplied { object } => {
                state.insert(
                    (object.kind(), object.key()),
                    object.meta().resource_version.clone(),
                );
            }
            Event::ObjectDeleted { kind, key, .. } => {
                state.remove(&(*kind, key.clone()));
            }
            _ => {}
        }
    }
    state
}

/// The server's objects of the watched kinds, filtered as the default configuration
/// filters Pods and Events.
pub fn server_state(
    server: &KubeApiServer,
    kinds: &[KubeKind],
) -> BTreeMap<(KubeKind, ObjectKey), String> {
    let events = ktd_kube::EventSelection::default();
    let mut state = BTreeMap::new();
    for &kind in kinds {
        for o in server.objects(kind.as_str()) {
            let m = &o["metadata"];
            if kind == KubeKind::Pod
                && m["labels"]["app.kubernetes.io/name"] != json!("democratic-csi")
            {
                continue;
            }
            if kind == KubeKind::Event && !events.keeps(&o) {
                continue;
            }
            let key = ObjectKey {
                namespace: m["namespace"].as_str().map(String::from),
                name: m["name"].as_str().unwrap().to_owned(),
            };
            state.insert(
                (kind, key),
                m["resourceVersion"].as_str().unwrap().to_owned(),
            );
        }
    }
    state
}

/// Asserts no envelope id occurs twice.
pub fn assert_unique_ids(events: &[Envelope]) {
    let mut seen = HashSet::new();
    for e in events {
        assert!(seen.insert(e.id), "id emitted twice: {}", describe(e));
    }
}

/// A CSI PersistentVolume.
pub fn pv(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"app": "db"}},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "nfs",
            "csi": {"driver": "org.democratic-csi.nfs", "volumeHandle": name}},
        "status": {"phase": "Available"}
    })
}

/// A PersistentVolumeClaim.
pub fn pvc(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "nfs",
            "resources": {"requests": {"storage": "10Gi"}}},
        "status": {"phase": "Pending"}
    })
}
