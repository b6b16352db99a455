//! Events into records. A batch of events is applied to the records it
//! touches, loaded once and kept in memory, then written back in a few
//! statements: the cost is per execution touched, not per event.
//!
//! The rules, per event type:
//!
//! - `execution.started` opens a run; a trunk run's commits are recorded
//!   with their landing times (the first run carrying a commit wins).
//! - `execution.stage.started` with an environment opens a deployment
//!   record; `execution.wave.succeeded` of wave 1 sets its first-wave end.
//! - `execution.stage.succeeded` closes it. In production it also credits
//!   every commit of the pipeline's trunk not yet in production and first
//!   seen no later than this run (so commits of failed, cancelled and
//!   superseded runs ride with the next production deployment), and
//!   restores earlier failed production deployments not yet restored.
//! - `execution.rollback.started` marks the deployment a change failure
//!   detected at the alarm's time; `execution.rollback.completed` restores it.
//! - `alarm.state.changed` into ALARM, scoped to a pipeline, marks that
//!   pipeline's last completed production deployment a change failure when
//!   it completed at most 24 hours before and no production deployment of
//!   the pipeline has started since (a deployment in progress owns the alarm).
//! - `execution.gate.evaluated` failing a security control on a trunk run
//!   opens a security error unless one is open; the next successful trunk
//!   run resolves it.
//! - `execution.finished` closes the run and moves the mainline health
//!   (see `PipelineHealth` in the API for the streak rule).
//! - `pipeline.revision.created` records the revision's security-control
//!   automation percentage.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use conveyor_api::common::v1 as common;
use conveyor_api::events::v1 as ev;
use conveyor_api::events::v1::event::Payload as P;
use conveyor_api::execution::v1 as exec;
use conveyor_api::time::from_timestamp;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

mod deployments;
mod load;
mod runs;
mod save;

use crate::model::{HealthState, Outcome, deployment_id, execution_id};
use crate::store::entities::{
    commit, conformance, deployment, health, run, security_error, stage_budget, streak,
};

/// A failed deployment counts when its pipeline's alarm fires this soon after.
const ALARM_ATTRIBUTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A record as loaded (None: known not to exist) and whether it changed.
struct Slot<T> {
    value: Option<T>,
    dirty: bool,
}

/// The records one batch touches.
pub struct Working<'c, C: ConnectionTrait> {
    db: &'c C,
    runs: HashMap<String, Slot<run::Model>>,
    deployments: HashMap<String, Slot<deployment::Model>>,
    health: HashMap<String, Slot<health::Model>>,
    commits: HashMap<(String, String), Slot<commit::Model>>,
    /// Executions (ids) whose deployments are all in `deployments`.
    executions_loaded: HashSet<String>,
    /// Pipelines whose uncredited commits are all in `commits`.
    pending_loaded: HashSet<String>,
    /// Pipelines whose failed, unrestored production deployments are loaded.
    unrestored_loaded: HashSet<String>,
    conformance: HashMap<String, conformance::Model>,
    budgets: Vec<stage_budget::Model>,
    streaks: Vec<streak::Model>,
    /// Per pipeline: whether a security error is open, and the one this
    /// batch opened (to insert).
    security_open: HashMap<String, bool>,
    security_opened: Vec<security_error::Model>,
    security_resolved: Vec<(String, DateTime<Utc>)>,
    /// Days whose rollups must be recomputed beyond those of the changed
    /// records' current times (a time that moved).
    days: crate::store::rollups::Dirty,
    /// The event being applied.
    event_id: String,
    /// Mainline changes, to notify about.
    pub mainline: Vec<crate::notify::Notice>,
}

fn time(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(from_timestamp)
}

fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

