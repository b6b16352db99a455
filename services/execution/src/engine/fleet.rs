//! Fleet rollouts (`deployment.fromFleet`): the stage holds when entered
//! until the fleet service has resolved its waves (and no freeze window
//! holds them); then every template action run is copied once per target,
//! wave by wave, and the stage starts like any rollout.

use chrono::{DateTime, Utc};

use super::*;

/// The wave of the template runs a fleet stage is planned with.
pub const TEMPLATE_WAVE: i32 = -1;

/// One wave as the fleet service planned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedWave {
    pub name: String,
    pub targets: Vec<(String, String)>,
    /// The plan's bake after this wave; `None`: the deployment's bakeTime.
    pub bake_secs: Option<u64>,
}

/// What asking the fleet service gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Waves {
        waves: Vec<ResolvedWave>,
        digest: String,
    },
    /// Freeze windows hold the targets; the stage keeps waiting.
    Frozen(String),
    /// The fleet service could not be asked; the stage keeps waiting.
    Unavailable(String),
    /// The selector cannot be resolved (an unknown OU, say): the stage fails.
    Refused(String),
}

/// The fleet stage this execution waits at for its targets, if any.
pub fn awaiting_targets(s: &Snapshot) -> Option<(i32, FleetTargets)> {
    if s.execution.state.is_final() {
        return None;
    }
    let stage = s
        .stages
        .iter()
        .find(|st| st.state == StageState::Held || st.state == StageState::Pending)?;
    let fleet = stage.guards.as_ref()?.fleet.as_ref()?;
    (stage.waves.is_empty() && stage.state == StageState::Held)
        .then(|| (stage.index, fleet.clone()))
}

/// Why a fleet stage holds, if it does.
pub(super) fn fleet_hold(stage: &StageRun) -> Option<String> {
    let fleet = stage.guards.as_ref()?.fleet.as_ref()?;
    if !stage.waves.is_empty() {
        return None;
    }
    Some(fleet.waiting.clone().unwrap_or_else(|| {
        "waiting for the fleet service to resolve the stage's targets".to_owned()
    }))
}

/// Applies a resolution to the stage at `index` (still waiting for targets)
/// and moves the execution on. Returns whether anything changed.
pub fn resolve(s: &mut Snapshot, index: i32, resolution: Resolution, now: DateTime<Utc>) -> bool {
    let Some(pos) = s.stages.iter().position(|st| st.index == index) else {
        return false;
    };
    if awaiting_targets(s).map(|(i, _)| i) != Some(index) {
        return false;
    }
    let waiting = |s: &mut Snapshot, reason: String| {
        let stage = &mut s.stages[pos];
        let Some(fleet) = stage.guards.as_mut().and_then(|g| g.fleet.as_mut()) else {
            return false;
        };
        if fleet.waiting.as_deref() == Some(reason.as_str()) {
            return false;
        }
        fleet.waiting = Some(reason);
        stage.dirty = true;
        advance(s, now);
        true
    };
    match resolution {
        Resolution::Frozen(reason) => waiting(s, reason),
        Resolution::Unavailable(reason) => {
            waiting(s, format!("waiting for the fleet service: {reason}"))
        }
        Resolution::Refused(reason) => {
            fail(
                s,
                pos,
                format!("the fleet service cannot resolve the stage's targets: {reason}"),
                now,
            );
            true
        }
        Resolution::Waves { waves, .. } if waves.iter().all(|w| w.targets.is_empty()) => {
            fail(
                s,
                pos,
                "the fleet selector matched no ACTIVE account".to_owned(),
                now,
            );
            true
        }
        Resolution::Waves { waves, digest } => {
            materialize(s, pos, waves, digest);
            advance(s, now);
            true
        }
    }
}

/// Copies each template run of the stage once per target of each wave.
fn materialize(s: &mut Snapshot, pos: usize, waves: Vec<ResolvedWave>, digest: String) {
    let index = s.stages[pos].index;
    let stage = &mut s.stages[pos];
    let Some(fleet) = stage.guards.as_mut().and_then(|g| g.fleet.as_mut()) else {
        return;
    };
    fleet.waiting = None;
    fleet.plan_digest = Some(digest);
    let bake_secs = fleet.bake_secs;
    stage.waves = waves
        .iter()
        .map(|w| WavePlan {
            name: w.name.clone(),
            bake_secs: w.bake_secs.unwrap_or(bake_secs),
        })
        .collect();
    stage.current_wave = 0;
    stage.dirty = true;
    let templates: Vec<ActionRun> = s
        .actions
        .iter()
        .filter(|a| a.stage_index == index && a.wave == TEMPLATE_WAVE)
        .cloned()
        .collect();
    for (w, wave) in waves.iter().enumerate() {
        for (account, region) in &wave.targets {
            for template in &templates {
                let mut run = template.clone();
                run.id = uuid::Uuid::now_v7().simple().to_string();
                run.state = ActionState::Pending;
                run.wave = w as i32;
                run.target = Some((account.clone(), region.clone()));
                run.env
                    .insert("CONVEYOR_TARGET_ACCOUNT".to_owned(), account.clone());
                run.env
                    .insert("CONVEYOR_TARGET_REGION".to_owned(), region.clone());
                run.dirty = true;
                s.actions.push(run);
            }
        }
    }
}
