//! `bench/accuracy`: the whole live pipeline (`ktd demo`: simulated servers, both sources,
//! the embedded log, the findings view) on generated worlds of growing size, with the
//! precision and recall per kind against the ground truth, the cold reconcile time (folding
//! the log into findings) and the process's peak memory.
//!
//! `cargo bench -p ktd --bench accuracy` (sizes: `KTD_BENCH_SIZES=1000x10,10000x10`,
//! seeds: `KTD_BENCH_SEEDS=1,2`, release: `KTD_BENCH_RELEASE=25.10`).

use std::process::Command;
use std::time::Instant;

use serde_json::Value;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs the demo; returns its report and the peak RSS (KiB) when `/usr/bin/time` exists.
fn demo(release: &str, seed: &str, volumes: &str, snapshots: &str) -> (Value, Option<u64>) {
    let bin = env!("CARGO_BIN_EXE_ktd");
    let args = [
        "demo",
        "-o",
        "json",
        "--truenas-version",
        release,
        "--seed",
        seed,
        "--volumes",
        volumes,
        "--snapshots",
        snapshots,
    ];
    let timed = std::path::Path::new("/usr/bin/time").exists();
    let out = if timed {
        Command::new("/usr/bin/time")
            .args(["-f", "peak_rss_kib=%M", bin])
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    }
    .expect("run ktd demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ktd demo failed: {stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kib="))
        .and_then(|v| v.trim().parse().ok());
    (serde_json::from_slice(&out.stdout).expect("demo JSON"), rss)
}

fn main() {
    let sizes = env_list("KTD_BENCH_SIZES", "1000x10,10000x10");
    let seeds = env_list("KTD_BENCH_SEEDS", "1,2");
    let release = std::env::var("KTD_BENCH_RELEASE").unwrap_or_else(|_| "25.10".into());
    println!(
        "| volumes x snapshots | seed | observations | ingest | cold reconcile | findings | precision | recall | traps hit / traps | peak RSS (whole demo) | wall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all_perfect = true;
    for size in &sizes {
        let (volumes, snapshots) = size.split_once('x').expect("sizes look like 1000x10");
        for seed in &seeds {
            let started = Instant::now();
            let (r, rss) = demo(&release, seed, volumes, snapshots);
            let wall = started.elapsed();
            let a = &r["accuracy"];
            let (mut expected, mut reported, mut correct) = (0, 0, 0);
            for score in a["by_kind"].as_object().unwrap().values() {
                expected += score["expected"].as_u64().unwrap();
                reported += score["reported"].as_u64().unwrap();
                correct += score["correct"].as_u64().unwrap();
            }
            let precision = if reported == 0 {
                1.0
            } else {
                correct as f64 / reported as f64
            };
            let recall = if expected == 0 {
                1.0
            } else {
                correct as f64 / expected as f64
            };
            let traps_hit = a["traps_hit"].as_array().unwrap().len();
            all_perfect &= correct == expected && correct == reported && traps_hit == 0;
            println!(
                "| {volumes} x {snapshots} | {seed} | {} | {:.1} s | {:.2} s | {reported} | {:.2}% | {:.2}% | {traps_hit} / {} | {} | {:.1} s |",
                r["events"],
                r["elapsed_ms"].as_f64().unwrap() / 1000.0,
                r["views_ms"].as_f64().unwrap() / 1000.0,
                precision * 100.0,
                recall * 100.0,
                a["traps"],
                rss.map_or("n/a".into(), |k| format!("{} MiB", k / 1024)),
                wall.as_secs_f64(),
            );
            for list in ["false_positives", "missed", "traps_hit"] {
                for item in a[list].as_array().unwrap() {
                    println!("  {list}: {item}");
                }
            }
        }
    }
    if !all_perfect {
        eprintln!("accuracy below 100% (see above)");
        std::process::exit(1);
    }
}
