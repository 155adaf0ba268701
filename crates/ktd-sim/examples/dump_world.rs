//! Prints a generated world as JSON: `cargo run -p ktd-sim --example dump_world -- [volumes] [clusters] [seed]`.

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let opts = ktd_sim::GenerateOptions {
        volumes: args.first().map_or(100, |v| *v as usize),
        clusters: args.get(1).map_or(2, |v| *v as usize),
        seed: args.get(2).copied().unwrap_or(1),
        ..Default::default()
    };
    let world = ktd_sim::generate(&opts);
    println!(
        "{}",
        serde_json::to_string_pretty(&world).expect("worlds serialize")
    );
}
