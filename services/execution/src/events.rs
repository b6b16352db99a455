//! What an execution announces: each engine transition becomes an outbox
//! message, a `conveyor.events.v1.Event` on the event stream or a dispatch
//! on the pool's stream, written in the same transaction as the change.

use conveyor_api::common::v1 as common;
use conveyor_api::events::v1 as ev;
use conveyor_api::execution::v1 as pb;
use conveyor_platform::queue::{Dispatch, EVENTS_STREAM, dispatch_stream};
use prost::Message;

use crate::model::*;

/// A message to relay: the stream it goes to and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
}

use conveyor_api::time::timestamp as ts;

fn pipeline_type(t: &str) -> common::PipelineType {
    conveyor_definitions::spec::PipelineType::parse(t)
        .map(conveyor_definitions::api::pipeline_type_to_pb)
        .unwrap_or(common::PipelineType::Unspecified)
}

fn execution_name(e: &Execution) -> String {
    format!("pipelines/{}/executions/{}", e.pipeline, e.id)
}

fn context(e: &Execution) -> ev::ExecutionContext {
    ev::ExecutionContext {
        execution: execution_name(e),
        pipeline: format!("pipelines/{}", e.pipeline),
        project: e.project.clone(),
        pipeline_type: pipeline_type(&e.pipeline_type) as i32,
        revision: format!("pipelines/{}/revisions/{}", e.pipeline, e.revision),
        build_only: e.build_only,
    }
}

fn stage_context(st: &StageRun) -> ev::StageContext {
    ev::StageContext {
        stage: st.name.clone(),
        environment: st.environment.clone(),
        tier: 0,
    }
}

fn commit(e: &Execution) -> pb::Commit {
    pb::Commit {
        sha: e.commit_sha.clone(),
        branch: e.branch.clone(),
        author: e.author.clone(),
        message: e.message.clone(),
        commit_time: e.commit_time.map(ts),
        land_time: None,
    }
}

fn event(kind: &str, subject: String, payload: ev::event::Payload) -> Outgoing {
    let traceparent = conveyor_platform::telemetry::current_context()
        .remove("traceparent")
        .unwrap_or_default();
    let event = ev::Event {
        id: uuid::Uuid::now_v7().to_string(),
        time: Some(ts(chrono::Utc::now())),
        source: "conveyor-execution".to_owned(),
        r#type: kind.to_owned(),
        subject,
        traceparent,
        tracestate: String::new(),
        schema_version: 1,
        payload: Some(payload),
    };
    Outgoing {
        topic: EVENTS_STREAM.to_owned(),
        payload: event.encode_to_vec(),
    }
}

