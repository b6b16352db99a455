//! Conversions between table rows and the engine's model.

use sea_orm::ActiveValue::Set;

use super::StoreError;
use super::entities::{action_run, execution, stage_run};
use crate::model::*;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub fn execution_from(m: execution::Model) -> Result<Execution, StoreError> {
    let mode = Mode::parse(&m.mode)
        .ok_or_else(|| corrupt(format!("execution {}: mode {:?}", m.id, m.mode)))?;
    let parameters = serde_json::from_str(&m.parameters)
        .map_err(|e| corrupt(format!("execution {}: parameters: {e}", m.id)))?;
    let mut commits: Vec<CommitInfo> = serde_json::from_str(&m.commits)
        .map_err(|e| corrupt(format!("execution {}: commits: {e}", m.id)))?;
    if commits.is_empty() {
        // Stored before commits were: the head, landed when the push came.
        commits.push(CommitInfo {
            sha: m.commit_sha.clone(),
            author: m.author.clone(),
            message: m.message.clone(),
            commit_time: m.commit_time,
            land_time: m.create_time,
        });
    }
    let upstream = serde_json::from_str(&m.upstream)
        .map_err(|e| corrupt(format!("execution {}: upstream: {e}", m.id)))?;
    Ok(Execution {
        state: ExecutionState::parse(&m.state)
            .ok_or_else(|| corrupt(format!("execution {}: state {:?}", m.id, m.state)))?,
        id: m.id,
        pipeline: m.pipeline,
        project: m.project,
        pipeline_type: m.pipeline_type,
        revision: m.revision,
        spec_sha256: m.spec_sha256,
        repository: m.repository,
        state_reason: m.state_reason,
        build_only: m.build_only,
        mode,
        commit_sha: m.commit_sha,
        branch: m.branch,
        author: m.author,
        message: m.message,
        commit_time: m.commit_time,
        create_time: m.create_time,
        end_time: m.end_time,
        update_time: m.update_time,
        version: m.version,
        parameters,
        commits,
        traceparent: m.traceparent,
        upstream,
        triggered_by: m.triggered_by,
        redeploy_of: m.redeploy_of,
    })
}

pub fn execution_active(e: &Execution, request_id: Option<String>) -> execution::ActiveModel {
    execution::ActiveModel {
        id: Set(e.id.clone()),
        pipeline: Set(e.pipeline.clone()),
        project: Set(e.project.clone()),
        pipeline_type: Set(e.pipeline_type.clone()),
        revision: Set(e.revision),
        spec_sha256: Set(e.spec_sha256.clone()),
        repository: Set(e.repository.clone()),
        state: Set(e.state.as_str().to_owned()),
        state_reason: Set(e.state_reason.clone()),
        build_only: Set(e.build_only),
        mode: Set(e.mode.as_str().to_owned()),
        commit_sha: Set(e.commit_sha.clone()),
        branch: Set(e.branch.clone()),
        author: Set(e.author.clone()),
        message: Set(e.message.clone()),
        commit_time: Set(e.commit_time),
        request_id: Set(request_id),
        create_time: Set(e.create_time),
        end_time: Set(e.end_time),
        update_time: Set(e.update_time),
        version: Set(e.version),
        parameters: Set(serde_json::to_string(&e.parameters).unwrap_or_else(|_| "{}".to_owned())),
        commits: Set(json(&e.commits)),
        traceparent: Set(e.traceparent.clone()),
        upstream: Set(json(&e.upstream)),
        triggered_by: Set(e.triggered_by.clone()),
        redeploy_of: Set(e.redeploy_of.clone()),
    }
}

pub fn stage_from(m: stage_run::Model) -> Result<StageRun, StoreError> {
    let approval = if m.approval.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str(&m.approval)
                .map_err(|e| corrupt(format!("stage {}: approval: {e}", m.name)))?,
        )
    };
    let approvals = serde_json::from_str(&m.approvals)
        .map_err(|e| corrupt(format!("stage {}: approvals: {e}", m.name)))?;
    let guards = if m.guards.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str(&m.guards)
                .map_err(|e| corrupt(format!("stage {}: guards: {e}", m.name)))?,
        )
    };
    let waves = serde_json::from_str(&m.waves)
        .map_err(|e| corrupt(format!("stage {}: waves: {e}", m.name)))?;
    Ok(StageRun {
        state: StageState::parse(&m.state)
            .ok_or_else(|| corrupt(format!("stage {}: state {:?}", m.name, m.state)))?,
        execution_id: m.execution_id,
        index: m.stage_index,
        name: m.name,
        environment: m.environment,
        tier: m.tier,
        state_reason: m.state_reason,
        start_time: m.start_time,
        end_time: m.end_time,
        approval,
        approvals,
        guards,
        waves,
        current_wave: m.current_wave,
        bake_until: m.bake_until,
        approval_deadline: m.approval_deadline,
        dirty: false,
    })
}

