use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use conveyor_metrics::config::{Config, Flags};

/// Conveyor's metrics service: deployment records, DORA and DPRA metrics, mainline health.
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
    let _telemetry = conveyor_platform::telemetry::init("conveyor-metrics", config.log_format);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let http_listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_listen))?;
    conveyor_metrics::run(
        config,
        listener,
        http_listener,
        conveyor_platform::shutdown_signal(),
    )
    .await
}
