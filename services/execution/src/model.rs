//! The states of executions, stages and actions, and the rows the engine
//! works on. States are stored as lowercase strings.

use chrono::{DateTime, Utc};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// Where an execution stands.
    ExecutionState {
        /// Waiting for a stage another execution of the pipeline holds.
        Queued => "queued",
        /// A stage may not start yet: a blocker, an alarm, or a time window.
        Held => "held",
        Running => "running",
        WaitingApproval => "waiting_approval",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        /// Replaced by a newer execution while it waited at a stage boundary.
        Superseded => "superseded",
        /// Rolling deployed targets back after an alarm.
        RollingBack => "rolling_back",
        /// An alarm fired and every deployed target was rolled back.
        RolledBack => "rolled_back",
    }
);

impl ExecutionState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExecutionState::Succeeded
                | ExecutionState::Failed
                | ExecutionState::Cancelled
                | ExecutionState::Superseded
                | ExecutionState::RolledBack
        )
    }
}

string_enum!(
    /// What happens when executions of one pipeline meet at a stage
    /// (DPRA: newer trunk runs can supersede queued older ones).
    Mode {
        Superseded => "superseded",
        Queued => "queued",
        Parallel => "parallel",
    }
);

string_enum!(
    StageState {
        Pending => "pending",
        /// An alarm fired: the deployed targets go back to the last good version.
        RollingBack => "rolling_back",
        /// Every deployed target went back to the last good version.
        RolledBack => "rolled_back",
        /// Ready, but another execution of the pipeline holds the stage.
        Held => "held",
        WaitingApproval => "waiting_approval",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        Skipped => "skipped",
    }
);

string_enum!(
    ActionState {
        Pending => "pending",
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        TimedOut => "timed_out",
        Cancelled => "cancelled",
        Skipped => "skipped",
    }
);

impl ActionState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ActionState::Succeeded
                | ActionState::Failed
                | ActionState::TimedOut
                | ActionState::Cancelled
                | ActionState::Skipped
        )
    }
}

/// An execution with everything the engine decides on.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub execution: Execution,
    pub stages: Vec<StageRun>,
    pub actions: Vec<ActionRun>,
    /// What the engine changed, in order: saved to the outbox as events and
    /// dispatches in the same transaction as the change.
    pub transitions: Vec<Transition>,
    /// Stages other executions of the pipeline hold: index → execution id.
    pub occupied: std::collections::HashMap<i32, String>,
    /// Active promotion blockers of the pipeline.
    pub blockers: Vec<Blocker>,
    /// Names of the alarms in ALARM that apply to the pipeline.
    pub firing: std::collections::HashSet<String>,
    /// The pipeline's last successful deployment, to roll back to.
    pub last_good: Option<LastGood>,
    /// Data points on the baking stage's `minDataPoints` metric since its
    /// bake started (loaded only while such a bake runs).
    pub data_points: Option<i64>,
}

/// The execution a rollback returns to: its commit, and the artifacts it built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastGood {
    pub execution_id: String,
    pub commit_sha: String,
}

