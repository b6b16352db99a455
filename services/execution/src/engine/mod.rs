//! The orchestrator's decisions, as pure functions over a [`Snapshot`]: what
//! a new execution looks like, what a worker's report changes, and how the
//! execution moves on. The store loads a snapshot, the engine changes it,
//! and the store writes back what changed in one compare-and-set
//! transaction, so any replica can run any step.

use chrono::{DateTime, Utc};

use crate::model::*;

mod approvals;
mod fleet;
mod gates;
mod holds;
mod plan;
mod rollout;

use approvals::approvals_given;
pub use approvals::{ApprovalError, decide};
pub use fleet::{Resolution, ResolvedWave, awaiting_targets, resolve as resolve_fleet_targets};
pub use gates::gate_violation;
use holds::hold_reason;
pub use plan::{PlanContext, plan};
use rollout::{Cause, continue_rollback, firing_alarm, start_rollback};

/// What a worker says happened to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    /// The worker gave the attempt back unfinished (it is shutting down).
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    UnknownAction,
    /// The attempt is not the current one, or it is not running.
    Stale {
        current_attempt: i32,
    },
}

/// What a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Applied,
    /// The same report for a finished attempt: nothing changed.
    Duplicate,
}

/// Dispatches an action: a new attempt, waiting for a worker.
pub fn queue(transitions: &mut Vec<Transition>, action: &mut ActionRun, now: DateTime<Utc>) {
    transitions.push(Transition::ActionQueued {
        action: action.id.clone(),
    });
    action.state = ActionState::Queued;
    action.attempt += 1;
    action.worker.clear();
    action.lease_expire_time = None;
    action.queue_time = Some(now);
    action.dirty = true;
}

/// What a worker reports about one attempt.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub attempt: i32,
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub message: String,
    pub findings: Findings,
    /// The numbers of the action's metrics output.
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// For a model-quality gate: the production model's value, looked up
    /// before the report is applied.
    pub baseline: Option<Baseline>,
}

/// Applies a worker's report for an attempt of action `id`, then advances.
pub fn report(
    s: &mut Snapshot,
    id: &str,
    r: &AttemptReport,
    now: DateTime<Utc>,
) -> Result<Reported, ReportError> {
    let AttemptReport {
        attempt,
        outcome,
        exit_code,
        findings,
        ..
    } = *r;
    let message = r.message.as_str();
    let action = s
        .actions
        .iter_mut()
        .find(|a| a.id == id)
        .ok_or(ReportError::UnknownAction)?;
    if action.attempt != attempt {
        return Err(ReportError::Stale {
            current_attempt: action.attempt,
        });
    }
    if action.state != ActionState::Running {
        return if action.state.is_final() && action.worker_reported_final() {
            Ok(Reported::Duplicate)
        } else {
            Err(ReportError::Stale {
                current_attempt: action.attempt,
            })
        };
    }
    action.exit_code = exit_code;
    action.findings = findings;
    action.metrics.values = r.metrics.clone();
    action.metrics.baseline = r.baseline.clone();
    action.dirty = true;
    // A clean exit still fails when the findings (or metrics) break the
    // gate; no retry would change what the scanner or evaluation found.
    let violation = match (outcome, &action.gate) {
        (Outcome::Succeeded, Some(gate)) => gate_violation(gate, &findings, &action.metrics),
        _ => None,
    };
    let transitions = &mut s.transitions;
    let ended = |transitions: &mut Vec<Transition>, action: &ActionRun, last: bool| {
        transitions.push(Transition::ActionEnded {
            action: action.id.clone(),
            attempt,
            last,
        });
    };
    match outcome {
        Outcome::Succeeded if violation.is_some() => {
            let reason = violation.unwrap_or_default();
            finish(action, ActionState::Failed, &reason, now);
            ended(transitions, action, true);
        }
        Outcome::Succeeded => {
            finish(action, ActionState::Succeeded, "", now);
            ended(transitions, action, true);
        }
        Outcome::Released => queue(transitions, action, now),
        Outcome::Failed | Outcome::TimedOut | Outcome::Cancelled => {
            action.failures += 1;
            let state = match outcome {
                Outcome::TimedOut => ActionState::TimedOut,
                Outcome::Cancelled => ActionState::Cancelled,
                _ => ActionState::Failed,
            };
            let reason = if message.is_empty() {
                match exit_code {
                    Some(code) => format!("exited with code {code}"),
                    None => state.as_str().replace('_', " "),
                }
            } else {
                message.to_owned()
            };
            if outcome != Outcome::Cancelled && action.failures <= action.retries {
                action.failure_reason = reason;
                ended(transitions, action, false);
                queue(transitions, action, now);
            } else {
                finish(action, state, &reason, now);
                ended(transitions, action, true);
            }
        }
    }
    advance(s, now);
    Ok(Reported::Applied)
}