pub fn stage_active(s: &StageRun) -> stage_run::ActiveModel {
    stage_run::ActiveModel {
        execution_id: Set(s.execution_id.clone()),
        stage_index: Set(s.index),
        name: Set(s.name.clone()),
        environment: Set(s.environment.clone()),
        state: Set(s.state.as_str().to_owned()),
        state_reason: Set(s.state_reason.clone()),
        start_time: Set(s.start_time),
        end_time: Set(s.end_time),
        approval: Set(s.approval.as_ref().map(json).unwrap_or_default()),
        approvals: Set(json(&s.approvals)),
        guards: Set(s.guards.as_ref().map(json).unwrap_or_default()),
        waves: Set(json(&s.waves)),
        current_wave: Set(s.current_wave),
        bake_until: Set(s.bake_until),
        approval_deadline: Set(s.approval_deadline),
        tier: Set(s.tier.clone()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub fn action_from(m: action_run::Model) -> Result<ActionRun, StoreError> {
    let sarif = serde_json::from_str(&m.sarif)
        .map_err(|e| corrupt(format!("action {}: sarif: {e}", m.id)))?;
    let validate = serde_json::from_str(&m.validate)
        .map_err(|e| corrupt(format!("action {}: validate: {e}", m.id)))?;
    let metrics = serde_json::from_str(&m.metrics)
        .map_err(|e| corrupt(format!("action {}: metrics: {e}", m.id)))?;
    let gate = if m.gate.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str(&m.gate)
                .map_err(|e| corrupt(format!("action {}: gate: {e}", m.id)))?,
        )
    };
    let findings = serde_json::from_str(&m.findings)
        .map_err(|e| corrupt(format!("action {}: findings: {e}", m.id)))?;
    let outputs = serde_json::from_str(&m.outputs)
        .map_err(|e| corrupt(format!("action {}: outputs: {e}", m.id)))?;
    Ok(ActionRun {
        state: ActionState::parse(&m.state)
            .ok_or_else(|| corrupt(format!("action {}: state {:?}", m.id, m.state)))?,
        needs: serde_json::from_str(&m.needs)
            .map_err(|e| corrupt(format!("action {}: needs: {e}", m.id)))?,
        env: serde_json::from_str(&m.env)
            .map_err(|e| corrupt(format!("action {}: env: {e}", m.id)))?,
        id: m.id,
        execution_id: m.execution_id,
        stage_index: m.stage_index,
        name: m.name,
        kind: m.kind,
        command: m.command,
        pool: m.pool,
        timeout_secs: m.timeout_secs,
        attempt: m.attempt,
        failures: m.failures,
        lost_leases: m.lost_leases,
        retries: m.retries,
        worker: m.worker,
        lease_expire_time: m.lease_expire_time,
        exit_code: m.exit_code,
        failure_reason: m.failure_reason,
        queue_time: m.queue_time,
        start_time: m.start_time,
        end_time: m.end_time,
        sarif,
        validate,
        gate,
        findings,
        metrics,
        wave: m.wave,
        target: (!m.target_account.is_empty())
            .then(|| (m.target_account.clone(), m.target_region.clone())),
        rollback: m.rollback,
        outputs,
        dirty: false,
    })
}

pub fn action_active(a: &ActionRun) -> action_run::ActiveModel {
    action_run::ActiveModel {
        id: Set(a.id.clone()),
        execution_id: Set(a.execution_id.clone()),
        stage_index: Set(a.stage_index),
        name: Set(a.name.clone()),
        kind: Set(a.kind.clone()),
        command: Set(a.command.clone()),
        needs: Set(serde_json::to_string(&a.needs).unwrap_or_else(|_| "[]".into())),
        env: Set(serde_json::to_string(&a.env).unwrap_or_else(|_| "{}".into())),
        pool: Set(a.pool.clone()),
        timeout_secs: Set(a.timeout_secs),
        state: Set(a.state.as_str().to_owned()),
        attempt: Set(a.attempt),
        failures: Set(a.failures),
        lost_leases: Set(a.lost_leases),
        retries: Set(a.retries),
        worker: Set(a.worker.clone()),
        lease_expire_time: Set(a.lease_expire_time),
        exit_code: Set(a.exit_code),
        failure_reason: Set(a.failure_reason.clone()),
        queue_time: Set(a.queue_time),
        start_time: Set(a.start_time),
        end_time: Set(a.end_time),
        sarif: Set(json(&a.sarif)),
        validate: Set(json(&a.validate)),
        metrics: Set(json(&a.metrics)),
        gate: Set(a.gate.as_ref().map(json).unwrap_or_default()),
        findings: Set(json(&a.findings)),
        wave: Set(a.wave),
        target_account: Set(a.target.as_ref().map(|t| t.0.clone()).unwrap_or_default()),
        target_region: Set(a.target.as_ref().map(|t| t.1.clone()).unwrap_or_default()),
        rollback: Set(a.rollback),
        outputs: Set(json(&a.outputs)),
    }
}
