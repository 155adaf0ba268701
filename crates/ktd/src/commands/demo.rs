//! `ktd demo`.

use std::process::ExitCode;

use crate::cli::DemoArgs;
use crate::output::Format;

/// Runs the demo.
pub async fn run(args: DemoArgs, format: Format) -> anyhow::Result<ExitCode> {
    let _ = (args, format);
    anyhow::bail!("not wired yet")
}
