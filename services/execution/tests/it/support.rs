//! A control plane (definitions + execution in one server, like `conveyor
//! dev`) on a real socket, on SQLite and, when configured, Postgres.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use conveyor_api::execution::v1::worker_service_client::WorkerServiceClient;
use conveyor_definitions::domain::{Change, Definitions, Source};
use conveyor_definitions::spec::Format;
use conveyor_platform::queue::{InProcessQueue, Queue, RedisQueue};
use conveyor_platform::server::{self, Services};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub use conveyor_platform::testing::Backend;

/// SQLite always; Postgres when configured (see `conveyor_platform::testing`).
pub async fn backends() -> Vec<Backend> {
    conveyor_platform::testing::backends("execution").await
}

pub struct ControlPlane {
    pub addr: SocketAddr,
    pub definitions: Definitions,
    /// The fleet service's domain, to seed accounts and freezes.
    pub fleet: conveyor_fleet::domain::Fleet,
    pub executions: ExecutionServiceClient<Channel>,
    pub workers: WorkerServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    worker_stop: Option<oneshot::Sender<()>>,
    worker_task: Option<tokio::task::JoinHandle<()>>,
    pub work_dir: tempfile::TempDir,
    /// Redis (each test its own key prefix) when configured, else in process.
    pub queue: Arc<dyn Queue>,
    redis_key: Option<String>,
}

/// The queue, and the Redis key of the default dispatch stream when on Redis.
async fn test_queue() -> (Arc<dyn Queue>, Option<String>) {
    match std::env::var("CONVEYOR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
            let queue = RedisQueue::connect(&url, &prefix)
                .await
                .expect("connect to CONVEYOR_TEST_REDIS_URL");
            let key = queue.key(&conveyor_platform::queue::dispatch_stream("default"));
            (Arc::new(queue), Some(key))
        }
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
            panic!("CI must set CONVEYOR_TEST_REDIS_URL; refusing to skip the Redis tests")
        }
        _ => (Arc::new(InProcessQueue::new()), None),
    }
}

impl ControlPlane {
    /// Definitions and execution on one port; `lease_secs` short in the fault tests.
    pub async fn start(backend: &Backend, lease_secs: u64) -> ControlPlane {
        let store = conveyor_definitions::store::Store::connect(&backend.url_for("definitions"), 4)
            .await
            .expect("definitions store");
        let definitions = Definitions::new(store);
        let mut services = Services::new().expect("services");
        services
            .add(
                conveyor_definitions::api::PipelineApi::new(definitions.clone())
                    .into_server(4 << 20),
            )
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // The fleet service on the same port, as in `conveyor dev`.
        let fleet_config = conveyor_fleet::Config {
            database_url: backend.url_for("fleet"),
            max_connections: 4,
            execution_endpoint: format!("http://{addr}"),
            track_interval_secs: 1,
            ..Default::default()
        };
        let (fleet, fleet_tracker) = conveyor_fleet::register(&mut services, &fleet_config)
            .await
            .expect("register fleet");
        let work_dir = tempfile::tempdir().expect("tempdir");
        let config = conveyor_execution::Config {
            fleet_endpoint: Some(format!("http://{addr}")),
            artifact_store: work_dir.path().join("artifacts").display().to_string(),
            signing_key_file: work_dir.path().join("signing.pem"),
            database_url: backend.url_for("execution"),
            max_connections: 4,
            lease_secs,
            reconcile_interval_secs: 1,
            redispatch_secs: 2,
            log_limit_bytes: 64 * 1024,
            ..Default::default()
        };
        let (queue, redis_key) = test_queue().await;
        let background = conveyor_execution::register(
            &mut services,
            &config,
            Arc::new(definitions.clone()),
            queue.clone(),
        )
        .await
        .expect("register execution");
        let (stop, stopped) = oneshot::channel::<()>();
        let server_config = config.server.clone();
        let task = tokio::spawn(async move {
            let _ = server::serve(listener, &server_config, services, async move {
                let _ = stopped.await;
            })
            .await;
            drop(background);
            drop(fleet_tracker);
        });
        let channel = conveyor_api::client::channel(&format!("http://{addr}")).expect("channel");
        ControlPlane {
            addr,
            definitions,
            fleet,
            executions: ExecutionServiceClient::new(channel.clone()),
            workers: WorkerServiceClient::new(channel),
            stop: Some(stop),
            task: Some(task),
            worker_stop: None,
            worker_task: None,
            work_dir,
            queue,
            redis_key,
        }
    }

