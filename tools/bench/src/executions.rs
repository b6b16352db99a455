//! `conveyor-bench executions`: no-op pipelines against running definitions
//! and execution services and their workers (separate processes; see
//! scripts/bench). Reports, in one run:
//!
//! - stage-transition latency: from the last action of a stage reported done
//!   (its end time) to each action of the next stage running (its start
//!   time, set when a worker claims it); both are the execution service's
//!   clock;
//! - sustained no-op actions per second at each concurrency level;
//! - how long one 4-stage, 20-action execution takes end to end;
//! - the yardstick: single-row INSERT commits per second of 16 concurrent
//!   connections to the same database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use conveyor_api::common::v1::SpecFormat;
use conveyor_api::definitions::v1 as defs;
use conveyor_api::definitions::v1::pipeline_service_client::PipelineServiceClient;
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use hdrhistogram::Histogram;
use prost_types::Timestamp;
use tonic::transport::Channel;

use crate::latency_histogram;

pub struct Options {
    pub definitions: String,
    pub execution: String,
    pub repository: String,
    pub database_url: Option<String>,
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    pub stages: usize,
    pub actions_per_stage: usize,
}

/// Stages run one after another; the actions of a stage run in parallel.
fn noop_spec(repository: &str, stages: usize, per_stage: usize) -> String {
    let mut yaml = format!(
        "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {{name: noop, project: bench}}\nspec:\n  type: application\n  executionMode: parallel\n  source: {{repository: \"{repository}\"}}\n  stages:\n"
    );
    for s in 0..stages {
        yaml.push_str(&format!("    - name: stage-{s}\n      actions:\n"));
        for a in 0..per_stage {
            yaml.push_str(&format!(
                "        - {{name: action-{a}, kind: custom, run: \"true\"}}\n"
            ));
        }
    }
    yaml
}

fn micros(t: &Option<Timestamp>) -> Option<i64> {
    t.as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

/// Records each stage boundary of a finished execution: next stage's
/// action start minus the previous stage's last action end.
fn record_transitions(e: &pb::Execution, histogram: &mut Histogram<u64>) {
    for pair in e.stages.windows(2) {
        let Some(done) = pair[0]
            .actions
            .iter()
            .filter_map(|a| micros(&a.end_time))
            .max()
        else {
            continue;
        };
        for a in &pair[1].actions {
            if let Some(start) = micros(&a.start_time) {
                histogram.saturating_record((start - done).max(1) as u64);
            }
        }
    }
}

/// Executions of the no-op pipeline that have ended, as one lister sees
/// them: the benchmark's own load stays one ListExecutions call per tick
/// instead of one GetExecution per execution per tick.
#[derive(Clone, Default)]
struct Ended(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl Ended {
    fn contains(&self, name: &str) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(name))
    }

    /// Lists ended executions every `tick` until `stop`.
    fn spawn(&self, channel: Channel, tick: Duration, stop: Arc<AtomicBool>) {
        let ended = self.clone();
        tokio::spawn(async move {
            let mut client = ExecutionServiceClient::new(channel);
            let states = [
                pb::ExecutionState::Succeeded,
                pb::ExecutionState::Failed,
                pb::ExecutionState::Cancelled,
            ];
            while !stop.load(Ordering::Relaxed) {
                let listed = client
                    .list_executions(pb::ListExecutionsRequest {
                        parent: "pipelines/noop".into(),
                        page_size: 500,
                        states: states.iter().map(|s| *s as i32).collect(),
                        ..Default::default()
                    })
                    .await;
                if let (Ok(listed), Ok(mut set)) = (listed, ended.0.lock()) {
                    set.extend(listed.into_inner().executions.into_iter().map(|e| e.name));
                }
                tokio::time::sleep(tick).await;
            }
        });
    }
}

