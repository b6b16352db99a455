//! The execution service's logic, free of gRPC: start executions from a
//! pinned revision, hand attempts to workers, apply their reports, and
//! recover attempts whose worker went away.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::{self, ApprovalError, AttemptReport, ReportError, Reported};
use crate::error::Error;
use crate::model::*;
use crate::specs::SpecSource;
use crate::store::{AlarmRecord, BlockerRecord, Lease, Store, StoreError};
use conveyor_platform::queue::Queue;
use tokio::sync::Notify;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// Who asks for a run of which commit.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub pipeline: String,
    pub commit_sha: String,
    pub branch: String,
    pub author: String,
    pub message: String,
    pub commit_time: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
}

#[derive(Clone)]
pub struct Executions {
    store: Store,
    specs: Arc<dyn SpecSource>,
    queue: Arc<dyn Queue>,
    /// Wakes the outbox relay after a commit, so dispatch is not a poll away.
    relay_now: Arc<Notify>,
    /// How long a claimed attempt stays leased without a heartbeat.
    pub lease: Duration,
    /// Queued attempts not claimed for this long are dispatched again
    /// (their message may have been lost with Redis).
    pub redispatch_after: Duration,
    /// Output kept per attempt; the rest is dropped behind a marker.
    pub log_limit_bytes: i64,
    artifacts: crate::artifacts::Artifacts,
}

impl Executions {
    pub fn new(
        store: Store,
        specs: Arc<dyn SpecSource>,
        queue: Arc<dyn Queue>,
        lease: Duration,
        artifacts: crate::artifacts::Artifacts,
    ) -> Self {
        Executions {
            artifacts,
            store,
            specs,
            queue,
            relay_now: Arc::new(Notify::new()),
            lease,
            redispatch_after: Duration::from_secs(30),
            log_limit_bytes: 1 << 20,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn artifacts(&self) -> &crate::artifacts::Artifacts {
        &self.artifacts
    }

    pub async fn start(&self, request: StartRequest) -> Result<Snapshot, Error> {
        check_name(&request.pipeline, "parent")?;
        if request.commit_sha.len() > 64
            || !request.commit_sha.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::invalid(
                "commit.sha",
                "a hex commit id of at most 64 characters",
            ));
        }
        if request.branch.len() > 255 || request.author.len() > 256 || request.message.len() > 4096
        {
            return Err(Error::invalid(
                "commit",
                "branch, author or message is too long",
            ));
        }
        let pinned = self.specs.current(&request.pipeline).await?;
        let spec = &pinned.document.spec;
        let branch = if request.branch.is_empty() {
            spec.source.trunk.clone()
        } else {
            request.branch
        };
        let now = Utc::now();
        let execution = Execution {
            id: uuid::Uuid::now_v7().simple().to_string(),
            pipeline: request.pipeline,
            project: pinned.document.metadata.project.clone(),
            pipeline_type: spec.pipeline_type.as_str().to_owned(),
            revision: pinned.revision,
            spec_sha256: pinned.spec_sha256.clone(),
            repository: spec.source.repository.clone(),
            state: ExecutionState::Running,
            state_reason: String::new(),
            build_only: branch != spec.source.trunk,
            mode: match spec.execution_mode {
                conveyor_definitions::spec::ExecutionMode::Superseded => Mode::Superseded,
                conveyor_definitions::spec::ExecutionMode::Queued => Mode::Queued,
                conveyor_definitions::spec::ExecutionMode::Parallel => Mode::Parallel,
            },
            commit_sha: request.commit_sha,
            branch,
            author: request.author,
            message: request.message,
            commit_time: request.commit_time,
            create_time: now,
            end_time: None,
            update_time: now,
            version: 0,
        };
        // Entering the first stage takes its lock; a concurrent start can win
        // the race, and then this one plans again and waits.
        let mut attempt = 0;
        let stored = loop {
            attempt += 1;
            let context = self
                .store
                .plan_context(&execution.pipeline, &execution.id)
                .await?;
            let snapshot = engine::plan(&pinned.document, execution.clone(), context, now);
            match self
                .store
                .insert(snapshot, request.request_id.as_deref())
                .await
            {
                Err(StoreError::Conflict(_)) if attempt < 5 => continue,
                other => break other?,
            }
        };
        self.relay_now.notify_one();
        self.follow_up(&stored).await;
        tracing::info!(
            execution = %stored.execution.id,
            pipeline = %stored.execution.pipeline,
            revision = stored.execution.revision,
            build_only = stored.execution.build_only,
            "execution started"
        );
        Ok(stored)
    }

