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
use std::sync::Arc;
use tokio::sync::watch;

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
    // One SQLite file per service: each owns its tables and migrations.
    let sqlite = |service: &str| {
        format!(
            "sqlite://{}",
            args.data_dir.join(format!("{service}.db")).display()
        )
    };
    let definitions_config = conveyor_definitions::Config {
        server: server_config.clone(),
        database_url: sqlite("definitions"),
        max_connections: 4,
        ..conveyor_definitions::Config::default()
    };
    let execution_config = conveyor_execution::Config {
        server: server_config.clone(),
        database_url: sqlite("execution"),
        max_connections: 4,
        artifact_store: args.data_dir.join("artifacts").display().to_string(),
        signing_key_file: args.data_dir.join("signing-key.pem"),
        ..conveyor_execution::Config::default()
    };
    let mut services = Services::new()?;
    let definitions = conveyor_definitions::register(&mut services, &definitions_config).await?;
    // Dispatches and events stay in process: no Redis needed.
    let queue: Arc<dyn conveyor_platform::queue::Queue> =
        Arc::new(conveyor_platform::queue::InProcessQueue::new());
    let background = conveyor_execution::register(
        &mut services,
        &execution_config,
        Arc::new(definitions),
        queue.clone(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        conveyor_platform::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let worker_config = conveyor_worker::Config {
        endpoint: format!("http://{addr}"),
        work_dir: args.data_dir.join("work"),
        name: "dev-worker".to_owned(),
        trusted_key_files: vec![conveyor_platform::signing::public_key_path(
            &execution_config.signing_key_file,
        )],
        ..conveyor_worker::Config::default()
    };
    let worker = tokio::spawn(conveyor_worker::run_with(
        worker_config,
        Some(queue),
        stopped(stop_rx.clone()),
    ));

    eprintln!(
        "conveyor dev: serving on http://{addr} (data in {})",
        args.data_dir.display()
    );
    eprintln!(
        "  services: PipelineService, ExecutionService, WorkerService (+ one worker), Health, reflection"
    );
    eprintln!(
        "  try:      conveyor pipeline init --type application > app.yaml && conveyor pipeline apply -f app.yaml"
    );
    server::serve(listener, &server_config, services, stopped(stop_rx)).await?;
    drop(background);
    worker.await??;
    Ok(ExitCode::SUCCESS)
}
