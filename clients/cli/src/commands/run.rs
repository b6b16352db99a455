//! `conveyor run ...`: start and follow executions.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use serde_json::json;
use tonic::transport::Channel;

use super::Context;
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum RunCommand {
    /// Start an execution of a pipeline for a commit.
    Start(StartArgs),
    /// Show an execution with its stages and actions.
    Get(NameArgs),
    /// List executions, newest first.
    List(ListArgs),
    /// Cancel an execution: nothing more starts, running actions are stopped.
    Cancel(NameArgs),
    /// Follow an execution live: every stage and action change until it ends.
    Watch(NameArgs),
    /// Approve the stage of an execution that waits for approval.
    Approve(DecideArgs),
    /// Reject the stage of an execution that waits for approval; the execution fails.
    Reject(DecideArgs),
    /// What an execution is traceable to: artifact digests, commits,
    /// approvals, gate results, waves and targets, rollbacks, and the same
    /// for the upstream executions whose artifacts it pinned.
    Provenance(NameArgs),
}

#[derive(Args)]
pub struct DecideArgs {
    /// `pipelines/P/executions/E`.
    name: String,
    /// The stage waiting for approval.
    #[arg(long)]
    stage: String,
    #[arg(long, default_value = "")]
    comment: String,
    /// Who decides [default: $USER].
    #[arg(long)]
    principal: Option<String>,
    /// Groups the principal belongs to (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
}

#[derive(Args)]
pub struct StartArgs {
    pipeline: String,
    /// The commit to run [default: none pinned: workers check out the branch head].
    #[arg(long, default_value = "")]
    commit: String,
    /// The branch; anything but the pipeline's trunk runs only the build stages.
    #[arg(long, default_value = "")]
    branch: String,
    /// Wait for the execution to end; exit 1 unless it succeeded.
    #[arg(long)]
    wait: bool,
    /// Pin this upstream execution (`pipelines/P/executions/E`) instead of
    /// its pipeline's newest publish.
    #[arg(long, value_name = "EXECUTION")]
    upstream: Option<String>,
    /// Deploy this earlier execution's artifacts again instead of building
    /// (`pipelines/P/executions/E`, or E): a rollback to that version
    /// through the environment stages. --commit and --branch do not apply.
    #[arg(long, value_name = "EXECUTION", conflicts_with_all = ["commit", "branch", "upstream"])]
    redeploy: Option<String>,
}

#[derive(Args)]
pub struct NameArgs {
    /// `pipelines/P/executions/E`.
    name: String,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only this pipeline's executions.
    pipeline: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: i32,
}

fn client(ctx: &Context) -> anyhow::Result<ExecutionServiceClient<Channel>> {
    let channel = conveyor_api::client::channel(&ctx.endpoint)
        .with_context(|| format!("invalid endpoint {:?}", ctx.endpoint))?;
    Ok(ExecutionServiceClient::new(channel))
}

