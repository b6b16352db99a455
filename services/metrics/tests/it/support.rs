//! A metrics service on a real socket, fed by a stream the test publishes to.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use conveyor_api::events::v1 as ev;
use conveyor_api::metrics::v1::metrics_service_client::MetricsServiceClient;
use conveyor_api::metrics::v1::notification_service_client::NotificationServiceClient;
use conveyor_platform::queue::{EVENTS_STREAM, InProcessQueue, Queue, RedisQueue};
pub use conveyor_platform::testing::Backend;
use prost::Message;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub async fn backends() -> Vec<Backend> {
    conveyor_platform::testing::backends("metrics").await
}

/// Runs `test` against a fresh metrics service on every backend.
#[macro_export]
macro_rules! on_every_backend {
    ($name:ident, |$server:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            for backend in $crate::support::backends().await {
                eprintln!("-- {} on {}", stringify!($name), backend.name);
                #[allow(unused_mut)]
                let mut $server = $crate::support::Server::start(&backend).await;
                $body
                $server.stop().await;
                backend.cleanup().await;
            }
        }
    };
}

pub struct Server {
    pub client: MetricsServiceClient<Channel>,
    pub notifications: NotificationServiceClient<Channel>,
    /// The dashboard and /metrics, "http://127.0.0.1:port".
    pub http_url: String,
    pub queue: Arc<dyn Queue>,
    /// The service's database, for tests that look behind the API.
    pub database_url: String,
    ingest: Option<conveyor_metrics::Ingest>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    published: u64,
}

/// Redis when the backend is Postgres and a Redis URL is given (each
/// test under its own key prefix); the in-process stream otherwise.
pub async fn queue_for(backend: &Backend) -> (Arc<dyn Queue>, String) {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    match std::env::var("CONVEYOR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() && backend.name == "postgres" => (
            Arc::new(RedisQueue::connect(&url, &prefix).await.unwrap()),
            prefix,
        ),
        _ => {
            assert!(
                backend.name != "postgres" || std::env::var("CI").is_err(),
                "CI must set CONVEYOR_TEST_REDIS_URL"
            );
            (Arc::new(InProcessQueue::new()), prefix)
        }
    }
}

impl Server {
    pub async fn start(backend: &Backend) -> Server {
        let (queue, prefix) = queue_for(backend).await;
        Self::start_with(backend, queue, &prefix, "it").await
    }

    pub async fn start_with(
        backend: &Backend,
        queue: Arc<dyn Queue>,
        prefix: &str,
        consumer: &str,
    ) -> Server {
        Self::start_configured(backend, queue, prefix, consumer, |_| {}).await
    }

    pub async fn start_configured(
        backend: &Backend,
        queue: Arc<dyn Queue>,
        prefix: &str,
        consumer: &str,
        adjust: impl FnOnce(&mut conveyor_metrics::Config),
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = conveyor_metrics::Config {
            database_url: backend.url_for("metrics"),
            max_connections: 4,
            queue_prefix: prefix.to_owned(),
            consumer_name: consumer.to_owned(),
            ..conveyor_metrics::Config::default()
        };
        config.server.listen = addr;
        adjust(&mut config);
        let database_url = config.database_url.clone();
        let mut services = conveyor_platform::server::Services::new().unwrap();
        let (store, ingest) = conveyor_metrics::register(&mut services, &config, queue.clone())
            .await
            .unwrap();
        let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_url = format!("http://{}", http_listener.local_addr().unwrap());
        let router = ingest.http_router(store);
        let (stop, stopped) = oneshot::channel::<()>();
        let server_config = config.server.clone();
        let task = tokio::spawn(async move {
            let (http_stop, http_stopped) = oneshot::channel::<()>();
            let http = tokio::spawn(conveyor_metrics::http::serve(
                http_listener,
                router,
                async move {
                    let _ = http_stopped.await;
                },
            ));
            let served =
                conveyor_platform::server::serve(listener, &server_config, services, async move {
                    let _ = stopped.await;
                })
                .await;
            let _ = http_stop.send(());
            http.await??;
            served.map_err(anyhow::Error::from)
        });
        let url = format!("http://{addr}");
        let client = MetricsServiceClient::new(conveyor_api::client::channel(&url).unwrap());
        let notifications =
            NotificationServiceClient::new(conveyor_api::client::channel(&url).unwrap());
        Server {
            client,
            notifications,
            http_url,
            queue,
            database_url,
            ingest: Some(ingest),
            stop: Some(stop),
            task,
            published: 0,
        }
    }

    /// Publishes events on the stream, as the other services do.
    pub async fn publish(&mut self, events: &[ev::Event]) {
        for e in events {
            self.queue
                .publish(EVENTS_STREAM, &e.encode_to_vec())
                .await
                .unwrap();
            self.published += 1;
        }
    }

    /// Publishes raw bytes on the stream.
    pub async fn publish_raw(&mut self, bytes: &[u8]) {
        self.queue.publish(EVENTS_STREAM, bytes).await.unwrap();
        self.published += 1;
    }

    /// A second connection to the service's database, behind the API.
    pub async fn store(&self) -> conveyor_metrics::store::Store {
        conveyor_metrics::store::Store::connect(&self.database_url, 2)
            .await
            .unwrap()
    }

    pub fn stats(&self) -> &conveyor_metrics::ingest::Stats {
        &self.ingest.as_ref().unwrap().stats
    }

    /// Waits until every event published so far was consumed.
    pub async fn settle(&self) {
        for _ in 0..400 {
            let s = self.stats();
            let seen = s.applied.load(Ordering::Relaxed)
                + s.duplicates.load(Ordering::Relaxed)
                + s.dead_letters.load(Ordering::Relaxed);
            if seen >= self.published {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the consumer did not take the {} events published",
            self.published
        );
    }

    /// Stops consuming (the replica goes down) but keeps the API up.
    pub fn stop_ingest(&mut self) -> u64 {
        self.ingest.take();
        self.published
    }

    pub async fn stop(mut self) {
        self.ingest.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

/// GET `path` on the HTTP port: the status line's code and the body.
pub async fn http_get(base: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_owned())
}
