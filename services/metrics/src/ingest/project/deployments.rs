//! Deployment records: stages starting and ending, commits credited to
//! production deployments, rollbacks, restorations, and alarms after a
//! deployment completed.

use super::*;

impl<'c, C: ConnectionTrait> Working<'c, C> {
    pub(super) async fn stage_started(
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
    pub(super) async fn stage_state(
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

    pub(super) fn budget(
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

    pub(super) async fn stage_succeeded(
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
    pub(super) async fn credit_commits(
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
    pub(super) async fn restore_earlier(
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

    pub(super) async fn stage_failed(
        &mut self,
        e: &ev::StageFailed,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
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

    pub(super) async fn alarm_changed(
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
}