fn targets_json(targets: &[common::Target]) -> String {
    let pairs: Vec<(&str, &str)> = targets
        .iter()
        .map(|t| (t.account.as_str(), t.region.as_str()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn artifact_json(artifacts: &[common::ArtifactRef]) -> String {
    artifacts
        .first()
        .map(|a| {
            serde_json::json!({
                "digest": a.digest,
                "name": a.name,
                "sizeBytes": a.size_bytes,
                "commitSha": a.commit_sha,
                "execution": a.execution,
            })
            .to_string()
        })
        .unwrap_or_default()
}

fn is_production(stage: &Option<ev::StageContext>) -> bool {
    stage
        .as_ref()
        .is_some_and(|s| s.tier == common::Tier::Production as i32)
}

impl<'c, C: ConnectionTrait> Working<'c, C> {
    pub fn new(db: &'c C) -> Self {
        Working {
            db,
            runs: HashMap::new(),
            deployments: HashMap::new(),
            health: HashMap::new(),
            commits: HashMap::new(),
            executions_loaded: HashSet::new(),
            pending_loaded: HashSet::new(),
            unrestored_loaded: HashSet::new(),
            conformance: HashMap::new(),
            budgets: Vec::new(),
            streaks: Vec::new(),
            security_open: HashMap::new(),
            security_opened: Vec::new(),
            security_resolved: Vec::new(),
            days: Default::default(),
            event_id: String::new(),
            mainline: Vec::new(),
        }
    }

    /// Applies one event. Events this service does not use are ignored.
    pub async fn apply(&mut self, event: &ev::Event) -> Result<(), DbErr> {
        let Some(at) = time(&event.time) else {
            return Ok(());
        };
        self.event_id.clone_from(&event.id);
        match &event.payload {
            Some(P::ExecutionStarted(e)) => self.execution_started(e, at).await,
            Some(P::StageStarted(e)) => self.stage_started(e, at).await,
            Some(P::WaveSucceeded(e)) if e.wave == 1 => {
                let Some(ctx) = &e.context else { return Ok(()) };
                let stage = e.stage.as_ref().map(|s| s.stage.as_str()).unwrap_or("");
                let id = deployment_id(execution_id(&ctx.execution), stage);
                if let Some(d) = self.deployment(&id).await? {
                    d.first_wave_end_time = Some(time(&e.end_time).unwrap_or(at));
                }
                Ok(())
            }
            Some(P::StageSucceeded(e)) => self.stage_succeeded(e, at).await,
            Some(P::StageFailed(e)) => self.stage_failed(e, at).await,
            Some(P::RollbackStarted(e)) => {
                let Some(ctx) = &e.context else { return Ok(()) };
                let stage = e.stage.as_ref().map(|s| s.stage.as_str()).unwrap_or("");
                let restored_by = if e.restored_execution.is_empty() {
                    String::new()
                } else {
                    deployment_id(execution_id(&e.restored_execution), stage)
                };
                let id = deployment_id(execution_id(&ctx.execution), stage);
                if let Some(d) = self.deployment(&id).await? {
                    d.outcome = Outcome::RolledBack.as_str().to_owned();
                    d.change_failure = true;
                    d.failure_alarm = e.alarm.clone();
                    d.failure_detect_time = Some(time(&e.alarm_time).unwrap_or(at));
                    d.restored_by = restored_by;
                }
                Ok(())
            }
            Some(P::RollbackCompleted(e)) => {
                let Some(ctx) = &e.context else { return Ok(()) };
                let stage = e.stage.as_ref().map(|s| s.stage.as_str()).unwrap_or("");
                let id = deployment_id(execution_id(&ctx.execution), stage);
                let restored = e.state == exec::RollbackState::Succeeded as i32;
                if let Some(d) = self.deployment(&id).await? {
                    let end = time(&e.end_time).unwrap_or(at);
                    let before = (d.pipeline.clone(), d.project.clone(), d.end_time);
                    d.outcome = Outcome::RolledBack.as_str().to_owned();
                    d.end_time = Some(end);
                    if restored {
                        d.restore_time = Some(end);
                    } else {
                        d.restored_by.clear();
                    }
                    // Its day moves if the rollback ended on another.
                    let (pipeline, project, end_time) = before;
                    crate::store::rollups::mark(&mut self.days, &pipeline, &project, end_time);
                }
                Ok(())
            }
            Some(P::GateEvaluated(e)) => self.gate_evaluated(e, at).await,
            Some(P::StageHeld(ev::StageHeld {
                context: Some(ctx),
                stage: Some(stage),
                ..
            })) => self.stage_state(ctx, &stage.stage, "held", at).await,
            Some(P::ApprovalRequested(ev::ApprovalRequested {
                context: Some(ctx),
                stage: Some(stage),
                ..
            })) => {
                self.stage_state(ctx, &stage.stage, "waiting_approval", at)
                    .await
            }
            Some(P::ExecutionFinished(e)) => self.execution_finished(e, at).await,
            Some(P::AlarmStateChanged(e)) => self.alarm_changed(e, at).await,
            Some(P::PipelineRevisionCreated(e)) => {
                self.conformance.insert(
                    e.pipeline.clone(),
                    conformance::Model {
                        pipeline: e.pipeline.clone(),
                        project: e.project.clone(),
                        revision: e.revision.clone(),
                        security_percent: e.security_control_automation_percent,
                        update_time: at,
                    },
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The execution an event belongs to, for the events that have one.
pub fn context(e: &ev::Event) -> Option<&ev::ExecutionContext> {
    match e.payload.as_ref()? {
        P::ExecutionStarted(p) => p.context.as_ref(),
        P::StageStarted(p) => p.context.as_ref(),
        P::StageHeld(p) => p.context.as_ref(),
        P::StageSucceeded(p) => p.context.as_ref(),
        P::StageFailed(p) => p.context.as_ref(),
        P::ActionStarted(p) => p.context.as_ref(),
        P::ActionSucceeded(p) => p.context.as_ref(),
        P::ActionFailed(p) => p.context.as_ref(),
        P::GateEvaluated(p) => p.context.as_ref(),
        P::ApprovalRequested(p) => p.context.as_ref(),
        P::ApprovalRecorded(p) => p.context.as_ref(),
        P::WaveStarted(p) => p.context.as_ref(),
        P::WaveSucceeded(p) => p.context.as_ref(),
        P::BakeStarted(p) => p.context.as_ref(),
        P::BakeCompleted(p) => p.context.as_ref(),
        P::RollbackStarted(p) => p.context.as_ref(),
        P::RollbackCompleted(p) => p.context.as_ref(),
        P::ExecutionFinished(p) => p.context.as_ref(),
        P::ArtifactPublished(p) => p.context.as_ref(),
        P::PromotionBlocked(_)
        | P::PromotionUnblocked(_)
        | P::PipelineRevisionCreated(_)
        | P::AlarmStateChanged(_)
        | P::FreezeOverridden(_) => None,
    }
}
