//! Live progress of one execution in the terminal: a line whenever a stage
//! or an action run changes state, timed from the start of the run. The
//! demo's approver approves production when it asks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conveyor_api::common::v1::Principal;
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use tonic::transport::Channel;

use crate::commands::run::{self, run_label};
use crate::status::to_anyhow;

/// The named approver who approves production in the demo.
pub const APPROVER: &str = "dana";
pub const APPROVER_GROUP: &str = "release-managers";
/// The group the account-fleet example asks to approve its fleet stage.
const FLEET_APPROVER_GROUP: &str = "cloud-platform";

/// States as the demo prints them: "waiting approval", "rolled back".
fn execution_state(state: i32) -> String {
    run::state_name(state).replace('_', " ")
}

fn stage_state(state: i32) -> String {
    run::stage_state(state).replace('_', " ")
}

fn action_state(state: i32) -> String {
    run::action_state(state).replace('_', " ")
}

fn seconds(start: Option<prost_types::Timestamp>, end: Option<prost_types::Timestamp>) -> f64 {
    match (start, end) {
        (Some(s), Some(e)) => (e.seconds - s.seconds) as f64 + f64::from(e.nanos - s.nanos) / 1e9,
        _ => 0.0,
    }
}

/// Follows `name` until it ends, printing changes and approving production.
pub async fn follow(
    client: &mut ExecutionServiceClient<Channel>,
    name: &str,
) -> anyhow::Result<pb::Execution> {
    let started = Instant::now();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut approved: Vec<String> = Vec::new();
    loop {
        let e = client
            .get_execution(pb::GetExecutionRequest {
                name: name.to_owned(),
                view: pb::ExecutionView::Full as i32,
            })
            .await
            .map_err(to_anyhow)?
            .into_inner();
        let mut print = |key: String, line: String| {
            if seen.get(&key) != Some(&line) {
                println!("  {:>6.1}s  {line}", started.elapsed().as_secs_f64());
                seen.insert(key, line);
            }
        };
        for stage in &e.stages {
            let state = stage_state(stage.state);
            let mut line = format!("{:<6} {state}", stage.stage);
            if !stage.state_reason.is_empty() {
                line.push_str(&format!(": {}", stage.state_reason));
            }
            // A stage's start before its actions, its end after them.
            let ended = stage.end_time.is_some();
            if state != "pending" && !ended {
                print(format!("stage/{}", stage.stage), line.clone());
            }
            // Fleet stages' template runs (wave -1) never run.
            for a in stage.actions.iter().filter(|a| a.wave >= 0) {
                let state = action_state(a.state);
                let mut line = format!("{:<6}   {:<34} {state}", stage.stage, run_label(a));
                if a.end_time.is_some() {
                    line.push_str(&format!(" ({:.1}s)", seconds(a.start_time, a.end_time)));
                }
                if !a.failure_reason.is_empty() {
                    let first = a.failure_reason.lines().next().unwrap_or_default();
                    line.push_str(&format!(" — {first}"));
                }
                if state == "pending" {
                    continue;
                }
                print(a.name.clone(), line);
            }
            if ended {
                print(format!("stage/{}", stage.stage), line);
            }
        }
        if e.state == pb::ExecutionState::WaitingApproval as i32 {
            for stage in &e.stages {
                if stage.state == pb::StageState::WaitingApproval as i32
                    && !approved.contains(&stage.stage)
                {
                    approve(client, name, &stage.stage).await?;
                    println!(
                        "  {:>6.1}s  {:<6} approved by {APPROVER} ({APPROVER_GROUP}, {FLEET_APPROVER_GROUP})",
                        started.elapsed().as_secs_f64(),
                        stage.stage
                    );
                    approved.push(stage.stage.clone());
                }
            }
        }
        if e.has_ended() {
            println!(
                "  {:>6.1}s  execution {}",
                started.elapsed().as_secs_f64(),
                execution_state(e.state)
            );
            return Ok(e);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn approve(
    client: &mut ExecutionServiceClient<Channel>,
    name: &str,
    stage: &str,
) -> anyhow::Result<()> {
    client
        .approve_stage(pb::ApproveStageRequest {
            name: name.to_owned(),
            stage: stage.to_owned(),
            principal: Some(Principal {
                id: APPROVER.to_owned(),
                groups: vec![APPROVER_GROUP.to_owned(), FLEET_APPROVER_GROUP.to_owned()],
            }),
            comment: "the stages before are green; approved in the demo".to_owned(),
            request_id: String::new(),
        })
        .await
        .map_err(to_anyhow)?;
    Ok(())
}

/// The end-of-run summary: outcome, per-stage time, the artifact, and why
/// it ended the way it did.
pub fn summary(e: &pb::Execution) -> Vec<String> {
    let mut lines = vec![format!(
        "{}: {}{}",
        e.name,
        execution_state(e.state),
        if e.state_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.state_reason)
        }
    )];
    for stage in &e.stages {
        lines.push(format!(
            "  {:<6} {:<13} {:>6.1}s  {} action runs",
            stage.stage,
            stage_state(stage.state),
            seconds(stage.start_time, stage.end_time),
            stage.actions.iter().filter(|a| a.wave >= 0).count()
        ));
        if let Some(gate) = &stage.approval {
            for a in &gate.approvals {
                let who = a.principal.as_ref().map_or("", |p| p.id.as_str());
                lines.push(format!("         approved by {who}: {}", a.comment));
            }
        }
    }
    // The package, built once and deployed everywhere (reports are stored
    // too; `conveyor run get` lists them).
    let package = e
        .stages
        .iter()
        .flat_map(|s| &s.actions)
        // The examples' package actions (a model is "registered").
        .filter(|a| matches!(a.action.as_str(), "package" | "register"))
        .flat_map(|a| &a.artifacts);
    for a in package {
        lines.push(format!(
            "  artifact {} {} ({} bytes)",
            a.name, a.digest, a.size_bytes
        ));
    }
    // A redeploy built nothing: its artifacts are the earlier execution's.
    if let Some(t) = e
        .trigger
        .as_ref()
        .filter(|t| !t.redeployed_execution.is_empty())
    {
        for a in e
            .artifacts
            .iter()
            .filter(|a| !a.name.starts_with("reports/"))
        {
            lines.push(format!(
                "  artifact {} {} ({} bytes, redeployed from {})",
                a.name, a.digest, a.size_bytes, t.redeployed_execution
            ));
        }
    }
    lines
}
