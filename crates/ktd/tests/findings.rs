//! Findings live and offline, end to end through the binary: `ktd run` observes a simulated
//! world with ground truth and records its findings in the log; `ktd orphans` reads them
//! back; `ktd collect` + `ktd scan --bundle` reach the same findings offline. Both are
//! exact against the truth, and a restart records nothing twice.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ktd::accuracy::Accuracy;
use ktd_model::{Finding, FindingKind, ResourceRef, Timestamp};
use ktd_sim::GenerateOptions;
use serde_json::Value;

mod support;
use support::{Guard, Sim, stop};

fn ktd(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ktd"))
        .env_remove("KTD_CONTEXT")
        .env("KTD_CONFIG", config)
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write_config(dir: &Path, sim: &Sim) -> std::path::PathBuf {
    let key_file = dir.join("api-key");
    std::fs::write(&key_file, sim.api_key()).unwrap();
    let path = dir.join("ktd.yaml");
    std::fs::write(
        &path,
        format!(
            "instance: test\nlog:\n  backend: embedded\n  path: {}\nkubernetes:\n  instance: {}\n  url: {}\ntruenas:\n  instance: nas\n  url: {}\n  api_key: {{file: {}}}\n  username: truenas_admin\n  poll_interval: 300\ntick_seconds: 1\n",
            dir.join("events.redb").display(),
            sim.world.clusters[0].name,
            sim.kube.url(),
            sim.nas.url(),
            key_file.display()
        ),
    )
    .unwrap();
    path
}

fn run_for(config: &Path, duration: Duration) {
    let child = Guard(
        Command::new(env!("CARGO_BIN_EXE_ktd"))
            .env("KTD_CONFIG", config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(duration);
    stop(child);
}

fn findings(report: &Value) -> Vec<Finding> {
    serde_json::from_value(report["findings"].clone()).unwrap()
}

fn unowned(report: &Value) -> Vec<String> {
    serde_json::from_value(report["summary"]["unowned"].clone()).unwrap()
}

fn keys(findings: &[Finding]) -> BTreeSet<(FindingKind, ResourceRef)> {
    findings
        .iter()
        .map(|f| (f.kind, f.subject.clone()))
        .collect()
}

fn derived_types(config: &Path) -> Vec<String> {
    let out = ktd(
        config,
        &["events", "tail", "--stream", "derived", "-o", "json"],
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event"]["type"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn live_and_offline_findings_match_the_truth_and_each_other() {
    let world = ktd_sim::generate(&GenerateOptions {
        volumes: 80,
        snapshots_per_volume: 2,
        clusters: 1,
        seed: 21,
        now: Timestamp::now().unix_secs(),
        ..GenerateOptions::default()
    });
    let truth = world.truth.clone();
    let cluster = world.clusters[0].name.clone();
    let sim = Sim::serve(world);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);

    // Live: the daemon observes both sides and records findings in the log.
    run_for(&config, Duration::from_secs(8));
    let live = json_of(ktd(&config, &["orphans", "-o", "json"]), "ktd orphans");
    assert_eq!(
        live["summary"]["not_judged"],
        serde_json::json!({}),
        "both sides were completely observed: {}",
        live["summary"]
    );
    let live_findings = findings(&live);
    let acc = Accuracy::measure(&truth, &cluster, &live_findings, &unowned(&live));
    assert!(acc.perfect(), "live: {acc:#?}");
    assert!(live_findings.len() >= 15, "{}", live_findings.len());

    // The daemon recorded each finding once.
    let types = derived_types(&config);
    let opened = types.iter().filter(|t| *t == "FindingOpened").count();
    assert_eq!(opened, live_findings.len(), "{types:?}");
    assert!(!types.iter().any(|t| t == "FindingResolved"), "{types:?}");

    // A restart catches up and records nothing twice.
    run_for(&config, Duration::from_secs(3));
    assert_eq!(derived_types(&config), types);

    // Offline: a bundle of the same systems gives the same findings.
    let bundle = dir.path().join("bundle");
    let out = ktd(&config, &["collect", "--out", bundle.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline = json_of(
        ktd(
            &config,
            &["scan", "--bundle", bundle.to_str().unwrap(), "-o", "json"],
        ),
        "ktd scan",
    );
    let offline_findings = findings(&offline);
    let acc = Accuracy::measure(&truth, &cluster, &offline_findings, &unowned(&offline));
    assert!(acc.perfect(), "offline: {acc:#?}");
    assert_eq!(keys(&offline_findings), keys(&live_findings));
    // Same evidence and remediation, not only the same subjects.
    for (a, b) in live_findings.iter().zip(&offline_findings) {
        assert_eq!(
            (&a.related, &a.remediation, a.severity),
            (&b.related, &b.remediation, b.severity),
            "{}",
            a.subject
        );
    }
    // The same bundle through `ktd orphans --bundle`, filtered.
    let filtered = json_of(
        ktd(
            &config,
            &[
                "orphans",
                "--bundle",
                bundle.to_str().unwrap(),
                "--kind",
                "dataset-orphaned,share-orphaned",
                "-o",
                "json",
            ],
        ),
        "ktd orphans --bundle",
    );
    let kinds: BTreeSet<FindingKind> = findings(&filtered).iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [FindingKind::DatasetOrphaned, FindingKind::ShareOrphaned].into()
    );
}

#[test]
fn fail_on_gives_exit_code_2_and_the_ledger_joins_both_sides() {
    let world = ktd_sim::generate(&GenerateOptions {
        volumes: 30,
        snapshots_per_volume: 2,
        clusters: 1,
        seed: 4,
        now: Timestamp::now().unix_secs(),
        ..GenerateOptions::default()
    });
    let sim = Sim::serve(world);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let bundle = dir.path().join("bundle");
    let out = ktd(&config, &["collect", "--out", bundle.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = bundle.to_str().unwrap();

    let critical = ktd(&config, &["scan", "--bundle", b, "--fail-on", "critical"]);
    let high = ktd(&config, &["scan", "--bundle", b, "--fail-on", "high"]);
    let report = json_of(ktd(&config, &["scan", "--bundle", b, "-o", "json"]), "scan");
    let worst = findings(&report).iter().map(|f| f.severity).max().unwrap();
    assert_eq!(high.status.code(), Some(2), "the world has high findings");
    assert_eq!(
        critical.status.code(),
        Some(if worst >= ktd_model::Severity::Critical {
            2
        } else {
            0
        })
    );

    let ledger = json_of(
        ktd(&config, &["snapshots", "--bundle", b, "-o", "json"]),
        "ktd snapshots",
    );
    let volumes = ledger["volumes"].as_array().unwrap();
    assert!(volumes.len() >= 30, "{}", volumes.len());
    let joined = volumes
        .iter()
        .flat_map(|v| v["snapshots"].as_array().unwrap())
        .filter(|s| s["state"] == "ready" && s["truenas"].is_string() && s["content"].is_string())
        .count();
    assert!(
        joined >= 50,
        "most snapshots are joined on both sides: {joined}"
    );
    assert_eq!(
        ledger["totals"]["snapshots"].as_u64().unwrap() as usize,
        volumes
            .iter()
            .map(|v| v["count"].as_u64().unwrap() as usize)
            .sum::<usize>()
    );
    let bad = ktd(&config, &["snapshots", "--bundle", b, "--policy", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no retention policy named `nope`"));
}

/// Runs `ktd` with stdout piped, for commands that run until they stop themselves.
fn spawn_ktd(config: &Path, args: &[&str]) -> Guard {
    Guard(
        Command::new(env!("CARGO_BIN_EXE_ktd"))
            .env_remove("KTD_CONTEXT")
            .env("KTD_CONFIG", config)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Seqs and ids of `ktd events tail -o json` output.
fn events_of(stdout: &[u8]) -> Vec<(u64, String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["id"].as_str().unwrap().to_owned(),
                v["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The embedded log is shared: while `ktd run` writes it, `ktd orphans`, `ktd snapshots` and
/// `ktd events tail` (`--follow` too) read it from other processes, the findings they fold are
/// exact, and the daemon still stops cleanly with everything it wrote in place.
#[test]
fn while_ktd_runs_other_commands_read_its_embedded_log() {
    let world = ktd_sim::generate(&GenerateOptions {
        volumes: 30,
        snapshots_per_volume: 2,
        clusters: 1,
        seed: 9,
        now: Timestamp::now().unix_secs(),
        ..GenerateOptions::default()
    });
    let truth = world.truth.clone();
    let cluster = world.clusters[0].name.clone();
    let sim = Sim::serve(world);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let daemon = Guard(
        Command::new(env!("CARGO_BIN_EXE_ktd"))
            .env("KTD_CONFIG", &config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Until the daemon has created its log, reads may find none; after that, every read
    // succeeds while it runs. The deadline only keeps a broken build from hanging.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tail = ktd(&config, &["events", "tail", "-o", "json"]);
    while !tail.status.success() || tail.stdout.is_empty() {
        assert!(
            Instant::now() < deadline,
            "`ktd events tail` never read the running daemon's log: {}",
            String::from_utf8_lossy(&tail.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
        tail = ktd(&config, &["events", "tail", "-o", "json"]);
    }
    let live = loop {
        let report = json_of(
            ktd(&config, &["orphans", "-o", "json"]),
            "ktd orphans while ktd run writes the log",
        );
        if report["summary"]["not_judged"] == serde_json::json!({}) {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "both sides never observed: {}",
            report["summary"]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let live_findings = findings(&live);
    let acc = Accuracy::measure(&truth, &cluster, &live_findings, &unowned(&live));
    assert!(acc.perfect(), "while the daemon runs: {acc:#?}");
    let ledger = json_of(
        ktd(&config, &["snapshots", "-o", "json"]),
        "ktd snapshots while ktd run writes the log",
    );
    assert!(ledger["volumes"].as_array().unwrap().len() >= 30);

    // The log so far, read while the daemon writes.
    let out = ktd(&config, &["events", "tail", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = events_of(&out.stdout);
    let last = before.last().unwrap().0;
    assert_eq!(
        before.iter().map(|e| e.0).collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>()
    );
    // `--follow` from the end: the daemon ticks every second, and the follower prints its
    // next two ticks as they are committed, then stops (`--limit`).
    let from = (last + 1).to_string();
    let mut follower = spawn_ktd(
        &config,
        &[
            "events",
            "tail",
            "--follow",
            "--from",
            &from,
            "--subject",
            "ktd.v1.obs.*.tick",
            "--limit",
            "2",
            "-o",
            "json",
        ],
    );
    let status = loop {
        if let Some(status) = follower.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the follower never saw new ticks"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = Vec::new();
    let mut stderr = String::new();
    std::io::Read::read_to_end(follower.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    std::io::Read::read_to_string(follower.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let followed = events_of(&stdout);
    assert_eq!(followed.len(), 2, "{followed:?}");
    assert!(
        followed
            .iter()
            .all(|(seq, _, subject)| *seq > last && subject == "ktd.v1.obs.test.tick"),
        "{followed:?}"
    );

    // The daemon was not disturbed: it stops cleanly, and the log holds what was read.
    stop(daemon);
    let out = ktd(&config, &["events", "tail", "-o", "json"]);
    assert!(out.status.success());
    let after = events_of(&out.stdout);
    assert_eq!(after[..before.len()], before[..]);
    assert!(after.iter().any(|e| e.1 == followed[1].1));
}
