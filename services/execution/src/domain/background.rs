//! What the execution service does in the background: the reconciler
//! (expired leases, lost dispatches, held executions, rollouts, approval
//! deadlines), the outbox relay, and the follow-ups after a step
//! (supersede, wake).

use std::time::Duration;

use chrono::Utc;

use super::Executions;
use crate::engine;
use crate::error::Error;
use crate::model::*;
use crate::store::StoreError;

impl Executions {
    /// Re-dispatches attempts whose lease expired, and queued attempts no
    /// worker picked up; returns how many.
    pub async fn reconcile(&self) -> Result<usize, Error> {
        let now = Utc::now();
        let mut changed = 0;
        for (execution, action, attempt) in self.store.expired_leases(now, 100).await? {
            let step = self
                .store
                .update(&execution, |s| {
                    engine::expire_lease(s, &action, attempt, Utc::now())
                })
                .await;
            let Some((_, done)) = logged("expiring a lease", &execution, step) else {
                continue;
            };
            if done {
                tracing::warn!(%execution, %action, attempt, "lease expired; attempt dispatched again");
                changed += 1;
            }
        }
        let before = now - chrono::Duration::from_std(self.redispatch_after).unwrap_or_default();
        for (execution, action) in self.store.stale_queued(before, 100).await? {
            let step = self
                .store
                .update(&execution, |s| engine::redispatch(s, &action, Utc::now()))
                .await;
            let Some((_, done)) = logged("re-dispatching", &execution, step) else {
                continue;
            };
            if done {
                tracing::info!(%execution, %action, "queued attempt dispatched again");
                changed += 1;
            }
        }
        for execution in self.store.approvals_expired(now, 100).await? {
            let step = self
                .store
                .update(&execution, |s| engine::advance(s, Utc::now()))
                .await;
            if let Some((after, _)) = logged("ending an approval wait", &execution, step) {
                tracing::info!(%execution, state = after.execution.state.as_str(), "approval wait timed out");
                self.follow_up(&after).await;
                changed += 1;
            }
        }
        changed += self.wake(None).await?;
        changed += self.tick_rollouts().await?;
        match self.fire_triggers().await {
            Ok(started) => changed += started,
            Err(e) => tracing::warn!(error = %e, "firing triggers failed"),
        }
        if changed > 0 {
            self.relay_now.notify_one();
        }
        Ok(changed)
    }

    /// What other executions of the pipeline must do after a change:
    /// when this one released a stage, the executions waiting for it try
    /// again; when this one started waiting at a stage in superseded mode,
    /// older executions waiting at the same stage are superseded.
    pub(super) async fn follow_up(&self, s: &Snapshot) {
        let released = s.transitions.iter().any(|t| {
            matches!(
                t,
                Transition::StageEnded { .. } | Transition::ExecutionFinished
            )
        });
        let held_at: Vec<i32> = s
            .transitions
            .iter()
            .filter_map(|t| match t {
                Transition::StageHeld { stage } => Some(*stage),
                _ => None,
            })
            .collect();
        if let Err(e) = self.follow_up_inner(s, released, &held_at).await {
            // The reconciler retries waiters every pass; nothing is lost.
            tracing::warn!(error = %e, execution = %s.execution.id, "follow-up failed");
        }
    }

    async fn follow_up_inner(
        &self,
        s: &Snapshot,
        released: bool,
        held_at: &[i32],
    ) -> Result<(), Error> {
        self.supersede_older(s, held_at).await?;
        if !held_at.is_empty() {
            self.resolve_fleet_targets(s).await;
        }
        if released {
            self.wake(Some(&s.execution.pipeline)).await?;
        }
        let published = s.transitions.contains(&Transition::ExecutionFinished)
            && s.execution.state == ExecutionState::Succeeded
            && !s.execution.build_only;
        if published {
            // Off the caller's path (a worker's report, say): the
            // reconciler's task fires it now, and every pass retries.
            self.triggers_now.notify_one();
        }
        self.relay_now.notify_one();
        Ok(())
    }

    /// In superseded mode, an execution that starts waiting at a stage
    /// replaces the older executions waiting at the same stage.
    async fn supersede_older(&self, s: &Snapshot, held_at: &[i32]) -> Result<(), Error> {
        if s.execution.mode != Mode::Superseded || held_at.is_empty() {
            return Ok(());
        }
        for older in self.all_held(Some(&s.execution.pipeline)).await? {
            if older >= s.execution.id {
                continue;
            }
            let by = s.execution.id.clone();
            let (_, superseded) = self
                .store
                .update(&older, |o| {
                    // Only a newer run of the same branch replaces an older one.
                    let waiting_here = o.execution.branch == s.execution.branch
                        && o.stages
                            .iter()
                            .any(|st| st.state == StageState::Held && held_at.contains(&st.index));
                    waiting_here && engine::supersede(o, &by, Utc::now())
                })
                .await?;
            if superseded {
                tracing::info!(execution = %older, by = %s.execution.id, "execution superseded");
            }
        }
        Ok(())
    }

