//! Conveyor's execution service: runs a pipeline revision for a commit,
//! stage by stage, handing actions to workers through the WorkerService.
//!
//! `engine` decides (pure functions over a snapshot), `store` persists with
//! compare-and-set, `domain` ties them to the outside world, `api` adapts
//! the domain to gRPC.

pub mod api;
pub mod artifacts;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod events;
pub mod fleet;
pub mod model;
pub mod probes;
pub mod specs;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conveyor_platform::server::{self, Services};
use tokio::net::TcpListener;

pub use config::Config;

/// Background tasks of the execution service; aborted on drop.
pub struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Connects to the database, starts the outbox relay and the reconciler,
/// and adds the ExecutionService and WorkerService to `services`.
pub async fn register(
    services: &mut Services,
    config: &Config,
    specs: Arc<dyn specs::SpecSource>,
    queue: Arc<dyn conveyor_platform::queue::Queue>,
) -> anyhow::Result<Background> {
    let store = store::Store::connect(&config.database_url, config.max_connections).await?;
    let lease = Duration::from_secs(config.lease_secs);
    let (objects, prefix) = artifacts::open_store(&config.artifact_store)?;
    let signer = conveyor_platform::signing::Signer::load_or_create(&config.signing_key_file)?;
    let mut trusted =
        conveyor_platform::signing::TrustedKeys::from_files(&config.trusted_key_files)?;
    trusted.add(&signer);
    let mut artifacts =
        artifacts::Artifacts::new(objects, prefix, Arc::new(signer), trusted, store.clone());
    artifacts.max_bytes = config.max_artifact_bytes;
    let mut executions = domain::Executions::new(store, specs, queue, lease, artifacts);
    if let Some(endpoint) = &config.fleet_endpoint {
        let channel = conveyor_api::client::channel(endpoint)
            .map_err(|e| anyhow::anyhow!("fleet_endpoint {endpoint:?}: {e}"))?;
        executions.targets = Arc::new(
            conveyor_api::fleet::v1::fleet_service_client::FleetServiceClient::new(channel),
        );
    }
    executions.redispatch_after = Duration::from_secs(config.redispatch_secs.max(1));
    executions.log_limit_bytes = config.log_limit_bytes.max(1024);
    let interval = Duration::from_secs(config.reconcile_interval_secs.max(1));
    let background = Background(vec![
        executions.spawn_reconciler(interval),
        executions.spawn_relay(),
        probes::spawn(executions.clone()),
    ]);
    let max = config.server.max_message_bytes;
    services
        .add(api::ExecutionApi::new(executions.clone()).into_server(max))
        .await;
    services
        .add(api::AlarmApi::new(executions.clone()).into_server(max))
        .await;
    services
        .add(api::WorkerApi::new(executions).into_server(max))
        .await;
    Ok(background)
}

/// Runs the execution service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let definitions = conveyor_api::pipelines::PipelineClient::new(&config.definitions_endpoint)?;
    let queue =
        conveyor_platform::queue::from_url(config.redis_url.as_deref(), &config.queue_prefix)
            .await?;
    let mut services = Services::new()?;
    let background = register(&mut services, &config, Arc::new(definitions), queue).await?;
    tracing::info!(addr = %listener.local_addr()?, "execution service listening");
    let served = server::serve(listener, &config.server, services, shutdown).await;
    drop(background);
    served?;
    Ok(())
}
