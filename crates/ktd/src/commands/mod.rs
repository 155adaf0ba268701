//! The commands. Each returns the process exit code.

mod collect;
mod demo;
mod events;
pub mod findings;
mod run;
mod sim;
pub mod views;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command, EventsCommand};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run => run::run(cli.config.as_deref(), cli.context).await,
        Command::Orphans(args) => views::orphans(args, cli.config.as_deref(), cli.output).await,
        Command::Snapshots(args) => views::snapshots(args, cli.config.as_deref(), cli.output).await,
        Command::Scan(args) => views::scan(args, cli.config.as_deref(), cli.output).await,
        Command::Events(EventsCommand::Tail(args)) => {
            events::tail(args, cli.config.as_deref(), cli.output).await
        }
        Command::Collect(args) => {
            collect::run(args, cli.config.as_deref(), cli.context, cli.output).await
        }
        Command::Demo(args) => demo::run(args, cli.output).await,
        Command::Sim(cmd) => sim::run(cmd, cli.output).await,
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "ktd", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
