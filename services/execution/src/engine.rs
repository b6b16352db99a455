//! The orchestrator's decisions, as pure functions over a [`Snapshot`]: what
//! a new execution looks like, what a worker's report changes, and how the
//! execution moves on. The store loads a snapshot, the engine changes it,
//! and the store writes back what changed in one compare-and-set
//! transaction, so any replica can run any step.

use chrono::{DateTime, Utc};
use conveyor_definitions::spec::{ActionKind, Document, Gates, Thresholds};

use crate::model::*;

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

/// What a new execution needs to know about its pipeline's other executions,
/// blockers and alarms before it starts its first stage.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    pub occupied: std::collections::HashMap<i32, String>,
    pub blockers: Vec<Blocker>,
    pub firing: std::collections::HashSet<String>,
    pub last_good_commit: Option<String>,
}

/// The stages and actions of a new execution, with the first stage started.
///
/// `build_only` runs only the stages before the first environment stage
/// (commits off the trunk are checked, never deployed).
pub fn plan(
    doc: &Document,
    execution: Execution,
    context: PlanContext,
    now: DateTime<Utc>,
) -> Snapshot {
    let first_env = doc
        .spec
        .stages
        .iter()
        .position(|s| s.environment.is_some())
        .unwrap_or(doc.spec.stages.len());
    let mut stages = Vec::new();
    let mut actions = Vec::new();
    for (i, stage) in doc.spec.stages.iter().enumerate() {
        let skipped = execution.build_only && i >= first_env;
        stages.push(StageRun {
            execution_id: execution.id.clone(),
            index: i as i32,
            name: stage.name.clone(),
            environment: stage.environment.clone().unwrap_or_default(),
            state: if skipped {
                StageState::Skipped
            } else {
                StageState::Pending
            },
            state_reason: if skipped {
                format!(
                    "branch {:?} is not the trunk; only build stages run",
                    execution.branch
                )
            } else {
                String::new()
            },
            start_time: None,
            end_time: None,
            approval: stage.approval.as_ref().map(|a| ApprovalPolicy {
                groups: a.groups.clone(),
                principals: a.principals.clone(),
                allow_author: a.allow_author,
                min_approvals: a.min_approvals,
            }),
            approvals: Vec::new(),
            guards: stage.deployment.as_ref().map(guards),
            waves: stage
                .deployment
                .iter()
                .flat_map(|d| {
                    d.waves.iter().map(|w| WavePlan {
                        name: w.name.clone(),
                        bake_secs: w.bake_time.unwrap_or(d.bake_time).get().as_secs(),
                    })
                })
                .collect(),
            current_wave: 0,
            bake_until: None,
            dirty: true,
        });
        // A rollout runs the stage's actions once per target, wave by wave;
        // other stages run them once.
        let placements: Vec<(i32, Option<(String, String)>)> = match &stage.deployment {
            Some(d) if !d.waves.is_empty() => d
                .waves
                .iter()
                .enumerate()
                .flat_map(|(w, wave)| {
                    wave.targets
                        .iter()
                        .map(move |t| (w as i32, Some((t.account.clone(), t.region.clone()))))
                })
                .collect(),
            _ => vec![(0, None)],
        };
        for (wave, target) in placements {
            for action in &stage.actions {
                let mut env = action.env.clone();
                if let Some((account, region)) = &target {
                    env.insert("CONVEYOR_TARGET_ACCOUNT".to_owned(), account.clone());
                    env.insert("CONVEYOR_TARGET_REGION".to_owned(), region.clone());
                }
                actions.push(ActionRun {
                    id: uuid::Uuid::now_v7().simple().to_string(),
                    execution_id: execution.id.clone(),
                    stage_index: i as i32,
                    name: action.name.clone(),
                    kind: action.kind.as_str().to_owned(),
                    command: action.run.clone(),
                    needs: action.needs.clone(),
                    env,
                    pool: action.pool.clone(),
                    timeout_secs: action.timeout.get().as_secs() as i64,
                    state: if skipped {
                        ActionState::Skipped
                    } else {
                        ActionState::Pending
                    },
                    attempt: 0,
                    failures: 0,
                    lost_leases: 0,
                    retries: action.retries as i32,
                    worker: String::new(),
                    lease_expire_time: None,
                    exit_code: None,
                    failure_reason: String::new(),
                    queue_time: None,
                    start_time: None,
                    end_time: None,
                    sarif: action.outputs.sarif.clone(),
                    gate: gate_for(action.kind, &doc.spec.gates),
                    findings: Findings::default(),
                    wave,
                    target: target.clone(),
                    rollback: false,
                    dirty: true,
                });
            }
        }
    }
    let mut snapshot = Snapshot {
        execution,
        stages,
        actions,
        transitions: vec![Transition::ExecutionStarted],
        occupied: context.occupied,
        blockers: context.blockers,
        firing: context.firing,
        last_good_commit: context.last_good_commit,
    };
    advance(&mut snapshot, now);
    snapshot
}

