//! The accuracy harness: `ktd demo` runs the whole live pipeline (simulated servers, both
//! sources, the embedded log, the findings view) on generated worlds with ground truth,
//! and every kind must come out at 100% precision and recall with no trap reported, on
//! every TrueNAS release and several seeds and sizes. (`bench/accuracy` does the same at
//! larger sizes.)

use std::process::Command;

use ktd_model::FindingKind;
use serde_json::Value;

fn demo(version: &str, seed: u64, volumes: usize, snapshots: usize) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ktd"))
        .env_remove("KTD_CONFIG")
        .args(["demo", "-o", "json", "--truenas-version", version])
        .args([
            "--seed",
            &seed.to_string(),
            "--volumes",
            &volumes.to_string(),
        ])
        .args(["--snapshots", &snapshots.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(report: &Value, what: &str) {
    let accuracy = &report["accuracy"];
    for list in ["false_positives", "missed", "traps_hit", "unowned_missed"] {
        assert_eq!(
            accuracy[list],
            serde_json::json!([]),
            "{what}: {list} in {accuracy:#}"
        );
    }
    let mut expected = 0;
    for kind in FindingKind::ALL {
        let score = &accuracy["by_kind"][kind.as_str()];
        assert_eq!(score["precision"], 1.0, "{what} {kind}: {score}");
        assert_eq!(score["recall"], 1.0, "{what} {kind}: {score}");
        expected += score["expected"].as_u64().unwrap();
    }
    assert!(
        expected >= 15,
        "{what}: the world planted only {expected} findings"
    );
    assert!(accuracy["traps"].as_u64().unwrap() > 0, "{what}: no traps");
}

#[test]
fn every_release_every_kind_no_false_positive() {
    for version in ["22.12", "24.10", "25.04", "25.10"] {
        for seed in [3, 1234] {
            let report = demo(version, seed, 150, 3);
            check(&report, &format!("TrueNAS {version}, seed {seed}"));
        }
    }
}

#[test]
fn a_larger_world_with_many_snapshots() {
    let report = demo("25.10", 77, 600, 8);
    check(&report, "600 volumes x 8 snapshots");
    assert!(report["events_by_subject"]["snapshot"].as_u64().unwrap() > 4000);
}
