//! The execution service's logic, free of gRPC: start executions from a
//! pinned revision, hand attempts to workers, apply their reports, and
//! recover attempts whose worker went away.

mod background;
mod quality;
mod redeploy;
mod upstream;

pub use upstream::{ProvenanceNode, TRIGGER_AUTHOR, execution_name};

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
    /// When the head commit landed on the branch; the time of the request
    /// when unset.
    pub land_time: Option<DateTime<Utc>>,
    /// Older commits of the same push, oldest first.
    pub earlier_commits: Vec<CommitInfo>,
    pub request_id: Option<String>,
    /// Exposed to every action as CONVEYOR_PARAM_<KEY>.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Upstream executions to pin (`pipelines/P/executions/E`) instead of
    /// each upstream pipeline's newest publish.
    pub upstream_executions: Vec<String>,
    /// The upstream execution whose publish starts this one, if any.
    pub triggered_by: String,
    /// `pipelines/P/executions/E`: deploy E's artifacts again instead of
    /// building (its commit and pins replace the request's).
    pub redeploy: String,
}

#[derive(Clone)]
pub struct Executions {
    store: Store,
    specs: Arc<dyn SpecSource>,
    queue: Arc<dyn Queue>,
    /// Wakes the outbox relay after a commit, so dispatch is not a poll away.
    relay_now: Arc<Notify>,
    /// Wakes the reconciler's task to start downstream pipelines of a publish.
    triggers_now: Arc<Notify>,
    /// How long a claimed attempt stays leased without a heartbeat.
    pub lease: Duration,
    /// Queued attempts not claimed for this long are dispatched again
    /// (their message may have been lost with Redis).
    pub redispatch_after: Duration,
    /// Output kept per attempt; the rest is dropped behind a marker.
    pub log_limit_bytes: i64,
    artifacts: crate::artifacts::Artifacts,
    /// Resolves `fromFleet` stages' waves.
    pub targets: Arc<dyn crate::fleet::TargetSource>,
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
            triggers_now: Arc::new(Notify::new()),
            lease,
            redispatch_after: Duration::from_secs(30),
            log_limit_bytes: 1 << 20,
            targets: Arc::new(crate::fleet::NoFleet),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn artifacts(&self) -> &crate::artifacts::Artifacts {
        &self.artifacts
    }

    pub async fn start(&self, request: StartRequest) -> Result<Snapshot, Error> {
        self.start_pinned(request, None).await
    }

    /// As [`Self::start`], with the pipeline's current revision when the
    /// caller has just read it.
    async fn start_pinned(
        &self,
        request: StartRequest,
        pinned: Option<crate::specs::Pinned>,
    ) -> Result<Snapshot, Error> {
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
        check_parameters(&request.parameters)?;
        check_earlier_commits(&request.earlier_commits)?;
        let pinned = match pinned {
            Some(pinned) => pinned,
            None => self.specs.current(&request.pipeline).await?,
        };
        let spec = &pinned.document.spec;
        let mut request = request;
        let (upstream, redeploy_of) = if request.redeploy.is_empty() {
            let pins = self
                .pin_upstream(&spec.upstream, &request.upstream_executions)
                .await?;
            (pins, String::new())
        } else {
            // The earlier version's commit and pins, for its scripts and
            // its provenance; its commits are credited already.
            let earlier = self
                .redeployable(&request.pipeline, &request.redeploy)
                .await?;
            request.commit_sha = earlier.commit_sha.clone();
            request.branch = earlier.branch.clone();
            request.commit_time = earlier.commit_time;
            request.land_time = earlier.commits.last().map(|c| c.land_time);
            request.earlier_commits = Vec::new();
            if request.message.is_empty() {
                request.message = format!("redeploy of {}", request.redeploy);
            }
            (earlier.upstream, earlier.id)
        };
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
            commits: request
                .earlier_commits
                .into_iter()
                .chain([CommitInfo {
                    sha: request.commit_sha.clone(),
                    author: request.author.clone(),
                    message: request.message.clone(),
                    commit_time: request.commit_time,
                    land_time: request.land_time.unwrap_or(now),
                }])
                .collect(),
            commit_sha: request.commit_sha,
            branch,
            author: request.author,
            message: request.message,
            commit_time: request.commit_time,
            parameters: request.parameters,
            traceparent: conveyor_platform::telemetry::traceparent(),
            upstream,
            triggered_by: request.triggered_by,
            redeploy_of,
            create_time: now,
            end_time: None,
            update_time: now,
            version: 0,
        };
        if !execution.redeploy_of.is_empty() {
            self.copy_artifacts(&execution.redeploy_of, &execution.id)
                .await?;
        }
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
            self.relay_now.notify_one();
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
        let mut report = report;
        // Only a report with metrics can pass a model-quality gate; the
        // others need no baseline (and no extra query).
        if !report.metrics.is_empty() {
            report.baseline = self.baseline(&execution_id, action_id).await?;
        }
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
}

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

/// Parameter keys become environment variable names: upper-case letters,
/// digits and '_', not starting with a digit.
/// The most older commits one push may carry.
const MAX_EARLIER_COMMITS: usize = 1000;

fn check_earlier_commits(commits: &[CommitInfo]) -> Result<(), Error> {
    if commits.len() > MAX_EARLIER_COMMITS {
        return Err(Error::invalid(
            "additional_commits",
            format!("at most {MAX_EARLIER_COMMITS} commits per push"),
        ));
    }
    for (i, c) in commits.iter().enumerate() {
        if c.sha.is_empty() || c.sha.len() > 64 || !c.sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                format!("additional_commits[{i}].sha"),
                "a hex commit id of at most 64 characters",
            ));
        }
        if c.author.len() > 256 || c.message.len() > 4096 {
            return Err(Error::invalid(
                format!("additional_commits[{i}]"),
                "author or message is too long",
            ));
        }
    }
    Ok(())
}

fn check_parameters(parameters: &std::collections::BTreeMap<String, String>) -> Result<(), Error> {
    if parameters.len() > 64 {
        return Err(Error::invalid("parameters", "at most 64 parameters"));
    }
    for (key, value) in parameters {
        let valid = !key.is_empty()
            && key.len() <= 64
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(Error::invalid(
                format!("parameters[{key:?}]"),
                "keys are 1 to 64 upper-case letters, digits or '_', not starting with a digit",
            ));
        }
        if value.len() > 4096 || value.contains('\0') {
            return Err(Error::invalid(
                format!("parameters[{key:?}]"),
                "values are at most 4096 bytes, without NUL",
            ));
        }
    }
    Ok(())
}
