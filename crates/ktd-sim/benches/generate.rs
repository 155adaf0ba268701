//! World generation benchmark: `cargo bench -p ktd-sim --bench generate`.
//!
//! Generates worlds of 1,000 and 10,000 volumes × 10 snapshots (faults on, 2 clusters),
//! then serializes them to JSON, and prints wall times, object counts and JSON size.

use std::time::Instant;

use ktd_sim::{GenerateOptions, generate};

fn main() {
    for volumes in [1_000, 10_000] {
        let opts = GenerateOptions {
            volumes,
            snapshots_per_volume: 10,
            clusters: 2,
            seed: 42,
            ..GenerateOptions::default()
        };
        let t0 = Instant::now();
        let world = generate(&opts);
        let gen_time = t0.elapsed();
        let t1 = Instant::now();
        let json = serde_json::to_vec(&world).expect("worlds serialize");
        let ser_time = t1.elapsed();
        let objects: usize = world.clusters.iter().map(|c| c.objects.len()).sum();
        println!(
            "generate volumes={volumes} snapshots/volume=10: generate {:.2} s, to JSON {:.2} s, \
             {objects} Kubernetes objects, {} datasets, {} ZFS snapshots, {} expected findings, \
             {} traps, JSON {:.1} MB",
            gen_time.as_secs_f64(),
            ser_time.as_secs_f64(),
            world.nas.datasets.len(),
            world.nas.snapshots.len(),
            world.truth.findings.len(),
            world.truth.traps.len(),
            json.len() as f64 / 1e6,
        );
    }
}
