//! The services as separate processes, on Postgres and Redis when the test
//! environment provides them (SQLite and polling workers otherwise): the
//! definitions, execution, fleet and metrics services and workers, talking
//! gRPC.
//! Binaries come from the same target directory (`./scripts/test` builds
//! them with `--bins`).

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conveyor_api::definitions::v1 as defs;
use conveyor_api::definitions::v1::pipeline_service_client::PipelineServiceClient;
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use sea_orm::{ConnectionTrait, Database};

#[path = "processes/demos.rs"]
mod demos;
#[path = "processes/otlp.rs"]
mod otlp;

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --bins, or ./scripts/test)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env {
    dir: tempfile::TempDir,
    database: Option<(String, String)>,
    redis: Option<String>,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let database = match std::env::var("CONVEYOR_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                let (base, db) = url.rsplit_once('/').unwrap();
                let name = format!(
                    "{}_{}",
                    db.split('?').next().unwrap(),
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let admin = Database::connect(&url).await.unwrap();
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                Some((url.clone(), format!("{base}/{name}")))
            }
            _ => None,
        };
        let redis = std::env::var("CONVEYOR_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty());
        Env {
            dir,
            database,
            redis,
        }
    }

    fn database_url(&self, service: &str) -> String {
        match &self.database {
            Some((_, url)) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.dir.path().join(format!("{service}.db")).display()
            ),
        }
    }

    async fn cleanup(self) {
        if let Some((admin_url, url)) = &self.database {
            let name = url.rsplit_once('/').unwrap().1;
            let admin = Database::connect(admin_url).await.unwrap();
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Proc(
        cmd.stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap(),
    )
}

async fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "port {port} never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn git_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("README"), "hello\n").unwrap();
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
        assert!(
            Command::new("git")
                .args(&args)
                .current_dir(&repo)
                .status()
                .unwrap()
                .success()
        );
    }
    repo
}

/// The definitions service, the execution service and workers as processes.
struct Cluster {
    env: Env,
    prefix: String,
    defs_port: u16,
    exec_port: u16,
    metrics_port: u16,
    fleet_port: u16,
    _definitions: Proc,
    _metrics: Proc,
    _fleet: Proc,
    execution: Option<Proc>,
    workers: Vec<Proc>,
    log: PathBuf,
    /// Where every process exports its traces, if anywhere.
    otlp: Option<String>,
}

/// Points `cmd`'s OTLP export at `otlp`: spans flushed every 100 ms,
/// metrics every 200 ms.
fn traced(cmd: &mut Command, otlp: &Option<String>) {
    if let Some(endpoint) = otlp {
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_METRIC_EXPORT_INTERVAL", "200");
    }
}

impl Cluster {
    async fn start() -> Cluster {
        Self::start_traced(None).await
    }

