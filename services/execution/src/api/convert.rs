//! Conversions between the engine's model and the generated protobuf types.

use conveyor_api::common::v1 as common;
use conveyor_api::execution::v1 as pb;
use prost_types::{Duration, Timestamp};

use crate::engine::Outcome;
use crate::error::Error;
use crate::model::*;

pub use conveyor_api::time::{from_timestamp, timestamp};

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<Timestamp> {
    t.map(timestamp)
}

pub fn execution_name(e: &Execution) -> String {
    format!("pipelines/{}/executions/{}", e.pipeline, e.id)
}

pub fn action_name(e: &Execution, a: &ActionRun) -> String {
    format!("{}/actionRuns/{}", execution_name(e), a.id)
}

/// (`{pipeline}`, `{execution}`) from `pipelines/{pipeline}/executions/{execution}`.
pub fn parse_execution_name(name: &str) -> Result<(&str, &str), Error> {
    let bad = || {
        Error::invalid(
            "name",
            format!("{name:?} is not \"pipelines/{{pipeline}}/executions/{{execution}}\""),
        )
    };
    let rest = name.strip_prefix("pipelines/").ok_or_else(bad)?;
    let (pipeline, id) = rest.split_once("/executions/").ok_or_else(bad)?;
    if pipeline.is_empty() || id.is_empty() || id.contains('/') {
        return Err(bad());
    }
    Ok((pipeline, id))
}

/// The action run id from its full name (or the id itself).
pub fn parse_action_name(name: &str) -> Result<&str, Error> {
    let id = name.rsplit('/').next().unwrap_or(name);
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(Error::invalid(
            "action_run",
            format!("{name:?} is not an action run name"),
        ))
    }
}

/// `{pipeline}` from `pipelines/{pipeline}` (or `pipelines/-`).
pub fn parse_parent(parent: &str) -> Result<&str, Error> {
    parent
        .strip_prefix("pipelines/")
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .ok_or_else(|| {
            Error::invalid(
                "parent",
                format!("{parent:?} is not \"pipelines/{{pipeline}}\""),
            )
        })
}

/// The state a listing filter names; `None` for UNSPECIFIED or unknown.
pub fn model_state(value: i32) -> Option<ExecutionState> {
    let wanted = pb::ExecutionState::try_from(value).ok()?;
    [
        ExecutionState::Queued,
        ExecutionState::Held,
        ExecutionState::Running,
        ExecutionState::WaitingApproval,
        ExecutionState::Superseded,
        ExecutionState::RollingBack,
        ExecutionState::RolledBack,
        ExecutionState::Succeeded,
        ExecutionState::Failed,
        ExecutionState::Cancelled,
    ]
    .into_iter()
    .find(|s| execution_state(*s) == wanted)
}

pub fn execution_state(s: ExecutionState) -> pb::ExecutionState {
    match s {
        ExecutionState::Queued => pb::ExecutionState::Queued,
        ExecutionState::Held => pb::ExecutionState::Held,
        ExecutionState::Running => pb::ExecutionState::Running,
        ExecutionState::WaitingApproval => pb::ExecutionState::WaitingApproval,
        ExecutionState::Superseded => pb::ExecutionState::Superseded,
        ExecutionState::RollingBack => pb::ExecutionState::RollingBack,
        ExecutionState::RolledBack => pb::ExecutionState::RolledBack,
        ExecutionState::Succeeded => pb::ExecutionState::Succeeded,
        ExecutionState::Failed => pb::ExecutionState::Failed,
        ExecutionState::Cancelled => pb::ExecutionState::Cancelled,
    }
}

pub fn stage_state(s: StageState) -> pb::StageState {
    match s {
        StageState::Pending => pb::StageState::Pending,
        StageState::RollingBack => pb::StageState::RollingBack,
        StageState::RolledBack => pb::StageState::RolledBack,
        StageState::Held => pb::StageState::Held,
        StageState::WaitingApproval => pb::StageState::WaitingApproval,
        StageState::Running => pb::StageState::Running,
        StageState::Succeeded => pb::StageState::Succeeded,
        StageState::Failed => pb::StageState::Failed,
        StageState::Cancelled => pb::StageState::Cancelled,
        StageState::Skipped => pb::StageState::Skipped,
    }
}

fn action_state(s: ActionState) -> pb::ActionState {
    match s {
        ActionState::Pending => pb::ActionState::Pending,
        ActionState::Queued => pb::ActionState::Queued,
        ActionState::Running => pb::ActionState::Running,
        ActionState::Succeeded => pb::ActionState::Succeeded,
        ActionState::Failed => pb::ActionState::Failed,
        ActionState::TimedOut => pb::ActionState::TimedOut,
        ActionState::Cancelled => pb::ActionState::Cancelled,
        ActionState::Skipped => pb::ActionState::Skipped,
    }
}

