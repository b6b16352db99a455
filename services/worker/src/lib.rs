//! Conveyor's worker: claims attempts of its pool from the execution
//! service, runs each in a fresh workspace, heartbeats while it runs, and
//! reports the result with the attempt number it was given. A refused call
//! (STALE_ATTEMPT) means the attempt was given to someone else: the worker
//! stops it and discards the result.

mod artifacts;
mod checkout;
pub mod runner;
pub mod sarif;
mod schema;
mod ship;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::worker_service_client::WorkerServiceClient;
use conveyor_platform::queue::{Dispatch, Queue, Reader, RedisQueue, dispatch_stream};
use conveyor_platform::signing::TrustedKeys;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::runner::{Ended, Job};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The execution service.
    pub endpoint: String,
    /// The pool whose actions this worker runs.
    pub pool: String,
    /// Attempts run at once.
    pub concurrency: usize,
    /// Where workspaces are created (one per attempt, removed afterwards).
    pub work_dir: PathBuf,
    /// This worker's name in leases and logs.
    pub name: String,
    /// Redis, where dispatches arrive; without it the worker polls ClaimTask.
    pub redis_url: Option<String>,
    /// The first part of every Redis key (as the execution service's).
    pub queue_prefix: String,
    /// Public keys (SPKI PEM files) whose artifact signatures this worker
    /// accepts; empty leaves the signature check to the execution service
    /// (the digest is always checked here).
    pub trusted_key_files: Vec<PathBuf>,
    pub log_format: conveyor_platform::telemetry::LogFormat,
    /// Variables every action sees (an action's own `env` wins), e.g. where
    /// the `conveyor` CLI and the control plane are for scripts that call it.
    #[serde(default)]
    pub action_env: std::collections::BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: "http://127.0.0.1:7702".to_owned(),
            pool: "default".to_owned(),
            concurrency: 2,
            work_dir: std::env::temp_dir().join("conveyor-worker"),
            name: format!("worker-{}", std::process::id()),
            redis_url: None,
            queue_prefix: "conveyor".to_owned(),
            trusted_key_files: Vec::new(),
            log_format: conveyor_platform::telemetry::LogFormat::Text,
            action_env: Default::default(),
        }
    }
}

/// What every slot of a worker shares.
struct Shared {
    /// Keys whose artifact signatures are accepted.
    trusted: TrustedKeys,
    /// Variables every action sees under its own.
    action_env: std::collections::BTreeMap<String, String>,
    /// Source mirrors, and a worktree of one per attempt.
    checkouts: checkout::Checkouts,
}

/// Claims and runs attempts until `shutdown` completes, then finishes the
/// attempts in flight. Dispatches come from Redis when configured.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let queue = match config.redis_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            Some(Arc::new(RedisQueue::connect(url, &config.queue_prefix).await?) as Arc<dyn Queue>)
        }
        None => None,
    };
    run_with(config, queue, shutdown).await
}

/// [`run`] with a given queue (`conveyor dev` shares its in-process one);
/// `None` polls the execution service with ClaimTask instead.
pub async fn run_with(
    config: Config,
    queue: Option<Arc<dyn Queue>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let channel = conveyor_api::client::channel(&config.endpoint)?;
    let client = WorkerServiceClient::new(channel);
    let trusted = TrustedKeys::from_files(&config.trusted_key_files)?;
    if trusted.is_empty() {
        tracing::info!(
            "no trusted keys configured: artifact signatures are checked by the execution service, digests here"
        );
    }
    let shared = Arc::new(Shared {
        trusted,
        action_env: config.action_env.clone(),
        checkouts: checkout::Checkouts::new(config.work_dir.join("git")),
    });
    tokio::fs::create_dir_all(&config.work_dir).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut slots = Vec::new();
    for slot in 0..config.concurrency.max(1) {
        let (client, config, stop) = (client.clone(), config.clone(), stop_rx.clone());
        let shared = shared.clone();
        let reader = match &queue {
            Some(queue) => {
                let consumer = format!("{}/{slot}", config.name);
                Some(
                    queue
                        .reader(&dispatch_stream(&config.pool), "workers", &consumer)
                        .await?,
                )
            }
            None => None,
        };
        slots.push(tokio::spawn(async move {
            slot_loop(slot, client, config, shared, reader, stop).await
        }));
    }
    let mode = if queue.is_some() {
        "dispatch stream"
    } else {
        "polling"
    };
    tracing::info!(pool = %config.pool, concurrency = config.concurrency, endpoint = %config.endpoint, mode, "worker started");
    shutdown.await;
    tracing::info!("worker stopping; finishing attempts in flight");
    let _ = stop_tx.send(true);
    for slot in slots {
        let _ = slot.await;
    }
    Ok(())
}

