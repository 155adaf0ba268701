//! # ktd
//!
//! The `ktd` binary (also installed as `kubectl-ktd`): command-line parsing ([`cli`]),
//! output formats ([`output`]) and the commands ([`commands`]); offline [`bundle`]s
//! (`ktd collect`, `ktd scan --bundle`). Library crates do the work; this crate wires them
//! together.

pub mod accuracy;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod output;

use clap::{CommandFactory, FromArgMatches};

/// Parses the command line and runs the command; the process exit code is the result.
pub fn main() -> std::process::ExitCode {
    // As a kubectl plugin (`kubectl ktd …` runs `kubectl-ktd`), help says `kubectl ktd`.
    let as_plugin = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f == "kubectl-ktd")
        })
        .unwrap_or(false);
    let mut command = cli::Cli::command();
    if as_plugin {
        command = command.bin_name("kubectl ktd");
    }
    let cli = match cli::Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