impl ActionRun {
    /// Whether the action ended through a worker's report (not cancelled or
    /// skipped by the engine), so a repeated report is a harmless duplicate.
    fn worker_reported_final(&self) -> bool {
        self.start_time.is_some() && !matches!(self.state, ActionState::Skipped)
    }
}

fn finish(action: &mut ActionRun, state: ActionState, reason: &str, now: DateTime<Utc>) {
    action.state = state;
    action.failure_reason = reason.to_owned();
    action.lease_expire_time = None;
    action.end_time = Some(now);
    action.dirty = true;
}

/// How many times an action may lose its worker before it fails.
pub const MAX_LOST_LEASES: i32 = 3;

/// Puts an attempt whose lease expired back in the queue as a new attempt;
/// the old worker's calls are refused from now on. An action that keeps
/// losing its worker (it crashes or hangs the machine) fails instead.
pub fn expire_lease(s: &mut Snapshot, id: &str, attempt: i32, now: DateTime<Utc>) -> bool {
    let Some(action) = s.actions.iter_mut().find(|a| a.id == id) else {
        return false;
    };
    // A heartbeat may have extended the lease since it was found expired.
    let expired = action.lease_expire_time.is_none_or(|until| until < now);
    if action.attempt != attempt || action.state != ActionState::Running || !expired {
        return false;
    }
    action.lost_leases += 1;
    if action.lost_leases >= MAX_LOST_LEASES {
        let reason = format!(
            "lost its worker {MAX_LOST_LEASES} times (no heartbeat before the lease expired)"
        );
        finish(action, ActionState::Failed, &reason, now);
        s.transitions.push(Transition::ActionEnded {
            action: id.to_owned(),
            attempt,
            last: true,
        });
        advance(s, now);
    } else {
        queue(&mut s.transitions, action, now);
    }
    true
}

/// Dispatches a queued attempt again (its dispatch message may have been
/// lost with Redis); the attempt number stays, so a worker that already
/// holds the first message and the new one claims it once.
pub fn redispatch(s: &mut Snapshot, id: &str, now: DateTime<Utc>) -> bool {
    let Some(action) = s
        .actions
        .iter_mut()
        .find(|a| a.id == id && a.state == ActionState::Queued)
    else {
        return false;
    };
    action.queue_time = Some(now);
    action.dirty = true;
    s.transitions.push(Transition::ActionQueued {
        action: id.to_owned(),
    });
    true
}

/// Ends an execution that waits at a stage boundary because a newer one
/// arrived: it will never run its remaining stages.
pub fn supersede(s: &mut Snapshot, by: &str, now: DateTime<Utc>) -> bool {
    if s.execution.state != ExecutionState::Queued {
        return false;
    }
    for action in s.actions.iter_mut().filter(|a| !a.state.is_final()) {
        finish(
            action,
            ActionState::Skipped,
            &format!("superseded by execution {by}"),
            now,
        );
    }
    for stage in s
        .stages
        .iter_mut()
        .filter(|st| matches!(st.state, StageState::Pending | StageState::Held))
    {
        stage.state = StageState::Skipped;
        stage.state_reason = format!("superseded by execution {by}");
        stage.end_time = Some(now);
        stage.dirty = true;
    }
    end_execution(
        s,
        ExecutionState::Superseded,
        format!("superseded by execution {by}"),
        now,
    );
    true
}

/// Stops an execution: nothing more is dispatched; running attempts are
/// told to stop at their next heartbeat.
pub fn cancel(s: &mut Snapshot, who: &str, now: DateTime<Utc>) -> bool {
    if s.execution.state.is_final() {
        return false;
    }
    for action in s.actions.iter_mut().filter(|a| !a.state.is_final()) {
        finish(
            action,
            ActionState::Cancelled,
            &format!("execution cancelled by {who}"),
            now,
        );
    }
    for stage in s.stages.iter_mut() {
        let state = match stage.state {
            StageState::Running | StageState::WaitingApproval | StageState::RollingBack => {
                s.transitions
                    .push(Transition::StageEnded { stage: stage.index });
                StageState::Cancelled
            }
            StageState::Pending | StageState::Held => StageState::Skipped,
            _ => continue,
        };
        stage.state = state;
        stage.end_time = Some(now);
        stage.dirty = true;
    }
    end_execution(
        s,
        ExecutionState::Cancelled,
        format!("cancelled by {who}"),
        now,
    );
    true
}

