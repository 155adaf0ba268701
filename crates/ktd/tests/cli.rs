//! The `ktd` binary end to end: `sim generate`, `sim serve` (with kubectl and TrueNAS REST
//! as clients) and `demo`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

mod support;
use std::time::{Duration, Instant};
use support::{Guard, stop};

use ktd_model::FindingKind;
use serde_json::Value;

fn ktd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ktd"));
    cmd.env_remove("KTD_CONFIG").env_remove("KTD_CONTEXT");
    cmd
}

#[test]
fn sim_generate_writes_a_world_and_its_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = ktd()
        .args([
            "sim",
            "generate",
            "--volumes",
            "30",
            "--snapshots",
            "2",
            "--seed",
            "5",
            "-o",
            "json",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let world: ktd_sim::World =
        serde_json::from_reader(std::fs::File::open(dir.path().join("world.json")).unwrap())
            .unwrap();
    let truth: ktd_sim::GroundTruth =
        serde_json::from_reader(std::fs::File::open(dir.path().join("truth.json")).unwrap())
            .unwrap();
    assert_eq!(world.seed, 5);
    assert_eq!(truth.findings, world.truth.findings);
    assert_eq!(summary["traps"], world.truth.traps.len());
    let datasets = summary["nas"]["datasets"].as_u64().unwrap();
    assert_eq!(datasets as usize, world.nas.datasets.len());

    // Same seed and `--now`, same world.
    let again = tempfile::tempdir().unwrap();
    for d in [dir.path(), again.path()] {
        let status = ktd()
            .args([
                "sim",
                "generate",
                "--volumes",
                "30",
                "--snapshots",
                "2",
                "--seed",
                "5",
            ])
            .args(["--now", "2026-01-01T00:00:00Z", "--out"])
            .arg(d)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert_eq!(
        std::fs::read(dir.path().join("world.json")).unwrap(),
        std::fs::read(again.path().join("world.json")).unwrap()
    );
}

#[test]
fn sim_generate_rejects_an_unknown_truenas_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = ktd()
        .args(["sim", "generate", "--truenas-version", "13.0", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("13.0") && err.contains("25.10"), "{err}");
}

/// Reads pretty-printed JSON from the child's stdout until one complete value has arrived.
fn read_json(child: &mut Child) -> Value {
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "no JSON from ktd sim serve: {text}"
        );
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("ktd sim serve ended early: {text}");
        }
        text.push_str(&line);
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            return v;
        }
    }
}

#[test]
fn sim_serve_answers_kubectl_and_truenas_clients_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let child = ktd()
        .args([
            "sim",
            "serve",
            "--volumes",
            "20",
            "--clusters",
            "2",
            "--truenas-version",
            "25.10",
            "-o",
            "json",
        ])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let endpoints = read_json(&mut guard.0);
    assert_eq!(endpoints["truenas_version"], "TrueNAS-25.10.1");
    let clusters = endpoints["kubernetes"].as_object().unwrap();
    assert_eq!(clusters.len(), 2);

    // kubectl, through the written kubeconfig, for each cluster's context.
    for (name, _url) in clusters {
        let pvs_expected = endpoints["summary"]["clusters"][name]["PersistentVolume"]
            .as_u64()
            .unwrap();
        let out = Command::new("kubectl")
            .env("HOME", dir.path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--context", name, "--cache-dir"])
            .arg(dir.path().join("cache"))
            .args(["get", "pv", "-o", "json"])
            .output()
            .expect("kubectl is installed (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            list["items"].as_array().unwrap().len() as u64,
            pvs_expected,
            "{name}"
        );
    }

    // TrueNAS REST with the printed API key.
    let key = endpoints["api_key"].as_str().unwrap();
    let url = format!(
        "{}/api/v2.0/system/version_short",
        endpoints["truenas"].as_str().unwrap()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let version: Value = rt.block_on(async {
        reqwest::Client::new()
            .get(&url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(version, "25.10.1");

    // SIGTERM stops it cleanly.
    stop(guard);
}

#[test]
fn demo_ingests_both_sides_into_the_log_and_reports_every_kind_of_finding_the_world_holds() {
    for version in ["22.12", "25.10"] {
        let out = ktd()
            .args(["demo", "-o", "json", "--truenas-version", version])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["rejected"].as_array().unwrap().len(), 0, "{report}");
        for what in [
            "persistentvolume",
            "volumesnapshotcontent",
            "dataset",
            "snapshot",
            "nfs-share",
            "iscsi-extent",
            "poll",
            "tick",
        ] {
            assert!(
                report["events_by_subject"][what].as_u64().unwrap_or(0) > 0,
                "{version}: no {what} events in the log: {report}"
            );
        }
        assert_eq!(
            report["events_by_type"]["SyncCompleted"], 12,
            "{version}: every kind synced once"
        );
        assert_eq!(report["events_by_type"]["PollCompleted"], 1, "{version}");
        let accuracy = &report["accuracy"];
        for kind in FindingKind::ALL {
            let score = &accuracy["by_kind"][kind.as_str()];
            assert!(
                score["expected"].as_u64().unwrap_or(0) > 0,
                "{version}: the demo world holds no {kind}"
            );
            assert_eq!(
                score["reported"], score["expected"],
                "{version} {kind}: {score}"
            );
            assert_eq!(
                score["correct"], score["expected"],
                "{version} {kind}: {score}"
            );
        }
        for list in ["false_positives", "missed", "traps_hit", "unowned_missed"] {
            assert_eq!(accuracy[list], serde_json::json!([]), "{version}: {list}");
        }
        assert!(report["derived_events"].as_u64().unwrap() >= 15, "{report}");
        assert!(report["events"].as_u64().unwrap() > 100);
    }
}
