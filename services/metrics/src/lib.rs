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
pub mod http;
pub mod ingest;
pub mod model;
pub mod notify;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use conveyor_platform::queue::Queue;
use conveyor_platform::server::{self, Services};
use tokio::net::TcpListener;

pub use config::Config;

/// The consumer of the event stream and the notification sender; both
/// stop when dropped.
pub struct Ingest {
    task: tokio::task::JoinHandle<()>,
    sender: tokio::task::JoinHandle<()>,
    pub stats: Arc<ingest::Stats>,
    /// Fires after every batch that changed the records.
    pub updates: tokio::sync::broadcast::Sender<u64>,
    /// The counters' OTLP instruments.
    _meters: ingest::meters::Meters,
}

impl Ingest {
    /// The dashboard and `/metrics` over `store` and this consumer.
    pub fn http_router(&self, store: store::Store) -> axum::Router {
        http::router(http::Http {
            store,
            stats: self.stats.clone(),
            updates: self.updates.clone(),
        })
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.task.abort();
        self.sender.abort();
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
    let channels = notify::channels::Channels::new(config.smtp_url.as_deref(), &config.smtp_from)
        .map_err(|e| anyhow::anyhow!(e))?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let sender = notify::sender::Sender {
        store: store.clone(),
        channels: channels.clone(),
        database_url: config.database_url.clone(),
        wake: wake.clone(),
    }
    .spawn();
    let stats = Arc::new(ingest::Stats::default());
    let (updates, _) = tokio::sync::broadcast::channel(16);
    let task = ingest::Consumer {
        store: store.clone(),
        queue,
        name: config.consumer_name.clone(),
        database_url: config.database_url.clone(),
        stats: stats.clone(),
        updates: updates.clone(),
        deliveries: wake,
        retention: config.retention,
    }
    .spawn();
    services
        .add(api::MetricsApi::new(store.clone()).into_server(config.server.max_message_bytes))
        .await;
    services
        .add(
            api::notifications::NotificationApi::new(store.clone(), channels)
                .into_server(config.server.max_message_bytes),
        )
        .await;
    Ok((
        store,
        Ingest {
            task,
            sender,
            _meters: ingest::meters::register(&stats),
            stats,
            updates,
        },
    ))
}

/// Runs the metrics service until `shutdown` completes: gRPC on
/// `listener`, the dashboard and `/metrics` on `http_listener`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    http_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let queue =
        conveyor_platform::queue::from_url(config.redis_url.as_deref(), &config.queue_prefix)
            .await?;
    let mut services = Services::new()?;
    let (store, ingest) = register(&mut services, &config, queue).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    tracing::info!(
        grpc = %listener.local_addr()?,
        http = %http_listener.local_addr()?,
        "metrics service listening"
    );
    let dashboard = tokio::spawn(http::serve(
        http_listener,
        ingest.http_router(store),
        wait(stopped.clone()),
    ));
    server::serve(listener, &config.server, services, wait(stopped)).await?;
    dashboard.await??;
    Ok(())
}
