//! Loading the records a batch touches: prefetched in a few queries, then
//! read one by one only on a miss.

use super::*;

impl<'c, C: ConnectionTrait> Working<'c, C> {
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
            self.executions_loaded
                .extend(chunk.iter().map(|e| execution_id(e).to_owned()));
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
            // Which of them have a security error open.
            for p in chunk {
                self.security_open.insert(p.clone(), false);
            }
            for open in security_error::Entity::find()
                .select_only()
                .column(security_error::Column::Pipeline)
                .filter(security_error::Column::Pipeline.is_in(chunk.iter().cloned()))
                .filter(security_error::Column::ResolveTime.is_null())
                .into_tuple::<String>()
                .all(self.db)
                .await?
            {
                self.security_open.insert(open, true);
            }
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

    pub(super) async fn run(&mut self, execution: &str) -> Result<Option<&mut run::Model>, DbErr> {
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

    pub(super) async fn deployment(
        &mut self,
        id: &str,
    ) -> Result<Option<&mut deployment::Model>, DbErr> {
        // Every deployment of a prefetched execution is loaded already.
        let prefetched = id
            .split_once('-')
            .is_some_and(|(execution, _)| self.executions_loaded.contains(execution));
        if !self.deployments.contains_key(id) && !prefetched {
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

    pub(super) async fn health(
        &mut self,
        pipeline: &str,
    ) -> Result<&mut Slot<health::Model>, DbErr> {
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
}
