//! Runs: their start and end, the commits they carry, security errors,
//! and the mainline health their ends move.

use super::*;

impl<'c, C: ConnectionTrait> Working<'c, C> {
    pub(super) async fn execution_started(
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

    pub(super) async fn gate_evaluated(
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

    pub(super) async fn execution_finished(
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
    pub(super) async fn move_health(
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
