//! Test backends and servers: every gRPC test runs on SQLite and, when
//! `CONVEYOR_TEST_DATABASE_URL` is set, on Postgres too, each test in its
//! own fresh database.

use conveyor_api::definitions::v1::pipeline_service_client::PipelineServiceClient;
use conveyor_definitions::Config;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub use conveyor_platform::testing::Backend;

/// SQLite always; Postgres when configured (see `conveyor_platform::testing`).
pub async fn backends() -> Vec<Backend> {
    conveyor_platform::testing::backends("definitions").await
}

/// A definitions service on a real socket.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub client: PipelineServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    pub async fn start(database_url: &str) -> Server {
        Self::start_with(database_url, |_| {}).await
    }

    pub async fn start_with(database_url: &str, adjust: impl FnOnce(&mut Config)) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = Config {
            database_url: database_url.to_owned(),
            max_connections: 4,
            ..Config::default()
        };
        config.server.listen = addr;
        adjust(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(conveyor_definitions::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let channel = conveyor_api::client::channel(&format!("http://{addr}")).expect("channel");
        let client = PipelineServiceClient::new(channel);
        // Wait until the service answers (migrations run before it listens for calls).
        let mut health = tonic_health::pb::health_client::HealthClient::new(
            conveyor_api::client::channel(&format!("http://{addr}")).expect("channel"),
        );
        for _ in 0..200 {
            let request = tonic_health::pb::HealthCheckRequest {
                service: "conveyor.definitions.v1.PipelineService".into(),
            };
            if let Ok(r) = health.check(request).await
                && r.into_inner().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            {
                return Server {
                    addr,
                    client,
                    stop: Some(stop),
                    task: Some(task),
                };
            }
            if task.is_finished() {
                panic!("server exited: {:?}", task.await);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server did not become healthy");
    }

    /// Starts shutting down without waiting for the server to finish.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("server result");
        }
    }
}
