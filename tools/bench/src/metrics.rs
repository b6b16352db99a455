//! The metrics service's numbers: event ingest rate (events published to
//! Redis first, then consumed and applied to Postgres by the real
//! consumer), DORA query time over a large seeded history, and nothing
//! else running.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use conveyor_api::common::v1 as common;
use conveyor_api::events::v1 as ev;
use conveyor_api::events::v1::event::Payload as P;
use conveyor_api::execution::v1 as exec;
use conveyor_api::metrics::v1 as pb;
use conveyor_api::time::timestamp;
use conveyor_metrics::compute::{self, Window};
use conveyor_metrics::store::{Scope, Store};
use conveyor_platform::queue::{EVENTS_STREAM, Queue, RedisQueue};
use prost::Message;
use sea_orm::ConnectionTrait;

fn event(at: chrono::DateTime<Utc>, kind: &str, payload: P) -> Vec<u8> {
    ev::Event {
        id: uuid::Uuid::now_v7().to_string(),
        time: Some(timestamp(at)),
        source: "conveyor.execution".into(),
        r#type: kind.into(),
        schema_version: 1,
        payload: Some(payload),
        ..Default::default()
    }
    .encode_to_vec()
}

/// One execution's events: started, three stages of three actions each
/// (build, beta, prod), finished: 26 events.
fn execution(pipeline: usize, n: usize) -> Vec<Vec<u8>> {
    let now = Utc::now() - TimeDelta::hours(1);
    let ctx = ev::ExecutionContext {
        execution: format!("pipelines/p{pipeline}/executions/{n:032x}"),
        pipeline: format!("pipelines/p{pipeline}"),
        project: format!("project{}", pipeline % 10),
        pipeline_type: common::PipelineType::Application as i32,
        ..Default::default()
    };
    let mut out = vec![event(
        now,
        "execution.started",
        P::ExecutionStarted(ev::ExecutionStarted {
            context: Some(ctx.clone()),
            commits: vec![exec::Commit {
                sha: format!("{n:040x}"),
                land_time: Some(timestamp(now)),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )];
    for (stage, env, tier) in [
        ("build", "", common::Tier::Unspecified),
        ("beta", "beta", common::Tier::Beta),
        ("prod", "prod", common::Tier::Production),
    ] {
        let stage = Some(ev::StageContext {
            stage: stage.into(),
            environment: env.into(),
            tier: tier as i32,
        });
        out.push(event(
            now,
            "execution.stage.started",
            P::StageStarted(ev::StageStarted {
                context: Some(ctx.clone()),
                stage: stage.clone(),
                ..Default::default()
            }),
        ));
        for a in 0..3 {
            let action = Some(ev::ActionContext {
                action: format!("a{a}"),
                attempt: 1,
                ..Default::default()
            });
            out.push(event(
                now,
                "execution.action.started",
                P::ActionStarted(ev::ActionStarted {
                    context: Some(ctx.clone()),
                    stage: stage.clone(),
                    action: action.clone(),
                    ..Default::default()
                }),
            ));
            out.push(event(
                now,
                "execution.action.succeeded",
                P::ActionSucceeded(ev::ActionSucceeded {
                    context: Some(ctx.clone()),
                    stage: stage.clone(),
                    action,
                    ..Default::default()
                }),
            ));
        }
        out.push(event(
            now,
            "execution.stage.succeeded",
            P::StageSucceeded(ev::StageSucceeded {
                context: Some(ctx.clone()),
                stage,
                start_time: Some(timestamp(now)),
                end_time: Some(timestamp(now + TimeDelta::minutes(5))),
                ..Default::default()
            }),
        ));
    }
    out.push(event(
        now + TimeDelta::minutes(5),
        "execution.finished",
        P::ExecutionFinished(ev::ExecutionFinished {
            context: Some(ctx),
            outcome: exec::ExecutionState::Succeeded as i32,
            ..Default::default()
        }),
    ));
    out
}

/// Publishes `executions` executions' events to Redis, then times the
/// consumer applying them to Postgres.
pub async fn ingest(database_url: &str, redis_url: &str, executions: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        executions * 26 <= 95_000,
        "the event stream keeps about 100,000 events: at most 3,650 executions"
    );
    let prefix = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let queue = Arc::new(RedisQueue::connect(redis_url, &prefix).await?);
    let started = Instant::now();
    let mut total = 0u64;
    for n in 0..executions {
        for payload in execution(n % 100, n) {
            queue.publish(EVENTS_STREAM, &payload).await?;
            total += 1;
        }
    }
    println!(
        "published {total} events ({executions} executions) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = Store::connect(database_url, 8).await?;
    let stats = Arc::new(conveyor_metrics::ingest::Stats::default());
    let (updates, _) = tokio::sync::broadcast::channel(16);
    let started = Instant::now();
    let consumer = conveyor_metrics::ingest::Consumer {
        store: store.clone(),
        queue: queue.clone(),
        name: "bench".into(),
        database_url: database_url.to_owned(),
        stats: stats.clone(),
        updates,
        deliveries: Arc::new(tokio::sync::Notify::new()),
        retention: Default::default(),
    }
    .spawn();
    while stats.applied.load(Ordering::Relaxed) < total {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "applied {} of {total} in 10 minutes",
            stats.applied.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    consumer.abort();
    println!(
        "ingest: {total} events applied in {seconds:.2} s = {:.0} events/s ({} batches)",
        total as f64 / seconds,
        stats.batches.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Seeds `records` production deployments (one commit each) over the last
/// 400 days across 1,000 pipelines, then times the DORA computation
/// GetDoraMetrics runs, for several scopes and windows.
pub async fn query(database_url: &str, records: usize, iterations: usize) -> anyhow::Result<()> {
    let store = Store::connect(database_url, 8).await?;
    let db = store.connection();
    db.execute_unprepared("TRUNCATE deployments, commits, rollups")
        .await?;
    let started = Instant::now();
    // Postgres builds the rows itself: seeding is not what is measured.
    db.execute_unprepared(&format!(
        "INSERT INTO deployments (id, execution, pipeline, project, pipeline_type, stage,
             environment, tier, targets, artifact, outcome, start_time, first_wave_end_time,
             end_time, change_failure, failure_alarm, failure_detect_time, restore_time,
             restored_by, commit_count)
         SELECT 'd' || g, 'pipelines/p' || (g % 1000) || '/executions/' || g,
             'pipelines/p' || (g % 1000), 'project' || (g % 10), 1, 'prod', 'prod', {tier},
             '[]', '', CASE WHEN g % 20 = 0 THEN 'rolled_back' ELSE 'succeeded' END,
             now() - make_interval(secs => g::float8 * 34560000.0 / {records}) - interval '30 minutes',
             now() - make_interval(secs => g::float8 * 34560000.0 / {records}) - interval '20 minutes',
             now() - make_interval(secs => g::float8 * 34560000.0 / {records}),
             g % 20 = 0, CASE WHEN g % 20 = 0 THEN 'alarms/a' ELSE '' END,
             CASE WHEN g % 20 = 0 THEN now() - make_interval(secs => g::float8 * 34560000.0 / {records}) - interval '25 minutes' END,
             CASE WHEN g % 20 = 0 THEN now() - make_interval(secs => g::float8 * 34560000.0 / {records}) END,
             '', 1
         FROM generate_series(1, {records}) AS g",
        tier = common::Tier::Production as i32
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO commits (pipeline, sha, project, execution, author, land_time, commit_time,
             first_seen, deployment, deploy_end_time, lead_time_ms, first_wave_lead_ms)
         SELECT 'pipelines/p' || (g % 1000), lpad(to_hex(g), 40, '0'), 'project' || (g % 10),
             'pipelines/p' || (g % 1000) || '/executions/' || g, 'dev',
             now() - make_interval(secs => g::float8 * 34560000.0 / {records}) - interval '2 hours',
             NULL, now() - make_interval(secs => g::float8 * 34560000.0 / {records}) - interval '2 hours',
             'd' || g, now() - make_interval(secs => g::float8 * 34560000.0 / {records}),
             7200000 + (g % 3600) * 1000, 3600000
         FROM generate_series(1, {records}) AS g WHERE g % 20 <> 0"
    ))
    .await?;
    db.execute_unprepared("ANALYZE deployments; ANALYZE commits")
        .await?;
    println!(
        "seeded {records} deployments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let days = store
        .rebuild_rollups(conveyor_metrics::store::Retention {
            // The seeded history is exactly 400 days old: keep every day.
            records_days: 0,
            ..Default::default()
        })
        .await
        .context("rebuilding the rollups")?;
    println!(
        "rolled up {days} days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let now = Utc::now();
    for (label, scope, days) in [
        (
            "one pipeline, 30 days",
            Scope::Pipeline("pipelines/p7".into()),
            30,
        ),
        (
            "one project, 30 days",
            Scope::Project("project3".into()),
            30,
        ),
        ("fleet, 30 days", Scope::Fleet, 30),
        ("fleet, 400 days (every record)", Scope::Fleet, 400),
    ] {
        let window = Window {
            start: now - TimeDelta::days(days),
            end: now,
        };
        let mut times = Vec::new();
        let mut deployments = 0;
        let mut median = None;
        for _ in 0..iterations {
            let t = Instant::now();
            let summary = store.summary(&scope, window).await.context("summary")?;
            let m = compute::dora(window, &summary, pb::SeriesGranularity::Unspecified);
            times.push(t.elapsed());
            deployments = m.deployment_frequency.map_or(0, |f| f.deployments);
            median = m.lead_time_for_changes.and_then(|l| l.median);
        }
        times.sort_unstable();
        println!(
            "GetDoraMetrics {label}: {deployments} deployments, median lead time {} s; \
             p50 {:.1} ms, p90 {:.1} ms",
            median.map_or(0, |d| d.seconds),
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() * 9 / 10].as_secs_f64() * 1e3
        );
    }
    Ok(())
}
