//! `conveyor metrics dora|dpra|health|deployments`: delivery metrics from
//! the metrics service.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use conveyor_api::common::v1 as common;
use conveyor_api::metrics::v1 as pb;
use conveyor_api::metrics::v1::metrics_service_client::MetricsServiceClient;
use serde_json::{Value, json};

use super::Context;
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum MetricsCommand {
    /// DORA's four keys for a pipeline, a project or everything.
    Dora(MetricsArgs),
    /// The DPRA's metrics: lead time, mainline MTBF/MTTR, security errors,
    /// batch size, stage duration budgets.
    Dpra(MetricsArgs),
    /// Mainline health (green or red) of every pipeline.
    Health {
        /// Only this project's pipelines.
        #[arg(long)]
        project: Option<String>,
    },
    /// Deployment records, newest first.
    Deployments {
        #[arg(long)]
        pipeline: Option<String>,
        /// Only production deployments.
        #[arg(long)]
        production: bool,
        #[arg(long, default_value_t = 20)]
        limit: i32,
    },
}

#[derive(Args)]
pub struct MetricsArgs {
    /// Only this pipeline.
    #[arg(long, conflicts_with = "project")]
    pipeline: Option<String>,
    /// Only this project's pipelines.
    #[arg(long)]
    project: Option<String>,
    /// How far back to look, ending now (e.g. 7d, 30d, 12h).
    #[arg(long, default_value = "30d")]
    window: humantime::Duration,
}

fn client(ctx: &Context) -> anyhow::Result<MetricsServiceClient<tonic::transport::Channel>> {
    let channel = conveyor_api::client::channel(&ctx.endpoint)
        .with_context(|| format!("invalid endpoint {:?}", ctx.endpoint))?;
    Ok(MetricsServiceClient::new(channel))
}

fn pipeline_name(p: &str) -> String {
    format!("pipelines/{}", p.trim_start_matches("pipelines/"))
}

impl MetricsArgs {
    fn scope(&self) -> pb::MetricsScope {
        pb::MetricsScope {
            pipeline: self
                .pipeline
                .as_deref()
                .map(pipeline_name)
                .unwrap_or_default(),
            project: self.project.clone().unwrap_or_default(),
        }
    }

    fn window(&self) -> pb::TimeWindow {
        let end = chrono::Utc::now();
        let span = chrono::Duration::from_std(*self.window).unwrap_or(chrono::Duration::days(30));
        pb::TimeWindow {
            start_time: Some(conveyor_api::time::timestamp(end - span)),
            end_time: Some(conveyor_api::time::timestamp(end)),
        }
    }
}

/// "1h 12m": whole seconds, or "-" when unset.
pub fn duration(d: &Option<prost_types::Duration>) -> String {
    d.as_ref().map_or("-".to_owned(), |d| {
        humantime::format_duration(Duration::from_secs(d.seconds.max(0) as u64)).to_string()
    })
}

fn seconds(d: &Option<prost_types::Duration>) -> Value {
    d.as_ref().map_or(Value::Null, |d| json!(d.seconds))
}

fn band(b: i32) -> &'static str {
    match pb::DeploymentFrequencyBand::try_from(b) {
        Ok(pb::DeploymentFrequencyBand::Daily) => "daily",
        Ok(pb::DeploymentFrequencyBand::Weekly) => "weekly",
        Ok(pb::DeploymentFrequencyBand::Monthly) => "monthly",
        Ok(pb::DeploymentFrequencyBand::Yearly) => "yearly",
        _ => "none",
    }
}

/// DORA's four keys as lines of text, for `metrics dora` and the demo.
pub fn dora_lines(m: &pb::DoraMetrics) -> Vec<String> {
    let f = m.deployment_frequency.unwrap_or_default();
    let l = m.lead_time_for_changes.unwrap_or_default();
    let c = m.change_failure_rate.unwrap_or_default();
    let r = m.failed_deployment_recovery_time.unwrap_or_default();
    vec![
        format!(
            "deployment frequency   {} deployments ({:.2}/day, {} band)",
            f.deployments,
            f.per_day,
            band(f.band)
        ),
        format!(
            "lead time for changes  median {}, p90 {} over {} commits",
            duration(&l.median),
            duration(&l.p90),
            l.commits
        ),
        format!(
            "change failure rate    {:.0}% ({} of {} deployments)",
            c.rate * 100.0,
            c.failed_deployments,
            c.deployments
        ),
        format!(
            "recovery time          median {}, mean {} ({} recovered, {} not yet)",
            duration(&r.median),
            duration(&r.mean),
            r.recoveries,
            r.unrecovered
        ),
    ]
}

