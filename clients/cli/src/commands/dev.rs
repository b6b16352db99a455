//! `conveyor dev`: every implemented service in one process, on one port,
//! on the embedded default (a SQLite file under the data directory).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use conveyor_platform::ServerConfig;
use conveyor_platform::server::{self, Services};
use conveyor_platform::telemetry::{self, LogFormat};

#[derive(Args)]
pub struct DevArgs {
    /// Address for every gRPC service.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Where the embedded database and artifacts live.
    #[arg(long, env = "CONVEYOR_DATA_DIR", default_value = ".conveyor")]
    data_dir: PathBuf,
}

pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = telemetry::init("conveyor-dev", LogFormat::Text);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let server_config = ServerConfig {
        listen: args.listen,
        ..ServerConfig::default()
    };
    let definitions = conveyor_definitions::Config {
        server: server_config.clone(),
        database_url: format!(
            "sqlite://{}",
            args.data_dir.join("definitions.db").display()
        ),
        max_connections: 4,
        ..conveyor_definitions::Config::default()
    };
    let mut services = Services::new()?;
    conveyor_definitions::register(&mut services, &definitions).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "conveyor dev: serving on http://{addr} (data in {})",
        args.data_dir.display()
    );
    eprintln!(
        "  services: conveyor.definitions.v1.PipelineService, grpc.health.v1.Health, reflection"
    );
    eprintln!(
        "  try:      conveyor pipeline init --type application > app.yaml && conveyor pipeline apply -f app.yaml"
    );
    server::serve(
        listener,
        &server_config,
        services,
        conveyor_platform::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