/// One change worth announcing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    ExecutionStarted,
    StageStarted {
        stage: i32,
    },
    StageEnded {
        stage: i32,
    },
    /// A new attempt waits for a worker: dispatch it to the pool.
    ActionQueued {
        action: String,
    },
    /// An attempt ended; `last` is false when it will be retried.
    ActionEnded {
        action: String,
        attempt: i32,
        last: bool,
    },
    /// The next stage is held by another execution: this one waits.
    StageHeld {
        stage: i32,
    },
    /// A stage waits for a human approval.
    ApprovalRequested {
        stage: i32,
    },
    /// Someone approved or rejected a stage.
    ApprovalRecorded {
        stage: i32,
    },
    WaveStarted {
        stage: i32,
        wave: i32,
    },
    BakeStarted {
        stage: i32,
        wave: i32,
    },
    BakeCompleted {
        stage: i32,
        wave: i32,
    },
    RollbackStarted {
        stage: i32,
        alarm: String,
    },
    RollbackCompleted {
        stage: i32,
    },
    ExecutionFinished,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: String,
    pub pipeline: String,
    pub project: String,
    pub pipeline_type: String,
    pub revision: i64,
    pub spec_sha256: String,
    pub repository: String,
    pub state: ExecutionState,
    pub state_reason: String,
    pub build_only: bool,
    pub mode: Mode,
    pub commit_sha: String,
    pub branch: String,
    pub author: String,
    pub message: String,
    pub commit_time: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub update_time: DateTime<Utc>,
    /// Bumped by every change; writes check it (compare-and-set).
    pub version: i64,
    /// StartExecution's parameters, exposed to actions as CONVEYOR_PARAM_<KEY>.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Every commit the push carried, oldest first, the head last; each
    /// counts for lead time from its `land_time`.
    pub commits: Vec<CommitInfo>,
    /// W3C trace context of the call that started it: every later change,
    /// dispatch, event and worker attempt is a span of this one trace.
    pub traceparent: String,
    /// The upstream pipelines' artifacts this execution takes, pinned when
    /// it started; every action gets them as inputs.
    pub upstream: Vec<UpstreamPin>,
    /// `pipelines/P/executions/E` of the upstream execution whose publish
    /// started this one; empty when started otherwise.
    pub triggered_by: String,
    /// The id of the earlier execution of the same pipeline whose artifacts
    /// this one deploys again instead of building; empty otherwise.
    pub redeploy_of: String,
}

impl Execution {
    /// Whether it published its artifacts: it succeeded on trunk. Only
    /// those are pinned downstream or redeployed.
    pub fn published(&self) -> bool {
        self.state == ExecutionState::Succeeded && !self.build_only
    }
}

/// One upstream artifact an execution pinned: which execution of which
/// pipeline published it, under which name, with which digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamPin {
    pub pipeline: String,
    pub execution_id: String,
    pub name: String,
    pub digest: String,
    pub size_bytes: i64,
    pub commit_sha: String,
}

impl UpstreamPin {
    /// Where the pin lands in the workspace, under `$CONVEYOR_ARTIFACTS_DIR`.
    pub fn input_name(&self) -> String {
        format!("upstream/{}/{}", self.pipeline, self.name)
    }
}

/// A commit carried by an execution.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    pub sha: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub commit_time: Option<DateTime<Utc>>,
    /// When the commit landed on the branch; lead time starts here.
    pub land_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageRun {
    pub execution_id: String,
    pub index: i32,
    pub name: String,
    pub environment: String,
    /// The environment's tier ("production"); empty for build stages.
    pub tier: String,
    pub state: StageState,
    pub state_reason: String,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// Who must approve before the stage runs (production stages).
    pub approval: Option<ApprovalPolicy>,
    /// Decisions so far, in order.
    pub approvals: Vec<ApprovalRecord>,
    /// What must be true before the stage starts.
    pub guards: Option<Guards>,
    /// Production rollout: the waves in order (empty: no waves).
    pub waves: Vec<WavePlan>,
    /// The wave deploying or baking now.
    pub current_wave: i32,
    /// When the current wave's bake ends; set once the wave deployed.
    pub bake_until: Option<DateTime<Utc>>,
    /// While waiting for approval: when the wait fails the execution.
    pub approval_deadline: Option<DateTime<Utc>>,
    pub dirty: bool,
}

/// One wave of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WavePlan {
    pub name: String,
    pub bake_secs: u64,
}

