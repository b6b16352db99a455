//! The services as separate processes, on Postgres and Redis when the test
//! environment provides them (SQLite and polling workers otherwise): the
//! definitions service, the execution service and workers, talking gRPC.
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

fn worker(env: &Env, execution_port: u16, name: &str) -> Proc {
    let mut cmd = Command::new(binary("conveyor-worker"));
    cmd.env(
        "CONVEYOR_ENDPOINT",
        format!("http://127.0.0.1:{execution_port}"),
    )
    .env("CONVEYOR_NAME", name)
    .env("CONVEYOR_CONCURRENCY", "1")
    .env(
        "CONVEYOR_WORK_DIR",
        env.dir.path().join(format!("work-{name}")),
    )
    .env(
        "CONVEYOR_QUEUE_PREFIX",
        env.dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string(),
    );
    if let Some(redis) = &env.redis {
        cmd.env("CONVEYOR_REDIS_URL", redis);
    }
    spawn(&mut cmd, &env.dir.path().join(format!("{name}.log")))
}

/// kill -9 a worker in the middle of an action: once its lease expires the
/// attempt goes to another worker, and the execution finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_its_attempt_to_another() {
    let env = Env::new().await;
    let (defs_port, exec_port) = (free_port(), free_port());
    let prefix = env
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let _definitions = spawn(
        Command::new(binary("conveyor-definitions")).args([
            "--listen",
            &format!("127.0.0.1:{defs_port}"),
            "--database-url",
            &env.database_url("definitions"),
        ]),
        &env.dir.path().join("definitions.log"),
    );
    let mut execution = Command::new(binary("conveyor-execution"));
    execution
        .args([
            "--listen",
            &format!("127.0.0.1:{exec_port}"),
            "--database-url",
            &env.database_url("execution"),
        ])
        .args([
            "--definitions-endpoint",
            &format!("http://127.0.0.1:{defs_port}"),
        ])
        .env("CONVEYOR_LEASE_SECS", "2")
        .env("CONVEYOR_RECONCILE_INTERVAL_SECS", "1")
        .env("CONVEYOR_QUEUE_PREFIX", &prefix);
    if let Some(redis) = &env.redis {
        execution.env("CONVEYOR_REDIS_URL", redis);
    }
    let _execution = spawn(&mut execution, &env.dir.path().join("execution.log"));
    wait_port(defs_port).await;
    wait_port(exec_port).await;

    let repo = git_repo(env.dir.path());
    let log = env.dir.path().join("actions.log");
    let spec = format!(
        "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {{name: app}}\nspec:\n  type: application\n  source: {{repository: \"{}\"}}\n  stages:\n    - name: build\n      actions:\n        - {{name: slow, kind: build, run: 'echo start-$CONVEYOR_ATTEMPT >> {l}; sleep 4; echo end-$CONVEYOR_ATTEMPT >> {l}'}}\n",
        repo.display(),
        l = log.display()
    );
    let channel = conveyor_api::client::channel(&format!("http://127.0.0.1:{defs_port}")).unwrap();
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

    let first_worker = worker(&env, exec_port, "doomed");
    let channel = conveyor_api::client::channel(&format!("http://127.0.0.1:{exec_port}")).unwrap();
    let mut executions = ExecutionServiceClient::new(channel);
    let started = executions
        .start_execution(pb::StartExecutionRequest {
            parent: "pipelines/app".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // Wait until the doomed worker is inside the command, then kill -9 it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("start-1")
    {
        assert!(Instant::now() < deadline, "the first attempt never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut doomed = first_worker;
    Command::new("kill")
        .args(["-9", &doomed.0.id().to_string()])
        .status()
        .unwrap();
    let _ = doomed.0.wait();
    let _second_worker = worker(&env, exec_port, "survivor");

    let deadline = Instant::now() + Duration::from_secs(90);
    let done = loop {
        let e = executions
            .get_execution(pb::GetExecutionRequest {
                name: started.name.clone(),
                view: 0,
            })
            .await
            .unwrap()
            .into_inner();
        if e.state == pb::ExecutionState::Succeeded as i32
            || e.state == pb::ExecutionState::Failed as i32
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the execution never finished: {e:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    let action = &done.stages[0].actions[0];
    assert_eq!(action.attempt, 2, "the lost attempt was dispatched again");
    assert!(action.worker.starts_with("survivor"), "{}", action.worker);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("start-2") && text.contains("end-2"), "{text}");
    env.cleanup().await;
}
