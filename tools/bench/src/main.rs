//! `conveyor-bench`: measures what docs/benchmarks.md reports. Numbers come
//! from here, never from timed tests.
//!
//!   conveyor-bench validate [--stages 50 --actions-per-stage 10 --iterations 200]
//!   conveyor-bench get --endpoint URL [--concurrency 32 --seconds 10]
//!   conveyor-bench executions --definitions URL --execution URL --repository PATH
//!       [--database-url URL --concurrency 1,16,256 --seconds 20]
//!   conveyor-bench fleet --endpoint URL --database-url URL [--accounts 100000]
//!   conveyor-bench metrics-ingest --database-url URL --redis-url URL [--executions 2000]
//!   conveyor-bench metrics-query --database-url URL [--records 1000000]

mod executions;
mod fleet;
mod metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use conveyor_api::common::v1::SpecFormat;
use conveyor_api::definitions::v1 as pb;
use conveyor_api::definitions::v1::pipeline_service_client::PipelineServiceClient;
use conveyor_definitions::domain::{self, Source};
use conveyor_definitions::spec::{Format, PipelineType};
use hdrhistogram::Histogram;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, validate and conformance-check a large spec in process.
    Validate {
        #[arg(long, default_value_t = 50)]
        stages: usize,
        #[arg(long, default_value_t = 10)]
        actions_per_stage: usize,
        #[arg(long, default_value_t = 200)]
        iterations: usize,
    },
    /// No-op pipelines against running definitions and execution services
    /// and workers: transition latency, throughput, yardstick.
    Executions {
        #[arg(long, default_value = "http://127.0.0.1:7701")]
        definitions: String,
        #[arg(long, default_value = "http://127.0.0.1:7702")]
        execution: String,
        /// A git repository the workers can clone.
        #[arg(long)]
        repository: String,
        /// The execution service's Postgres, for the commit-rate yardstick.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
        concurrency: Vec<usize>,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 4)]
        stages: usize,
        #[arg(long, default_value_t = 5)]
        actions_per_stage: usize,
    },
    /// A large fleet seeded into a running fleet service: PlanRollout and
    /// ListAccounts-by-subtree latency.
    Fleet {
        #[arg(long, default_value = "http://127.0.0.1:7703")]
        endpoint: String,
        /// The fleet service's Postgres database.
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        accounts: usize,
        #[arg(long, default_value_t = 20)]
        iterations: usize,
        #[arg(long, default_value_t = 200)]
        pages: usize,
    },
    /// The wave planner alone, in process.
    Plan {
        #[arg(long, default_value_t = 100_000)]
        accounts: usize,
        #[arg(long, default_value_t = 20)]
        iterations: usize,
    },
    /// Events published to Redis, then consumed into Postgres by the
    /// metrics service's consumer: events per second. The stream keeps
    /// about 100,000 events: 26 per execution, so at most 3,800 executions.
    MetricsIngest {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "redis://127.0.0.1:6379/")]
        redis_url: String,
        #[arg(long, default_value_t = 2000)]
        executions: usize,
    },
    /// The DORA computation over a large seeded history.
    MetricsQuery {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        #[arg(long, default_value_t = 20)]
        iterations: usize,
    },
    /// GetPipeline load against a running service.
    Get {
        #[arg(long, default_value = "http://127.0.0.1:7701")]
        endpoint: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Warnings of the code under measurement (a failing batch, say) show.
    let _telemetry = conveyor_platform::telemetry::init_with_filter(
        "conveyor-bench",
        conveyor_platform::telemetry::LogFormat::Text,
        "warn",
    );
    match Args::parse().command {
        Command::Validate {
            stages,
            actions_per_stage,
            iterations,
        } => validate(stages, actions_per_stage, iterations),
        Command::Get {
            endpoint,
            concurrency,
            seconds,
        } => get(&endpoint, concurrency, Duration::from_secs(seconds)).await,
        Command::Plan {
            accounts,
            iterations,
        } => fleet::plan_only(accounts, iterations),
        Command::MetricsIngest {
            database_url,
            redis_url,
            executions,
        } => metrics::ingest(&database_url, &redis_url, executions).await,
        Command::MetricsQuery {
            database_url,
            records,
            iterations,
        } => metrics::query(&database_url, records, iterations).await,
        Command::Fleet {
            endpoint,
            database_url,
            accounts,
            iterations,
            pages,
        } => {
            fleet::run(fleet::Options {
                endpoint,
                database_url,
                accounts,
                iterations,
                pages,
            })
            .await
        }
        Command::Executions {
            definitions,
            execution,
            repository,
            database_url,
            concurrency,
            seconds,
            stages,
            actions_per_stage,
        } => {
            executions::run(executions::Options {
                definitions,
                execution,
                repository,
                database_url,
                concurrency,
                duration: Duration::from_secs(seconds),
                stages,
                actions_per_stage,
            })
            .await
        }
    }
}