/// The next attempt to run: from a dispatch message when reading a stream,
/// else by polling the pool.
async fn next_task(
    client: &mut WorkerServiceClient<Channel>,
    config: &Config,
    worker: &str,
    reader: &mut Option<Box<dyn Reader>>,
) -> Result<Option<pb::Task>, String> {
    let Some(reader) = reader else {
        let request = pb::ClaimTaskRequest {
            worker: worker.to_owned(),
            pool: config.pool.clone(),
            wait: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            ..Default::default()
        };
        return client
            .claim_task(request)
            .await
            .map(|r| r.into_inner().task)
            .map_err(|s| format!("claim failed: {}", s.message()));
    };
    let deliveries = reader
        .next(Duration::from_secs(5), 1)
        .await
        .map_err(|e| e.to_string())?;
    for delivery in deliveries {
        let task = match Dispatch::decode(&delivery.payload) {
            Some(Dispatch::V1 {
                action_run,
                attempt,
                ..
            }) => {
                let request = pb::ClaimTaskRequest {
                    worker: worker.to_owned(),
                    pool: config.pool.clone(),
                    action_run,
                    attempt,
                    wait: None,
                };
                client
                    .claim_task(request)
                    .await
                    .map(|r| r.into_inner().task)
                    .map_err(|s| format!("claim failed: {}", s.message()))?
            }
            None => {
                tracing::warn!(id = %delivery.id, "unreadable dispatch message; skipped");
                None
            }
        };
        // Claimed or not (another worker got it, or it is stale), the
        // message is done: the database decides who runs what.
        if let Err(e) = reader.ack(&delivery.id).await {
            tracing::warn!(error = %e, "ack failed");
        }
        if task.is_some() {
            return Ok(task);
        }
    }
    Ok(None)
}