    async fn start_traced(otlp: Option<String>) -> Cluster {
        let env = Env::new().await;
        let (defs_port, exec_port) = (free_port(), free_port());
        let prefix = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let mut definitions = Command::new(binary("conveyor-definitions"));
        definitions.args([
            "--listen",
            &format!("127.0.0.1:{defs_port}"),
            "--database-url",
            &env.database_url("definitions"),
        ]);
        traced(&mut definitions, &otlp);
        let definitions = spawn(&mut definitions, &env.dir.path().join("definitions.log"));
        let metrics_port = free_port();
        let mut metrics = Command::new(binary("conveyor-metrics"));
        metrics
            .args([
                "--listen",
                &format!("127.0.0.1:{metrics_port}"),
                "--http-listen",
                "127.0.0.1:0",
                "--database-url",
                &env.database_url("metrics"),
            ])
            .env("CONVEYOR_QUEUE_PREFIX", &prefix);
        if let Some(redis) = &env.redis {
            metrics.env("CONVEYOR_REDIS_URL", redis);
        }
        traced(&mut metrics, &otlp);
        let metrics = spawn(&mut metrics, &env.dir.path().join("metrics.log"));
        let fleet_port = free_port();
        let mut fleet = Command::new(binary("conveyor-fleet"));
        fleet
            .args([
                "--listen",
                &format!("127.0.0.1:{fleet_port}"),
                "--database-url",
                &env.database_url("fleet"),
                "--execution-endpoint",
                &format!("http://127.0.0.1:{exec_port}"),
            ])
            .env("CONVEYOR_QUEUE_PREFIX", &prefix);
        if let Some(redis) = &env.redis {
            fleet.env("CONVEYOR_REDIS_URL", redis);
        }
        traced(&mut fleet, &otlp);
        let fleet = spawn(&mut fleet, &env.dir.path().join("fleet.log"));
        let log = env.dir.path().join("actions.log");
        let mut cluster = Cluster {
            env,
            prefix,
            defs_port,
            exec_port,
            metrics_port,
            fleet_port,
            _definitions: definitions,
            _metrics: metrics,
            _fleet: fleet,
            execution: None,
            workers: Vec::new(),
            log,
            otlp,
        };
        cluster.start_execution_service();
        wait_port(defs_port).await;
        wait_port(exec_port).await;
        wait_port(metrics_port).await;
        wait_port(fleet_port).await;
        // The port opens before the service has created its signing key,
        // whose public half the workers are told to trust.
        let public_key = cluster.env.dir.path().join("signing.pem.pub");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !public_key.exists() {
            assert!(Instant::now() < deadline, "no signing key was created");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cluster
    }

    /// Where the account-fleet example's accounts are directories.
    fn fleet_root(&self) -> PathBuf {
        self.env.dir.path().join("fleet")
    }

    /// The execution service's signing key; it creates it on first start.
    fn signing_key(&self) -> PathBuf {
        self.env.dir.path().join("signing.pem")
    }

    fn start_execution_service(&mut self) {
        let mut execution = Command::new(binary("conveyor-execution"));
        execution
            .args([
                "--listen",
                &format!("127.0.0.1:{}", self.exec_port),
                "--database-url",
                &self.env.database_url("execution"),
            ])
            .args([
                "--definitions-endpoint",
                &format!("http://127.0.0.1:{}", self.defs_port),
                "--fleet-endpoint",
                &format!("http://127.0.0.1:{}", self.fleet_port),
            ])
            .arg("--artifact-store")
            .arg(self.env.dir.path().join("artifacts"))
            .arg("--signing-key-file")
            .arg(self.signing_key())
            .env("CONVEYOR_LEASE_SECS", "2")
            .env("CONVEYOR_RECONCILE_INTERVAL_SECS", "1")
            .env("CONVEYOR_REDISPATCH_SECS", "2")
            .env("CONVEYOR_QUEUE_PREFIX", &self.prefix);
        if let Some(redis) = &self.env.redis {
            execution.env("CONVEYOR_REDIS_URL", redis);
        }
        traced(&mut execution, &self.otlp);
        let n = self.workers.len();
        self.execution = Some(spawn(
            &mut execution,
            &self.env.dir.path().join(format!("execution-{n}.log")),
        ));
    }

    /// kill -9 the execution service.
    fn kill_execution_service(&mut self) {
        if let Some(mut p) = self.execution.take() {
            Command::new("kill")
                .args(["-9", &p.0.id().to_string()])
                .status()
                .unwrap();
            let _ = p.0.wait();
        }
    }

    fn start_worker(&mut self, name: &str) -> usize {
        let mut cmd = Command::new(binary("conveyor-worker"));
        cmd.env(
            "CONVEYOR_ENDPOINT",
            format!("http://127.0.0.1:{}", self.exec_port),
        )
        .env("CONVEYOR_NAME", name)
        .env("CONVEYOR_CONCURRENCY", "1")
        .env(
            "CONVEYOR_WORK_DIR",
            self.env.dir.path().join(format!("work-{name}")),
        )
        .env("CONVEYOR_QUEUE_PREFIX", &self.prefix)
        // Scripts that call the control plane (examples/account-fleet)
        // find it and the CLI here, and the accounts under the fleet root.
        .env("CONVEYOR_CLI", binary("conveyor"))
        .env(
            "CONVEYOR_FLEET_ENDPOINT",
            format!("http://127.0.0.1:{}", self.fleet_port),
        )
        .env("CONVEYOR_FLEET_ROOT", self.fleet_root())
        .arg("--trusted-key-file")
        .arg(self.env.dir.path().join("signing.pem.pub"));
        if let Some(redis) = &self.env.redis {
            cmd.env("CONVEYOR_REDIS_URL", redis);
        }
        traced(&mut cmd, &self.otlp);
        self.workers.push(spawn(
            &mut cmd,
            &self.env.dir.path().join(format!("{name}.log")),
        ));
        self.workers.len() - 1
    }

    /// kill -9 a worker.
    fn kill_worker(&mut self, index: usize) {
        let p = &mut self.workers[index];
        Command::new("kill")
            .args(["-9", &p.0.id().to_string()])
            .status()
            .unwrap();
        let _ = p.0.wait();
    }

    /// Applies a one-action pipeline whose action logs its attempt.
    async fn apply(&self, command: &str) {
        let repo = git_repo(self.env.dir.path());
        let spec = format!(
            "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {{name: app}}\nspec:\n  type: application\n  source: {{repository: \"{}\"}}\n  stages:\n    - name: build\n      actions:\n        - {{name: slow, kind: build, run: '{command}'}}\n",
            repo.display(),
        );
        let channel =
            conveyor_api::client::channel(&format!("http://127.0.0.1:{}", self.defs_port)).unwrap();
        PipelineServiceClient::new(channel)
            .apply_pipeline(defs::ApplyPipelineRequest {
                source: Some(defs::PipelineSource {
                    content: spec.into_bytes(),
                    format: 0,
                }),
                accept_non_conformance: true,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    fn client(&self) -> ExecutionServiceClient<tonic::transport::Channel> {
        let channel =
            conveyor_api::client::channel(&format!("http://127.0.0.1:{}", self.exec_port)).unwrap();
        ExecutionServiceClient::new(channel)
    }

    async fn start_run(&self) -> String {
        conveyor_api::client::RetryPolicy::default()
            .run(|| async {
                self.client()
                    .start_execution(pb::StartExecutionRequest {
                        parent: "pipelines/app".into(),
                        ..Default::default()
                    })
                    .await
            })
            .await
            .unwrap()
            .into_inner()
            .name
    }

    async fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains(needle)
        {
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared in the action log"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls (through restarts) until the execution ends.
    async fn wait_done(&self, name: &str) -> pb::Execution {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let got = self
                .client()
                .get_execution(pb::GetExecutionRequest {
                    name: name.to_owned(),
                    view: 0,
                })
                .await;
            if let Ok(e) = got {
                let e = e.into_inner();
                if [pb::ExecutionState::Succeeded, pb::ExecutionState::Failed]
                    .iter()
                    .any(|s| *s as i32 == e.state)
                {
                    return e;
                }
                assert!(
                    Instant::now() < deadline,
                    "the execution never finished: {e:#?}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "the execution service never came back"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn action_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn logged_command(log: &Path, seconds: u32) -> String {
    let l = log.display();
    format!(
        "echo start-$CONVEYOR_ATTEMPT >> {l}; sleep {seconds}; echo end-$CONVEYOR_ATTEMPT >> {l}"
    )
}

/// kill -9 a worker in the middle of an action: once its lease expires the
/// attempt goes to another worker, and the execution finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_its_attempt_to_another() {
    let mut c = Cluster::start().await;
    c.apply(&logged_command(&c.log, 4)).await;
    let doomed = c.start_worker("doomed");
    let name = c.start_run().await;
    c.wait_log("start-1").await;
    c.kill_worker(doomed);
    c.start_worker("survivor");
    let done = c.wait_done(&name).await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    let action = &done.stages[0].actions[0];
    assert_eq!(action.attempt, 2, "the lost attempt was dispatched again");
    assert!(action.worker.starts_with("survivor"), "{}", action.worker);
    let text = c.action_log();
    assert!(text.contains("start-2") && text.contains("end-2"), "{text}");
    c.env.cleanup().await;
}

/// kill -9 the execution service while an action runs, and start it again:
/// the execution's state was in the database, the worker's report waits for
/// the service to return, and the execution finishes with one attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_execution_service_can_die_mid_execution() {
    let mut c = Cluster::start().await;
    c.apply(&logged_command(&c.log, 3)).await;
    c.start_worker("steady");
    let name = c.start_run().await;
    c.wait_log("start-1").await;
    c.kill_execution_service();
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.start_execution_service();
    let done = c.wait_done(&name).await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    let text = c.action_log();
    assert!(text.contains("end-1"), "{text}");
    assert!(!text.contains("start-2"), "the attempt ran once: {text}");
    c.env.cleanup().await;
}

/// Everything this installation had in Redis disappears while an execution
/// waits for a worker: the reconciler dispatches the queued attempt again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_contents_loses_no_execution() {
    let mut c = Cluster::start().await;
    let Some(redis_url) = c.env.redis.clone() else {
        // Without Redis, workers poll the database: there is nothing to lose.
        assert!(
            std::env::var("CI").is_err(),
            "CI must set CONVEYOR_TEST_REDIS_URL"
        );
        eprintln!("skipped: needs CONVEYOR_TEST_REDIS_URL");
        c.env.cleanup().await;
        return;
    };
    c.apply(&logged_command(&c.log, 0)).await;
    let name = c.start_run().await;
    // Let the relay publish the dispatch, then wipe every key of this installation.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", c.prefix))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the dispatch was relayed to Redis");
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .unwrap();
    c.start_worker("late");
    let done = c.wait_done(&name).await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    c.env.cleanup().await;
}

/// One execution is one trace: the StartExecution call, every change the
/// execution service makes to the execution, the worker's attempt and the
/// metrics service's projection of its events share the trace the call
/// began, across processes, gRPC, the dispatch stream and the event stream.
/// The metrics service's counters go out over OTLP too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_execution_is_one_trace() {
    let (receiver, endpoint) = otlp::Receiver::start().await;
    let mut c = Cluster::start_traced(Some(endpoint)).await;
    c.apply("echo traced").await;
    c.start_worker("w");
    let name = c.start_run().await;
    let done = c.wait_done(&name).await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    let id = name.rsplit('/').next().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans = receiver.spans();
        let changes: Vec<&otlp::Span> = spans
            .iter()
            .filter(|s| s.name == "execution.change" && s.attribute("execution") == Some(&id))
            .collect();
        let trace = changes.first().map(|s| s.trace_id.clone());
        let in_trace = |service: &str, span: &str| {
            spans.iter().any(|s| {
                Some(&s.trace_id) == trace.as_ref() && s.service == service && s.name == span
            })
        };
        // Without Redis the execution service's events stay in its process.
        let applied = receiver.points().iter().any(|(service, metric, value)| {
            service == "conveyor-metrics"
                && metric == "conveyor_metrics_events_applied"
                && *value > 0.0
        });
        let complete = in_trace("conveyor-execution", "grpc")
            && in_trace("conveyor-worker", "attempt")
            && (c.env.redis.is_none()
                || (in_trace("conveyor-metrics", "metrics.apply") && applied));
        if complete {
            assert!(
                changes.iter().all(|s| Some(&s.trace_id) == trace.as_ref()),
                "every change of the execution is in one trace"
            );
            assert!(
                spans.iter().any(|s| Some(&s.trace_id) == trace.as_ref()
                    && s.attribute("rpc")
                        == Some("/conveyor.execution.v1.ExecutionService/StartExecution")),
                "the trace begins with the StartExecution call"
            );
            let attempts: Vec<&otlp::Span> = spans
                .iter()
                .filter(|s| s.name == "attempt" && s.attribute("execution") == Some(&name))
                .collect();
            assert!(!attempts.is_empty());
            assert!(attempts.iter().all(|s| Some(&s.trace_id) == trace.as_ref()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the execution's trace is incomplete: {} spans, {} changes of it, {} metric points; services: {:?}",
            spans.len(),
            changes.len(),
            receiver.points().len(),
            spans
                .iter()
                .map(|s| (s.service.as_str(), s.name.as_str()))
                .collect::<std::collections::BTreeSet<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.env.cleanup().await;
}