/// A deployment stage's start conditions, copied from the pinned spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guards {
    /// The stage does not start while any of these alarms is in ALARM.
    pub alarms: Vec<String>,
    /// The stage starts only inside one of these windows (none: any time).
    pub windows: Vec<Window>,
    /// HTTP health checks the execution service runs during the rollout;
    /// each sets its alarm.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// On an alarm, put every touched target back on the last good version
    /// (else stop the rollout and leave the targets as they are).
    #[serde(default = "yes")]
    pub auto_rollback: bool,
    /// Most of a wave's targets deploying at once, as a percentage.
    #[serde(default = "hundred")]
    pub max_batch_percent: u32,
    /// Share of a wave's targets that must not be deploying at any time.
    #[serde(default)]
    pub min_healthy_percent: u32,
    /// A bake ends only once this metric has this many data points
    /// observed since the bake started.
    #[serde(default)]
    pub min_data_points: Option<MinDataPoints>,
    /// Waves chosen by the fleet service when the stage is entered
    /// (`deployment.fromFleet`); until then the stage holds.
    #[serde(default)]
    pub fleet: Option<FleetTargets>,
}

/// A `fromFleet` selector, and what resolving it found so far.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetTargets {
    /// A tier name ("production"), empty for any.
    #[serde(default)]
    pub tier: String,
    /// An OU id, empty for the whole fleet.
    #[serde(default)]
    pub organizational_unit: String,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    pub growth_factor: u32,
    /// The deployment's bake after each wave.
    pub bake_secs: u64,
    /// Why the stage still holds: a freeze window, or the fleet service
    /// not answering. Cleared when the waves are resolved.
    #[serde(default)]
    pub waiting: Option<String>,
    /// sha256 of the resolved wave plan, recorded with the snapshot.
    #[serde(default)]
    pub plan_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MinDataPoints {
    pub metric: String,
    pub count: u64,
}

fn yes() -> bool {
    true
}

fn hundred() -> u32 {
    100
}

impl Guards {
    /// How many of a wave's `targets` may deploy at once (at least one).
    pub fn batch_size(&self, targets: usize) -> usize {
        let share = |percent: u32| (targets * percent as usize).div_ceil(100);
        let by_batch = share(self.max_batch_percent.min(100));
        let by_healthy = targets.saturating_sub(share(self.min_healthy_percent.min(99)));
        by_batch.min(by_healthy).max(1)
    }
}

/// A built-in HTTP health check behind an alarm.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub alarm: String,
    pub url: String,
    pub interval_secs: u64,
    pub failure_threshold: u32,
}

/// When a stage may start: days, a time-of-day range and excluded dates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// 0 = Monday … 6 = Sunday; empty means every day.
    pub days: Vec<u8>,
    /// Minutes after midnight, local to `offset_minutes`.
    pub start_minute: u32,
    /// Exclusive; 1440 for midnight.
    pub end_minute: u32,
    pub offset_minutes: i32,
    /// An IANA time zone, used instead of `offset_minutes` when set.
    #[serde(default)]
    pub zone: Option<String>,
    /// Local dates "YYYY-MM-DD" the window stays shut.
    pub exclude_dates: Vec<String>,
}

/// An active manual promotion blocker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub id: String,
    /// Empty: every stage that deploys to an environment.
    pub stage: String,
    pub reason: String,
    pub created_by: String,
}

/// A stage's approval rule, copied from the pinned spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPolicy {
    pub groups: Vec<String>,
    pub principals: Vec<String>,
    pub allow_author: bool,
    pub min_approvals: u32,
    /// How long the stage waits for approval; none waits forever.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// One approver's decision, kept for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub principal: String,
    pub groups: Vec<String>,
    pub approved: bool,
    pub comment: String,
    pub time: DateTime<Utc>,
}

/// Findings of a scanner, by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Findings {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub info: u32,
}

impl Findings {
    /// All findings; u64, so counts a worker sends cannot overflow.
    pub fn total(&self) -> u64 {
        [self.critical, self.high, self.medium, self.low, self.info]
            .into_iter()
            .map(u64::from)
            .sum()
    }
}

