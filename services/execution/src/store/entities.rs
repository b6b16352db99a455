//! sea-orm entities, one module per table.

pub mod execution {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "executions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub pipeline: String,
        pub project: String,
        pub pipeline_type: String,
        pub revision: i64,
        pub spec_sha256: String,
        pub repository: String,
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub state_reason: String,
        pub build_only: bool,
        pub mode: String,
        pub commit_sha: String,
        pub branch: String,
        pub author: String,
        #[sea_orm(column_type = "Text")]
        pub message: String,
        pub commit_time: Option<DateTimeUtc>,
        pub request_id: Option<String>,
        pub create_time: DateTimeUtc,
        pub end_time: Option<DateTimeUtc>,
        pub update_time: DateTimeUtc,
        pub version: i64,
        /// JSON object of StartExecution's parameters.
        #[sea_orm(column_type = "Text")]
        pub parameters: String,
        /// JSON array of the commits carried, head last, with land times.
        #[sea_orm(column_type = "Text")]
        pub commits: String,
        pub traceparent: String,
        /// JSON array of the upstream artifacts pinned at start.
        #[sea_orm(column_type = "Text")]
        pub upstream: String,
        /// The upstream execution whose publish started this one, if any.
        pub triggered_by: String,
        /// The earlier execution this one deploys again, if any.
        pub redeploy_of: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stage_run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stage_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub execution_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub stage_index: i32,
        pub name: String,
        pub environment: String,
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub state_reason: String,
        pub start_time: Option<DateTimeUtc>,
        pub end_time: Option<DateTimeUtc>,
        /// JSON of the approval policy, or "" when the stage has none.
        #[sea_orm(column_type = "Text")]
        pub approval: String,
        /// JSON array of approval decisions.
        #[sea_orm(column_type = "Text")]
        pub approvals: String,
        /// JSON of the stage's start guards (alarms, time windows), or "".
        #[sea_orm(column_type = "Text")]
        pub guards: String,
        /// JSON array of the stage's waves (name, bake seconds).
        #[sea_orm(column_type = "Text")]
        pub waves: String,
        pub current_wave: i32,
        pub bake_until: Option<DateTimeUtc>,
        /// While waiting for approval: when the wait fails the execution.
        pub approval_deadline: Option<DateTimeUtc>,
        /// The environment's tier ("production"), empty for build stages.
        pub tier: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod action_run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "action_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub execution_id: String,
        pub stage_index: i32,
        pub name: String,
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub command: String,
        /// JSON array of action names.
        #[sea_orm(column_type = "Text")]
        pub needs: String,
        /// JSON object of environment variables.
        #[sea_orm(column_type = "Text")]
        pub env: String,
        pub pool: String,
        pub timeout_secs: i64,
        pub state: String,
        pub attempt: i32,
        pub failures: i32,
        pub lost_leases: i32,
        pub retries: i32,
        pub worker: String,
        pub lease_expire_time: Option<DateTimeUtc>,
        pub exit_code: Option<i32>,
        #[sea_orm(column_type = "Text")]
        pub failure_reason: String,
        pub queue_time: Option<DateTimeUtc>,
        pub start_time: Option<DateTimeUtc>,
        pub end_time: Option<DateTimeUtc>,
        /// JSON array of SARIF paths.
        #[sea_orm(column_type = "Text")]
        pub sarif: String,
        /// JSON array of the schema checks the worker runs.
        #[sea_orm(column_type = "Text")]
        pub validate: String,
        /// JSON of the metrics output, the values reported and the baseline.
        #[sea_orm(column_type = "Text")]
        pub metrics: String,
        /// JSON of the gate, or "" when none.
        #[sea_orm(column_type = "Text")]
        pub gate: String,
        /// JSON of the last findings.
        #[sea_orm(column_type = "Text")]
        pub findings: String,
        pub wave: i32,
        pub target_account: String,
        pub target_region: String,
        /// A run that puts the target back on the last good version.
        pub rollback: bool,
        /// JSON array of the outputs to store as artifacts.
        #[sea_orm(column_type = "Text")]
        pub outputs: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod outbox {
    use sea_orm::entity::prelude::*;

    /// Messages written in the same transaction as the change they announce,
    /// relayed to the queue afterwards and then deleted.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub topic: String,
        #[sea_orm(column_type = "Blob")]
        pub payload: Vec<u8>,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod log_chunk {
    use sea_orm::entity::prelude::*;

    /// Output of an action attempt, in the order the worker read it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "log_chunks")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub execution_id: String,
        pub action_id: String,
        pub attempt: i32,
        /// Byte offset within the attempt's log (all streams together).
        pub offset: i64,
        /// "stdout", "stderr" or "system".
        pub stream: String,
        #[sea_orm(column_type = "Blob")]
        pub data: Vec<u8>,
        pub truncated: bool,
        pub time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stage_lock {
    use sea_orm::entity::prelude::*;

    /// Which execution holds a stage of a pipeline (queued and superseded
    /// modes): one row per held stage, so two executions cannot enter it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stage_locks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub pipeline: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub stage_index: i32,
        pub execution_id: String,
        pub acquire_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod blocker {
    use sea_orm::entity::prelude::*;

    /// A manual promotion blocker, kept after it is lifted for the audit trail.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "blockers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub pipeline: String,
        /// "" blocks every stage that deploys to an environment.
        pub stage: String,
        #[sea_orm(column_type = "Text")]
        pub reason: String,
        pub created_by: String,
        pub create_time: DateTimeUtc,
        pub lifted_by: Option<String>,
        #[sea_orm(column_type = "Text")]
        pub lift_reason: String,
        pub lift_time: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod alarm {
    use sea_orm::entity::prelude::*;

    /// The last known state of a named alarm.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alarms")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// "" applies to every pipeline.
        pub pipeline: String,
        pub environment: String,
        /// "ok", "alarm" or "insufficient_data".
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub reason: String,
        /// "external" or "health_probe".
        pub source: String,
        pub state_change_time: DateTimeUtc,
        pub observe_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod artifact {
    use sea_orm::entity::prelude::*;

    /// An action's output, stored by digest in the artifact store and
    /// signed by the control plane. One row per execution and name: a
    /// later attempt's upload replaces an earlier one's.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "artifacts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub execution_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub pipeline: String,
        pub action_id: String,
        pub stage_index: i32,
        pub kind: String,
        pub digest: String,
        pub size_bytes: i64,
        pub media_type: String,
        pub subject_digest: String,
        pub commit_sha: String,
        pub signature_algorithm: String,
        pub signature_key_id: String,
        /// Hex of the signature bytes.
        pub signature: String,
        /// JSON object of annotations.
        #[sea_orm(column_type = "Text")]
        pub annotations: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod data_point {
    use sea_orm::entity::prelude::*;

    /// Data points a monitor observed on a metric; `pipeline` is empty when
    /// they count for every pipeline.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "data_points")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub metric: String,
        pub pipeline: String,
        pub count: i64,
        pub observe_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod pending_trigger {
    use sea_orm::entity::prelude::*;

    /// A successful trunk execution whose downstream pipelines have not all
    /// been started yet; written in the transaction that ends it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pending_triggers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub execution_id: String,
        pub pipeline: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