pub async fn run(ctx: &Context, command: RunCommand) -> anyhow::Result<ExitCode> {
    let mut client = client(ctx)?;
    match command {
        RunCommand::Watch(args) => watch(ctx, &mut client, args.name).await,
        RunCommand::Approve(args) => {
            let principal = decider(&args);
            let e = client
                .approve_stage(pb::ApproveStageRequest {
                    name: args.name,
                    stage: args.stage,
                    principal,
                    comment: args.comment,
                    request_id: String::new(),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            show(ctx, &e);
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::Reject(args) => {
            let principal = decider(&args);
            let e = client
                .reject_stage(pb::RejectStageRequest {
                    name: args.name,
                    stage: args.stage,
                    principal,
                    comment: args.comment,
                    request_id: String::new(),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            show(ctx, &e);
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::Start(args) => {
            let author = std::env::var("USER").unwrap_or_default();
            let started = client
                .start_execution(pb::StartExecutionRequest {
                    parent: format!(
                        "pipelines/{}",
                        args.pipeline.trim_start_matches("pipelines/")
                    ),
                    commit: Some(pb::Commit {
                        sha: args.commit,
                        branch: args.branch,
                        author,
                        ..Default::default()
                    }),
                    trigger: args.upstream.map(|upstream_execution| pb::Trigger {
                        upstream_execution,
                        ..Default::default()
                    }),
                    redeploy: args
                        .redeploy
                        .map(|e| {
                            if e.starts_with("pipelines/") {
                                e
                            } else {
                                format!(
                                    "pipelines/{}/executions/{e}",
                                    args.pipeline.trim_start_matches("pipelines/")
                                )
                            }
                        })
                        .unwrap_or_default(),
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            if !args.wait {
                show(ctx, &started);
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("started {}", started.name);
            let done = wait(&mut client, &started.name).await?;
            show(ctx, &done);
            Ok(if done.state == pb::ExecutionState::Succeeded as i32 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RunCommand::Provenance(args) => {
            let name = args.name.trim_end_matches("/provenance");
            let p = client
                .get_provenance(pb::GetProvenanceRequest {
                    name: format!("{name}/provenance"),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&super::provenance::to_json(&p)),
                OutputFormat::Table => super::provenance::print(&p, 0),
            }
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::Get(args) => {
            let e = client
                .get_execution(pb::GetExecutionRequest {
                    name: args.name,
                    view: pb::ExecutionView::Full as i32,
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            show(ctx, &e);
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::List(args) => {
            let parent = format!(
                "pipelines/{}",
                args.pipeline
                    .as_deref()
                    .unwrap_or("-")
                    .trim_start_matches("pipelines/")
            );
            let page = client
                .list_executions(pb::ListExecutionsRequest {
                    parent,
                    page_size: args.limit,
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!(
                    page.executions
                        .iter()
                        .map(execution_json)
                        .collect::<Vec<_>>()
                )),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = page
                        .executions
                        .iter()
                        .map(|e| {
                            let commit = e.commit.clone().unwrap_or_default();
                            vec![
                                e.name.clone(),
                                state_name(e.state),
                                commit.branch,
                                commit.sha.chars().take(12).collect(),
                                output::time(&e.create_time),
                            ]
                        })
                        .collect();
                    output::table(
                        &["EXECUTION", "STATE", "BRANCH", "COMMIT", "STARTED"],
                        &rows,
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::Cancel(args) => {
            let e = client
                .cancel_execution(pb::CancelExecutionRequest {
                    name: args.name,
                    principal: Some(conveyor_api::common::v1::Principal {
                        id: std::env::var("USER").unwrap_or_default(),
                        groups: Vec::new(),
                    }),
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            show(ctx, &e);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints each stage or action whose state changed, then the summary.
async fn watch(
    ctx: &Context,
    client: &mut ExecutionServiceClient<Channel>,
    name: String,
) -> anyhow::Result<ExitCode> {
    let mut stream = client
        .watch_execution(pb::WatchExecutionRequest { name, view: 0 })
        .await
        .map_err(to_anyhow)?
        .into_inner();
    let mut seen = std::collections::HashMap::<String, String>::new();
    let mut last = None;
    while let Some(message) = stream.message().await.map_err(to_anyhow)? {
        let Some(e) = message.execution else { continue };
        for stage in &e.stages {
            let mut report = |key: String, line: String| {
                if seen.get(&key) != Some(&line) {
                    eprintln!("{}  {line}", chrono::Local::now().format("%H:%M:%S"));
                    seen.insert(key, line);
                }
            };
            report(
                format!("stage/{}", stage.stage),
                format!("{:<12} {}", stage.stage, stage_state(stage.state)),
            );
            // Fleet stages' template runs (wave -1) never run.
            for a in stage.actions.iter().filter(|a| a.wave >= 0) {
                let line = format!(
                    "{:<12} {:<32} {} (attempt {})",
                    stage.stage,
                    run_label(a),
                    action_state(a.state),
                    a.attempt
                );
                report(a.name.clone(), line);
            }
        }
        last = Some(e);
    }
    let Some(e) = last else {
        return Ok(ExitCode::FAILURE);
    };
    show(ctx, &e);
    Ok(if e.state == pb::ExecutionState::Succeeded as i32 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What an action run is, for humans: "deploy", or "deploy → 18082 (wave 2)".
pub fn run_label(a: &pb::ActionRun) -> String {
    let mut label = a.action.clone();
    if a.wave < 0 {
        // A fleet stage plans its actions once, then runs them per target.
        label.push_str(" (template: runs once per fleet target)");
    }
    if let Some(t) = &a.target {
        label.push_str(&format!(" → {} (wave {})", t.region, a.wave + 1));
    }
    if a.rollback {
        label.push_str(" [rollback]");
    }
    label
}

fn decider(args: &DecideArgs) -> Option<conveyor_api::common::v1::Principal> {
    Some(conveyor_api::common::v1::Principal {
        id: args
            .principal
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default(),
        groups: args.groups.clone(),
    })
}

async fn wait(
    client: &mut ExecutionServiceClient<Channel>,
    name: &str,
) -> anyhow::Result<pb::Execution> {
    loop {
        let e = client
            .get_execution(pb::GetExecutionRequest {
                name: name.to_owned(),
                view: pb::ExecutionView::Full as i32,
            })
            .await
            .map_err(to_anyhow)?
            .into_inner();
        if e.has_ended() {
            return Ok(e);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

pub(crate) fn state_name(state: i32) -> String {
    pb::ExecutionState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("EXECUTION_STATE_")
                .to_lowercase()
        })
        .unwrap_or_default()
}

pub(crate) fn stage_state(state: i32) -> String {
    pb::StageState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("STAGE_STATE_")
                .to_lowercase()
        })
        .unwrap_or_default()
}

pub(crate) fn action_state(state: i32) -> String {
    pb::ActionState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ACTION_STATE_")
                .to_lowercase()
        })
        .unwrap_or_default()
}

fn execution_json(e: &pb::Execution) -> serde_json::Value {
    let commit = e.commit.clone().unwrap_or_default();
    json!({
        "name": e.name,
        "state": state_name(e.state),
        "stateReason": e.state_reason,
        "revision": e.revision,
        "buildOnly": e.build_only,
        "commit": {"sha": commit.sha, "branch": commit.branch, "author": commit.author},
        "stages": e.stages.iter().map(|s| json!({
            "stage": s.stage,
            "environment": s.environment,
            "state": stage_state(s.state),
            "stateReason": s.state_reason,
            "actions": s.actions.iter().map(|a| json!({
                "name": a.name,
                "action": a.action,
                "state": action_state(a.state),
                "attempt": a.attempt,
                "wave": a.wave,
                "target": a.target.as_ref().map(|t| json!({"account": t.account, "region": t.region})),
                "rollback": a.rollback,
                "exitCode": a.exit_code,
                "failureReason": a.failure_reason,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn show(ctx: &Context, e: &pb::Execution) {
    match ctx.output {
        OutputFormat::Json => output::print_json(&execution_json(e)),
        OutputFormat::Table => {
            println!("{}  {}", e.name, state_name(e.state));
            if !e.state_reason.is_empty() {
                println!("  {}", e.state_reason);
            }
            let rows: Vec<Vec<String>> = e
                .stages
                .iter()
                .flat_map(|s| {
                    s.actions.iter().map(move |a| {
                        vec![
                            s.stage.clone(),
                            stage_state(s.state),
                            run_label(a),
                            action_state(a.state),
                            a.attempt.to_string(),
                            a.failure_reason
                                .lines()
                                .next()
                                .unwrap_or_default()
                                .to_owned(),
                        ]
                    })
                })
                .collect();
            if !rows.is_empty() {
                output::table(
                    &[
                        "STAGE",
                        "STAGE STATE",
                        "ACTION",
                        "STATE",
                        "ATTEMPT",
                        "REASON",
                    ],
                    &rows,
                );
            }
        }
    }
}

#[derive(Args)]
pub struct LogsArgs {
    /// `pipelines/P/executions/E`.
    name: String,
    /// Only this stage's actions.
    #[arg(long, default_value = "")]
    stage: String,
    /// Only this action.
    #[arg(long, default_value = "")]
    action: String,
    /// Keep printing new output until the execution ends.
    #[arg(short = 'f', long)]
    follow: bool,
}

/// `conveyor logs`: action output as it was written, stdout and stderr.
pub async fn logs(ctx: &Context, args: LogsArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut stream = client(ctx)?
        .stream_logs(pb::StreamLogsRequest {
            name: args.name,
            stage: args.stage,
            action: args.action,
            follow: args.follow,
            ..Default::default()
        })
        .await
        .map_err(to_anyhow)?
        .into_inner();
    let mut out = std::io::stdout().lock();
    while let Some(message) = stream.message().await.map_err(to_anyhow)? {
        for chunk in message.chunks {
            out.write_all(&chunk.data)?;
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
