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
pub mod model;
pub mod names;
pub mod plan;
pub mod store;

use std::future::Future;

use conveyor_platform::server::{self, Services};
use tokio::net::TcpListener;

pub use config::Config;

/// Connects to the database and adds the FleetService to `services`;
/// returns the domain, for services in the same process (`conveyor dev`).
pub async fn register(services: &mut Services, config: &Config) -> anyhow::Result<domain::Fleet> {
    let store = store::Store::connect(&config.database_url, config.max_connections).await?;
    tracing::info!(
        backend = conveyor_platform::database::backend_name(store.connection()),
        "fleet store ready"
    );
    let fleet = domain::Fleet::new(store);
    let api = api::FleetApi::new(fleet.clone());
    services
        .add(api.into_server(config.server.max_message_bytes))
        .await;
    Ok(fleet)
}

/// Runs the fleet service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut services = Services::new()?;
    register(&mut services, &config).await?;
    tracing::info!(addr = %listener.local_addr()?, "fleet service listening");
    server::serve(listener, &config.server, services, shutdown).await?;
    Ok(())
}