/// The distinct targets of a stage's runs (of one wave, or all).
fn targets(s: &Snapshot, stage: i32, wave: Option<i32>) -> Vec<common::Target> {
    let mut out: Vec<common::Target> = Vec::new();
    for a in s
        .actions
        .iter()
        .filter(|a| a.stage_index == stage && !a.rollback && wave.is_none_or(|w| a.wave == w))
    {
        if let Some((account, region)) = &a.target {
            let t = common::Target {
                account: account.clone(),
                region: region.clone(),
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The messages announcing the transitions of `s`.
/// The artifacts events name: what this execution built (packages and
/// SBOMs), and what a rollback restores.
#[derive(Debug, Clone, Default)]
pub struct EventArtifacts {
    /// Packages and SBOMs this execution stored.
    pub built: Vec<common::ArtifactRef>,
    /// This execution's package.
    pub package: Option<common::ArtifactRef>,
    /// The last good execution's package, which a rollback restores.
    pub restored: Option<common::ArtifactRef>,
}

/// Whether any of `s`'s transitions produces an event that names artifacts.
pub fn names_artifacts(s: &Snapshot) -> bool {
    s.transitions.iter().any(|t| {
        matches!(
            t,
            Transition::StageStarted { .. }
                | Transition::StageEnded { .. }
                | Transition::ApprovalRequested { .. }
                | Transition::WaveStarted { .. }
                | Transition::RollbackStarted { .. }
                | Transition::RollbackCompleted { .. }
                | Transition::ExecutionFinished
        )
    })
}

/// An artifact as events and the API name it.
pub fn artifact_ref(a: &crate::model::Artifact) -> common::ArtifactRef {
    common::ArtifactRef {
        digest: a.digest.clone(),
        name: a.name.clone(),
        size_bytes: a.size_bytes,
        commit_sha: a.commit_sha.clone(),
        execution: format!("pipelines/{}/executions/{}", a.pipeline, a.execution_id),
    }
}

pub fn outgoing(s: &Snapshot, artifacts: &EventArtifacts) -> Vec<Outgoing> {
    // What a deployment stage deploys: everything the build stored.
    let deployed = |st: &StageRun| {
        if st.environment.is_empty() {
            Vec::new()
        } else {
            artifacts.built.clone()
        }
    };
    let transitions = s.transitions.clone();
    let e = &s.execution;
    let name = execution_name(e);
    let stage_of = |index: i32| s.stages.iter().find(|st| st.index == index);
    let action_of = |id: &str| s.actions.iter().find(|a| a.id == id);
    let mut out = Vec::new();
    for t in transitions {
        use ev::event::Payload as P;
        match t {
            Transition::ExecutionStarted => out.push(event(
                "execution.started",
                name.clone(),
                P::ExecutionStarted(ev::ExecutionStarted {
                    context: Some(context(e)),
                    commit: Some(commit(e)),
                    commits: vec![commit(e)],
                    ..Default::default()
                }),
            )),
            Transition::StageStarted { stage } => {
                if let Some(st) = stage_of(stage) {
                    out.push(event(
                        "execution.stage.started",
                        name.clone(),
                        P::StageStarted(ev::StageStarted {
                            context: Some(context(e)),
                            stage: Some(stage_context(st)),
                            artifacts: deployed(st),
                            ..Default::default()
                        }),
                    ));
                }
            }
            Transition::StageEnded { stage } => {
                let Some(st) = stage_of(stage) else { continue };
                let payload = if st.state == StageState::Succeeded {
                    (
                        "execution.stage.succeeded",
                        P::StageSucceeded(ev::StageSucceeded {
                            context: Some(context(e)),
                            stage: Some(stage_context(st)),
                            // A build stage's are the ones it stored.
                            artifacts: artifacts.built.clone(),
                            start_time: st.start_time.map(ts),
                            end_time: st.end_time.map(ts),
                            ..Default::default()
                        }),
                    )
                } else {
                    (
                        "execution.stage.failed",
                        P::StageFailed(ev::StageFailed {
                            context: Some(context(e)),
                            stage: Some(stage_context(st)),
                            reason: st.state_reason.clone(),
                            start_time: st.start_time.map(ts),
                            end_time: st.end_time.map(ts),
                            ..Default::default()
                        }),
                    )
                };
                out.push(event(payload.0, name.clone(), payload.1));
            }
            Transition::ActionQueued { action } => {
                if let Some(a) = action_of(&action) {
                    let dispatch = Dispatch::V1 {
                        action_run: format!("{name}/actionRuns/{}", a.id),
                        attempt: a.attempt,
                        traceparent: String::new(),
                    };
                    out.push(Outgoing {
                        topic: dispatch_stream(&a.pool),
                        payload: dispatch.encode(),
                    });
                }
            }
            Transition::ActionEnded {
                action,
                attempt,
                last,
            } => {
                let Some(a) = action_of(&action) else {
                    continue;
                };
                let Some(st) = stage_of(a.stage_index) else {
                    continue;
                };
                let action_context = ev::ActionContext {
                    action_run: format!("{name}/actionRuns/{}", a.id),
                    action: a.name.clone(),
                    attempt,
                    worker: a.worker.clone(),
                    ..Default::default()
                };
                let payload = if a.state == ActionState::Succeeded {
                    (
                        "execution.action.succeeded",
                        P::ActionSucceeded(ev::ActionSucceeded {
                            context: Some(context(e)),
                            stage: Some(stage_context(st)),
                            action: Some(action_context),
                            start_time: a.start_time.map(ts),
                            end_time: a.end_time.map(ts),
                            ..Default::default()
                        }),
                    )
                } else {
                    (
                        "execution.action.failed",
                        P::ActionFailed(ev::ActionFailed {
                            context: Some(context(e)),
                            stage: Some(stage_context(st)),
                            action: Some(action_context),
                            exit_code: a.exit_code,
                            reason: a.failure_reason.clone(),
                            last_attempt: last,
                            start_time: a.start_time.map(ts),
                            end_time: a.end_time.map(ts),
                            ..Default::default()
                        }),
                    )
                };
                out.push(event(
                    payload.0,
                    format!("{name}/actionRuns/{}", a.id),
                    payload.1,
                ));
            }
            Transition::StageHeld { stage } => {
                let Some(st) = stage_of(stage) else { continue };
                out.push(event(
                    "execution.stage.held",
                    name.clone(),
                    P::StageHeld(ev::StageHeld {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        ..Default::default()
                    }),
                ));
            }
            Transition::WaveStarted { stage, wave } => {
                let Some(st) = stage_of(stage) else { continue };
                out.push(event(
                    "execution.wave.started",
                    name.clone(),
                    P::WaveStarted(ev::WaveStarted {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave,
                        name: st
                            .waves
                            .get(wave as usize)
                            .map(|w| w.name.clone())
                            .unwrap_or_default(),
                        targets: targets(s, stage, Some(wave)),
                        artifacts: deployed(st),
                    }),
                ));
            }
            Transition::BakeStarted { stage, wave } => {
                let Some(st) = stage_of(stage) else { continue };
                let secs = st.waves.get(wave as usize).map_or(0, |w| w.bake_secs);
                out.push(event(
                    "execution.wave.succeeded",
                    name.clone(),
                    P::WaveSucceeded(ev::WaveSucceeded {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave,
                        targets: targets(s, stage, Some(wave)),
                        last: wave as usize + 1 == st.waves.len(),
                        ..Default::default()
                    }),
                ));
                out.push(event(
                    "execution.bake.started",
                    name.clone(),
                    P::BakeStarted(ev::BakeStarted {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave,
                        duration: Some(prost_types::Duration {
                            seconds: secs as i64,
                            nanos: 0,
                        }),
                        ..Default::default()
                    }),
                ));
            }
            Transition::BakeCompleted { stage, wave } => {
                let Some(st) = stage_of(stage) else { continue };
                out.push(event(
                    "execution.bake.completed",
                    name.clone(),
                    P::BakeCompleted(ev::BakeCompleted {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave,
                        ..Default::default()
                    }),
                ));
            }
            Transition::RollbackStarted { stage, alarm } => {
                let Some(st) = stage_of(stage) else { continue };
                out.push(event(
                    "execution.rollback.started",
                    name.clone(),
                    P::RollbackStarted(ev::RollbackStarted {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave: st.current_wave,
                        alarm,
                        reason: st.state_reason.clone(),
                        targets: targets(s, stage, None),
                        failed_artifact: artifacts.package.clone(),
                        restored_artifact: artifacts.restored.clone(),
                        ..Default::default()
                    }),
                ));
            }
            Transition::RollbackCompleted { stage } => {
                let Some(st) = stage_of(stage) else { continue };
                out.push(event(
                    "execution.rollback.completed",
                    name.clone(),
                    P::RollbackCompleted(ev::RollbackCompleted {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        state: pb::RollbackState::Succeeded as i32,
                        targets: targets(s, stage, None),
                        end_time: st.end_time.map(ts),
                        restored_artifact: artifacts.restored.clone(),
                        ..Default::default()
                    }),
                ));
            }
            Transition::ApprovalRequested { stage } => {
                let Some(st) = stage_of(stage) else { continue };
                let policy = st.approval.clone();
                out.push(event(
                    "execution.approval.requested",
                    name.clone(),
                    P::ApprovalRequested(ev::ApprovalRequested {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        approvers: policy
                            .as_ref()
                            .map(|p| {
                                p.principals
                                    .iter()
                                    .cloned()
                                    .chain(p.groups.iter().map(|g| format!("group:{g}")))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        required_approvals: policy.map_or(0, |p| p.min_approvals as i32),
                        artifacts: deployed(st),
                    }),
                ));
            }
            Transition::ApprovalRecorded { stage } => {
                let Some(st) = stage_of(stage) else { continue };
                let Some(last) = st.approvals.last() else {
                    continue;
                };
                out.push(event(
                    "execution.approval.recorded",
                    name.clone(),
                    P::ApprovalRecorded(ev::ApprovalRecorded {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        approval: Some(crate::api::approval(last)),
                        gate_state: crate::api::approval_state(st) as i32,
                    }),
                ));
            }
            Transition::ExecutionFinished => {
                let outcome = crate::api::execution_state(e.state);
                out.push(event(
                    "execution.finished",
                    name.clone(),
                    P::ExecutionFinished(ev::ExecutionFinished {
                        context: Some(context(e)),
                        outcome: outcome as i32,
                        reason: e.state_reason.clone(),
                        failed_stage: s
                            .stages
                            .iter()
                            .find(|st| st.state == StageState::Failed)
                            .map(|st| st.name.clone())
                            .unwrap_or_default(),
                        commits: vec![commit(e)],
                        artifacts: artifacts.built.clone(),
                        create_time: Some(ts(e.create_time)),
                        start_time: Some(ts(e.create_time)),
                        end_time: e.end_time.map(ts),
                        ..Default::default()
                    }),
                ));
            }
        }
    }
    out
}