fn dora_json(m: &pb::DoraMetrics) -> Value {
    let f = m.deployment_frequency.unwrap_or_default();
    let l = m.lead_time_for_changes.unwrap_or_default();
    let c = m.change_failure_rate.unwrap_or_default();
    let r = m.failed_deployment_recovery_time.unwrap_or_default();
    json!({
        "window": {
            "startTime": output::rfc3339(&m.window.as_ref().and_then(|w| w.start_time)),
            "endTime": output::rfc3339(&m.window.as_ref().and_then(|w| w.end_time)),
        },
        "deploymentFrequency": {"deployments": f.deployments, "perDay": f.per_day, "band": band(f.band)},
        "leadTimeForChanges": {"medianSeconds": seconds(&l.median), "p90Seconds": seconds(&l.p90), "commits": l.commits},
        "changeFailureRate": {"rate": c.rate, "failedDeployments": c.failed_deployments, "deployments": c.deployments},
        "failedDeploymentRecoveryTime": {
            "medianSeconds": seconds(&r.median),
            "meanSeconds": seconds(&r.mean),
            "recoveries": r.recoveries,
            "unrecovered": r.unrecovered,
        },
        "dataTime": output::rfc3339(&m.data_time),
    })
}

fn dpra_lines(m: &pb::DpraMetrics) -> Vec<String> {
    let main = m.mainline.unwrap_or_default();
    let sec = m.security_errors.unwrap_or_default();
    let batch = m.batch_size.unwrap_or_default();
    let budgets = m.stage_budgets.clone().unwrap_or_default();
    let mut lines = vec![
        format!(
            "lead time              mean {} (first wave {}) over {} commits",
            duration(&m.lead_time_mean),
            duration(&m.lead_time_first_wave_mean),
            m.lead_time_commits
        ),
        format!(
            "deploy frequency       {} deployments ({:.2}/day)",
            m.deployments, m.deployments_per_day
        ),
        format!(
            "mainline               MTBF {} ({} green streaks), MTTR {} ({} red)",
            duration(&main.mtbf),
            main.green_streaks,
            duration(&main.mttr),
            main.red_streaks
        ),
        format!(
            "security controls      {:.0}% automated; errors resolved in {} on average ({} resolved, {} open)",
            m.security_control_automation_percent,
            duration(&sec.mean_time_to_resolve),
            sec.resolved,
            sec.open
        ),
        format!(
            "batch size             {:.1} commits per deployment (max {})",
            batch.mean, batch.max
        ),
        format!(
            "stage budgets          {} of {} stage runs over budget",
            budgets.violations, budgets.stage_runs
        ),
    ];
    for v in budgets.recent_violations.iter().take(5) {
        lines.push(format!(
            "  {} {} took {} (budget {})",
            v.execution,
            v.stage,
            duration(&v.duration),
            duration(&v.budget)
        ));
    }
    lines
}

fn health_state(s: i32) -> &'static str {
    match pb::MainlineHealthState::try_from(s) {
        Ok(pb::MainlineHealthState::Green) => "green",
        Ok(pb::MainlineHealthState::Red) => "red",
        _ => "unknown",
    }
}

pub fn outcome(o: i32) -> &'static str {
    match pb::RunOutcome::try_from(o) {
        Ok(pb::RunOutcome::InProgress) => "in progress",
        Ok(pb::RunOutcome::Succeeded) => "succeeded",
        Ok(pb::RunOutcome::Failed) => "failed",
        Ok(pb::RunOutcome::RolledBack) => "rolled back",
        Ok(pb::RunOutcome::Cancelled) => "cancelled",
        Ok(pb::RunOutcome::Superseded) => "superseded",
        _ => "",
    }
}