/// How an action's findings (or metrics) decide its outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Gate {
    /// A model's metric against the model in production.
    #[serde(rename_all = "camelCase")]
    ModelQuality {
        metric: String,
        higher_is_better: bool,
        max_regression: f64,
        worst_allowed: Option<f64>,
    },
    /// Secrets detection: any finding fails the run.
    AnyFinding,
    /// At most this many findings per severity (`None`: unlimited).
    Thresholds {
        critical: Option<u32>,
        high: Option<u32>,
        medium: Option<u32>,
        low: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionRun {
    pub id: String,
    pub execution_id: String,
    pub stage_index: i32,
    pub name: String,
    pub kind: String,
    pub command: String,
    pub needs: Vec<String>,
    pub env: std::collections::BTreeMap<String, String>,
    pub pool: String,
    pub timeout_secs: i64,
    pub state: ActionState,
    /// The current dispatch; bumped each time the action is queued. Workers
    /// name it in every call, and a call for an older attempt is refused.
    pub attempt: i32,
    /// Failed attempts so far; retried while `failures <= retries`.
    pub failures: i32,
    /// Attempts whose worker stopped heartbeating; dispatched again up to a limit.
    pub lost_leases: i32,
    pub retries: i32,
    pub worker: String,
    pub lease_expire_time: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub failure_reason: String,
    pub queue_time: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// SARIF reports the action writes, relative to its workspace.
    pub sarif: Vec<String>,
    /// Files the worker checks against JSON Schemas after the command.
    pub validate: Vec<conveyor_definitions::spec::SchemaCheck>,
    pub gate: Option<Gate>,
    /// What the last report found.
    pub findings: Findings,
    /// The metrics output it declares, what it reported, and the baseline
    /// its model-quality gate compared them with.
    pub metrics: Metrics,
    /// The wave and target this run deploys (waves only).
    pub wave: i32,
    pub target: Option<(String, String)>,
    /// Puts its target back on the last good version.
    pub rollback: bool,
    /// Files the action writes that are stored as artifacts when it succeeds.
    pub outputs: Vec<Output>,
    pub dirty: bool,
}

impl ActionRun {
    /// The execution whose artifacts this run uses: its own, or for a
    /// rollback the last good execution's.
    pub fn artifact_source(&self) -> &str {
        if self.rollback {
            self.env
                .get(ROLLBACK_EXECUTION_ENV)
                .map_or(self.execution_id.as_str(), String::as_str)
        } else {
            &self.execution_id
        }
    }
}

/// Set on rollback runs: the execution whose artifacts they deploy.
pub const ROLLBACK_EXECUTION_ENV: &str = "CONVEYOR_ROLLBACK_EXECUTION";

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// The deployable package, built once.
    Package,
    /// A software bill of materials of the package.
    Sbom,
    Sarif,
    TestReport,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Package => "package",
            ArtifactKind::Sbom => "sbom",
            ArtifactKind::Sarif => "sarif",
            ArtifactKind::TestReport => "test_report",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ArtifactKind::Package,
            ArtifactKind::Sbom,
            ArtifactKind::Sarif,
            ArtifactKind::TestReport,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Downloaded by the actions of later stages (reports are not).
    pub fn is_input(self) -> bool {
        matches!(self, ArtifactKind::Package | ArtifactKind::Sbom)
    }
}

/// A file an action declares as output, relative to its workspace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    pub path: String,
    pub kind: ArtifactKind,
}

/// A stored, signed artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub execution_id: String,
    pub pipeline: String,
    /// The declared output path.
    pub name: String,
    pub action_id: String,
    pub stage_index: i32,
    pub kind: ArtifactKind,
    /// "sha256:<64 hex digits>".
    pub digest: String,
    pub size_bytes: i64,
    pub media_type: String,
    pub subject_digest: String,
    pub commit_sha: String,
    pub signature: conveyor_platform::signing::Signature,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub create_time: DateTime<Utc>,
}

/// An action's metrics: the file it declares, the numbers its last attempt
/// reported, and (for a model-quality gate) the production model's value.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metrics {
    pub output: Option<String>,
    pub values: std::collections::BTreeMap<String, f64>,
    pub baseline: Option<Baseline>,
}

/// The production model's value of a gated metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    pub execution_id: String,
    pub value: f64,
}
