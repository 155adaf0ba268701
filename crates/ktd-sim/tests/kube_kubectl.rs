//! The real kubectl against the fake kube-apiserver.
//!
//! Uses `/usr/bin/kubectl` (the google-cloud-cli dispatcher, which first asks `/version`
//! and then runs a versioned binary). HOME, KUBECONFIG and the discovery cache point into
//! a temporary directory so no local configuration interferes.

mod kube_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ktd_sim::KubeApiServer;
use kube_support::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const KUBECTL: &str = "/usr/bin/kubectl";

fn kubectl(server: &KubeApiServer, home: &Path) -> Command {
    assert!(
        Path::new(KUBECTL).exists(),
        "kubectl is required for this test but {KUBECTL} does not exist (install the kubectl package)"
    );
    let mut cmd = Command::new(KUBECTL);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .arg("--server")
        .arg(server.url())
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .arg("--request-timeout=20s")
        .kill_on_drop(true);
    cmd
}

async fn run(server: &KubeApiServer, home: &Path, args: &[&str]) -> String {
    let out = within(60, "kubectl", kubectl(server, home).args(args).output())
        .await
        .expect("kubectl runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout.into_owned()
}

fn world() -> ktd_sim::Cluster {
    cluster(vec![
        pv("pv-alpha"),
        pv("pv-beta"),
        pvc("db", "data-0"),
        vs("db", "snap-nightly"),
        vsc("snapcontent-1"),
    ])
}

fn home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    (dir, path)
}

#[tokio::test]
async fn kubectl_get_prints_tables() {
    let (server, _guard) = start(world()).await;
    let (_dir, home) = home();
    let out = run(&server, &home, &["get", "pv,pvc,volumesnapshots", "-A"]).await;
    for name in ["pv-alpha", "pv-beta", "data-0", "snap-nightly"] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    for header in [
        "CAPACITY",
        "RECLAIM POLICY",
        "STORAGECLASS",
        "READYTOUSE",
        "SOURCEPVC",
        "AGE",
        "NAMESPACE",
    ] {
        assert!(out.contains(header), "column {header} missing from:\n{out}");
    }
    assert!(
        out.contains("persistentvolume/pv-alpha"),
        "kinds prefix names when several are asked:\n{out}"
    );
    let out = run(&server, &home, &["get", "vsc"]).await;
    assert!(
        out.contains("snapcontent-1") && out.contains("DELETIONPOLICY"),
        "short name vsc:\n{out}"
    );
}

#[tokio::test]
async fn kubectl_get_json_returns_the_items() {
    let (server, _guard) = start(world()).await;
    let (_dir, home) = home();
    let out = run(
        &server,
        &home,
        &["get", "pv,pvc,volumesnapshots", "-A", "-o", "json"],
    )
    .await;
    let list: Value = serde_json::from_str(&out).expect("kubectl -o json prints JSON");
    assert_eq!(list["kind"], "List");
    let items: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_owned(),
                o["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (kind, name) in [
        ("PersistentVolume", "pv-alpha"),
        ("PersistentVolume", "pv-beta"),
        ("PersistentVolumeClaim", "data-0"),
        ("VolumeSnapshot", "snap-nightly"),
    ] {
        assert!(
            items.contains(&(kind.into(), name.into())),
            "{kind}/{name} missing from {items:?}"
        );
    }
    let pv = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["metadata"]["name"] == "pv-alpha")
        .unwrap();
    assert_eq!(pv["spec"]["csi"]["volumeHandle"], "pv-alpha");
    assert!(pv["metadata"]["resourceVersion"].is_string());
}

/// Reads kubectl's output until a line contains `needle` (at most 60 s).
async fn wait_for<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    seen: &mut String,
    needle: &str,
) {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "kubectl get -w never printed {needle}; output so far:\n{seen}"
    );
}

#[tokio::test]
async fn kubectl_get_watch_sees_a_new_volume() {
    let (server, _guard) = start(world()).await;
    let (_dir, home) = home();
    let mut child = kubectl(&server, &home)
        .args(["get", "pv", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    wait_for(&mut lines, &mut seen, "pv-beta").await;
    // Give kubectl time to open its watch after printing the list.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.apply(pv("pv-gamma")).unwrap();
    wait_for(&mut lines, &mut seen, "pv-gamma").await;
    assert!(server.stats().watches >= 1);
    child.kill().await.expect("kubectl stops");
}

#[tokio::test]
async fn kubectl_auth_can_i_follows_the_denied_permissions() {
    let (server, _guard) = start(world()).await;
    server.set_denied(vec![ktd_sim::world::Denied {
        verb: "watch".into(),
        group: "snapshot.storage.k8s.io".into(),
        resource: "*".into(),
    }]);
    let (_dir, home) = home();
    // kubectl posts the review as protobuf; the answer is JSON.
    let can_i = |args: &'static [&'static str]| {
        let mut cmd = kubectl(&server, &home);
        cmd.arg("auth").arg("can-i").args(args);
        async move {
            let out = within(60, "kubectl auth can-i", cmd.output())
                .await
                .expect("kubectl runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            )
        }
    };
    assert_eq!(can_i(&["list", "pv"]).await, (Some(0), "yes".to_owned()));
    assert_eq!(
        can_i(&["watch", "volumesnapshots.snapshot.storage.k8s.io"]).await,
        (Some(1), "no".to_owned())
    );
    assert_eq!(
        can_i(&["list", "volumesnapshots.snapshot.storage.k8s.io"]).await,
        (Some(0), "yes".to_owned())
    );
}
