//! `conveyor dev`: every implemented service in one process, on one port,
//! on the embedded default (a SQLite file per service under the data
//! directory, the in-process queue, a local artifact directory) with one
//! worker. `conveyor demo` runs on the same embedded control plane.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use conveyor_platform::ServerConfig;
use conveyor_platform::server::{self, Services};
use conveyor_platform::telemetry::{self, LogFormat};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Args)]
pub struct DevArgs {
    /// Address for every gRPC service.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Address of the delivery dashboard and Prometheus /metrics (HTTP).
    #[arg(long, default_value = "127.0.0.1:7705")]
    dashboard_listen: SocketAddr,
    /// Where the embedded database and artifacts live.
    #[arg(long, env = "CONVEYOR_DATA_DIR", default_value = ".conveyor")]
    data_dir: PathBuf,
}

/// The control plane and one worker, running in this process.
pub struct Embedded {
    pub addr: SocketAddr,
    /// The metrics service's dashboard and /metrics.
    pub dashboard_addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<anyhow::Result<()>>,
    worker: JoinHandle<anyhow::Result<()>>,
}

impl Embedded {
    /// Starts definitions, execution, fleet, metrics and a worker of `concurrency` slots on
    /// `listen`, with their state under `data_dir`; the worker's actions
    /// also get `action_env`.
    pub async fn start(
        data_dir: &Path,
        listen: SocketAddr,
        dashboard_listen: SocketAddr,
        concurrency: usize,
        action_env: &[(&str, String)],
    ) -> anyhow::Result<Embedded> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let server_config = ServerConfig {
            listen,
            ..ServerConfig::default()
        };
        // One SQLite file per service: each owns its tables and migrations.
        let sqlite = |service: &str| {
            format!(
                "sqlite://{}",
                data_dir.join(format!("{service}.db")).display()
            )
        };
        let definitions_config = conveyor_definitions::Config {
            server: server_config.clone(),
            database_url: sqlite("definitions"),
            max_connections: 4,
            ..conveyor_definitions::Config::default()
        };
        // Bound first: the execution service reaches the fleet service at
        // this address (the same server) for `fromFleet` stages.
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let fleet_config = conveyor_fleet::Config {
            server: server_config.clone(),
            database_url: sqlite("fleet"),
            max_connections: 4,
            execution_endpoint: format!("http://{addr}"),
            track_interval_secs: 2,
            // The example baseline's checks find accounts there (examples/account-fleet).
            drift_check_env: vec!["CONVEYOR_FLEET_ROOT".to_owned()],
            ..conveyor_fleet::Config::default()
        };
        let execution_config = conveyor_execution::Config {
            fleet_endpoint: Some(format!("http://{addr}")),
            server: server_config.clone(),
            database_url: sqlite("execution"),
            max_connections: 4,
            artifact_store: data_dir.join("artifacts").display().to_string(),
            signing_key_file: data_dir.join("signing-key.pem"),
            ..conveyor_execution::Config::default()
        };
        let mut services = Services::new()?;
        // Dispatches and events stay in process: no Redis needed.
        let queue: Arc<dyn conveyor_platform::queue::Queue> =
            Arc::new(conveyor_platform::queue::InProcessQueue::new());
        let definitions =
            conveyor_definitions::register(&mut services, &definitions_config, Some(queue.clone()))
                .await?;
        let background = conveyor_execution::register(
            &mut services,
            &execution_config,
            Arc::new(definitions),
            queue.clone(),
        )
        .await?;
        let (_fleet, fleet_tracker) =
            conveyor_fleet::register(&mut services, &fleet_config).await?;
        let metrics_config = conveyor_metrics::Config {
            server: server_config.clone(),
            database_url: sqlite("metrics"),
            max_connections: 4,
            ..conveyor_metrics::Config::default()
        };
        // Metrics read the execution service's events from the same queue.
        let (metrics, ingest) =
            conveyor_metrics::register(&mut services, &metrics_config, queue.clone()).await?;
        let dashboard_listener = tokio::net::TcpListener::bind(dashboard_listen)
            .await
            .with_context(|| format!("cannot listen on {dashboard_listen}"))?;
        let dashboard_addr = dashboard_listener.local_addr()?;
        let dashboard_router = ingest.http_router(metrics);

        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let worker_config = conveyor_worker::Config {
            endpoint: format!("http://{addr}"),
            work_dir: data_dir.join("work"),
            name: "dev-worker".to_owned(),
            concurrency,
            trusted_key_files: vec![conveyor_platform::signing::public_key_path(
                &execution_config.signing_key_file,
            )],
            // Scripts can call this control plane with this binary, e.g. to
            // fetch a baseline version (examples/account-fleet).
            action_env: [
                ("CONVEYOR_ENDPOINT".to_owned(), format!("http://{addr}")),
                (
                    "CONVEYOR_CLI".to_owned(),
                    std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "conveyor".to_owned()),
                ),
            ]
            .into_iter()
            .chain(action_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
            .collect(),
            ..conveyor_worker::Config::default()
        };
        let worker = tokio::spawn(conveyor_worker::run_with(
            worker_config,
            Some(queue),
            stopped(stop_rx.clone()),
        ));
        let dashboard = tokio::spawn(conveyor_metrics::http::serve(
            dashboard_listener,
            dashboard_router,
            stopped(stop_rx.clone()),
        ));
        let server = tokio::spawn(async move {
            let served = server::serve(listener, &server_config, services, stopped(stop_rx)).await;
            if let Err(e) = dashboard.await {
                tracing::warn!(error = %e, "the dashboard stopped");
            }
            drop(background);
            drop(fleet_tracker);
            drop(ingest);
            served.map_err(anyhow::Error::from)
        });
        Ok(Embedded {
            addr,
            dashboard_addr,
            stop,
            server,
            worker,
        })
    }

    /// Stops the worker (after its attempts in flight) and the server.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.worker.await??;
        self.server.await??;
        Ok(())
    }

    /// Waits for Ctrl-C or SIGTERM, then shuts down.
    pub async fn serve_until_signal(self) -> anyhow::Result<()> {
        conveyor_platform::shutdown_signal().await;
        self.shutdown().await
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = telemetry::init("conveyor-dev", LogFormat::Text);
    let embedded =
        Embedded::start(&args.data_dir, args.listen, args.dashboard_listen, 2, &[]).await?;
    eprintln!(
        "conveyor dev: serving on http://{} (data in {})",
        embedded.addr,
        args.data_dir.display()
    );
    eprintln!(
        "  dashboard: http://{}/ (Prometheus: http://{}/metrics)",
        embedded.dashboard_addr, embedded.dashboard_addr
    );
    eprintln!(
        "  services: PipelineService, ExecutionService, WorkerService (+ one worker), FleetService, MetricsService, Health, reflection"
    );
    eprintln!(
        "  try:      conveyor pipeline init --type application > app.yaml && conveyor pipeline apply -f app.yaml"
    );
    embedded.serve_until_signal().await?;
    Ok(ExitCode::SUCCESS)
}
