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
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

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
            pending_loaded: HashSet::new(),
            unrestored_loaded: HashSet::new(),
            conformance: HashMap::new(),
            budgets: Vec::new(),
            streaks: Vec::new(),
            security_open: HashMap::new(),
            security_opened: Vec::new(),
            security_resolved: Vec::new(),
            event_id: String::new(),
            mainline: Vec::new(),
        }
    }

    /// Loads, a few queries per batch, the records the events touch (runs,
    /// deployments, health, the commits they carry; for pipelines deployed
    /// to production, the uncredited commits and unrestored failures), so
    /// applying them rarely reads again.
    pub async fn prefetch(&mut self, events: &[ev::Event]) -> Result<(), DbErr> {
        let mut executions = HashSet::new();
        let mut pipelines = HashSet::new();
        let mut shas = HashSet::new();
        let mut deployed = HashSet::new();
        for e in events {
            if let Some(ctx) = context(e) {
                executions.insert(ctx.execution.clone());
                pipelines.insert(ctx.pipeline.clone());
            }
            match &e.payload {
                Some(P::ExecutionStarted(s)) => {
                    shas.extend(s.commits.iter().map(|c| c.sha.clone()));
                }
                Some(P::StageSucceeded(s)) if is_production(&s.stage) => {
                    if let Some(ctx) = &s.context {
                        deployed.insert(ctx.pipeline.clone());
                    }
                }
                _ => {}
            }
        }
        let shas: Vec<String> = shas.into_iter().collect();
        for chunk in shas.chunks(500) {
            for c in commit::Entity::find()
                .filter(commit::Column::Sha.is_in(chunk.iter().cloned()))
                .filter(commit::Column::Pipeline.is_in(pipelines.iter().cloned()))
                .all(self.db)
                .await?
            {
                self.commits.insert(
                    (c.pipeline.clone(), c.sha.clone()),
                    Slot {
                        value: Some(c),
                        dirty: false,
                    },
                );
            }
        }
        for e in events {
            if let Some(P::ExecutionStarted(s)) = &e.payload
                && let Some(ctx) = &s.context
            {
                for c in &s.commits {
                    self.commits
                        .entry((ctx.pipeline.clone(), c.sha.clone()))
                        .or_insert(Slot {
                            value: None,
                            dirty: false,
                        });
                }
            }
        }
        let deployed: Vec<String> = deployed.into_iter().collect();
        for chunk in deployed.chunks(500) {
            for c in commit::Entity::find()
                .filter(commit::Column::Pipeline.is_in(chunk.iter().cloned()))
                .filter(commit::Column::Deployment.is_null())
                .all(self.db)
                .await?
            {
                self.commits
                    .entry((c.pipeline.clone(), c.sha.clone()))
                    .or_insert(Slot {
                        value: Some(c),
                        dirty: false,
                    });
            }
            for d in deployment::Entity::find()
                .filter(deployment::Column::Pipeline.is_in(chunk.iter().cloned()))
                .filter(deployment::Column::Tier.eq(common::Tier::Production as i32))
                .filter(deployment::Column::ChangeFailure.eq(true))
                .filter(deployment::Column::RestoreTime.is_null())
                .all(self.db)
                .await?
            {
                self.deployments.entry(d.id.clone()).or_insert(Slot {
                    value: Some(d),
                    dirty: false,
                });
            }
            self.pending_loaded.extend(chunk.iter().cloned());
            self.unrestored_loaded.extend(chunk.iter().cloned());
        }
        let executions: Vec<String> = executions.into_iter().collect();
        let pipelines: Vec<String> = pipelines.into_iter().collect();
        for chunk in executions.chunks(500) {
            for id in chunk {
                self.runs.entry(id.clone()).or_insert(Slot {
                    value: None,
                    dirty: false,
                });
            }
            for r in run::Entity::find()
                .filter(run::Column::Execution.is_in(chunk.iter().cloned()))
                .all(self.db)
                .await?
            {
                self.runs.insert(
                    r.execution.clone(),
                    Slot {
                        value: Some(r),
                        dirty: false,
                    },
                );
            }
            for d in deployment::Entity::find()
                .filter(deployment::Column::Execution.is_in(chunk.iter().cloned()))
                .all(self.db)
                .await?
            {
                self.deployments.insert(
                    d.id.clone(),
                    Slot {
                        value: Some(d),
                        dirty: false,
                    },
                );
            }
        }
        for chunk in pipelines.chunks(500) {
            for p in chunk {
                self.health.entry(p.clone()).or_insert(Slot {
                    value: None,
                    dirty: false,
                });
            }
            for h in health::Entity::find()
                .filter(health::Column::Pipeline.is_in(chunk.iter().cloned()))
                .all(self.db)
                .await?
            {
                self.health.insert(
                    h.pipeline.clone(),
                    Slot {
                        value: Some(h),
                        dirty: false,
                    },
                );
            }
        }
        Ok(())
    }

    async fn run(&mut self, execution: &str) -> Result<Option<&mut run::Model>, DbErr> {
        if !self.runs.contains_key(execution) {
            let found = run::Entity::find_by_id(execution.to_owned())
                .one(self.db)
                .await?;
            self.runs.insert(
                execution.to_owned(),
                Slot {
                    value: found,
                    dirty: false,
                },
            );
        }
        Ok(self.runs.get_mut(execution).and_then(|slot| {
            slot.dirty = true;
            slot.value.as_mut()
        }))
    }

    async fn deployment(&mut self, id: &str) -> Result<Option<&mut deployment::Model>, DbErr> {
        if !self.deployments.contains_key(id) {
            let found = deployment::Entity::find_by_id(id.to_owned())
                .one(self.db)
                .await?;
            self.deployments.insert(
                id.to_owned(),
                Slot {
                    value: found,
                    dirty: false,
                },
            );
        }
        Ok(self.deployments.get_mut(id).and_then(|slot| {
            slot.dirty = true;
            slot.value.as_mut()
        }))
    }

    async fn health(&mut self, pipeline: &str) -> Result<&mut Slot<health::Model>, DbErr> {
        if !self.health.contains_key(pipeline) {
            let found = health::Entity::find_by_id(pipeline.to_owned())
                .one(self.db)
                .await?;
            self.health.insert(
                pipeline.to_owned(),
                Slot {
                    value: found,
                    dirty: false,
                },
            );
        }
        let slot = self
            .health
            .get_mut(pipeline)
            .ok_or_else(|| DbErr::Custom("health slot vanished".into()))?;
        slot.dirty = true;
        Ok(slot)
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
                    d.outcome = Outcome::RolledBack.as_str().to_owned();
                    d.end_time = Some(end);
                    if restored {
                        d.restore_time = Some(end);
                    } else {
                        d.restored_by.clear();
                    }
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

    async fn execution_started(
        &mut self,
        e: &ev::ExecutionStarted,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let Some(ctx) = &e.context else { return Ok(()) };
        if self.run(&ctx.execution).await?.is_some() {
            return Ok(());
        }
        self.runs.insert(
            ctx.execution.clone(),
            Slot {
                value: Some(run::Model {
                    execution: ctx.execution.clone(),
                    pipeline: ctx.pipeline.clone(),
                    project: ctx.project.clone(),
                    pipeline_type: ctx.pipeline_type,
                    build_only: ctx.build_only,
                    create_time: at,
                    end_time: None,
                    outcome: Outcome::InProgress.as_str().to_owned(),
                    current_stage: String::new(),
                    stages: "[]".to_owned(),
                    failed_stage: String::new(),
                    failure_reason: String::new(),
                    approval_rejected: false,
                    update_time: at,
                }),
                dirty: true,
            },
        );
        if ctx.build_only {
            return Ok(());
        }
        let slot = self.health(&ctx.pipeline).await?;
        let h = slot
            .value
            .get_or_insert_with(|| new_health(&ctx.pipeline, &ctx.project, at));
        h.current_execution = ctx.execution.clone();
        h.update_time = at;
        for c in &e.commits {
            let key = (ctx.pipeline.clone(), c.sha.clone());
            if !self.commits.contains_key(&key) {
                let found = commit::Entity::find_by_id((key.0.clone(), key.1.clone()))
                    .one(self.db)
                    .await?;
                self.commits.insert(
                    key.clone(),
                    Slot {
                        value: found,
                        dirty: false,
                    },
                );
            }
            let Some(slot) = self.commits.get_mut(&key) else {
                continue;
            };
            if slot.value.is_none() {
                slot.value = Some(commit::Model {
                    pipeline: ctx.pipeline.clone(),
                    sha: c.sha.clone(),
                    project: ctx.project.clone(),
                    execution: ctx.execution.clone(),
                    author: c.author.clone(),
                    land_time: time(&c.land_time).unwrap_or(at),
                    commit_time: time(&c.commit_time),
                    first_seen: at,
                    deployment: None,
                    deploy_end_time: None,
                    lead_time_ms: None,
                    first_wave_lead_ms: None,
                });
                slot.dirty = true;
            }
        }
        Ok(())
    }

    async fn stage_started(
        &mut self,
        e: &ev::StageStarted,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let (Some(ctx), Some(stage)) = (&e.context, &e.stage) else {
            return Ok(());
        };
        self.stage_state(ctx, &stage.stage, "running", at).await?;
        if stage.environment.is_empty() {
            return Ok(());
        }
        let id = deployment_id(execution_id(&ctx.execution), &stage.stage);
        if self.deployment(&id).await?.is_some() {
            return Ok(());
        }
        self.deployments.insert(
            id.clone(),
            Slot {
                value: Some(deployment::Model {
                    id,
                    execution: ctx.execution.clone(),
                    pipeline: ctx.pipeline.clone(),
                    project: ctx.project.clone(),
                    pipeline_type: ctx.pipeline_type,
                    stage: stage.stage.clone(),
                    environment: stage.environment.clone(),
                    tier: stage.tier,
                    targets: targets_json(&e.targets),
                    artifact: artifact_json(&e.artifacts),
                    outcome: Outcome::InProgress.as_str().to_owned(),
                    start_time: at,
                    first_wave_end_time: None,
                    end_time: None,
                    change_failure: false,
                    failure_alarm: String::new(),
                    failure_detect_time: None,
                    restore_time: None,
                    restored_by: String::new(),
                    commit_count: 0,
                }),
                dirty: true,
            },
        );
        Ok(())
    }

    /// Records where a run's stage stands, for the live pipeline view.
    async fn stage_state(
        &mut self,
        ctx: &ev::ExecutionContext,
        stage: &str,
        state: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let Some(r) = self.run(&ctx.execution).await? else {
            return Ok(());
        };
        let mut stages: Vec<(String, String)> = serde_json::from_str(&r.stages).unwrap_or_default();
        match stages.iter_mut().find(|(name, _)| name == stage) {
            Some(entry) => entry.1 = state.to_owned(),
            None => stages.push((stage.to_owned(), state.to_owned())),
        }
        r.stages = serde_json::to_string(&stages).unwrap_or_else(|_| "[]".to_owned());
        r.current_stage = stage.to_owned();
        r.update_time = at;
        Ok(())
    }

    fn budget(
        &mut self,
        ctx: &ev::ExecutionContext,
        stage: &ev::StageContext,
        start: Option<DateTime<Utc>>,
        end: DateTime<Utc>,
        budget: &Option<prost_types::Duration>,
    ) {
        let budget_ms = budget.as_ref().map_or(0, |b| b.seconds * 1000);
        let Some(start) = start.filter(|_| budget_ms > 0) else {
            return;
        };
        self.budgets.push(stage_budget::Model {
            execution: ctx.execution.clone(),
            stage: stage.stage.clone(),
            pipeline: ctx.pipeline.clone(),
            project: ctx.project.clone(),
            tier: stage.tier,
            end_time: end,
            duration_ms: millis(start, end),
            budget_ms,
        });
    }

    async fn stage_succeeded(
        &mut self,
        e: &ev::StageSucceeded,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let (Some(ctx), Some(stage)) = (&e.context, &e.stage) else {
            return Ok(());
        };
        let end = time(&e.end_time).unwrap_or(at);
        self.budget(ctx, stage, time(&e.start_time), end, &e.budget);
        self.stage_state(ctx, &stage.stage, "succeeded", at).await?;
        if stage.environment.is_empty() {
            return Ok(());
        }
        let id = deployment_id(execution_id(&ctx.execution), &stage.stage);
        let Some(d) = self.deployment(&id).await? else {
            return Ok(());
        };
        d.outcome = Outcome::Succeeded.as_str().to_owned();
        d.end_time = Some(end);
        if !e.targets.is_empty() {
            d.targets = targets_json(&e.targets);
        }
        if d.first_wave_end_time.is_none() {
            d.first_wave_end_time = Some(end);
        }
        let first_wave_end = d.first_wave_end_time;
        if is_production(&e.stage) {
            self.credit_commits(ctx, &id, end, first_wave_end).await?;
            self.restore_earlier(&ctx.pipeline, &id, end).await?;
        }
        Ok(())
    }

    /// Credits the pipeline's uncredited trunk commits first seen no later
    /// than this run to production deployment `id`, completed at `end`.
    async fn credit_commits(
        &mut self,
        ctx: &ev::ExecutionContext,
        id: &str,
        end: DateTime<Utc>,
        first_wave_end: Option<DateTime<Utc>>,
    ) -> Result<(), DbErr> {
        if self.pending_loaded.insert(ctx.pipeline.clone()) {
            let pending = commit::Entity::find()
                .filter(commit::Column::Pipeline.eq(ctx.pipeline.as_str()))
                .filter(commit::Column::Deployment.is_null())
                .all(self.db)
                .await?;
            for c in pending {
                self.commits
                    .entry((c.pipeline.clone(), c.sha.clone()))
                    .or_insert(Slot {
                        value: Some(c),
                        dirty: false,
                    });
            }
        }
        let run_start = match self.run(&ctx.execution).await? {
            Some(r) => r.create_time,
            None => end,
        };
        let mut credited = 0;
        for slot in self.commits.values_mut() {
            let Some(c) = slot.value.as_mut() else {
                continue;
            };
            if c.pipeline != ctx.pipeline || c.deployment.is_some() || c.first_seen > run_start {
                continue;
            }
            c.deployment = Some(id.to_owned());
            c.deploy_end_time = Some(end);
            c.lead_time_ms = Some(millis(c.land_time, end));
            c.first_wave_lead_ms = first_wave_end.map(|t| millis(c.land_time, t));
            slot.dirty = true;
            credited += 1;
        }
        if let Some(d) = self.deployment(id).await? {
            d.commit_count = credited;
        }
        Ok(())
    }

    /// Production deployments of `pipeline` that failed and are not yet
    /// restored are restored by deployment `by`, completed at `end`.
    async fn restore_earlier(
        &mut self,
        pipeline: &str,
        by: &str,
        end: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        if self.unrestored_loaded.insert(pipeline.to_owned()) {
            let unrestored = deployment::Entity::find()
                .filter(deployment::Column::Pipeline.eq(pipeline))
                .filter(deployment::Column::Tier.eq(common::Tier::Production as i32))
                .filter(deployment::Column::ChangeFailure.eq(true))
                .filter(deployment::Column::RestoreTime.is_null())
                .all(self.db)
                .await?;
            for d in unrestored {
                self.deployments.entry(d.id.clone()).or_insert(Slot {
                    value: Some(d),
                    dirty: false,
                });
            }
        }
        for slot in self.deployments.values_mut() {
            let Some(d) = slot.value.as_mut() else {
                continue;
            };
            if d.pipeline == pipeline
                && d.id != by
                && d.tier == common::Tier::Production as i32
                && d.change_failure
                && d.restore_time.is_none()
                && d.failure_detect_time.is_some_and(|t| t <= end)
            {
                d.restore_time = Some(end);
                d.restored_by = by.to_owned();
                slot.dirty = true;
            }
        }
        Ok(())
    }

    async fn stage_failed(&mut self, e: &ev::StageFailed, at: DateTime<Utc>) -> Result<(), DbErr> {
        let (Some(ctx), Some(stage)) = (&e.context, &e.stage) else {
            return Ok(());
        };
        let end = time(&e.end_time).unwrap_or(at);
        self.budget(ctx, stage, time(&e.start_time), end, &e.budget);
        let state = match exec::StageState::try_from(e.state) {
            Ok(exec::StageState::RolledBack) => "rolled_back",
            Ok(exec::StageState::Cancelled) => "cancelled",
            _ => "failed",
        };
        self.stage_state(ctx, &stage.stage, state, at).await?;
        if let Some(r) = self.run(&ctx.execution).await? {
            r.failed_stage = stage.stage.clone();
            r.failure_reason = e.reason.clone();
            r.approval_rejected |= e.approval_rejected;
            r.update_time = at;
        }
        let id = deployment_id(execution_id(&ctx.execution), &stage.stage);
        if let Some(d) = self.deployment(&id).await? {
            let outcome = match exec::StageState::try_from(e.state) {
                Ok(exec::StageState::RolledBack) => Outcome::RolledBack,
                Ok(exec::StageState::Cancelled) => Outcome::Cancelled,
                _ => Outcome::Failed,
            };
            d.outcome = outcome.as_str().to_owned();
            d.end_time = Some(end);
        }
        Ok(())
    }

    async fn gate_evaluated(
        &mut self,
        e: &ev::GateEvaluated,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let Some(ctx) = &e.context else { return Ok(()) };
        if e.passed || !e.security_control || ctx.build_only {
            return Ok(());
        }
        if !self.security_open.contains_key(&ctx.pipeline) {
            let open = security_error::Entity::find()
                .filter(security_error::Column::Pipeline.eq(ctx.pipeline.as_str()))
                .filter(security_error::Column::ResolveTime.is_null())
                .one(self.db)
                .await?
                .is_some();
            self.security_open.insert(ctx.pipeline.clone(), open);
        }
        if self.security_open.get(&ctx.pipeline) == Some(&false) {
            self.security_open.insert(ctx.pipeline.clone(), true);
            self.security_opened.push(security_error::Model {
                id: 0,
                pipeline: ctx.pipeline.clone(),
                project: ctx.project.clone(),
                execution: ctx.execution.clone(),
                open_time: at,
                resolve_time: None,
            });
        }
        Ok(())
    }

    async fn execution_finished(
        &mut self,
        e: &ev::ExecutionFinished,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let Some(ctx) = &e.context else { return Ok(()) };
        let outcome = match exec::ExecutionState::try_from(e.outcome) {
            Ok(exec::ExecutionState::Succeeded) => Outcome::Succeeded,
            Ok(exec::ExecutionState::RolledBack) => Outcome::RolledBack,
            Ok(exec::ExecutionState::Cancelled) => Outcome::Cancelled,
            Ok(exec::ExecutionState::Superseded) => Outcome::Superseded,
            _ => Outcome::Failed,
        };
        let end = time(&e.end_time).unwrap_or(at);
        if self.run(&ctx.execution).await?.is_none() {
            // Its start was never seen (consumed before this service
            // existed, or trimmed from the stream): open it from here.
            let created = time(&e.create_time).unwrap_or(at);
            self.execution_started(
                &ev::ExecutionStarted {
                    context: Some(ctx.clone()),
                    commits: e.commits.clone(),
                    ..Default::default()
                },
                created,
            )
            .await?;
        }
        let Some(r) = self.run(&ctx.execution).await? else {
            return Ok(());
        };
        r.outcome = outcome.as_str().to_owned();
        r.end_time = Some(end);
        r.approval_rejected |= e.approval_rejected;
        if r.failed_stage.is_empty() {
            r.failed_stage = e.failed_stage.clone();
        }
        if r.failure_reason.is_empty() && outcome != Outcome::Succeeded {
            r.failure_reason = e.reason.clone();
        }
        r.update_time = at;
        let run = r.clone();
        // Deployments the run left open end with it.
        let open: Vec<String> = self
            .deployments
            .iter()
            .filter(|(_, s)| {
                s.value.as_ref().is_some_and(|d| {
                    d.execution == ctx.execution && d.outcome == Outcome::InProgress.as_str()
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in open {
            if let Some(d) = self.deployment(&id).await? {
                d.outcome = if outcome == Outcome::Succeeded {
                    Outcome::Failed
                } else {
                    outcome
                }
                .as_str()
                .to_owned();
                d.end_time = Some(end);
            }
        }
        if run.build_only {
            return Ok(());
        }
        if outcome == Outcome::Succeeded && self.security_open.get(&ctx.pipeline) != Some(&false) {
            // Resolves whatever is open, stored or opened in this batch.
            for opened in self
                .security_opened
                .iter_mut()
                .filter(|s| s.pipeline == ctx.pipeline && s.resolve_time.is_none())
            {
                opened.resolve_time = Some(end);
            }
            self.security_resolved.push((ctx.pipeline.clone(), end));
            self.security_open.insert(ctx.pipeline.clone(), false);
        }
        self.move_health(&run, outcome, at).await
    }

    /// The mainline health after trunk run `run` ended with `outcome`.
    async fn move_health(
        &mut self,
        run: &run::Model,
        outcome: Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let green = match outcome {
            Outcome::Succeeded => true,
            Outcome::Failed | Outcome::RolledBack if !run.approval_rejected => false,
            _ => return Ok(()),
        };
        let slot = self.health(&run.pipeline).await?;
        let h = slot
            .value
            .get_or_insert_with(|| new_health(&run.pipeline, &run.project, at));
        h.update_time = at;
        // A run that started before the last counted one finished late:
        // the newer run already decided the state.
        if h.last_start_time.is_some_and(|t| run.create_time < t) {
            return Ok(());
        }
        let state = if green {
            HealthState::Green
        } else {
            HealthState::Red
        };
        let previous = HealthState::parse(&h.state).unwrap_or(HealthState::Unknown);
        let mut ended = None;
        let mut turned = None;
        if previous != state {
            if state == HealthState::Red || previous == HealthState::Red {
                turned = Some(state == HealthState::Green);
            }
            if let (Some(since), HealthState::Green | HealthState::Red) = (h.since, previous) {
                ended = Some(streak::Model {
                    id: 0,
                    pipeline: run.pipeline.clone(),
                    project: run.project.clone(),
                    green: previous == HealthState::Green,
                    start_time: since,
                    end_time: run.create_time,
                });
            }
            h.state = state.as_str().to_owned();
            h.since = Some(run.create_time);
        }
        h.last_execution = run.execution.clone();
        h.last_start_time = Some(run.create_time);
        h.last_outcome = outcome.as_str().to_owned();
        if green {
            h.failed_stage.clear();
            h.failure_reason.clear();
        } else {
            h.failed_stage = run.failed_stage.clone();
            h.failure_reason = run.failure_reason.clone();
        }
        self.streaks.extend(ended);
        if let Some(green) = turned {
            self.mainline
                .push(crate::notify::mainline(&self.event_id, at, run, green));
        }
        Ok(())
    }

    async fn alarm_changed(
        &mut self,
        e: &ev::AlarmStateChanged,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let scope = e.scope.clone().unwrap_or_default();
        if e.state != exec::AlarmState::Alarm as i32 || scope.pipeline.is_empty() {
            return Ok(());
        }
        // The pipeline's last completed production deployment, in this
        // batch or stored.
        let mut query = deployment::Entity::find()
            .filter(deployment::Column::Pipeline.eq(scope.pipeline.as_str()))
            .filter(deployment::Column::Tier.eq(common::Tier::Production as i32))
            .filter(deployment::Column::Outcome.eq(Outcome::Succeeded.as_str()))
            .filter(deployment::Column::EndTime.lte(at))
            .order_by_desc(deployment::Column::EndTime);
        if !scope.environment.is_empty() {
            query = query.filter(deployment::Column::Environment.eq(scope.environment.as_str()));
        }
        let stored = query.one(self.db).await?;
        let in_batch = self
            .deployments
            .values()
            .filter_map(|s| s.value.as_ref())
            .filter(|d| {
                d.pipeline == scope.pipeline
                    && d.tier == common::Tier::Production as i32
                    && d.outcome == Outcome::Succeeded.as_str()
                    && d.end_time.is_some_and(|t| t <= at)
                    && (scope.environment.is_empty() || d.environment == scope.environment)
            })
            .max_by_key(|d| d.end_time)
            .cloned();
        let last = [stored, in_batch]
            .into_iter()
            .flatten()
            .max_by_key(|d| d.end_time);
        let Some(last) = last else { return Ok(()) };
        let Some(completed) = last.end_time.filter(|t| at - *t <= ALARM_ATTRIBUTION) else {
            return Ok(());
        };
        // A production deployment started since belongs to the alarm (its
        // own rollback records the failure), not the one before it.
        let newer_stored = deployment::Entity::find()
            .filter(deployment::Column::Pipeline.eq(scope.pipeline.as_str()))
            .filter(deployment::Column::Tier.eq(common::Tier::Production as i32))
            .filter(deployment::Column::StartTime.gt(completed))
            .filter(deployment::Column::StartTime.lte(at))
            .one(self.db)
            .await?
            .is_some();
        let newer_in_batch = self
            .deployments
            .values()
            .filter_map(|s| s.value.as_ref())
            .any(|d| {
                d.pipeline == scope.pipeline
                    && d.tier == common::Tier::Production as i32
                    && d.start_time > completed
                    && d.start_time <= at
            });
        if newer_stored || newer_in_batch {
            return Ok(());
        }
        if let Some(d) = self.deployment(&last.id).await?
            && !d.change_failure
        {
            d.change_failure = true;
            d.failure_alarm = e.alarm.clone();
            d.failure_detect_time = Some(at);
        }
        Ok(())
    }

    /// Writes every changed record.
    pub async fn save(self) -> Result<(), DbErr> {
        use sea_orm::sea_query::OnConflict;
        use sea_orm::{ActiveModelTrait, IntoActiveModel};

        fn dirty<T: Clone>(map: HashMap<impl std::hash::Hash + Eq, Slot<T>>) -> Vec<T> {
            map.into_values()
                .filter(|s| s.dirty)
                .filter_map(|s| s.value)
                .collect()
        }
        let db = self.db;
        for chunk in dirty(self.runs).chunks(200) {
            run::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                .on_conflict(
                    OnConflict::column(run::Column::Execution)
                        .update_columns([
                            run::Column::Outcome,
                            run::Column::EndTime,
                            run::Column::CurrentStage,
                            run::Column::Stages,
                            run::Column::FailedStage,
                            run::Column::FailureReason,
                            run::Column::ApprovalRejected,
                            run::Column::UpdateTime,
                        ])
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
        for chunk in dirty(self.deployments).chunks(200) {
            deployment::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                .on_conflict(
                    OnConflict::column(deployment::Column::Id)
                        .update_columns([
                            deployment::Column::Targets,
                            deployment::Column::Outcome,
                            deployment::Column::FirstWaveEndTime,
                            deployment::Column::EndTime,
                            deployment::Column::ChangeFailure,
                            deployment::Column::FailureAlarm,
                            deployment::Column::FailureDetectTime,
                            deployment::Column::RestoreTime,
                            deployment::Column::RestoredBy,
                            deployment::Column::CommitCount,
                        ])
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
        for chunk in dirty(self.health).chunks(200) {
            health::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                .on_conflict(
                    OnConflict::column(health::Column::Pipeline)
                        .update_columns([
                            health::Column::State,
                            health::Column::Since,
                            health::Column::LastExecution,
                            health::Column::LastStartTime,
                            health::Column::LastOutcome,
                            health::Column::FailedStage,
                            health::Column::FailureReason,
                            health::Column::CurrentExecution,
                            health::Column::UpdateTime,
                        ])
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
        for chunk in dirty(self.commits).chunks(200) {
            commit::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                .on_conflict(
                    OnConflict::columns([commit::Column::Pipeline, commit::Column::Sha])
                        .update_columns([
                            commit::Column::Deployment,
                            commit::Column::DeployEndTime,
                            commit::Column::LeadTimeMs,
                            commit::Column::FirstWaveLeadMs,
                        ])
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
        for chunk in self
            .conformance
            .into_values()
            .collect::<Vec<_>>()
            .chunks(200)
        {
            conformance::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                .on_conflict(
                    OnConflict::column(conformance::Column::Pipeline)
                        .update_columns([
                            conformance::Column::Project,
                            conformance::Column::Revision,
                            conformance::Column::SecurityPercent,
                            conformance::Column::UpdateTime,
                        ])
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
        for chunk in self.budgets.chunks(200) {
            stage_budget::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                .on_conflict_do_nothing_on([
                    stage_budget::Column::Execution,
                    stage_budget::Column::Stage,
                ])
                .exec(db)
                .await?;
        }
        // Resolutions apply to errors stored before this batch; the ones it
        // opened carry their resolution already.
        for (pipeline, end) in &self.security_resolved {
            security_error::Entity::update_many()
                .col_expr(
                    security_error::Column::ResolveTime,
                    sea_orm::sea_query::Expr::value(*end),
                )
                .filter(security_error::Column::Pipeline.eq(pipeline.as_str()))
                .filter(security_error::Column::ResolveTime.is_null())
                .filter(security_error::Column::OpenTime.lte(*end))
                .exec(db)
                .await?;
        }
        for s in self.security_opened {
            let mut active = s.into_active_model();
            active.id = sea_orm::ActiveValue::NotSet;
            active.insert(db).await?;
        }
        for s in self.streaks {
            let mut active = s.into_active_model();
            active.id = sea_orm::ActiveValue::NotSet;
            active.insert(db).await?;
        }
        Ok(())
    }
}

fn new_health(pipeline: &str, project: &str, at: DateTime<Utc>) -> health::Model {
    health::Model {
        pipeline: pipeline.to_owned(),
        project: project.to_owned(),
        state: HealthState::Unknown.as_str().to_owned(),
        since: None,
        last_execution: String::new(),
        last_start_time: None,
        last_outcome: String::new(),
        failed_stage: String::new(),
        failure_reason: String::new(),
        current_execution: String::new(),
        update_time: at,
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
