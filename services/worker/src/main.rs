use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

/// Conveyor's worker: runs actions claimed from the execution service.
#[derive(Parser, Serialize)]
#[command(version)]
struct Args {
    /// A TOML configuration file.
    #[arg(long, env = "CONVEYOR_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// The execution service [env: CONVEYOR_ENDPOINT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    /// The worker pool [env: CONVEYOR_POOL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<String>,
    /// Attempts run at once [env: CONVEYOR_CONCURRENCY]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    /// Redis, where dispatches arrive [env: CONVEYOR_REDIS_URL]; without it the worker polls
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    /// A public key (SPKI PEM) whose artifact signatures are accepted; repeatable
    #[arg(long = "trusted-key-file")]
    #[serde(rename = "trusted_key_files", skip_serializing_if = "Option::is_none")]
    trusted_key_files: Option<Vec<PathBuf>>,
    /// Where workspaces are created [env: CONVEYOR_WORK_DIR]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    work_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: conveyor_worker::Config =
        conveyor_platform::config::load(args.config.as_deref(), &args)
            .context("invalid configuration")?;
    let _telemetry = conveyor_platform::telemetry::init("conveyor-worker", config.log_format);
    conveyor_worker::run(config, conveyor_platform::shutdown_signal()).await
}
