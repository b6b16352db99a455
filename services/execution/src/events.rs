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
        tier: tier(&st.tier) as i32,
    }
}

/// A stored tier name ("production") as the contract's enum.
fn tier(name: &str) -> common::Tier {
    common::Tier::from_str_name(&format!("TIER_{}", name.to_ascii_uppercase()))
        .unwrap_or(common::Tier::Unspecified)
}

/// A stage's DPRA duration budget (DPRA §4.1): ten minutes for the build
/// stage, thirty for beta and gamma; none for the others.
fn budget(st: &StageRun) -> Option<prost_types::Duration> {
    let minutes = match st.tier.as_str() {
        "" if st.name == "build" => 10,
        "beta" | "gamma" => 30,
        _ => return None,
    };
    Some(prost_types::Duration {
        seconds: minutes * 60,
        nanos: 0,
    })
}

/// The contract's gate kind of an action kind; unspecified for actions
/// that are no gate.
fn gate_kind(kind: &str) -> pb::GateKind {
    match kind {
        "secrets-detection" => pb::GateKind::SecretsDetection,
        "sast" => pb::GateKind::Sast,
        "sca" => pb::GateKind::Sca,
        "policy-as-code" => pb::GateKind::Policy,
        "vulnerability-scan" => pb::GateKind::Vulnerability,
        "dast" => pb::GateKind::Dast,
        "code-quality" => pb::GateKind::CodeQuality,
        "evaluate" => pb::GateKind::ModelQuality,
        _ => pb::GateKind::Unspecified,
    }
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn finding_counts(f: &Findings) -> pb::FindingCounts {
    pb::FindingCounts {
        critical: count(f.critical),
        high: count(f.high),
        medium: count(f.medium),
        low: count(f.low),
        info: count(f.info),
    }
}

fn gate_thresholds(gate: &Gate) -> pb::FindingCounts {
    let limit = |l: &Option<u32>| l.map_or(-1, count);
    match gate {
        Gate::AnyFinding | Gate::ModelQuality { .. } => pb::FindingCounts::default(),
        Gate::Thresholds {
            critical,
            high,
            medium,
            low,
        } => pb::FindingCounts {
            critical: limit(critical),
            high: limit(high),
            medium: limit(medium),
            low: limit(low),
            info: -1,
        },
    }
}

/// How an action with a gate was judged: its findings against the gate's
/// thresholds; `None` for an action without a gate.
pub fn gate_result(a: &ActionRun) -> Option<pb::GateResult> {
    let gate = a.gate.as_ref()?;
    let kind = gate_kind(&a.kind);
    // A model-quality gate judges metrics; it has no findings.
    let counted = !matches!(gate, Gate::ModelQuality { .. });
    Some(pb::GateResult {
        kind: kind as i32,
        findings: counted.then(|| finding_counts(&a.findings)),
        thresholds: counted.then(|| gate_thresholds(gate)),
        passed: a.state == ActionState::Succeeded
            && crate::engine::gate_violation(gate, &a.findings, &a.metrics).is_none(),
        security_control: !matches!(
            kind,
            pb::GateKind::Unspecified | pb::GateKind::CodeQuality | pb::GateKind::ModelQuality
        ),
        report: None,
        model_quality: model_quality(gate, &a.metrics),
    })
}

/// How a model's metric compared, for a model-quality gate.
fn model_quality(gate: &Gate, m: &Metrics) -> Option<pb::ModelQualityResult> {
    let Gate::ModelQuality {
        metric,
        higher_is_better,
        max_regression,
        worst_allowed,
    } = gate
    else {
        return None;
    };
    Some(pb::ModelQualityResult {
        metric: metric.clone(),
        value: m.values.get(metric).copied(),
        baseline: m.baseline.as_ref().map(|b| b.value),
        baseline_execution: m
            .baseline
            .as_ref()
            .map(|b| b.execution_id.clone())
            .unwrap_or_default(),
        higher_is_better: *higher_is_better,
        max_regression: *max_regression,
        worst_allowed: *worst_allowed,
    })
}

/// What the execution did in production: the first production stage that
/// started deploying.
fn production(s: &Snapshot) -> Option<ev::ProductionDeployment> {
    let st = s
        .stages
        .iter()
        .find(|st| st.tier == "production" && st.start_time.is_some())?;
    let wave_ends: Vec<_> = s
        .actions
        .iter()
        .filter(|a| a.stage_index == st.index && !a.rollback && a.wave >= 0)
        .collect();
    let waves_total = st.waves.len().max(1) as i32;
    let waves_completed = if st.state == StageState::Succeeded {
        waves_total
    } else {
        st.current_wave.clamp(0, waves_total)
    };
    // The first wave ended when its bake did: the next wave's first start,
    // or the stage's end when it was the only wave.
    let first_wave_end_time = if waves_completed >= 1 {
        wave_ends
            .iter()
            .filter(|a| a.wave == 1)
            .filter_map(|a| a.queue_time)
            .min()
            .or(st.end_time.filter(|_| waves_total == 1))
    } else {
        None
    };
    Some(ev::ProductionDeployment {
        environment: st.environment.clone(),
        targets: targets(s, st.index, None),
        start_time: st.start_time.map(ts),
        first_wave_end_time: first_wave_end_time.map(ts),
        end_time: st
            .end_time
            .filter(|_| st.state == StageState::Succeeded)
            .map(ts),
        waves_completed,
        waves_total,
        rolled_back: matches!(st.state, StageState::RolledBack | StageState::RollingBack),
    })
}

fn approval_rejected(st: &StageRun) -> bool {
    st.state == StageState::Failed && st.approvals.last().is_some_and(|a| !a.approved)
}

/// The commits an execution carries, oldest first, the head last.
pub fn commits(e: &Execution) -> Vec<pb::Commit> {
    e.commits
        .iter()
        .map(|c| pb::Commit {
            sha: c.sha.clone(),
            branch: e.branch.clone(),
            author: c.author.clone(),
            message: c.message.clone(),
            commit_time: c.commit_time.map(ts),
            land_time: Some(ts(c.land_time)),
        })
        .collect()
}

fn event(kind: &str, subject: String, payload: ev::event::Payload) -> Outgoing {
    let event = conveyor_platform::events::envelope("conveyor.execution", kind, subject, payload);
    Outgoing {
        topic: EVENTS_STREAM.to_owned(),
        payload: event.encode_to_vec(),
    }
}

/// An alarm's change of state (`alarm.state.changed`); `previous` is None
/// for a new alarm.
pub fn alarm_changed(previous: Option<&str>, alarm: &crate::store::AlarmRecord) -> Outgoing {
    let alarm = crate::api::alarms::to_pb(alarm.clone());
    event(
        "alarm.state.changed",
        alarm.name.clone(),
        ev::event::Payload::AlarmStateChanged(ev::AlarmStateChanged {
            alarm: alarm.name,
            scope: alarm.scope,
            previous_state: previous
                .map_or(pb::AlarmState::Unspecified, crate::api::alarms::alarm_state)
                as i32,
            state: alarm.state,
            reason: alarm.reason,
            alarm_source: alarm.source,
        }),
    )
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
                    mode: match e.mode {
                        Mode::Superseded => pb::ExecutionMode::Superseded,
                        Mode::Queued => pb::ExecutionMode::Queued,
                        Mode::Parallel => pb::ExecutionMode::Parallel,
                    } as i32,
                    commit: commits(e).pop(),
                    commits: commits(e),
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
                            targets: targets(s, stage, None),
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
                            budget: budget(st),
                            targets: targets(s, stage, None),
                        }),
                    )
                } else {
                    (
                        "execution.stage.failed",
                        P::StageFailed(ev::StageFailed {
                            context: Some(context(e)),
                            stage: Some(stage_context(st)),
                            state: crate::api::stage_state(st.state) as i32,
                            reason: st.state_reason.clone(),
                            failed_action_run: s
                                .actions
                                .iter()
                                .find(|a| a.stage_index == stage && a.state == ActionState::Failed)
                                .map(|a| format!("{name}/actionRuns/{}", a.id))
                                .unwrap_or_default(),
                            approval_rejected: approval_rejected(st),
                            start_time: st.start_time.map(ts),
                            end_time: st.end_time.map(ts),
                            budget: budget(st),
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
                        traceparent: conveyor_platform::telemetry::traceparent(),
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
                    // Events number waves from 1; 0: not a per-target run.
                    wave: if a.target.is_some() { a.wave + 1 } else { 0 },
                    target: a.target.as_ref().map(|(account, region)| common::Target {
                        account: account.clone(),
                        region: region.clone(),
                    }),
                    worker: a.worker.clone(),
                };
                if let Some(result) = gate_result(a) {
                    out.push(event(
                        "execution.gate.evaluated",
                        format!("{name}/actionRuns/{}", a.id),
                        P::GateEvaluated(ev::GateEvaluated {
                            context: Some(context(e)),
                            stage: Some(stage_context(st)),
                            action: Some(action_context.clone()),
                            kind: result.kind,
                            findings: result.findings,
                            thresholds: result.thresholds,
                            passed: result.passed,
                            security_control: result.security_control,
                            report: None,
                        }),
                    ));
                }
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
                        wave: wave + 1,
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
                    "execution.bake.started",
                    name.clone(),
                    P::BakeStarted(ev::BakeStarted {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave: wave + 1,
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
                    "execution.wave.succeeded",
                    name.clone(),
                    P::WaveSucceeded(ev::WaveSucceeded {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave: wave + 1,
                        targets: targets(s, stage, Some(wave)),
                        last: wave as usize + 1 == st.waves.len(),
                        start_time: None,
                        end_time: Some(ts(chrono::Utc::now())),
                    }),
                ));
                out.push(event(
                    "execution.bake.completed",
                    name.clone(),
                    P::BakeCompleted(ev::BakeCompleted {
                        context: Some(context(e)),
                        stage: Some(stage_context(st)),
                        wave: wave + 1,
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
                        wave: st.current_wave + 1,
                        alarm,
                        // The engine starts the rollback on the pass that
                        // sees the alarm.
                        alarm_time: Some(ts(e.update_time)),
                        restored_execution: s
                            .last_good
                            .as_ref()
                            .map(|g| {
                                format!("pipelines/{}/executions/{}", e.pipeline, g.execution_id)
                            })
                            .unwrap_or_default(),
                        reason: st.state_reason.clone(),
                        targets: targets(s, stage, None),
                        failed_artifact: artifacts.package.clone(),
                        restored_artifact: artifacts.restored.clone(),
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
                            .find(|st| {
                                matches!(st.state, StageState::Failed | StageState::RolledBack)
                            })
                            .map(|st| st.name.clone())
                            .unwrap_or_default(),
                        approval_rejected: s.stages.iter().any(approval_rejected),
                        commits: commits(e),
                        artifacts: artifacts.built.clone(),
                        create_time: Some(ts(e.create_time)),
                        start_time: Some(ts(e.create_time)),
                        end_time: e.end_time.map(ts),
                        production: production(s),
                        superseded_by: String::new(),
                    }),
                ));
            }
        }
    }
    out
}
