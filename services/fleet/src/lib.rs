//! Conveyor's fleet service: accounts in a tree of organizational units,
//! versioned baselines assigned to OUs, deterministic rollout wave plans,
//! drift, freeze windows, and the production targets of application
//! pipelines.
//!
//! `store` keeps the state, `plan` forms waves, `domain` holds the rules
//! and `api` adapts the domain to gRPC.

pub mod api;
pub mod bundle;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod executions;
pub mod model;
pub mod names;
pub mod plan;
pub mod store;

use std::future::Future;

use conveyor_platform::server::{self, Services};
use tokio::net::TcpListener;

pub use config::Config;

/// The fleet's background work (following vending and rollout
/// executions); stops when dropped.
pub struct Tracker(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tracker {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Connects to the database, adds the FleetService to `services` and starts
/// the tracker; returns the domain, for services in the same process
/// (`conveyor dev`), and the tracker to keep while serving.
pub async fn register(
    services: &mut Services,
    config: &Config,
) -> anyhow::Result<(domain::Fleet, Tracker)> {
    let store = store::Store::connect(&config.database_url, config.max_connections).await?;
    tracing::info!(
        backend = conveyor_platform::database::backend_name(store.connection()),
        "fleet store ready"
    );
    let channel = conveyor_api::client::channel(&config.execution_endpoint)
        .map_err(|e| anyhow::anyhow!("execution_endpoint {:?}: {e}", config.execution_endpoint))?;
    let executions =
        conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient::new(channel);
    let mut fleet = domain::Fleet::new(store, std::sync::Arc::new(executions));
    fleet.vending_pipeline = config.vending_pipeline.clone();
    fleet.rollout_pipeline = config.rollout_pipeline.clone();
    fleet.drift_env = config.drift_check_env.clone();
    fleet.events = Some(
        conveyor_platform::queue::from_url(config.redis_url.as_deref(), &config.queue_prefix)
            .await?,
    );
    let mut tasks = vec![fleet.spawn_tracker(std::time::Duration::from_secs(
        config.track_interval_secs.max(1),
    ))];
    if config.drift_check_interval_secs > 0 {
        tasks.push(fleet.spawn_drift_checker(
            std::time::Duration::from_secs(config.drift_check_interval_secs),
            config.drift_check_dir.clone(),
            config.database_url.clone(),
        ));
    }
    let tracker = Tracker(tasks);
    let api = api::FleetApi::new(fleet.clone());
    services
        .add(api.into_server(config.server.max_message_bytes))
        .await;
    Ok((fleet, tracker))
}

/// Runs the fleet service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut services = Services::new()?;
    let (_fleet, _tracker) = register(&mut services, &config).await?;
    tracing::info!(addr = %listener.local_addr()?, "fleet service listening");
    server::serve(listener, &config.server, services, shutdown).await?;
    Ok(())
}