fn pipeline_type(t: &str) -> common::PipelineType {
    match t {
        "application" => common::PipelineType::Application,
        "compute-image" => common::PipelineType::ComputeImage,
        "account-fleet" => common::PipelineType::AccountFleet,
        "machine-learning" => common::PipelineType::MachineLearning,
        "dynamic-configuration" => common::PipelineType::DynamicConfiguration,
        _ => common::PipelineType::Unspecified,
    }
}

pub fn action(e: &Execution, stage: &str, a: &ActionRun) -> pb::ActionRun {
    pb::ActionRun {
        name: action_name(e, a),
        stage: stage.to_owned(),
        action: a.name.clone(),
        state: action_state(a.state) as i32,
        rollback: a.rollback,
        wave: a.wave,
        target: a.target.as_ref().map(|(account, region)| common::Target {
            account: account.clone(),
            region: region.clone(),
        }),
        attempt: a.attempt,
        max_attempts: a.retries + 1,
        pool: a.pool.clone(),
        worker: a.worker.clone(),
        exit_code: a.exit_code,
        failure_reason: a.failure_reason.clone(),
        queue_time: opt_time(a.queue_time),
        start_time: opt_time(a.start_time),
        end_time: opt_time(a.end_time),
        gate: crate::events::gate_result(a),
        metrics: a.metrics.values.clone().into_iter().collect(),
        ..Default::default()
    }
}