pub async fn run(ctx: &Context, cmd: MetricsCommand) -> anyhow::Result<ExitCode> {
    let mut client = client(ctx)?;
    match cmd {
        MetricsCommand::Dora(args) => {
            let m = client
                .get_dora_metrics(pb::GetDoraMetricsRequest {
                    scope: Some(args.scope()),
                    window: Some(args.window()),
                    granularity: pb::SeriesGranularity::Unspecified as i32,
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&dora_json(&m)),
                OutputFormat::Table => dora_lines(&m).iter().for_each(|l| println!("{l}")),
            }
        }
        MetricsCommand::Dpra(args) => {
            let m = client
                .get_dpra_metrics(pb::GetDpraMetricsRequest {
                    scope: Some(args.scope()),
                    window: Some(args.window()),
                    granularity: pb::SeriesGranularity::Unspecified as i32,
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!({
                    "leadTimeMeanSeconds": seconds(&m.lead_time_mean),
                    "leadTimeFirstWaveMeanSeconds": seconds(&m.lead_time_first_wave_mean),
                    "leadTimeCommits": m.lead_time_commits,
                    "deployments": m.deployments,
                    "deploymentsPerDay": m.deployments_per_day,
                    "mtbfSeconds": seconds(&m.mainline.as_ref().and_then(|x| x.mtbf)),
                    "mttrSeconds": seconds(&m.mainline.as_ref().and_then(|x| x.mttr)),
                    "securityControlAutomationPercent": m.security_control_automation_percent,
                    "securityErrorsResolved": m.security_errors.as_ref().map(|s| s.resolved),
                    "batchSizeMean": m.batch_size.as_ref().map(|b| b.mean),
                    "stageBudgetViolations": m.stage_budgets.as_ref().map(|b| b.violations),
                })),
                OutputFormat::Table => dpra_lines(&m).iter().for_each(|l| println!("{l}")),
            }
        }
        MetricsCommand::Health { project } => {
            let page = client
                .list_pipeline_health(pb::ListPipelineHealthRequest {
                    page_size: 500,
                    project: project.unwrap_or_default(),
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!(
                    page.pipelines
                        .iter()
                        .map(|h| json!({
                            "name": h.name,
                            "project": h.project,
                            "state": health_state(h.state),
                            "since": output::rfc3339(&h.since),
                            "lastExecution": h.last_execution,
                            "failedStage": h.failed_stage,
                            "failureReason": h.failure_reason,
                        }))
                        .collect::<Vec<_>>()
                )),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = page
                        .pipelines
                        .iter()
                        .map(|h| {
                            vec![
                                h.name.trim_end_matches("/health").to_owned(),
                                health_state(h.state).to_owned(),
                                output::time(&h.since),
                                h.last_execution.rsplit('/').next().unwrap_or("").to_owned(),
                                if h.failed_stage.is_empty() {
                                    String::new()
                                } else {
                                    format!("{}: {}", h.failed_stage, h.failure_reason)
                                },
                            ]
                        })
                        .collect();
                    output::table(
                        &["PIPELINE", "MAINLINE", "SINCE", "LAST RUN", "FAILURE"],
                        &rows,
                    );
                }
            }
        }
        MetricsCommand::Deployments {
            pipeline,
            production,
            limit,
        } => {
            let page = client
                .list_deployments(pb::ListDeploymentsRequest {
                    page_size: limit,
                    scope: Some(pb::MetricsScope {
                        pipeline: pipeline.as_deref().map(pipeline_name).unwrap_or_default(),
                        ..Default::default()
                    }),
                    tiers: if production {
                        vec![common::Tier::Production as i32]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            let rows: Vec<Vec<String>> = page
                .deployments
                .iter()
                .map(|d| {
                    vec![
                        d.name.trim_start_matches("deployments/").to_owned(),
                        d.environment.clone(),
                        outcome(d.outcome).to_owned(),
                        output::time(&d.start_time),
                        output::time(&d.end_time),
                        d.commits.len().to_string(),
                        if d.change_failure { "yes" } else { "" }.to_owned(),
                    ]
                })
                .collect();
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!(
                    page.deployments
                        .iter()
                        .map(|d| json!({
                            "name": d.name,
                            "execution": d.execution,
                            "environment": d.environment,
                            "outcome": outcome(d.outcome),
                            "startTime": output::rfc3339(&d.start_time),
                            "endTime": output::rfc3339(&d.end_time),
                            "commits": d.commits.iter().map(|c| c.sha.clone()).collect::<Vec<_>>(),
                            "changeFailure": d.change_failure,
                        }))
                        .collect::<Vec<_>>()
                )),
                OutputFormat::Table => output::table(
                    &[
                        "DEPLOYMENT",
                        "ENVIRONMENT",
                        "OUTCOME",
                        "STARTED",
                        "ENDED",
                        "COMMITS",
                        "CHANGE FAILURE",
                    ],
                    &rows,
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
