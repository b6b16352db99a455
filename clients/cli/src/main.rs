//! `conveyor`: manage pipelines and run the embedded control plane.

mod commands;
mod output;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::OutputFormat;

#[derive(Parser)]
#[command(
    name = "conveyor",
    version,
    about = "Conveyor: deployment pipelines as code, checked against the DPRA"
)]
struct Cli {
    /// The control plane's gRPC endpoint.
    #[arg(long, global = true, env = "CONVEYOR_ENDPOINT", default_value = conveyor_api::client::DEFAULT_ENDPOINT)]
    endpoint: String,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, validate and inspect pipelines.
    #[command(subcommand)]
    Pipeline(commands::pipeline::PipelineCommand),
    /// Start, follow and cancel executions.
    #[command(subcommand)]
    Run(commands::run::RunCommand),
    /// Block promotion of a pipeline (or one stage) until unblocked.
    Block(commands::holds::BlockArgs),
    /// Lift promotion blockers; held executions continue.
    Unblock(commands::holds::UnblockArgs),
    /// Set and list alarm states.
    #[command(subcommand)]
    Alarm(commands::holds::AlarmCommand),
    /// Accounts, organizational units, baselines, rollouts, drift and freezes.
    #[command(subcommand)]
    Fleet(commands::fleet::FleetCommand),
    /// DORA and DPRA metrics, mainline health and deployment records.
    #[command(subcommand)]
    Metrics(commands::metrics::MetricsCommand),
    /// Notification rules (webhook, Slack, email) and their delivery log.
    #[command(subcommand)]
    Notify(commands::notify::NotifyCommand),
    /// Print the output of an execution's actions (`-f` to follow).
    Logs(commands::run::LogsArgs),
    /// Run every service in one process on the embedded default (SQLite).
    Dev(commands::dev::DevArgs),
    /// Run the example application from commit to production on this machine.
    Demo(commands::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = commands::Context {
        endpoint: cli.endpoint,
        output: cli.output,
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Pipeline(cmd) => commands::pipeline::run(&ctx, cmd).await,
            Command::Run(cmd) => commands::run::run(&ctx, cmd).await,
            Command::Fleet(cmd) => commands::fleet::run(&ctx, cmd).await,
            Command::Metrics(cmd) => commands::metrics::run(&ctx, cmd).await,
            Command::Notify(cmd) => commands::notify::run(&ctx, cmd).await,
            Command::Logs(args) => commands::run::logs(&ctx, args).await,
            Command::Block(args) => commands::holds::block(&ctx, args).await,
            Command::Unblock(args) => commands::holds::unblock(&ctx, args).await,
            Command::Alarm(cmd) => commands::holds::alarm(&ctx, cmd).await,
            Command::Dev(args) => commands::dev::run(args).await,
            Command::Demo(args) => commands::demo::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