/// Starts an execution and waits until it ends or `stop` turns true (then
/// cancels it); returns it in the full view, and whether it was cut off.
async fn one_execution(
    client: &mut ExecutionServiceClient<Channel>,
    ended: &Ended,
    stop: &AtomicBool,
) -> Result<(pb::Execution, bool), tonic::Status> {
    let started = client
        .start_execution(pb::StartExecutionRequest {
            parent: "pipelines/noop".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let full = pb::GetExecutionRequest {
        name: started.name.clone(),
        view: pb::ExecutionView::Full as i32,
    };
    loop {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if ended.contains(&started.name) {
            return Ok((client.get_execution(full).await?.into_inner(), false));
        }
        if stop.load(Ordering::Relaxed) {
            let e = client.get_execution(full.clone()).await?.into_inner();
            let _ = client
                .cancel_execution(pb::CancelExecutionRequest {
                    name: started.name.clone(),
                    reason: "benchmark level ended".into(),
                    ..Default::default()
                })
                .await;
            return Ok((e, true));
        }
    }
}

/// Actions of `e` that succeeded before `until` (µs since the epoch).
fn actions_done(e: &pb::Execution, until: i64) -> u64 {
    e.stages
        .iter()
        .flat_map(|s| &s.actions)
        .filter(|a| a.state == pb::ActionState::Succeeded as i32)
        .filter(|a| micros(&a.end_time).is_some_and(|t| t <= until))
        .count() as u64
}

#[derive(Default)]
struct Tally {
    executions: u64,
    actions: u64,
    failed: u64,
    first_error: Option<String>,
}

struct Level {
    tally: Tally,
    transitions: Histogram<u64>,
    durations: Histogram<u64>,
}

/// `concurrency` loops of start-and-wait for `duration`. Throughput counts
/// the actions that succeeded inside the window, in finished executions
/// and in those the end of the window cut off.
async fn level(
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Level> {
    let stop = Arc::new(AtomicBool::new(false));
    let window_end = Arc::new(AtomicU64::new(u64::MAX));
    let ended = Ended::default();
    let lister_stop = Arc::new(AtomicBool::new(false));
    ended.spawn(
        channels[0].clone(),
        Duration::from_millis(10),
        lister_stop.clone(),
    );
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let mut client = ExecutionServiceClient::new(channels[i % channels.len()].clone());
        let (stop, window_end, ended) = (stop.clone(), window_end.clone(), ended.clone());
        tasks.push(tokio::spawn(async move {
            let (mut transitions, mut durations) = (latency_histogram(), latency_histogram());
            let mut tally = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                match one_execution(&mut client, &ended, &stop).await {
                    Ok((e, cut)) => {
                        let until = window_end.load(Ordering::Relaxed).min(i64::MAX as u64);
                        tally.actions += actions_done(&e, until as i64);
                        record_transitions(&e, &mut transitions);
                        if cut {
                            continue;
                        }
                        if e.state == pb::ExecutionState::Succeeded as i32 {
                            tally.executions += 1;
                            if let (Some(start), Some(end)) =
                                (micros(&e.create_time), micros(&e.end_time))
                            {
                                durations.saturating_record((end - start).max(1) as u64);
                            }
                        } else {
                            tally.failed += 1;
                            tally.first_error.get_or_insert(e.state_reason);
                        }
                    }
                    Err(status) => {
                        tally.failed += 1;
                        tally.first_error.get_or_insert(format!(
                            "{:?}: {}",
                            status.code(),
                            status.message()
                        ));
                    }
                }
            }
            (tally, transitions, durations)
        }));
    }
    tokio::time::sleep(duration).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    window_end.store(now.as_micros() as u64, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut level = Level {
        tally: Tally::default(),
        transitions: latency_histogram(),
        durations: latency_histogram(),
    };
    for task in tasks {
        let (tally, t, d) = task.await?;
        level.tally.executions += tally.executions;
        level.tally.actions += tally.actions;
        level.tally.failed += tally.failed;
        if level.tally.first_error.is_none() {
            level.tally.first_error = tally.first_error;
        }
        level.transitions.add(&t)?;
        level.durations.add(&d)?;
    }
    lister_stop.store(true, Ordering::Relaxed);
    Ok(level)
}

/// Single-row INSERT commits per second from 16 connections.
async fn yardstick(url: &str, duration: Duration) -> anyhow::Result<f64> {
    use sea_orm::{ConnectOptions, ConnectionTrait, Database};
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(16).min_connections(16);
    let db = Database::connect(options)
        .await
        .context("yardstick database")?;
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS bench_yardstick (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)",
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (db, stop) = (db.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if db
                    .execute_unprepared("INSERT INTO bench_yardstick (payload) VALUES ('x')")
                    .await
                    .is_ok()
                {
                    n += 1;
                }
            }
            n
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    db.execute_unprepared("DROP TABLE bench_yardstick").await?;
    Ok(total as f64 / duration.as_secs_f64())
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let spec = noop_spec(&o.repository, o.stages, o.actions_per_stage);
    PipelineServiceClient::new(conveyor_api::client::channel(&o.definitions)?)
        .apply_pipeline(defs::ApplyPipelineRequest {
            source: Some(defs::PipelineSource {
                content: spec.into_bytes(),
                format: SpecFormat::Yaml as i32,
            }),
            author: "bench".into(),
            accept_non_conformance: true,
            ..Default::default()
        })
        .await
        .context("apply the no-op pipeline")?;
    let channels: Vec<Channel> = (0..8)
        .map(|_| conveyor_api::client::channel(&o.execution))
        .collect::<Result<_, _>>()?;
    // Warm up: connections, caches, the first git clone.
    level(&channels, 1, Duration::from_secs(2)).await?;
    for &concurrency in &o.concurrency {
        let l = level(&channels, concurrency, o.duration).await?;
        let seconds = o.duration.as_secs_f64();
        println!(
            "executions: concurrency {concurrency}: {:.1} actions/s ({} executions finished, {} failed); \
             stage transition p50 {:.2} ms p99 {:.2} ms; execution ({} stages x {} actions) p50 {:.0} ms p99 {:.0} ms",
            l.tally.actions as f64 / seconds,
            l.tally.executions,
            l.tally.failed,
            ms(&l.transitions, 0.5),
            ms(&l.transitions, 0.99),
            o.stages,
            o.actions_per_stage,
            ms(&l.durations, 0.5),
            ms(&l.durations, 0.99),
        );
        if let Some(error) = &l.tally.first_error {
            println!("  first failure: {error}");
        }
    }
    if let Some(url) = &o.database_url {
        let rate = yardstick(url, o.duration).await?;
        println!("yardstick: single-row INSERT commits, 16 connections: {rate:.0}/s");
    }
    Ok(())
}
