//! Rolling a production rollout back when an alarm fires.

use chrono::{DateTime, Utc};

use super::*;

/// An alarm the rollout watches that is in ALARM now.
pub(super) fn firing_alarm(s: &Snapshot, stage_pos: usize) -> Option<String> {
    let guards = s.stages[stage_pos].guards.as_ref()?;
    guards
        .alarms
        .iter()
        .find(|a| s.firing.contains(*a))
        .cloned()
}

/// Why the bake of the stage at `stage_pos` cannot end yet: its
/// `minDataPoints` metric has too few points since the bake started.
pub(super) fn short_of_data_points(s: &Snapshot, stage_pos: usize) -> Option<String> {
    let stage = &s.stages[stage_pos];
    let min = stage.guards.as_ref()?.min_data_points.as_ref()?;
    let observed = s.data_points.unwrap_or(0);
    (observed < min.count as i64).then(|| {
        format!(
            "wave {:?} baked; waiting for {} data points on {:?} ({observed} so far)",
            stage
                .waves
                .get(stage.current_wave as usize)
                .map_or("?", |w| w.name.as_str()),
            min.count,
            min.metric
        )
    })
}

/// How many targets wave `wave` of stage `index` has.
pub(super) fn wave_targets(s: &Snapshot, index: i32, wave: i32) -> usize {
    s.actions
        .iter()
        .filter(|a| a.stage_index == index && !a.rollback && a.wave == wave)
        .map(|a| &a.target)
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// The wave's targets being deployed now: some of their actions started,
/// not all of them succeeded.
pub(super) fn deploying_targets(
    s: &Snapshot,
    index: i32,
    wave: i32,
) -> std::collections::HashSet<Option<(String, String)>> {
    let mut started = std::collections::HashSet::new();
    let mut unfinished = std::collections::HashSet::new();
    for a in s
        .actions
        .iter()
        .filter(|a| a.stage_index == index && !a.rollback && a.wave == wave)
    {
        if a.state != ActionState::Pending {
            started.insert(a.target.clone());
        }
        if a.state != ActionState::Succeeded {
            unfinished.insert(a.target.clone());
        }
    }
    started.retain(|t| unfinished.contains(t));
    started
}

/// Kinds that change a target, and so run again to roll it back.
pub(super) fn redeploys(kind: &str) -> bool {
    matches!(
        kind,
        "deploy" | "deploy-config" | "provision" | "database-deploy"
    )
}

/// An alarm fired during the rollout: stop it, and put every target this
/// execution touched back on the last good version, newest wave first.
/// What starts a rollback: an alarm, or an action of the rollout that
/// failed for good.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cause<'a> {
    Alarm(&'a str),
    Failed(&'a str),
}

impl Cause<'_> {
    fn describe(self) -> String {
        match self {
            Cause::Alarm(alarm) => format!("alarm {alarm:?} fired"),
            Cause::Failed(reason) => reason.to_owned(),
        }
    }
}

pub(super) fn start_rollback(
    s: &mut Snapshot,
    stage_pos: usize,
    cause: Cause<'_>,
    now: DateTime<Utc>,
) {
    let why = cause.describe();
    let Some(good) = s.last_good.clone() else {
        // Nothing deployed successfully before: there is no version to go back to.
        let reason = format!("{why}, and no earlier successful deployment exists to roll back to");
        fail(s, stage_pos, reason, now);
        return;
    };
    let index = s.stages[stage_pos].index;
    let wave = s.stages[stage_pos].current_wave;
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
            finish(action, state, &format!("rolled back: {why}"), now);
        }
        if action.start_time.is_some() && redeploys(&action.kind) {
            touched.push(action.clone());
        }
    }
    for template in touched {
        let mut env = template.env.clone();
        env.insert("CONVEYOR_ROLLBACK".to_owned(), "1".to_owned());
        env.insert(
            "CONVEYOR_ROLLBACK_COMMIT".to_owned(),
            good.commit_sha.clone(),
        );
        env.insert(
            crate::model::ROLLBACK_EXECUTION_ENV.to_owned(),
            good.execution_id.clone(),
        );
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
            metrics: Metrics::default(),
            rollback: true,
            gate: None,
            // A rollback deploys stored artifacts; it stores none.
            outputs: Vec::new(),
            sarif: Vec::new(),
            validate: Vec::new(),
            dirty: true,
            ..template
        });
    }
    let stage = &mut s.stages[stage_pos];
    stage.state = StageState::RollingBack;
    stage.state_reason = format!(
        "{why} during wave {:?}; rolling back",
        stage
            .waves
            .get(wave as usize)
            .map_or("?", |w| w.name.as_str())
    );
    stage.bake_until = None;
    stage.dirty = true;
    s.execution.state = ExecutionState::RollingBack;
    s.execution.state_reason = s.stages[stage_pos].state_reason.clone();
    // The event names the alarm; a failure has none (the reason says it).
    let alarm = match cause {
        Cause::Alarm(alarm) => alarm.to_owned(),
        Cause::Failed(_) => String::new(),
    };
    s.transitions.push(Transition::RollbackStarted {
        stage: index,
        alarm,
    });
    continue_rollback(s, stage_pos, now);
}

/// Runs the rollback wave by wave, newest first; ends the execution as
/// ROLLED_BACK when every target is back, FAILED if a rollback fails.
pub(super) fn continue_rollback(s: &mut Snapshot, stage_pos: usize, now: DateTime<Utc>) {
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
