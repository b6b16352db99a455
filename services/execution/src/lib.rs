//! Conveyor's execution service: runs a pipeline revision for a commit,
//! stage by stage, handing actions to workers through the WorkerService.
//!
//! `engine` decides (pure functions over a snapshot), `store` persists with
//! compare-and-set, `domain` ties them to the outside world, `api` adapts
//! the domain to gRPC.

pub mod api;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod model;
pub mod specs;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conveyor_platform::server::{self, Services};
use tokio::net::TcpListener;

pub use config::Config;

/// Connects to the database, starts the lease reconciler and adds the
/// ExecutionService and WorkerService to `services`.
pub async fn register(
    services: &mut Services,
    config: &Config,
    specs: Arc<dyn specs::SpecSource>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let store = store::Store::connect(&config.database_url, config.max_connections).await?;
    let executions = domain::Executions::new(store, specs, Duration::from_secs(config.lease_secs));
    let reconciler =
        executions.spawn_reconciler(Duration::from_secs(config.reconcile_interval_secs.max(1)));
    let max = config.server.max_message_bytes;
    services
        .add(api::ExecutionApi::new(executions.clone()).into_server(max))
        .await;
    services
        .add(api::WorkerApi::new(executions).into_server(max))
        .await;
    Ok(reconciler)
}

/// Runs the execution service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let definitions = conveyor_api::pipelines::PipelineClient::new(&config.definitions_endpoint)?;
    let mut services = Services::new()?;
    let reconciler = register(&mut services, &config, Arc::new(definitions)).await?;
    tracing::info!(addr = %listener.local_addr()?, "execution service listening");
    let served = server::serve(listener, &config.server, services, shutdown).await;
    reconciler.abort();
    served?;
    Ok(())
}
