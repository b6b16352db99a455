//! `conveyor block|unblock|alarm`: manual promotion blockers and alarm states.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use conveyor_api::common::v1::Principal;
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::alarm_service_client::AlarmServiceClient;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use serde_json::json;

use super::Context;
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Args)]
pub struct BlockArgs {
    pipeline: String,
    /// Block only this stage [default: every stage that deploys].
    #[arg(long, default_value = "")]
    stage: String,
    /// Why promotion stops (recorded for the audit trail).
    #[arg(long)]
    reason: String,
}

#[derive(Args)]
pub struct UnblockArgs {
    pipeline: String,
    /// Lift only the blockers of this stage.
    #[arg(long)]
    stage: Option<String>,
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Subcommand)]
pub enum AlarmCommand {
    /// Set an alarm's state, as a monitor would.
    Set {
        name: String,
        /// ok, alarm or insufficient-data.
        state: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Only this pipeline's stages watch it [default: every pipeline].
        #[arg(long, default_value = "")]
        pipeline: String,
    },
    /// List alarms and their states.
    List,
    /// Report data points observed on a metric, for bakes that wait on
    /// `minDataPoints`.
    Points {
        metric: String,
        count: i64,
        /// Only this pipeline's bakes count them [default: every pipeline].
        #[arg(long, default_value = "")]
        pipeline: String,
    },
}

fn me() -> Option<Principal> {
    Some(Principal {
        id: std::env::var("USER").unwrap_or_default(),
        groups: Vec::new(),
    })
}

fn pipeline_name(p: &str) -> String {
    format!("pipelines/{}", p.trim_start_matches("pipelines/"))
}

fn blocker_json(b: &pb::Blocker) -> serde_json::Value {
    json!({
        "name": b.name,
        "stage": b.stage,
        "reason": b.reason,
        "active": b.active,
        "createdBy": b.created_by.as_ref().map(|p| p.id.clone()),
        "liftedBy": b.lifted_by.as_ref().map(|p| p.id.clone()),
    })
}

fn execution_client(
    ctx: &Context,
) -> anyhow::Result<ExecutionServiceClient<tonic::transport::Channel>> {
    let channel = conveyor_api::client::channel(&ctx.endpoint)
        .with_context(|| format!("invalid endpoint {:?}", ctx.endpoint))?;
    Ok(ExecutionServiceClient::new(channel))
}

pub async fn block(ctx: &Context, args: BlockArgs) -> anyhow::Result<ExitCode> {
    let b = execution_client(ctx)?
        .block_promotion(pb::BlockPromotionRequest {
            parent: pipeline_name(&args.pipeline),
            stage: args.stage,
            reason: args.reason,
            principal: me(),
            request_id: String::new(),
        })
        .await
        .map_err(to_anyhow)?
        .into_inner();
    match ctx.output {
        OutputFormat::Json => output::print_json(&blocker_json(&b)),
        OutputFormat::Table => println!(
            "{} blocks {}",
            b.name,
            if b.stage.is_empty() {
                "every deploying stage"
            } else {
                &b.stage
            }
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn unblock(ctx: &Context, args: UnblockArgs) -> anyhow::Result<ExitCode> {
    let lifted = execution_client(ctx)?
        .unblock_promotion(pb::UnblockPromotionRequest {
            pipeline: pipeline_name(&args.pipeline),
            stage: args.stage.unwrap_or_default(),
            reason: args.reason,
            principal: me(),
            ..Default::default()
        })
        .await
        .map_err(to_anyhow)?
        .into_inner();
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!(
            lifted.blockers.iter().map(blocker_json).collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            for b in &lifted.blockers {
                println!("{} lifted", b.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn alarm(ctx: &Context, command: AlarmCommand) -> anyhow::Result<ExitCode> {
    let channel = conveyor_api::client::channel(&ctx.endpoint)
        .with_context(|| format!("invalid endpoint {:?}", ctx.endpoint))?;
    let mut client = AlarmServiceClient::new(channel);
    let alarms = match command {
        AlarmCommand::Set {
            name,
            state,
            reason,
            pipeline,
        } => {
            let state = match state.as_str() {
                "ok" => pb::AlarmState::Ok,
                "alarm" => pb::AlarmState::Alarm,
                "insufficient-data" => pb::AlarmState::InsufficientData,
                other => anyhow::bail!("unknown state {other:?}: ok, alarm or insufficient-data"),
            };
            let alarm = client
                .set_alarm_state(pb::SetAlarmStateRequest {
                    name: format!("alarms/{}", name.trim_start_matches("alarms/")),
                    state: state as i32,
                    reason,
                    scope: Some(pb::AlarmScope {
                        pipeline: if pipeline.is_empty() {
                            String::new()
                        } else {
                            pipeline_name(&pipeline)
                        },
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            vec![alarm]
        }
        AlarmCommand::Points {
            metric,
            count,
            pipeline,
        } => {
            let recorded = client
                .record_data_points(pb::RecordDataPointsRequest {
                    metric: metric.clone(),
                    pipeline: if pipeline.is_empty() {
                        String::new()
                    } else {
                        pipeline_name(&pipeline)
                    },
                    count,
                    observe_time: None,
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(
                    &json!({"metric": metric, "recentCount": recorded.recent_count}),
                ),
                OutputFormat::Table => println!(
                    "{metric}: {} data points in the last hour",
                    recorded.recent_count
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        AlarmCommand::List => {
            client
                .list_alarms(pb::ListAlarmsRequest::default())
                .await
                .map_err(to_anyhow)?
                .into_inner()
                .alarms
        }
    };
    let state = |s: i32| {
        pb::AlarmState::try_from(s)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("ALARM_STATE_")
                    .to_lowercase()
            })
            .unwrap_or_default()
    };
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!(
            alarms
                .iter()
                .map(|a| json!({"name": a.name, "state": state(a.state), "reason": a.reason}))
                .collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = alarms
                .iter()
                .map(|a| vec![a.name.clone(), state(a.state), a.reason.clone()])
                .collect();
            output::table(&["ALARM", "STATE", "REASON"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