    pub async fn get(&self, pipeline: &str, id: &str) -> Result<Snapshot, Error> {
        let snapshot = self.store.load(id).await?;
        if snapshot.execution.pipeline != pipeline {
            return Err(Error::ExecutionNotFound(id.to_owned()));
        }
        Ok(snapshot)
    }

    /// Executions newest first; `pipeline` "-" lists every pipeline's.
    pub async fn list(
        &self,
        pipeline: &str,
        page_size: i32,
        page_token: &str,
        filter: &crate::store::ListFilter,
    ) -> Result<(Vec<Execution>, String), Error> {
        if filter.branch.len() > 256 {
            return Err(Error::invalid("branch", "at most 256 bytes"));
        }
        if filter.commit_sha.len() > 64 || !filter.commit_sha.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::invalid("commit_sha", "at most 64 hex digits"));
        }
        let pipeline = (pipeline != "-").then_some(pipeline);
        if let Some(p) = pipeline {
            check_name(p, "parent")?;
        }
        let limit = match page_size {
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            0 => DEFAULT_PAGE_SIZE,
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        let before = (!page_token.is_empty()).then_some(page_token);
        if let Some(token) = before
            && (token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Error::invalid(
                "page_token",
                "not a page token from this listing",
            ));
        }
        let mut items = self.store.list(pipeline, before, limit + 1, filter).await?;
        let next = if items.len() as u64 > limit {
            items.truncate(limit as usize);
            items.last().map(|e| e.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((items, next))
    }

    pub async fn cancel(&self, pipeline: &str, id: &str, who: &str) -> Result<Snapshot, Error> {
        self.get(pipeline, id).await?;
        let who = if who.is_empty() { "anonymous" } else { who };
        let (snapshot, cancelled) = self
            .store
            .update(id, |s| engine::cancel(s, who, Utc::now()))
            .await?;
        if !cancelled {
            return Err(Error::AlreadyEnded(id.to_owned()));
        }
        self.relay_now.notify_one();
        self.follow_up(&snapshot).await;
        tracing::info!(execution = %id, by = who, "execution cancelled");
        Ok(snapshot)
    }

    /// Approves (or rejects) the stage of execution `id` that waits for
    /// approval, as `principal` (a member of `groups`).
    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        pipeline: &str,
        id: &str,
        stage: &str,
        principal: &str,
        groups: &[String],
        approve: bool,
        comment: &str,
    ) -> Result<Snapshot, Error> {
        if principal.is_empty() {
            return Err(Error::invalid("principal.id", "required: who decides"));
        }
        if comment.len() > 4096 {
            return Err(Error::invalid("comment", "at most 4096 bytes"));
        }
        self.get(pipeline, id).await?;
        let (snapshot, result) = self
            .store
            .update(id, |s| {
                engine::decide(s, stage, principal, groups, approve, comment, Utc::now())
            })
            .await?;
        match result {
            Ok(()) => {
                self.relay_now.notify_one();
                self.follow_up(&snapshot).await;
                tracing::info!(execution = %id, stage, principal, approve, "approval recorded");
                Ok(snapshot)
            }
            Err(ApprovalError::UnknownStage) => Err(Error::invalid(
                "stage",
                format!("no stage {stage:?} in this execution"),
            )),
            Err(ApprovalError::NotWaiting) => Err(Error::StageNotWaiting(stage.to_owned())),
            Err(ApprovalError::NotAnApprover) => Err(Error::PermissionDenied {
                reason: "NOT_AN_APPROVER",
                message: format!("{principal} is not an approver of stage {stage:?}"),
            }),
            Err(ApprovalError::AuthorMayNotApprove) => Err(Error::PermissionDenied {
                reason: "AUTHOR_MAY_NOT_APPROVE",
                message: format!("{principal} wrote the change and may not approve it"),
            }),
        }
    }

    /// Stores output of a running attempt; returns the committed size,
    /// whether the cap was reached, and whether the attempt must stop.
    pub async fn append_logs(
        &self,
        action_id: &str,
        attempt: i32,
        chunks: Vec<(i64, String, Vec<u8>)>,
    ) -> Result<(i64, bool, bool), Error> {
        let action = self.store.action(action_id).await?;
        if action.attempt != attempt {
            return Err(Error::StaleAttempt {
                action: action_id.to_owned(),
                attempt,
                current: action.attempt,
            });
        }
        let cancel = action.state == ActionState::Cancelled;
        let (size, truncated) = self
            .store
            .append_logs(
                &action.execution_id,
                action_id,
                attempt,
                chunks,
                self.log_limit_bytes,
            )
            .await?;
        Ok((size, truncated, cancel))
    }

    /// Blocks promotion of `pipeline` (one stage, or every deploying stage).
    pub async fn block(
        &self,
        pipeline: &str,
        stage: &str,
        reason: &str,
        by: &str,
    ) -> Result<BlockerRecord, Error> {
        check_name(pipeline, "parent")?;
        if reason.trim().is_empty() || reason.len() > 1024 {
            return Err(Error::invalid(
                "reason",
                "required, at most 1024 bytes: why promotion stops",
            ));
        }
        if by.is_empty() {
            return Err(Error::invalid("principal.id", "required: who blocks"));
        }
        let blocker = self.store.add_blocker(pipeline, stage, reason, by).await?;
        tracing::info!(pipeline, stage, by, reason, "promotion blocked");
        Ok(blocker)
    }

    /// Lifts blockers; held executions of the pipeline try again.
    pub async fn unblock(
        &self,
        pipeline: &str,
        id: Option<&str>,
        stage: Option<&str>,
        reason: &str,
        by: &str,
    ) -> Result<Vec<BlockerRecord>, Error> {
        check_name(pipeline, "pipeline")?;
        if by.is_empty() {
            return Err(Error::invalid(
                "principal.id",
                "required: who lifts the blocker",
            ));
        }
        let lifted = self
            .store
            .lift_blockers(pipeline, id, stage, reason, by)
            .await?;
        if lifted.is_empty() {
            return Err(Error::BlockerNotFound(id.unwrap_or(pipeline).to_owned()));
        }
        tracing::info!(pipeline, count = lifted.len(), by, "promotion unblocked");
        self.wake(Some(pipeline)).await?;
        Ok(lifted)
    }

    pub async fn blockers(
        &self,
        pipeline: &str,
        include_lifted: bool,
    ) -> Result<Vec<BlockerRecord>, Error> {
        check_name(pipeline, "parent")?;
        Ok(self.store.blockers(pipeline, include_lifted).await?)
    }

    /// Records an alarm's state as a monitor observed it. Stages held by it
    /// try again once it clears.
    pub async fn set_alarm(&self, record: AlarmRecord) -> Result<AlarmRecord, Error> {
        if !conveyor_definitions::spec::is_valid_name(&record.name) {
            return Err(Error::invalid(
                "name",
                format!(
                    "{:?} is not an alarm name \"alarms/{{alarm}}\"",
                    record.name
                ),
            ));
        }
        let (alarm, changed) = self.store.set_alarm(record).await?;
        if changed {
            tracing::info!(alarm = %alarm.name, state = %alarm.state, reason = %alarm.reason, "alarm state changed");
            if alarm.state == "alarm" {
                // Rollouts watching it roll back now, not at the next pass.
                self.tick_rollouts().await?;
            } else {
                self.wake(None).await?;
            }
        }
        Ok(alarm)
    }

    pub async fn alarm(&self, name: &str) -> Result<AlarmRecord, Error> {
        self.store
            .alarm(name)
            .await?
            .ok_or_else(|| Error::AlarmNotFound(name.to_owned()))
    }

    /// Records data points on a metric; bakes waiting for them are checked
    /// at once. Returns the points of the last hour in that scope.
    pub async fn record_data_points(
        &self,
        metric: &str,
        pipeline: &str,
        count: i64,
        time: chrono::DateTime<Utc>,
    ) -> Result<i64, Error> {
        self.store
            .record_data_points(metric, pipeline, count, time)
            .await?;
        self.tick_rollouts().await?;
        let hour_ago = Utc::now() - chrono::Duration::hours(1);
        Ok(self
            .store
            .data_points_since(metric, pipeline, hour_ago)
            .await?)
    }

    pub async fn alarms(&self, pipeline: Option<&str>) -> Result<Vec<AlarmRecord>, Error> {
        Ok(self.store.alarms(pipeline).await?)
    }

    /// Leases the next attempt of `pool` (or the dispatched attempt named by
    /// `wanted`) to `worker`, waiting up to `wait` for one to be queued.
    pub async fn claim(
        &self,
        worker: &str,
        pool: &str,
        wanted: Option<(&str, i32)>,
        wait: Duration,
    ) -> Result<Option<(ActionRun, Execution, StageRun)>, Error> {
        if worker.is_empty() || worker.len() > 256 {
            return Err(Error::invalid("worker", "1 to 256 characters"));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = Utc::now();
            let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
            if let Some(action) = self
                .store
                .claim(pool, wanted, worker, lease_until, now)
                .await?
            {
                // The task needs the execution and the stage, not the whole snapshot.
                let (execution, stage) = self
                    .store
                    .execution_and_stage(&action.execution_id, action.stage_index)
                    .await?;
                tracing::debug!(action = %action.id, attempt = action.attempt, worker, "attempt claimed");
                return Ok(Some((action, execution, stage)));
            }
            if wanted.is_some() || tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn heartbeat(
        &self,
        action_id: &str,
        attempt: i32,
        worker: &str,
    ) -> Result<Lease, Error> {
        let lease_until = Utc::now() + chrono::Duration::from_std(self.lease).unwrap_or_default();
        match self
            .store
            .heartbeat(action_id, attempt, worker, lease_until)
            .await?
        {
            Lease::Stale { current_attempt } => Err(Error::StaleAttempt {
                action: action_id.to_owned(),
                attempt,
                current: current_attempt,
            }),
            lease => Ok(lease),
        }
    }

    /// Applies a worker's report; a repeated report is harmless.
    pub async fn report(
        &self,
        action_id: &str,
        report: AttemptReport,
    ) -> Result<(ActionRun, Snapshot, bool), Error> {
        let attempt = report.attempt;
        let execution_id = self.store.execution_of(action_id).await?;
        let (snapshot, result) = self
            .store
            .update(&execution_id, |s| {
                engine::report(s, action_id, &report, Utc::now())
            })
            .await?;
        self.relay_now.notify_one();
        self.follow_up(&snapshot).await;
        let duplicate = match result {
            Ok(Reported::Applied) => false,
            Ok(Reported::Duplicate) => true,
            Err(ReportError::UnknownAction) => {
                return Err(Error::ActionNotFound(action_id.to_owned()));
            }
            Err(ReportError::Stale { current_attempt }) => {
                return Err(Error::StaleAttempt {
                    action: action_id.to_owned(),
                    attempt,
                    current: current_attempt,
                });
            }
        };
        let action = snapshot
            .actions
            .iter()
            .find(|a| a.id == action_id)
            .cloned()
            .ok_or_else(|| Error::ActionNotFound(action_id.to_owned()))?;
        if !duplicate {
            tracing::info!(
                execution = %execution_id,
                action = %action.name,
                attempt,
                state = action.state.as_str(),
                execution_state = snapshot.execution.state.as_str(),
                "attempt reported"
            );
        }
        Ok((action, snapshot, duplicate))
    }

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
        if changed > 0 {
            self.relay_now.notify_one();
        }
        Ok(changed)
    }

    /// What other executions of the pipeline must do after a change:
    /// when this one released a stage, the executions waiting for it try
    /// again; when this one started waiting at a stage in superseded mode,
    /// older executions waiting at the same stage are superseded.
    async fn follow_up(&self, s: &Snapshot) {
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
        if released {
            self.wake(Some(&s.execution.pipeline)).await?;
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
    async fn tick_rollouts(&self) -> Result<usize, Error> {
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
    async fn wake(&self, pipeline: Option<&str>) -> Result<usize, Error> {
        let mut moved = 0;
        for id in self.all_held(pipeline).await? {
            let step = self
                .store
                .update(&id, |s| engine::advance(s, Utc::now()))
                .await;
            let Some((after, _)) = logged("waking", &id, step) else {
                continue;
            };
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
                ticker.tick().await;
                if let Err(e) = this.reconcile().await {
                    tracing::warn!(error = %e, "reconciler pass failed");
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

fn check_name(name: &str, field: &str) -> Result<(), Error> {
    if conveyor_definitions::spec::is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{name:?} is not a pipeline name"),
        ))
    }
}