async fn slot_loop(
    slot: usize,
    mut client: WorkerServiceClient<Channel>,
    config: Config,
    shared: Arc<Shared>,
    mut reader: Option<Box<dyn Reader>>,
    mut stop: watch::Receiver<bool>,
) {
    let worker = format!("{}/{slot}", config.name);
    while !*stop.borrow() {
        let next = tokio::select! {
            next = next_task(&mut client, &config, &worker, &mut reader) => next,
            _ = stop.wait_for(|s| *s) => break,
        };
        match next {
            Ok(Some(task)) => run_task(&mut client, &config, &shared, &worker, task).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waiting for work failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn to_duration(d: Option<prost_types::Duration>, default: Duration) -> Duration {
    d.map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

/// Runs one claimed attempt and reports it.
async fn run_task(
    client: &mut WorkerServiceClient<Channel>,
    config: &Config,
    shared: &Shared,
    worker: &str,
    task: pb::Task,
) {
    let span = tracing::info_span!("attempt", action = %task.action, attempt = task.attempt, execution = %task.execution);
    conveyor_platform::telemetry::follow(&span, &task.traceparent);
    run_attempt(client, config, shared, worker, task)
        .instrument(span)
        .await;
}

async fn run_attempt(
    client: &mut WorkerServiceClient<Channel>,
    config: &Config,
    shared: &Shared,
    worker: &str,
    task: pb::Task,
) {
    let workspace = runner::workspace_for(&config.work_dir, &task.action_run, task.attempt);
    let (stop_tx, stop_rx) = watch::channel(false);
    let heartbeat = tokio::spawn(heartbeat_loop(
        client.clone(),
        task.action_run.clone(),
        task.attempt,
        worker.to_owned(),
        to_duration(task.heartbeat_interval, Duration::from_secs(10)),
        stop_tx,
    ));
    let (sink, output) = tokio::sync::mpsc::channel(64);
    let shipper = ship::Shipper {
        client: client.clone(),
        action_run: task.action_run.clone(),
        attempt: task.attempt,
        worker: worker.to_owned(),
    };
    let shipping = tokio::spawn(shipper.run(output));
    let (ended, output) = prepare_and_run(client, &task, &workspace, shared, stop_rx, sink).await;
    // The sink is dropped with the run: the shipper flushes and ends.
    let _ = shipping.await;
    let (mut outcome, exit_code, mut message) = match ended {
        Ended::Exited { code: 0 } => (pb::TaskOutcome::Succeeded, Some(0), String::new()),
        Ended::Exited { code } => (
            pb::TaskOutcome::Failed,
            Some(code),
            failure_message(&format!("exited with code {code}"), &output),
        ),
        Ended::Signalled => (
            pb::TaskOutcome::Failed,
            None,
            failure_message("killed by a signal", &output),
        ),
        Ended::TimedOut => (
            pb::TaskOutcome::TimedOut,
            None,
            failure_message("timed out", &output),
        ),
        Ended::Stopped => (
            pb::TaskOutcome::Cancelled,
            None,
            "stopped on request".to_owned(),
        ),
        Ended::SetupFailed(why) => (pb::TaskOutcome::Failed, None, why),
    };
    // Scanners report through their SARIF outputs, whatever their exit code.
    let mut findings = pb::FindingCounts::default();
    for output in task
        .outputs
        .iter()
        .filter(|o| o.kind == pb::ArtifactKind::Sarif as i32)
    {
        let path = workspace.join(&output.path);
        let counted = match tokio::fs::read(&path).await {
            Ok(bytes) => sarif::count(&bytes, &mut findings)
                .map_err(|e| format!("SARIF report {:?} is not valid: {e}", output.path)),
            Err(_) if outcome != pb::TaskOutcome::Succeeded => Ok(()),
            Err(e) => Err(format!(
                "declared SARIF report {:?} was not written: {e}",
                output.path
            )),
        };
        if let Err(why) = counted
            && outcome == pb::TaskOutcome::Succeeded
        {
            outcome = pb::TaskOutcome::Failed;
            message = why;
        }
    }
    if outcome == pb::TaskOutcome::Succeeded && !task.schema_checks.is_empty() {
        match schema::check(&workspace, &task.schema_checks) {
            Ok(checked) => tracing::info!(documents = checked, "schema checks passed"),
            Err(why) => {
                outcome = pb::TaskOutcome::Failed;
                message = why;
            }
        }
    }
    let mut metrics = Default::default();
    if outcome == pb::TaskOutcome::Succeeded && !task.metrics_path.is_empty() {
        match schema::read_metrics(&workspace.join(&task.metrics_path)) {
            Ok(read) => metrics = read,
            Err(why) => {
                outcome = pb::TaskOutcome::Failed;
                message = format!("metrics output {:?}: {why}", task.metrics_path);
            }
        }
    }
    let mut artifacts = Vec::new();
    if outcome == pb::TaskOutcome::Succeeded {
        match artifacts::store_outputs(client, &task, worker, &workspace).await {
            Ok(stored) => artifacts = stored,
            Err(why) => {
                outcome = pb::TaskOutcome::Failed;
                message = why;
            }
        }
    }
    // The heartbeat kept the lease through the uploads.
    let stale = if heartbeat.is_finished() {
        matches!(heartbeat.await, Ok(HeartbeatEnd::Stale))
    } else {
        heartbeat.abort();
        false
    };
    if stale {
        remove_workspace(&workspace).await;
        tracing::warn!("attempt went stale; result discarded");
        return;
    }
    remove_workspace(&workspace).await;
    let report = pb::ReportResultRequest {
        action_run: task.action_run.clone(),
        attempt: task.attempt,
        worker: worker.to_owned(),
        outcome: outcome as i32,
        exit_code,
        message,
        findings: Some(findings),
        artifacts,
        metrics,
        ..Default::default()
    };
    let retry = conveyor_api::client::RetryPolicy {
        deadline: Duration::from_secs(60),
        ..Default::default()
    };
    match retry
        .run(|| {
            let (mut client, report) = (client.clone(), report.clone());
            async move { client.report_result(report).await }
        })
        .await
    {
        Ok(_) => tracing::info!(outcome = ?outcome, "attempt reported"),
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "report refused")
        }
    }
}

/// Checks out the source, fetches and verifies the inputs, and runs the
/// command; what it prints goes to `sink`.
async fn prepare_and_run(
    client: &mut WorkerServiceClient<Channel>,
    task: &pb::Task,
    workspace: &std::path::Path,
    shared: &Shared,
    stop: watch::Receiver<bool>,
    sink: runner::OutputSink,
) -> (Ended, String) {
    let source = task.source.clone().unwrap_or_default();
    if let Err(e) = shared
        .checkouts
        .checkout(&source.repository, &source.commit_sha, workspace)
        .await
    {
        return (
            Ended::SetupFailed(format!("cannot check out the source: {e}")),
            String::new(),
        );
    }
    let artifacts_dir = artifacts_dir(workspace);
    if let Err(e) = tokio::fs::create_dir_all(&artifacts_dir).await {
        return (
            Ended::SetupFailed(format!("cannot create {}: {e}", artifacts_dir.display())),
            String::new(),
        );
    }
    match artifacts::fetch_inputs(client, task, &artifacts_dir, &shared.trusted).await {
        Ok(lines) => {
            for line in lines {
                let _ = sink
                    .send((runner::Pipe::System, format!("{line}\n").into_bytes()))
                    .await;
            }
        }
        Err(why) => {
            let _ = sink
                .send((runner::Pipe::System, format!("{why}\n").into_bytes()))
                .await;
            return (Ended::SetupFailed(why), String::new());
        }
    }
    let job = Job {
        command: &task.command,
        workspace,
        env: environment(task, workspace, &shared.action_env),
        timeout: to_duration(task.timeout, Duration::from_secs(15 * 60)),
    };
    runner::run(job, stop, Some(sink)).await
}

fn artifacts_dir(workspace: &std::path::Path) -> PathBuf {
    workspace.join(".conveyor/artifacts")
}

async fn remove_workspace(workspace: &std::path::Path) {
    if let Err(e) = tokio::fs::remove_dir_all(workspace).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, workspace = %workspace.display(), "cannot remove workspace");
    }
}