/// A structurally valid spec of `stages` stages with `per_stage` chained actions each.
fn large_spec(stages: usize, per_stage: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {name: large, project: bench}\nspec:\n  type: application\n  source: {repository: https://git.example.com/large.git}\n  environments:\n    - {name: prod, tier: production, account: \"4\", regions: [us-east-1]}\n  stages:\n",
    );
    for s in 0..stages {
        yaml.push_str(&format!("    - name: stage-{s}\n"));
        if s + 1 == stages {
            yaml.push_str("      environment: prod\n      approval: {groups: [release]}\n      deployment:\n        waves: [{name: all, targets: [{account: \"4\", region: us-east-1}]}]\n        alarms: [{name: errors}]\n");
        }
        yaml.push_str("      actions:\n");
        for a in 0..per_stage {
            let kind = if s + 1 == stages { "deploy" } else { "custom" };
            yaml.push_str(&format!("        - name: action-{a}\n          kind: {kind}\n          run: ./run.sh {s} {a}\n"));
            if a > 0 {
                yaml.push_str(&format!("          needs: [action-{}]\n", a - 1));
            }
        }
    }
    yaml
}

fn validate(stages: usize, per_stage: usize, iterations: usize) -> anyhow::Result<()> {
    let yaml = large_spec(stages, per_stage);
    let source = Source {
        content: yaml.into_bytes(),
        format: Format::Yaml,
    };
    let check = domain::validate(&source);
    anyhow::ensure!(
        check.errors.is_empty(),
        "the generated spec is invalid: {:?}",
        check.errors.first()
    );
    let mut histogram = latency_histogram();
    for _ in 0..iterations {
        let start = Instant::now();
        let v = domain::validate(&source);
        histogram.saturating_record(start.elapsed().as_micros().max(1) as u64);
        std::hint::black_box(v);
    }
    println!(
        "validate: {stages} stages x {per_stage} actions, {} bytes, {iterations} runs: mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        source.content.len(),
        histogram.mean() / 1000.0,
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
    );
    Ok(())
}

async fn get(endpoint: &str, concurrency: usize, duration: Duration) -> anyhow::Result<()> {
    let channel = conveyor_api::client::channel(endpoint)?;
    let mut client = PipelineServiceClient::new(channel.clone());
    let template = conveyor_definitions::templates::render(
        PipelineType::Application,
        "bench",
        "bench",
        Format::Yaml,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    client
        .apply_pipeline(pb::ApplyPipelineRequest {
            source: Some(pb::PipelineSource {
                content: template.into_bytes(),
                format: SpecFormat::Yaml as i32,
            }),
            author: "bench".into(),
            ..Default::default()
        })
        .await
        .context("apply the benchmark pipeline")?;

    // One HTTP/2 connection per 8 workers, as a pooled client would have.
    let channels: Vec<_> = (0..concurrency.div_ceil(8))
        .map(|_| conveyor_api::client::channel(endpoint))
        .collect::<Result<_, _>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..concurrency {
        let mut client = PipelineServiceClient::new(channels[i / 8].clone());
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut histogram = latency_histogram();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let request = pb::GetPipelineRequest {
                    name: "pipelines/bench".into(),
                    revision: 0,
                    view: pb::PipelineView::Basic as i32,
                };
                match client.get_pipeline(request).await {
                    Ok(_) => histogram.saturating_record(start.elapsed().as_micros().max(1) as u64),
                    Err(_) => errors += 1,
                }
            }
            (histogram, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = latency_histogram();
    let mut errors = 0;
    for w in workers {
        let (h, e) = w.await?;
        total.add(&h)?;
        errors += e;
    }
    println!(
        "get: concurrency {concurrency}, {:.0} RPS over {}s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} errors",
        total.len() as f64 / duration.as_secs_f64(),
        duration.as_secs(),
        total.value_at_quantile(0.5) as f64 / 1000.0,
        total.value_at_quantile(0.99) as f64 / 1000.0,
        total.max() as f64 / 1000.0,
    );
    Ok(())
}

/// Microseconds from 1 µs to 10 min at three significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid")
}
