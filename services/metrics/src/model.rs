//! The words the records use: run and deployment outcomes and mainline
//! health states as stored (lowercase strings), and the deployment id.

use conveyor_api::metrics::v1 as pb;

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

string_enum! {
    /// How a run or a deployment ended.
    Outcome {
        InProgress => "in_progress",
        Succeeded => "succeeded",
        Failed => "failed",
        RolledBack => "rolled_back",
        Cancelled => "cancelled",
        Superseded => "superseded",
    }
}

impl Outcome {
    pub fn to_pb(self) -> pb::RunOutcome {
        match self {
            Outcome::InProgress => pb::RunOutcome::InProgress,
            Outcome::Succeeded => pb::RunOutcome::Succeeded,
            Outcome::Failed => pb::RunOutcome::Failed,
            Outcome::RolledBack => pb::RunOutcome::RolledBack,
            Outcome::Cancelled => pb::RunOutcome::Cancelled,
            Outcome::Superseded => pb::RunOutcome::Superseded,
        }
    }

    pub fn from_pb(o: pb::RunOutcome) -> Option<Self> {
        Some(match o {
            pb::RunOutcome::Unspecified => return None,
            pb::RunOutcome::InProgress => Outcome::InProgress,
            pb::RunOutcome::Succeeded => Outcome::Succeeded,
            pb::RunOutcome::Failed => Outcome::Failed,
            pb::RunOutcome::RolledBack => Outcome::RolledBack,
            pb::RunOutcome::Cancelled => Outcome::Cancelled,
            pb::RunOutcome::Superseded => Outcome::Superseded,
        })
    }
}

string_enum! {
    /// A pipeline's mainline: deployable (green) or not (red).
    HealthState {
        Unknown => "",
        Green => "green",
        Red => "red",
    }
}

impl HealthState {
    pub fn to_pb(self) -> pb::MainlineHealthState {
        match self {
            HealthState::Unknown => pb::MainlineHealthState::Unspecified,
            HealthState::Green => pb::MainlineHealthState::Green,
            HealthState::Red => pb::MainlineHealthState::Red,
        }
    }
}

/// The id of one execution's deployment by one stage: unambiguous, as
/// execution ids are 32 hex characters.
pub fn deployment_id(execution_id: &str, stage: &str) -> String {
    format!("{execution_id}-{stage}")
}

/// The execution id in "pipelines/{p}/executions/{e}".
pub fn execution_id(execution: &str) -> &str {
    execution.rsplit('/').next().unwrap_or(execution)
}

/// The pipeline id in "pipelines/{p}".
pub fn pipeline_id(pipeline: &str) -> &str {
    pipeline.strip_prefix("pipelines/").unwrap_or(pipeline)
}