fn failure_message(what: &str, output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        what.to_owned()
    } else {
        format!("{what}; output ends with:\n{output}")
    }
}

/// The variables every action sees, on top of its own `env`.
fn environment(
    task: &pb::Task,
    workspace: &std::path::Path,
    base: &std::collections::BTreeMap<String, String>,
) -> HashMap<String, String> {
    let source = task.source.clone().unwrap_or_default();
    let target = task
        .target
        .as_ref()
        .map(|t| format!("{}/{}", t.account, t.region))
        .unwrap_or_default();
    let mut env: HashMap<String, String> = base.clone().into_iter().collect();
    env.extend(task.env.clone());
    let execution_id = task.execution.rsplit('/').next().unwrap_or_default();
    for (key, value) in [
        ("CONVEYOR_EXECUTION_ID", execution_id.to_owned()),
        ("CONVEYOR_EXECUTION", task.execution.clone()),
        ("CONVEYOR_STAGE", task.stage.clone()),
        ("CONVEYOR_ACTION", task.action.clone()),
        ("CONVEYOR_ATTEMPT", task.attempt.to_string()),
        ("CONVEYOR_ENVIRONMENT", task.environment.clone()),
        ("CONVEYOR_TARGET", target),
        ("CONVEYOR_COMMIT", source.commit_sha),
        ("CONVEYOR_BRANCH", source.branch),
        ("CONVEYOR_WORKSPACE", workspace.display().to_string()),
        (
            "CONVEYOR_ARTIFACTS_DIR",
            artifacts_dir(workspace).display().to_string(),
        ),
    ] {
        env.insert(key.to_owned(), value);
    }
    env
}

enum HeartbeatEnd {
    /// The attempt is no longer this worker's.
    Stale,
    Cancelled,
}

/// Extends the lease every `interval`; stops the command when the attempt
/// is cancelled or stale.
async fn heartbeat_loop(
    mut client: WorkerServiceClient<Channel>,
    action_run: String,
    attempt: i32,
    worker: String,
    interval: Duration,
    stop: watch::Sender<bool>,
) -> HeartbeatEnd {
    loop {
        tokio::time::sleep(interval).await;
        if stop.is_closed() {
            return HeartbeatEnd::Cancelled;
        }
        let request = pb::HeartbeatRequest {
            action_run: action_run.clone(),
            attempt,
            worker: worker.clone(),
        };
        match client.heartbeat(request).await {
            Ok(response) if response.get_ref().cancel => {
                tracing::info!(reason = %response.get_ref().cancel_reason, "attempt cancelled");
                let _ = stop.send(true);
                return HeartbeatEnd::Cancelled;
            }
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                let _ = stop.send(true);
                return HeartbeatEnd::Stale;
            }
            Err(status) => tracing::warn!(code = ?status.code(), "heartbeat failed; will retry"),
        }
    }
}