/// A deployment's start conditions: its alarms and its time windows.
fn guards(d: &conveyor_definitions::spec::Deployment) -> Guards {
    use conveyor_definitions::spec::Weekday;
    let windows = d
        .time_windows
        .iter()
        .map(|w| Window {
            days: w
                .days
                .iter()
                .map(|d| match d {
                    Weekday::Mon => 0,
                    Weekday::Tue => 1,
                    Weekday::Wed => 2,
                    Weekday::Thu => 3,
                    Weekday::Fri => 4,
                    Weekday::Sat => 5,
                    Weekday::Sun => 6,
                })
                .collect(),
            start_minute: minutes(&w.start).unwrap_or(0),
            end_minute: if w.end == "24:00" {
                1440
            } else {
                minutes(&w.end).unwrap_or(1440)
            },
            offset_minutes: utc_offset(&w.timezone).unwrap_or(0),
            exclude_dates: w.exclude_dates.clone(),
        })
        .collect();
    Guards {
        alarms: d.alarms.iter().map(|a| a.name.clone()).collect(),
        windows,
        probes: d
            .alarms
            .iter()
            .filter_map(|a| {
                let p = a.probe.as_ref()?;
                Some(Probe {
                    alarm: a.name.clone(),
                    url: p.url.clone(),
                    interval_secs: p.interval.get().as_secs().max(1),
                    failure_threshold: p.failure_threshold,
                })
            })
            .collect(),
    }
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

fn utc_offset(tz: &str) -> Option<i32> {
    if tz == "UTC" || tz == "Z" {
        return Some(0);
    }
    let sign = if tz.starts_with('-') { -1 } else { 1 };
    minutes(tz.get(1..)?).map(|m| sign * m as i32)
}

impl Window {
    /// Whether `now` falls inside the window (start inclusive, end exclusive;
    /// a window whose end is before its start runs past midnight).
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        use chrono::{Datelike, Timelike};
        let local = now + chrono::Duration::minutes(i64::from(self.offset_minutes));
        if self
            .exclude_dates
            .iter()
            .any(|d| *d == local.format("%Y-%m-%d").to_string())
        {
            return false;
        }
        let day = local.weekday().num_days_from_monday() as u8;
        if !self.days.is_empty() && !self.days.contains(&day) {
            return false;
        }
        let minute = local.hour() * 60 + local.minute();
        if self.start_minute <= self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

/// Why a stage may not start now, if it may not.
fn hold_reason(s: &Snapshot, stage: &StageRun, now: DateTime<Utc>) -> Option<String> {
    let deploys = !stage.environment.is_empty();
    if let Some(b) = s
        .blockers
        .iter()
        .find(|b| b.stage == stage.name || (b.stage.is_empty() && deploys))
    {
        return Some(format!(
            "promotion blocked by {}: {}",
            b.created_by, b.reason
        ));
    }
    let guards = stage.guards.as_ref()?;
    if let Some(alarm) = guards.alarms.iter().find(|a| s.firing.contains(*a)) {
        return Some(format!(
            "alarm {alarm:?} is in ALARM; the stage starts when it clears"
        ));
    }
    if !guards.windows.is_empty() && !guards.windows.iter().any(|w| w.contains(now)) {
        return Some("outside the stage's deployment windows; it starts when one opens".to_owned());
    }
    None
}

/// The gate an action's findings are judged by (DPRA: secrets detection
/// fails on any finding; scanners against the pipeline's thresholds).
fn gate_for(kind: ActionKind, gates: &Gates) -> Option<Gate> {
    let thresholds = |t: &Thresholds| Gate::Thresholds {
        critical: t.critical,
        high: t.high,
        medium: t.medium,
        low: t.low,
    };
    match kind {
        ActionKind::SecretsDetection => Some(Gate::AnyFinding),
        ActionKind::Sast => Some(thresholds(&gates.sast)),
        ActionKind::Sca => Some(thresholds(&gates.sca)),
        ActionKind::CodeQuality => gates.code_quality.as_ref().map(thresholds),
        ActionKind::Dast => gates.dast.as_ref().map(thresholds),
        ActionKind::VulnerabilityScan => gates.vulnerability_scan.as_ref().map(thresholds),
        ActionKind::PolicyAsCode => gates.policy_as_code.as_ref().map(thresholds),
        _ => None,
    }
}

/// Why findings fail a gate, if they do.
pub fn gate_violation(gate: &Gate, f: &Findings) -> Option<String> {
    match gate {
        Gate::AnyFinding if f.total() > 0 => Some(format!(
            "secrets detection found {} secret(s); any finding fails the run",
            f.total()
        )),
        Gate::AnyFinding => None,
        Gate::Thresholds {
            critical,
            high,
            medium,
            low,
        } => {
            let over: Vec<String> = [
                ("critical", f.critical, critical),
                ("high", f.high, high),
                ("medium", f.medium, medium),
                ("low", f.low, low),
            ]
            .into_iter()
            .filter_map(|(name, found, limit)| {
                limit
                    .filter(|limit| found > *limit)
                    .map(|limit| format!("{found} {name} (at most {limit})"))
            })
            .collect();
            (!over.is_empty())
                .then(|| format!("findings over the gate's thresholds: {}", over.join(", ")))
        }
    }
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
    action.dirty = true;
    // A clean exit still fails when the findings break the gate; no retry
    // would change what the scanner found.
    let violation = match (outcome, &action.gate) {
        (Outcome::Succeeded, Some(gate)) => gate_violation(gate, &findings),
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

fn approvals_given(stage: &StageRun) -> u32 {
    let mut approvers: Vec<&str> = stage
        .approvals
        .iter()
        .filter(|a| a.approved)
        .map(|a| a.principal.as_str())
        .collect();
    approvers.sort_unstable();
    approvers.dedup();
    approvers.len() as u32
}

/// Why an approval or rejection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalError {
    UnknownStage,
    NotWaiting,
    NotAnApprover,
    AuthorMayNotApprove,
}

/// Records `principal`'s decision on the stage waiting for approval; an
/// approval that completes the count starts the stage with the artifacts
/// of this same execution, a rejection fails it.
pub fn decide(
    s: &mut Snapshot,
    stage_name: &str,
    principal: &str,
    groups: &[String],
    approve: bool,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<(), ApprovalError> {
    let author = s.execution.author.clone();
    let stage_pos = s
        .stages
        .iter()
        .position(|st| st.name == stage_name)
        .ok_or(ApprovalError::UnknownStage)?;
    let stage = &mut s.stages[stage_pos];
    if stage.state != StageState::WaitingApproval {
        return Err(ApprovalError::NotWaiting);
    }
    let policy = stage.approval.clone().ok_or(ApprovalError::NotWaiting)?;
    let allowed = policy.principals.iter().any(|p| p == principal)
        || policy.groups.iter().any(|g| groups.contains(g));
    if !allowed {
        return Err(ApprovalError::NotAnApprover);
    }
    if approve && !policy.allow_author && !author.is_empty() && principal == author {
        return Err(ApprovalError::AuthorMayNotApprove);
    }
    stage.approvals.push(ApprovalRecord {
        principal: principal.to_owned(),
        groups: groups.to_vec(),
        approved: approve,
        comment: comment.to_owned(),
        time: now,
    });
    stage.dirty = true;
    let index = stage.index;
    s.transitions
        .push(Transition::ApprovalRecorded { stage: index });
    if approve {
        if approvals_given(&s.stages[stage_pos]) >= policy.min_approvals {
            s.stages[stage_pos].state = StageState::Pending;
            advance(s, now);
        }
    } else {
        let why = if comment.is_empty() {
            format!("rejected by {principal}")
        } else {
            format!("rejected by {principal}: {comment}")
        };
        fail(s, stage_pos, why, now);
    }
    Ok(())
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
            StageState::WaitingApproval => return,
            StageState::Pending | StageState::Held
                if stage
                    .approval
                    .as_ref()
                    .is_some_and(|a| approvals_given(stage) < a.min_approvals) =>
            {
                stage.state = StageState::WaitingApproval;
                stage.state_reason.clear();
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
            start_rollback(s, stage_pos, &alarm, now);
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
            fail(s, stage_pos, reason, now);
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
        let mut all_done = true;
        for action in s.actions.iter_mut().filter(|a| in_scope(a)) {
            if action.state == ActionState::Pending
                && action
                    .needs
                    .iter()
                    .all(|n| succeeded.contains(&(action.target.clone(), n.clone())))
            {
                queue(&mut s.transitions, action, now);
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
            let stage = &mut s.stages[stage_pos];
            stage.bake_until = None;
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

/// An alarm the rollout watches that is in ALARM now.
fn firing_alarm(s: &Snapshot, stage_pos: usize) -> Option<String> {
    let guards = s.stages[stage_pos].guards.as_ref()?;
    guards
        .alarms
        .iter()
        .find(|a| s.firing.contains(*a))
        .cloned()
}

/// Kinds that change a target, and so run again to roll it back.
fn redeploys(kind: &str) -> bool {
    matches!(
        kind,
        "deploy" | "deploy-config" | "provision" | "database-deploy"
    )
}

/// An alarm fired during the rollout: stop it, and put every target this
/// execution touched back on the last good version, newest wave first.
fn start_rollback(s: &mut Snapshot, stage_pos: usize, alarm: &str, now: DateTime<Utc>) {
    if s.last_good_commit.is_none() {
        // Nothing deployed successfully before: there is no version to go back to.
        let reason = format!(
            "alarm {alarm:?} fired, and no earlier successful deployment exists to roll back to"
        );
        fail(s, stage_pos, reason, now);
        return;
    }
    let index = s.stages[stage_pos].index;
    let wave = s.stages[stage_pos].current_wave;
    let good = s.last_good_commit.clone().unwrap_or_default();
    let mut touched: Vec<ActionRun> = Vec::new();
    for action in s
        .actions
        .iter_mut()
        .filter(|a| a.stage_index == index && !a.rollback)
    {
        if !action.state.is_final() {
            let state = if action.state == ActionState::Running {
                ActionState::Cancelled
            } else {
                ActionState::Skipped
            };
            finish(
                action,
                state,
                &format!("rolled back: alarm {alarm:?} fired"),
                now,
            );
        }
        if action.start_time.is_some() && redeploys(&action.kind) {
            touched.push(action.clone());
        }
    }
    for template in touched {
        let mut env = template.env.clone();
        env.insert("CONVEYOR_ROLLBACK".to_owned(), "1".to_owned());
        env.insert("CONVEYOR_ROLLBACK_COMMIT".to_owned(), good.clone());
        s.actions.push(ActionRun {
            id: uuid::Uuid::now_v7().simple().to_string(),
            needs: Vec::new(),
            env,
            state: ActionState::Pending,
            attempt: 0,
            failures: 0,
            lost_leases: 0,
            worker: String::new(),
            lease_expire_time: None,
            exit_code: None,
            failure_reason: String::new(),
            queue_time: None,
            start_time: None,
            end_time: None,
            findings: Findings::default(),
            rollback: true,
            gate: None,
            dirty: true,
            ..template
        });
    }
    let stage = &mut s.stages[stage_pos];
    stage.state = StageState::RollingBack;
    stage.state_reason = format!(
        "alarm {alarm:?} fired during wave {:?}; rolling back",
        stage
            .waves
            .get(wave as usize)
            .map_or("?", |w| w.name.as_str())
    );
    stage.bake_until = None;
    stage.dirty = true;
    s.execution.state = ExecutionState::RollingBack;
    s.execution.state_reason = s.stages[stage_pos].state_reason.clone();
    s.transitions.push(Transition::RollbackStarted {
        stage: index,
        alarm: alarm.to_owned(),
    });
    continue_rollback(s, stage_pos, now);
}

/// Runs the rollback wave by wave, newest first; ends the execution as
/// ROLLED_BACK when every target is back, FAILED if a rollback fails.
fn continue_rollback(s: &mut Snapshot, stage_pos: usize, now: DateTime<Utc>) {
    let index = s.stages[stage_pos].index;
    let rollbacks = |a: &&ActionRun| a.stage_index == index && a.rollback;
    if let Some(failed) = s.actions.iter().filter(rollbacks).find(|a| {
        matches!(
            a.state,
            ActionState::Failed | ActionState::TimedOut | ActionState::Cancelled
        )
    }) {
        let reason = format!(
            "rollback of action {:?} failed: {}",
            failed.name, failed.failure_reason
        );
        fail(s, stage_pos, reason, now);
        return;
    }
    let wave = s
        .actions
        .iter()
        .filter(rollbacks)
        .filter(|a| a.state != ActionState::Succeeded)
        .map(|a| a.wave)
        .max();
    match wave {
        Some(wave) => {
            for action in s.actions.iter_mut().filter(|a| {
                a.stage_index == index
                    && a.rollback
                    && a.wave == wave
                    && a.state == ActionState::Pending
            }) {
                queue(&mut s.transitions, action, now);
            }
        }
        None => {
            let reason = s.stages[stage_pos]
                .state_reason
                .replace("; rolling back", "; rolled back");
            let name = s.stages[stage_pos].name.clone();
            for stage in s.stages.iter_mut().skip(stage_pos + 1) {
                if matches!(stage.state, StageState::Pending | StageState::Held) {
                    stage.state = StageState::Skipped;
                    stage.state_reason = format!("stage {name:?} rolled back");
                    stage.dirty = true;
                }
            }
            let stage = &mut s.stages[stage_pos];
            stage.state = StageState::RolledBack;
            stage.state_reason = reason.clone();
            stage.end_time = Some(now);
            stage.dirty = true;
            s.transitions
                .push(Transition::RollbackCompleted { stage: index });
            s.transitions.push(Transition::StageEnded { stage: index });
            end_execution(s, ExecutionState::RolledBack, reason, now);
        }
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
