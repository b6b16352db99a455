//! Conveyor's metrics service: it consumes the `conveyor.events.v1`
//! stream into deployment records, run records and mainline health, and
//! answers DORA and DPRA metrics over them.
//!
//! `ingest` reads the stream (`ingest::project` turns events into
//! records), `store` keeps and reads the records, `compute` holds the
//! metric definitions and `api` adapts them to gRPC.

pub mod api;
pub mod compute;
pub mod config;
pub mod error;
pub mod ingest;
pub mod model;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use conveyor_platform::queue::Queue;
use conveyor_platform::server::{self, Services};
use tokio::net::TcpListener;

pub use config::Config;

/// The consumer of the event stream; stops when dropped.
pub struct Ingest {
    task: tokio::task::JoinHandle<()>,
    pub stats: Arc<ingest::Stats>,
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to the database, adds the MetricsService to `services` and
/// starts consuming `queue`'s event stream (`conveyor dev` passes its
/// in-process queue; the service its Redis).
pub async fn register(
    services: &mut Services,
    config: &Config,
    queue: Arc<dyn Queue>,
) -> anyhow::Result<(store::Store, Ingest)> {
    let store = store::Store::connect(&config.database_url, config.max_connections).await?;
    tracing::info!(
        backend = conveyor_platform::database::backend_name(store.connection()),
        "metrics store ready"
    );
    let stats = Arc::new(ingest::Stats::default());
    let task = ingest::Consumer {
        store: store.clone(),
        queue,
        name: config.consumer_name.clone(),
        database_url: config.database_url.clone(),
        stats: stats.clone(),
    }
    .spawn();
    services
        .add(api::MetricsApi::new(store.clone()).into_server(config.server.max_message_bytes))
        .await;
    Ok((store, Ingest { task, stats }))
}

/// Runs the metrics service on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let queue =
        conveyor_platform::queue::from_url(config.redis_url.as_deref(), &config.queue_prefix)
            .await?;
    let mut services = Services::new()?;
    let (_store, _ingest) = register(&mut services, &config, queue).await?;
    tracing::info!(addr = %listener.local_addr()?, "metrics service listening");
    server::serve(listener, &config.server, services, shutdown).await?;
    Ok(())
}
