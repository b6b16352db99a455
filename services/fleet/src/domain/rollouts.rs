//! Baseline rollouts: planned here, applied by an account-fleet pipeline
//! execution whose fleet stage deploys the planned waves (it asks
//! ResolveTargets with the rollout's name).

use std::collections::{BTreeMap, BTreeSet};

use super::{Fleet, Page, Planned, request_key, settle};
use crate::error::Error;
use crate::model::{Principal, Rollout, RolloutState, Selector, Strategy};
use crate::names::{self, VersionRef, check_id};

/// The execution parameters a rollout execution carries.
pub const ROLLOUT_PARAMETER: &str = "ROLLOUT";
pub const VERSION_PARAMETER: &str = "BASELINE_VERSION";
pub const DIGEST_PARAMETER: &str = "BASELINE_DIGEST";

#[derive(Debug, Clone)]
pub struct NewRollout {
    /// Generated when empty.
    pub id: String,
    pub version: VersionRef,
    pub selector: Selector,
    pub strategy: Strategy,
    /// Empty: the configured rollout pipeline.
    pub pipeline: String,
    /// When set, the plan must still have this digest.
    pub plan_digest: String,
    pub principal: Principal,
}

impl Fleet {
    /// Plans a rollout, stores it with its plan, and starts its execution.
    pub async fn start_rollout(
        &self,
        mut new: NewRollout,
        request_id: &str,
    ) -> Result<Rollout, Error> {
        // The key is taken before an id is generated, so a retry matches.
        let key = request_key(request_id, "StartRollout", &new)?;
        if new.id.is_empty() {
            new.id = names::generate_id("rollout");
        } else {
            check_id("rollout_id", &new.id)?;
        }
        if new.pipeline.is_empty() {
            new.pipeline = self.rollout_pipeline.clone();
        }
        names::check_pipeline("pipeline", &new.pipeline)?;
        let rollout = names::rollout_name(&new.id);
        let version = new.version.clone();
        self.store
            .baseline_version(&version, false)
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) => {
                    Error::invalid("baseline_version", format!("{name} does not exist"))
                }
                e => e,
            })?;
        let planned = self
            .planned(
                Some(&version),
                new.selector,
                new.strategy,
                &new.pipeline,
                &rollout,
            )
            .await?;
        if !new.plan_digest.is_empty() && new.plan_digest != planned.plan.digest {
            return Err(Error::PlanChanged {
                expected: new.plan_digest,
                actual: planned.plan.digest,
            });
        }
        if !planned.active_freezes.is_empty() {
            let windows: Vec<String> = planned
                .active_freezes
                .iter()
                .map(|w| format!("{} ({})", names::freeze_window_name(&w.ou, &w.id), w.reason))
                .collect();
            return Err(Error::precondition(
                "FROZEN",
                rollout.clone(),
                format!(
                    "held by freeze window {}; override it for this rollout or wait for it to end",
                    windows.join(", ")
                ),
            ));
        }
        if planned.plan.waves.is_empty() {
            return Err(Error::precondition(
                "NO_TARGETS",
                version.name(),
                format!(
                    "no ACTIVE account desires {}: nothing to roll out",
                    names::baseline_name(&version.baseline)
                ),
            ));
        }
        let record = Rollout {
            id: new.id.clone(),
            baseline_version: version,
            plan: planned.plan,
            state: RolloutState::Pending,
            state_reason: "starting its execution".to_owned(),
            pipeline: new.pipeline,
            execution: String::new(),
            current_wave: 0,
            reverted_accounts: Vec::new(),
            created_by: new.principal,
            create_time: self.now(),
            start_time: None,
            end_time: None,
        };
        let outcome = self.store.insert_rollout(record, key.as_ref()).await?;
        let stored = settle(outcome, |name| async move {
            Ok(self
                .store
                .rollout(names::rollout_id("name", &name)?)
                .await?)
        })
        .await?;
        tracing::info!(%rollout, version = %stored.baseline_version.name(), waves = stored.plan.waves.len(), "rollout planned");
        Ok(self.launch(stored).await)
    }

    /// Starts the rollout's execution if it has none yet; a failure leaves
    /// it PENDING for the tracker to try again.
    pub(super) async fn launch(&self, r: Rollout) -> Rollout {
        if !r.execution.is_empty() || r.state.is_final() {
            return r;
        }
        let version = match self
            .store
            .baseline_version(&r.baseline_version, false)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(rollout = %r.id, error = %e, "cannot read the rollout's baseline version");
                return r;
            }
        };
        let parameters = BTreeMap::from([
            (ROLLOUT_PARAMETER.to_owned(), names::rollout_name(&r.id)),
            (VERSION_PARAMETER.to_owned(), r.baseline_version.name()),
            (DIGEST_PARAMETER.to_owned(), version.digest),
        ]);
        let started = self
            .executions
            .start(
                &r.pipeline,
                parameters,
                &format!("fleet-rollout-{}", r.id),
                &r.created_by,
            )
            .await;
        let now = self.now();
        let result = match started {
            Ok(execution) => {
                tracing::info!(rollout = %r.id, %execution, "rollout execution started");
                self.store
                    .update_rollout(&r.id, move |r| {
                        r.execution = execution.clone();
                        r.state = RolloutState::Running;
                        r.state_reason = "applying waves".to_owned();
                        r.start_time = Some(now);
                    })
                    .await
            }
            Err(status) => {
                tracing::warn!(rollout = %r.id, error = %status.message(), "rollout execution not started; will retry");
                let reason = format!("waiting to start {}: {}", r.pipeline, status.message());
                self.store
                    .update_rollout(&r.id, move |r| r.state_reason = reason.clone())
                    .await
            }
        };
        result.unwrap_or(r)
    }

    pub async fn rollout(&self, id: &str) -> Result<Rollout, Error> {
        Ok(self.store.rollout(id).await?)
    }

    /// Rollouts newest first; the token is the last one's position.
    pub async fn list_rollouts(
        &self,
        baseline: Option<&str>,
        states: &[RolloutState],
        size: u64,
        token: &str,
    ) -> Result<Page<Rollout>, Error> {
        let before = if token.is_empty() {
            None
        } else {
            Some(
                token
                    .parse::<i64>()
                    .map_err(|_| Error::invalid("page_token", "not a token this list returned"))?,
            )
        };
        let mut rows = self
            .store
            .list_rollouts(baseline, states, before, size + 1)
            .await?;
        let next_page_token = if rows.len() as u64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|(seq, _)| seq.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Page {
            items: rows.into_iter().map(|(_, r)| r).collect(),
            next_page_token,
        })
    }

    /// A rollout's planned waves, with the freezes that hold it now.
    pub async fn rollout_targets(&self, id: &str, pipeline: &str) -> Result<Planned, Error> {
        let r = self
            .store
            .rollout(id)
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) => {
                    Error::invalid("rollout", format!("{name} does not exist"))
                }
                e => e,
            })?;
        if r.pipeline != pipeline {
            return Err(Error::invalid(
                "pipeline",
                format!(
                    "{} is applied by {}, not {pipeline:?}",
                    names::rollout_name(id),
                    r.pipeline
                ),
            ));
        }
        if r.state.is_final() {
            return Err(Error::invalid(
                "rollout",
                format!(
                    "{} has ended ({})",
                    names::rollout_name(id),
                    r.state.as_str()
                ),
            ));
        }
        let accounts: BTreeSet<&str> = r
            .plan
            .waves
            .iter()
            .flat_map(|w| w.targets.iter().map(|t| t.account.as_str()))
            .collect();
        let filter = crate::store::AccountFilter {
            ids: accounts.into_iter().map(str::to_owned).collect(),
            ..crate::store::AccountFilter::default()
        };
        let ous: BTreeSet<String> = self
            .store
            .list_accounts(&filter, None, None)
            .await?
            .iter()
            .flat_map(|a| crate::model::path_ids(&a.ou_path))
            .collect();
        let active_freezes = self
            .holding_freezes(&ous, pipeline, &names::rollout_name(&r.id))
            .await?;
        Ok(Planned {
            plan: r.plan,
            active_freezes,
        })
    }
}
