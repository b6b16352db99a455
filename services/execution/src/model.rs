//! The states of executions, stages and actions, and the rows the engine
//! works on. States are stored as lowercase strings.

use chrono::{DateTime, Utc};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

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
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl ExecutionState {
    pub fn is_final(self) -> bool {
        !matches!(self, ExecutionState::Running)
    }
}

string_enum!(
    StageState {
        Pending => "pending",
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageRun {
    pub execution_id: String,
    pub index: i32,
    pub name: String,
    pub environment: String,
    pub state: StageState,
    pub state_reason: String,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub dirty: bool,
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
    pub dirty: bool,
}
