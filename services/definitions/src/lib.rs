//! Conveyor's definitions service: pipelines as code, immutable revisions,
//! templates, and DPRA conformance.
//!
//! `spec` parses and validates documents, `conformance` checks them against
//! the DPRA, `store` keeps revisions, `domain` ties them together and `api`
//! adapts the domain to gRPC.

pub mod api;
pub mod config;
pub mod conformance;
pub mod domain;
pub mod error;
pub mod events;
pub mod spec;
pub mod store;
pub mod templates;

use std::future::Future;

use conveyor_platform::server::{self, Services};
use tokio::net::TcpListener;

pub use config::Config;

/// Connects to the database and adds the PipelineService to `services`;
/// returns the domain, for services in the same process (`conveyor dev`).
pub async fn register(
    services: &mut Services,
    config: &Config,
    events: Option<std::sync::Arc<dyn conveyor_platform::queue::Queue>>,
) -> anyhow::Result<domain::Definitions> {
    let store = store::Store::connect(&config.database_url, config.max_connections).await?;
    tracing::info!(
        backend = conveyor_platform::database::backend_name(store.connection()),
        "definitions store ready"
    );
    let mut definitions = domain::Definitions::new(store);
    definitions.events = events;
    let api = api::PipelineApi::new(definitions.clone());
    services
        .add(api.into_server(config.server.max_message_bytes))
        .await;
    Ok(definitions)
}

/// Runs the definitions service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut services = Services::new()?;
    // Events go out only where someone can read them: Redis.
    let events = match config.redis_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            Some(conveyor_platform::queue::from_url(Some(url), &config.queue_prefix).await?)
        }
        None => None,
    };
    register(&mut services, &config, events).await?;
    tracing::info!(addr = %listener.local_addr()?, "definitions service listening");
    server::serve(listener, &config.server, services, shutdown).await?;
    Ok(())
}
