use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use conveyor_execution::config::{Config, Flags};

/// Conveyor's execution service: runs pipelines, hands actions to workers.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A TOML configuration file.
    #[arg(long, env = "CONVEYOR_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Flags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: Config = conveyor_platform::config::load(args.config.as_deref(), &args.flags)
        .context("invalid configuration")?;
    let _telemetry = conveyor_platform::telemetry::init("conveyor-execution", config.log_format);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    conveyor_execution::run(config, listener, conveyor_platform::shutdown_signal()).await
}