    /// Every held execution (of one pipeline or all), oldest first, read a
    /// page at a time.
    async fn all_held(&self, pipeline: Option<&str>) -> Result<Vec<String>, Error> {
        let mut all: Vec<String> = Vec::new();
        loop {
            let after = all.last().cloned().unwrap_or_default();
            let page = self.store.held(pipeline, &after, PASS_PAGE).await?;
            let full = page.len() as u64 == PASS_PAGE;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Every execution in the middle of a rollout (for the health probes).
    pub async fn rolling_out_ids(&self) -> Result<Vec<String>, Error> {
        self.all_rolling_out().await
    }

    /// Every execution in the middle of a rollout, read a page at a time.
    async fn all_rolling_out(&self) -> Result<Vec<String>, Error> {
        let mut all: Vec<String> = Vec::new();
        loop {
            let after = all.last().cloned().unwrap_or_default();
            let page = self.store.rolling_out(&after, PASS_PAGE).await?;
            let full = page.len() as u64 == PASS_PAGE;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Moves rollouts on: bakes that ended, alarms that fired.
    pub(super) async fn tick_rollouts(&self) -> Result<usize, Error> {
        let mut moved = 0;
        for id in self.all_rolling_out().await? {
            let step = self
                .store
                .update(&id, |s| engine::advance(s, Utc::now()))
                .await;
            let Some((after, _)) = logged("advancing a rollout", &id, step) else {
                continue;
            };
            if !after.transitions.is_empty() {
                moved += 1;
                self.follow_up(&after).await;
            }
        }
        Ok(moved)
    }

    /// Lets executions waiting for a stage try to enter it again, oldest
    /// first (in superseded mode only the newest is left waiting anyway).
    pub(super) async fn wake(&self, pipeline: Option<&str>) -> Result<usize, Error> {
        let mut moved = 0;
        for id in self.all_held(pipeline).await? {
            let step = self
                .store
                .update(&id, |s| engine::advance(s, Utc::now()))
                .await;
            let Some((mut after, _)) = logged("waking", &id, step) else {
                continue;
            };
            if let Some(resolved) = self.resolve_fleet_targets(&after).await {
                after = resolved;
            }
            if after.execution.state.is_final() || after.execution.state == ExecutionState::Queued {
                let held_at: Vec<i32> = after
                    .stages
                    .iter()
                    .filter(|st| st.state == StageState::Held)
                    .map(|st| st.index)
                    .collect();
                self.supersede_older(&after, &held_at).await?;
            } else {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Asks the fleet service for the waves of the fleet stage `s` waits
    /// at, if any, and applies the answer; returns the execution after it.
    async fn resolve_fleet_targets(&self, s: &Snapshot) -> Option<Snapshot> {
        let (stage, targets) = engine::awaiting_targets(s)?;
        let pipeline = format!("pipelines/{}", s.execution.pipeline);
        let rollout = s.execution.parameters.get(crate::fleet::ROLLOUT_PARAMETER);
        let resolution = self
            .targets
            .resolve(&pipeline, rollout.map(String::as_str), &targets)
            .await;
        if let engine::Resolution::Unavailable(why) = &resolution {
            tracing::warn!(execution = %s.execution.id, stage, reason = %why, "fleet targets not resolved");
        }
        let step = self
            .store
            .update(&s.execution.id, |s| {
                engine::resolve_fleet_targets(s, stage, resolution.clone(), Utc::now())
            })
            .await;
        let (after, changed) = logged("resolving fleet targets", &s.execution.id, step)?;
        if changed {
            let stage = after.stages.iter().find(|st| st.index == stage);
            tracing::info!(
                execution = %after.execution.id,
                waves = stage.map_or(0, |st| st.waves.len()),
                state = stage.map_or("", |st| st.state.as_str()),
                "fleet targets resolved"
            );
            self.relay_now.notify_one();
        }
        Some(after)
    }

    /// Relays outbox messages to the queue, oldest first; returns how many.
    /// A message is deleted only after the queue took it, so a Redis outage
    /// delays messages and loses none (a message may be sent twice; readers
    /// are idempotent).
    pub async fn relay(&self) -> Result<usize, Error> {
        let pending = self.store.pending_outbox(256).await?;
        let mut sent = Vec::with_capacity(pending.len());
        for (id, topic, payload) in &pending {
            if let Err(e) = self.queue.publish(topic, payload).await {
                tracing::warn!(error = %e, "relaying to the queue failed; will retry");
                break;
            }
            sent.push(*id);
        }
        self.store.delete_outbox(&sent).await?;
        Ok(sent.len())
    }

    /// Runs [`Self::relay`] whenever a change commits, and at least every second.
    pub fn spawn_relay(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let woken = this.relay_now.notified();
                match this.relay().await {
                    // A full batch: more may be waiting.
                    Ok(256) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox relay pass failed"),
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), woken).await;
            }
        })
    }

    /// Runs [`Self::reconcile`] every `interval` until the task is dropped.
    pub fn spawn_reconciler(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        if let Err(e) = this.reconcile().await {
                            tracing::warn!(error = %e, "reconciler pass failed");
                        }
                    }
                    _ = this.triggers_now.notified() => {
                        if let Err(e) = this.fire_triggers().await {
                            tracing::warn!(error = %e, "firing triggers failed");
                        }
                    }
                }
            }
        })
    }
}

/// A failed step of the reconciler for one execution: logged, and the pass
/// goes on with the next one (the step is tried again next pass).
fn logged<T>(what: &str, execution: &str, step: Result<T, StoreError>) -> Option<T> {
    step.inspect_err(|e| tracing::warn!(%execution, error = %e, "{what} failed"))
        .ok()
}

/// Rows the reconciler reads per query.
const PASS_PAGE: u64 = 200;