fn end_execution(s: &mut Snapshot, state: ExecutionState, reason: String, now: DateTime<Utc>) {
    s.transitions.push(Transition::ExecutionFinished);
    s.execution.state = state;
    s.execution.state_reason = reason;
    s.execution.end_time = Some(now);
}

/// Moves the execution on: queues actions whose `needs` succeeded, finishes
/// the current stage when all its actions succeeded and starts the next,
/// and stops everything when an action failed for good.
pub fn advance(s: &mut Snapshot, now: DateTime<Utc>) {
    if s.execution.state.is_final() {
        return;
    }
    loop {
        let Some(stage_pos) = s.stages.iter().position(|st| {
            matches!(
                st.state,
                StageState::Pending
                    | StageState::Held
                    | StageState::WaitingApproval
                    | StageState::Running
                    | StageState::RollingBack
            )
        }) else {
            end_execution(s, ExecutionState::Succeeded, String::new(), now);
            return;
        };
        let index = s.stages[stage_pos].index;
        let entering = matches!(
            s.stages[stage_pos].state,
            StageState::Pending | StageState::Held
        );
        if entering && let Some(reason) = hold_reason(s, &s.stages[stage_pos], now) {
            let stage = &mut s.stages[stage_pos];
            if stage.state != StageState::Held || stage.state_reason != reason {
                stage.state = StageState::Held;
                stage.state_reason = reason;
                stage.dirty = true;
                s.transitions.push(Transition::StageHeld { stage: index });
            }
            s.execution.state = ExecutionState::Held;
            return;
        }
        if entering
            && s.execution.mode != Mode::Parallel
            && let Some(holder) = s.occupied.get(&index).cloned()
        {
            let stage = &mut s.stages[stage_pos];
            let reason = format!(
                "waiting for execution {holder} to leave stage {:?}",
                stage.name
            );
            if stage.state != StageState::Held || stage.state_reason != reason {
                stage.state = StageState::Held;
                stage.state_reason = reason;
                stage.dirty = true;
                s.execution.state = ExecutionState::Queued;
                s.transitions.push(Transition::StageHeld { stage: index });
            }
            return;
        }
        let stage = &mut s.stages[stage_pos];
        match stage.state {
            StageState::WaitingApproval => {
                if stage.approval_deadline.is_some_and(|d| now >= d) {
                    let waited = stage
                        .approval
                        .as_ref()
                        .and_then(|a| a.timeout_secs)
                        .unwrap_or_default();
                    let reason = format!("no approval within {waited}s");
                    fail(s, stage_pos, reason, now);
                }
                return;
            }
            StageState::Pending | StageState::Held
                if stage
                    .approval
                    .as_ref()
                    .is_some_and(|a| approvals_given(stage) < a.min_approvals) =>
            {
                stage.state = StageState::WaitingApproval;
                stage.state_reason.clear();
                stage.approval_deadline = stage
                    .approval
                    .as_ref()
                    .and_then(|a| a.timeout_secs)
                    .map(|t| now + chrono::Duration::seconds(t.min(i64::MAX as u64) as i64));
                stage.dirty = true;
                s.execution.state = ExecutionState::WaitingApproval;
                s.transitions
                    .push(Transition::ApprovalRequested { stage: index });
                return;
            }
            StageState::Pending | StageState::Held => {
                s.transitions
                    .push(Transition::StageStarted { stage: index });
                stage.state = StageState::Running;
                stage.state_reason.clear();
                stage.start_time = Some(now);
                stage.dirty = true;
                s.execution.state = ExecutionState::Running;
            }
            _ => {}
        }
        if s.stages[stage_pos].state == StageState::RollingBack {
            continue_rollback(s, stage_pos, now);
            return;
        }
        let rollout = !s.stages[stage_pos].waves.is_empty();
        // A rollout watches its alarms from the first deploy to the end of the last bake.
        if rollout && let Some(alarm) = firing_alarm(s, stage_pos) {
            let auto = s.stages[stage_pos]
                .guards
                .as_ref()
                .is_none_or(|g| g.auto_rollback);
            if auto {
                start_rollback(s, stage_pos, Cause::Alarm(&alarm), now);
            } else {
                let reason = format!(
                    "alarm {alarm:?} fired; automatic rollback is off, so the targets stay as deployed"
                );
                fail(s, stage_pos, reason, now);
            }
            return;
        }
        let failed = s
            .actions
            .iter()
            .find(|a| {
                a.stage_index == index
                    && !a.rollback
                    && matches!(
                        a.state,
                        ActionState::Failed | ActionState::TimedOut | ActionState::Cancelled
                    )
            })
            .map(|a| {
                format!(
                    "action {:?} {}: {}",
                    a.name,
                    a.state.as_str().replace('_', " "),
                    a.failure_reason
                )
            });
        if let Some(reason) = failed {
            // A rollout whose action failed for good goes back like on an
            // alarm: its deployed targets return to the last good version.
            let auto = s.stages[stage_pos]
                .guards
                .as_ref()
                .is_none_or(|g| g.auto_rollback);
            if rollout && auto {
                start_rollback(s, stage_pos, Cause::Failed(&reason), now);
            } else {
                fail(s, stage_pos, reason, now);
            }
            return;
        }
        let wave = s.stages[stage_pos].current_wave;
        let in_scope =
            |a: &ActionRun| a.stage_index == index && !a.rollback && (!rollout || a.wave == wave);
        let succeeded: std::collections::HashSet<(Option<(String, String)>, String)> = s
            .actions
            .iter()
            .filter(|a| in_scope(a) && a.state == ActionState::Succeeded)
            .map(|a| (a.target.clone(), a.name.clone()))
            .collect();
        // Rolling limits: how many of the wave's targets may deploy at once.
        let mut deploying = rollout::deploying_targets(s, index, wave);
        let batch = if rollout {
            let targets = rollout::wave_targets(s, index, wave);
            s.stages[stage_pos]
                .guards
                .as_ref()
                .map_or(targets, |g| g.batch_size(targets))
        } else {
            usize::MAX
        };
        let mut all_done = true;
        for action in s.actions.iter_mut().filter(|a| in_scope(a)) {
            let target_may_start = deploying.contains(&action.target) || deploying.len() < batch;
            if action.state == ActionState::Pending
                && target_may_start
                && action
                    .needs
                    .iter()
                    .all(|n| succeeded.contains(&(action.target.clone(), n.clone())))
            {
                queue(&mut s.transitions, action, now);
                deploying.insert(action.target.clone());
            }
            all_done &= action.state == ActionState::Succeeded;
        }
        if !all_done {
            return;
        }
        if rollout {
            let stage = &mut s.stages[stage_pos];
            let bake = stage.waves.get(wave as usize).map_or(0, |w| w.bake_secs);
            match stage.bake_until {
                None => {
                    // The wave deployed: bake before the next one.
                    stage.bake_until = Some(now + chrono::Duration::seconds(bake as i64));
                    stage.dirty = true;
                    s.transitions
                        .push(Transition::BakeStarted { stage: index, wave });
                    if bake > 0 {
                        return;
                    }
                }
                Some(until) if now < until => return,
                Some(_) => {}
            }
            if let Some(reason) = rollout::short_of_data_points(s, stage_pos) {
                let stage = &mut s.stages[stage_pos];
                if stage.state_reason != reason {
                    stage.state_reason = reason;
                    stage.dirty = true;
                }
                return;
            }
            let stage = &mut s.stages[stage_pos];
            stage.bake_until = None;
            stage.state_reason.clear();
            stage.current_wave += 1;
            stage.dirty = true;
            s.transitions
                .push(Transition::BakeCompleted { stage: index, wave });
            if (stage.current_wave as usize) < stage.waves.len() {
                s.transitions.push(Transition::WaveStarted {
                    stage: index,
                    wave: wave + 1,
                });
                continue;
            }
        }
        let stage = &mut s.stages[stage_pos];
        s.transitions.push(Transition::StageEnded { stage: index });
        stage.state = StageState::Succeeded;
        stage.end_time = Some(now);
        stage.dirty = true;
    }
}

/// The stage at `stage_pos` failed: nothing after it starts.
fn fail(s: &mut Snapshot, stage_pos: usize, reason: String, now: DateTime<Utc>) {
    let index = s.stages[stage_pos].index;
    let name = s.stages[stage_pos].name.clone();
    for action in s.actions.iter_mut().filter(|a| !a.state.is_final()) {
        let state = if action.stage_index == index {
            ActionState::Cancelled
        } else {
            ActionState::Skipped
        };
        finish(action, state, "an earlier action failed", now);
    }
    for stage in s.stages.iter_mut().skip(stage_pos) {
        let (state, why) = if stage.index == index {
            s.transitions.push(Transition::StageEnded { stage: index });
            (StageState::Failed, reason.clone())
        } else if stage.state == StageState::Pending {
            (StageState::Skipped, format!("stage {name:?} failed"))
        } else {
            continue;
        };
        stage.state = state;
        stage.state_reason = why;
        stage.end_time = Some(now);
        stage.dirty = true;
    }
    end_execution(
        s,
        ExecutionState::Failed,
        format!("stage {name:?} failed: {reason}"),
        now,
    );
}