/// The whole execution; BASIC leaves out the stages.
pub fn execution(s: &Snapshot, full: bool) -> pb::Execution {
    let e = &s.execution;
    let commits = crate::events::commits(e);
    let commit = commits.last().cloned().unwrap_or_default();
    let stages = if full {
        s.stages
            .iter()
            .map(|st| pb::StageRun {
                stage: st.name.clone(),
                environment: st.environment.clone(),
                state: stage_state(st.state) as i32,
                state_reason: st.state_reason.clone(),
                actions: s
                    .actions
                    .iter()
                    .filter(|a| a.stage_index == st.index)
                    .map(|a| action(e, &st.name, a))
                    .collect(),
                start_time: opt_time(st.start_time),
                end_time: opt_time(st.end_time),
                approval: approval_gate(st),
                waves: waves(s, st),
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    let failed_stage = s
        .stages
        .iter()
        .find(|st| st.state == StageState::Failed)
        .map(|st| st.name.clone())
        .unwrap_or_default();
    pb::Execution {
        name: execution_name(e),
        project: e.project.clone(),
        pipeline_type: pipeline_type(&e.pipeline_type) as i32,
        revision: format!("pipelines/{}/revisions/{}", e.pipeline, e.revision),
        spec_sha256: e.spec_sha256.clone(),
        state: execution_state(e.state) as i32,
        state_reason: e.state_reason.clone(),
        build_only: e.build_only,
        commit: Some(commit.clone()),
        commits,
        stages,
        failed_stage,
        etag: e.version.to_string(),
        create_time: Some(timestamp(e.create_time)),
        start_time: Some(timestamp(e.create_time)),
        end_time: opt_time(e.end_time),
        update_time: Some(timestamp(e.update_time)),
        parameters: e.parameters.clone().into_iter().collect(),
        trigger: Some(trigger(e)),
        upstream_artifacts: e.upstream.iter().map(upstream_ref).collect(),
        rollback: rollback(s),
        ..Default::default()
    }
}

/// The automatic rollback, from the stage that ran rollback runs.
fn rollback(s: &Snapshot) -> Option<pb::Rollback> {
    let mut runs: Vec<&ActionRun> = s.actions.iter().filter(|a| a.rollback).collect();
    let first = runs.first()?;
    let st = s.stages.iter().find(|st| st.index == first.stage_index)?;
    let state = match st.state {
        StageState::RollingBack => pb::RollbackState::InProgress,
        StageState::RolledBack => pb::RollbackState::Succeeded,
        _ => pb::RollbackState::Failed,
    };
    let restored_execution = first
        .env
        .get(ROLLBACK_EXECUTION_ENV)
        .map(|id| format!("pipelines/{}/executions/{id}", s.execution.pipeline))
        .unwrap_or_default();
    // Stage reasons quote the alarm as `alarm "NAME" fired`; a failed
    // action names none.
    let alarm = st
        .state_reason
        .strip_prefix("alarm \"")
        .and_then(|rest| rest.split_once('"'))
        .map(|(name, _)| format!("alarms/{name}"))
        .unwrap_or_default();
    // Newest wave first, the order they were restored in.
    runs.sort_by_key(|a| std::cmp::Reverse(a.wave));
    let mut targets: Vec<common::Target> = Vec::new();
    for (account, region) in runs.iter().filter_map(|a| a.target.as_ref()) {
        if !targets
            .iter()
            .any(|t| &t.account == account && &t.region == region)
        {
            targets.push(common::Target {
                account: account.clone(),
                region: region.clone(),
            });
        }
    }
    let start_time = runs.iter().filter_map(|a| a.queue_time).min();
    let end_time = (state != pb::RollbackState::InProgress)
        .then(|| runs.iter().filter_map(|a| a.end_time).max())
        .flatten();
    Some(pb::Rollback {
        state: state as i32,
        alarm,
        reason: st.state_reason.clone(),
        stage: st.name.clone(),
        wave: st.current_wave + 1,
        restored_artifact: None,
        restored_execution,
        targets,
        start_time: opt_time(start_time),
        end_time: opt_time(end_time),
    })
}

/// What started the execution: an upstream publish, a redeploy, else the
/// caller.
fn trigger(e: &Execution) -> pb::Trigger {
    let kind = if !e.triggered_by.is_empty() {
        pb::TriggerKind::UpstreamArtifact
    } else if !e.redeploy_of.is_empty() {
        pb::TriggerKind::Redeploy
    } else {
        pb::TriggerKind::Api
    };
    let upstream_artifact = (!e.triggered_by.is_empty())
        .then(|| {
            e.upstream
                .iter()
                .find(|p| {
                    e.triggered_by
                        == format!("pipelines/{}/executions/{}", p.pipeline, p.execution_id)
                })
                .map(upstream_ref)
        })
        .flatten();
    pb::Trigger {
        kind: kind as i32,
        principal: Some(common::Principal {
            id: e.author.clone(),
            groups: Vec::new(),
        }),
        upstream_execution: e.triggered_by.clone(),
        upstream_artifact,
        redeployed_execution: if e.redeploy_of.is_empty() {
            String::new()
        } else {
            format!("pipelines/{}/executions/{}", e.pipeline, e.redeploy_of)
        },
    }
}

fn upstream_ref(p: &UpstreamPin) -> common::ArtifactRef {
    common::ArtifactRef {
        digest: p.digest.clone(),
        name: p.name.clone(),
        size_bytes: p.size_bytes,
        commit_sha: p.commit_sha.clone(),
        execution: format!("pipelines/{}/executions/{}", p.pipeline, p.execution_id),
    }
}

/// An execution's provenance, its upstream executions' nested in it.
pub fn provenance(node: &crate::domain::ProvenanceNode) -> pb::Provenance {
    let mut execution = execution(&node.snapshot, true);
    attach_artifacts(&mut execution, &node.snapshot, &node.artifacts);
    pb::Provenance {
        name: format!("{}/provenance", execution.name),
        execution: Some(execution),
        upstream: node.upstream.iter().map(provenance).collect(),
    }
}

/// Lists the execution's artifacts on it and on the action runs that
/// stored them.
pub fn attach_artifacts(out: &mut pb::Execution, s: &Snapshot, stored: &[Artifact]) {
    out.artifacts = stored.iter().map(artifact_ref).collect();
    for run in out.stages.iter_mut().flat_map(|st| st.actions.iter_mut()) {
        let Some(a) = s
            .actions
            .iter()
            .find(|a| action_name(&s.execution, a) == run.name)
        else {
            continue;
        };
        run.artifacts = stored
            .iter()
            .filter(|x| x.action_id == a.id)
            .map(artifact_ref)
            .collect();
    }
}

pub fn execution_basic(e: &Execution) -> pb::Execution {
    execution(
        &Snapshot {
            execution: e.clone(),
            stages: Vec::new(),
            actions: Vec::new(),
            transitions: Vec::new(),
            occupied: Default::default(),
            blockers: Vec::new(),
            firing: Default::default(),
            last_good: None,
            data_points: None,
        },
        false,
    )
}

fn artifact_kind(k: ArtifactKind) -> pb::ArtifactKind {
    match k {
        ArtifactKind::Package => pb::ArtifactKind::Package,
        ArtifactKind::Sbom => pb::ArtifactKind::Sbom,
        ArtifactKind::Sarif => pb::ArtifactKind::Sarif,
        ArtifactKind::TestReport => pb::ArtifactKind::TestReport,
    }
}

pub use crate::events::artifact_ref;

/// An artifact with its signature; `sbom` is the digest of the SBOM stored
/// with it (packages only).
pub fn artifact(a: &Artifact, sbom: &str) -> pb::Artifact {
    pb::Artifact {
        r#ref: Some(artifact_ref(a)),
        kind: artifact_kind(a.kind) as i32,
        media_type: a.media_type.clone(),
        signature: Some(pb::Signature {
            algorithm: a.signature.algorithm.clone(),
            key_id: a.signature.key_id.clone(),
            value: a.signature.value.clone(),
        }),
        subject_digest: a.subject_digest.clone(),
        sbom_digest: if a.kind == ArtifactKind::Package {
            sbom.to_owned()
        } else {
            String::new()
        },
        annotations: a.annotations.clone().into_iter().collect(),
        create_time: Some(timestamp(a.create_time)),
    }
}

/// Artifacts with each package linked to the SBOM stored beside it.
pub fn artifacts(list: &[Artifact]) -> Vec<pb::Artifact> {
    let sbom = list
        .iter()
        .find(|a| a.kind == ArtifactKind::Sbom)
        .map_or("", |a| a.digest.as_str());
    list.iter().map(|a| artifact(a, sbom)).collect()
}

/// What a worker needs to run an attempt.
pub fn task(
    a: &ActionRun,
    e: &Execution,
    stage: &StageRun,
    lease: std::time::Duration,
    inputs: &[Artifact],
) -> pb::Task {
    pb::Task {
        traceparent: e.traceparent.clone(),
        action_run: action_name(e, a),
        attempt: a.attempt,
        execution: execution_name(e),
        stage: stage.name.clone(),
        action: a.name.clone(),
        environment: stage.environment.clone(),
        command: a.command.clone(),
        wave: a.wave,
        target: a.target.as_ref().map(|(account, region)| common::Target {
            account: account.clone(),
            region: region.clone(),
        }),
        env: a.env.clone().into_iter().collect(),
        source: Some(pb::Source {
            repository: e.repository.clone(),
            commit_sha: e.commit_sha.clone(),
            branch: e.branch.clone(),
        }),
        timeout: Some(Duration {
            seconds: a.timeout_secs,
            nanos: 0,
        }),
        lease_expire_time: opt_time(a.lease_expire_time),
        heartbeat_interval: Some(Duration {
            seconds: (lease.as_secs() / 3).max(1) as i64,
            nanos: 0,
        }),
        inputs: artifacts(inputs),
        outputs: a
            .sarif
            .iter()
            .map(|path| (path, ArtifactKind::Sarif))
            .chain(a.outputs.iter().map(|o| (&o.path, o.kind)))
            .map(|(path, kind)| pb::TaskOutput {
                name: path.clone(),
                path: path.clone(),
                kind: artifact_kind(kind) as i32,
                required: true,
            })
            .collect(),
        metrics_path: a.metrics.output.clone().unwrap_or_default(),
        schema_checks: a
            .validate
            .iter()
            .map(|c| pb::SchemaCheck {
                schema: c.schema.clone(),
                files: c.files.clone(),
            })
            .collect(),
        ..Default::default()
    }
}

pub fn outcome(value: i32) -> Result<Outcome, Error> {
    match pb::TaskOutcome::try_from(value) {
        Ok(pb::TaskOutcome::Succeeded) => Ok(Outcome::Succeeded),
        Ok(pb::TaskOutcome::Failed) => Ok(Outcome::Failed),
        Ok(pb::TaskOutcome::TimedOut) => Ok(Outcome::TimedOut),
        Ok(pb::TaskOutcome::Cancelled) => Ok(Outcome::Cancelled),
        Ok(pb::TaskOutcome::Released) => Ok(Outcome::Released),
        Ok(pb::TaskOutcome::Unspecified) | Err(_) => Err(Error::invalid(
            "outcome",
            "required: SUCCEEDED, FAILED, TIMED_OUT, CANCELLED or RELEASED",
        )),
    }
}

pub fn approval(a: &ApprovalRecord) -> pb::Approval {
    pb::Approval {
        principal: Some(common::Principal {
            id: a.principal.clone(),
            groups: a.groups.clone(),
        }),
        decision: if a.approved {
            pb::ApprovalDecision::Approve
        } else {
            pb::ApprovalDecision::Reject
        } as i32,
        decide_time: Some(timestamp(a.time)),
        comment: a.comment.clone(),
    }
}

pub fn approval_state(st: &StageRun) -> pb::ApprovalState {
    match st.state {
        StageState::WaitingApproval | StageState::Pending | StageState::Held => {
            pb::ApprovalState::Pending
        }
        StageState::Failed if st.approvals.iter().any(|a| !a.approved) => {
            pb::ApprovalState::Rejected
        }
        StageState::Cancelled | StageState::Skipped if st.approvals.is_empty() => {
            pb::ApprovalState::Pending
        }
        _ => pb::ApprovalState::Approved,
    }
}

fn approval_gate(st: &StageRun) -> Option<pb::ApprovalGate> {
    let policy = st.approval.as_ref()?;
    Some(pb::ApprovalGate {
        state: approval_state(st) as i32,
        approvers: policy
            .principals
            .iter()
            .cloned()
            .chain(policy.groups.iter().map(|g| format!("group:{g}")))
            .collect(),
        required_approvals: policy.min_approvals as i32,
        author_may_approve: policy.allow_author,
        request_time: None,
        approvals: st.approvals.iter().map(approval).collect(),
    })
}

pub fn log_chunk(execution_name: &str, c: crate::store::Chunk) -> pb::LogChunk {
    pb::LogChunk {
        action_run: format!("{execution_name}/actionRuns/{}", c.action_id),
        attempt: c.attempt,
        stream: match c.stream.as_str() {
            "stderr" => pb::LogStream::Stderr,
            "system" => pb::LogStream::System,
            _ => pb::LogStream::Stdout,
        } as i32,
        offset: c.offset,
        data: c.data,
        time: Some(timestamp(c.time)),
        truncated: c.truncated,
    }
}

/// (`{pipeline}`, `{blocker}`) from `pipelines/{pipeline}/blockers/{blocker}`.
pub fn parse_blocker_name(name: &str) -> Result<(&str, &str), Error> {
    let bad = || {
        Error::invalid(
            "name",
            format!("{name:?} is not \"pipelines/{{pipeline}}/blockers/{{blocker}}\""),
        )
    };
    let rest = name.strip_prefix("pipelines/").ok_or_else(bad)?;
    let (pipeline, id) = rest.split_once("/blockers/").ok_or_else(bad)?;
    if pipeline.is_empty() || id.is_empty() {
        return Err(bad());
    }
    Ok((pipeline, id))
}

fn principal(id: &str) -> Option<common::Principal> {
    Some(common::Principal {
        id: id.to_owned(),
        groups: Vec::new(),
    })
}

pub fn blocker(b: &crate::store::BlockerRecord) -> pb::Blocker {
    pb::Blocker {
        name: format!("pipelines/{}/blockers/{}", b.pipeline, b.id),
        stage: b.stage.clone(),
        reason: b.reason.clone(),
        active: b.lift_time.is_none(),
        created_by: principal(&b.created_by),
        create_time: Some(timestamp(b.create_time)),
        lifted_by: b.lifted_by.as_deref().and_then(principal),
        lift_reason: b.lift_reason.clone(),
        lift_time: opt_time(b.lift_time),
    }
}

/// A rollout stage's waves: names, targets (from the runs), bake, and a
/// state read off the stage's progress.
fn waves(s: &Snapshot, st: &StageRun) -> Vec<pb::WaveRun> {
    use pb::WaveState as W;
    st.waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let i = i as i32;
            let mut targets: Vec<(String, String)> = s
                .actions
                .iter()
                .filter(|a| a.stage_index == st.index && a.wave == i && !a.rollback)
                .filter_map(|a| a.target.clone())
                .collect();
            targets.dedup();
            let state = match st.state {
                StageState::Succeeded => W::Succeeded,
                StageState::RolledBack if i <= st.current_wave => W::RolledBack,
                StageState::RollingBack if i <= st.current_wave => W::RollingBack,
                StageState::Failed if i == st.current_wave => W::Failed,
                StageState::Cancelled if i == st.current_wave => W::Cancelled,
                StageState::Running if i == st.current_wave && st.bake_until.is_some() => W::Baking,
                StageState::Running if i == st.current_wave => W::Deploying,
                _ if i < st.current_wave => W::Succeeded,
                StageState::Pending
                | StageState::Held
                | StageState::WaitingApproval
                | StageState::Running => W::Pending,
                _ => W::Skipped,
            };
            pb::WaveRun {
                number: i + 1,
                name: w.name.clone(),
                state: state as i32,
                targets: targets
                    .into_iter()
                    .map(|(account, region)| conveyor_api::common::v1::Target { account, region })
                    .collect(),
                bake: Some(pb::Bake {
                    duration: Some(prost_types::Duration {
                        seconds: w.bake_secs.min(i64::MAX as u64) as i64,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}