    /// Starts an in-process worker of the default pool.
    pub fn start_worker(&mut self) {
        let config = conveyor_worker::Config {
            endpoint: format!("http://{}", self.addr),
            concurrency: 2,
            work_dir: self.work_dir.path().join("work"),
            name: "test-worker".into(),
            trusted_key_files: vec![self.work_dir.path().join("signing.pem.pub")],
            ..Default::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        self.worker_stop = Some(stop);
        let queue = self.queue.clone();
        self.worker_task = Some(tokio::spawn(async move {
            conveyor_worker::run_with(config, Some(queue), async move {
                let _ = stopped.await;
            })
            .await
            .expect("worker");
        }));
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.worker_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.worker_task.take() {
            let _ = task.await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Deletes the default pool's dispatch stream (Redis) or everything
    /// queued so far (in process): dispatches are lost, the database is not.
    pub async fn drop_dispatches(&mut self) {
        match std::env::var("CONVEYOR_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => {
                let client = redis::Client::open(url.as_str()).expect("redis url");
                let mut con = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("redis");
                let key = self.redis_key.clone().expect("redis prefix");
                let _: i64 = redis::cmd("DEL")
                    .arg(key)
                    .query_async(&mut con)
                    .await
                    .expect("DEL");
            }
            _ => {
                // The in-process queue: a fresh reader group starts after what is there.
                let mut drain = self
                    .queue
                    .reader(
                        &conveyor_platform::queue::dispatch_stream("default"),
                        "workers",
                        "drain",
                    )
                    .await
                    .expect("reader");
                while !drain
                    .next(Duration::from_millis(50), 100)
                    .await
                    .expect("drain")
                    .is_empty()
                {}
            }
        }
    }

    /// Stores `yaml` as a pipeline (conformance is not the point here).
    pub async fn apply(&self, yaml: &str) {
        self.definitions
            .apply(
                Source {
                    content: yaml.as_bytes().to_vec(),
                    format: Format::Yaml,
                },
                Change {
                    author: "tester".into(),
                    accept_non_conformance: true,
                    ..Default::default()
                },
            )
            .await
            .expect("apply pipeline");
    }

    pub async fn start_execution(&mut self, pipeline: &str, branch: &str) -> pb::Execution {
        self.executions
            .start_execution(pb::StartExecutionRequest {
                parent: format!("pipelines/{pipeline}"),
                commit: Some(pb::Commit {
                    branch: branch.into(),
                    author: "dev".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("start")
            .into_inner()
    }

    /// Polls until the execution is in `state` (or a minute passes).
    pub async fn wait_for(&mut self, name: &str, state: pb::ExecutionState) -> pb::Execution {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let e = self.wait_done(name, Duration::ZERO).await;
            if e.state == state as i32 || tokio::time::Instant::now() > deadline {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the execution leaves RUNNING (or the timeout passes).
    pub async fn wait_done(&mut self, name: &str, timeout: Duration) -> pb::Execution {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let e = self
                .executions
                .get_execution(pb::GetExecutionRequest {
                    name: name.into(),
                    view: 0,
                })
                .await
                .expect("get")
                .into_inner();
            if e.has_ended() || tokio::time::Instant::now() > deadline {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A git repository with one commit, for the worker to check out.
pub fn git_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(repo.join("README"), "hello\n").expect("write");
    for args in [
        vec!["init", "--quiet", "--initial-branch=main"],
        vec!["add", "README"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "--quiet",
            "-m",
            "first",
        ],
    ] {
        let status = std::process::Command::new("git")
            .args(&args)
            .current_dir(&repo)
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }
    repo
}

/// A two-stage pipeline whose actions run `build` and `deploy` commands.
pub fn pipeline(name: &str, repo: &Path, build: &str, deploy: &str, extra_action: &str) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: {name}}}
spec:
  type: application
  source: {{repository: "{repo}", trunk: main}}
  environments:
    - {{name: beta, tier: beta, account: "2", regions: [us-east-1]}}
  stages:
    - name: build
      actions:
        - {{name: compile, kind: build, run: '{build}'}}
{extra_action}
    - name: beta
      environment: beta
      actions:
        - {{name: deploy, kind: deploy, run: '{deploy}'}}
"#,
        repo = repo.display()
    )
}

/// The operator who blocks and unblocks promotion in the tests.
pub fn ops() -> Option<conveyor_api::common::v1::Principal> {
    Some(conveyor_api::common::v1::Principal {
        id: "ops".into(),
        groups: vec![],
    })
}

/// A test run once per backend (SQLite, and Postgres + Redis when
/// configured) on a fresh control plane; `lease` defaults to 30 s.
macro_rules! on_every_backend {
    ($name:ident, |$cp:ident, $dir:ident| $body:block) => {
        on_every_backend!($name, 30, |$cp, $dir| $body);
    };
    ($name:ident, $lease:expr, |$cp:ident, $dir:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for backend in $crate::support::backends().await {
                let $dir = tempfile::tempdir().expect("tempdir");
                let mut $cp = $crate::support::ControlPlane::start(&backend, $lease).await;
                {
                    $body
                }
                $cp.stop().await;
                eprintln!("{} passed on {}", stringify!($name), backend.name);
                backend.cleanup().await;
            }
        }
    };
}
pub(crate) use on_every_backend;
