//! sea-orm entities, one module per table.

macro_rules! entity {
    ($module:ident, $table:literal, { $($body:tt)* }) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model { $($body)* }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

entity!(processed_event, "processed_events", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_time: DateTimeUtc,
    /// When it was applied (none on ids recorded before this was kept).
    pub claim_time: Option<DateTimeUtc>,
});

entity!(rollup, "rollups", {
    /// "pipeline", "project" or "fleet".
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    /// The pipeline's or project's name; "" for the fleet.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The UTC day.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    /// The pipeline's project; "" on the other kinds.
    pub project: String,
    /// The day's `compute::Tally` as JSON.
    #[sea_orm(column_type = "Text")]
    pub tally: String,
    pub update_time: DateTimeUtc,
});

entity!(run, "runs", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution: String,
    pub pipeline: String,
    pub project: String,
    pub pipeline_type: i32,
    pub build_only: bool,
    pub create_time: DateTimeUtc,
    pub end_time: Option<DateTimeUtc>,
    pub outcome: String,
    pub current_stage: String,
    /// JSON array of [stage, state] pairs in the order stages started.
    #[sea_orm(column_type = "Text")]
    pub stages: String,
    pub failed_stage: String,
    #[sea_orm(column_type = "Text")]
    pub failure_reason: String,
    pub approval_rejected: bool,
    pub update_time: DateTimeUtc,
});

entity!(deployment, "deployments", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub execution: String,
    pub pipeline: String,
    pub project: String,
    pub pipeline_type: i32,
    pub stage: String,
    pub environment: String,
    pub tier: i32,
    /// JSON array of [account, region] pairs.
    #[sea_orm(column_type = "Text")]
    pub targets: String,
    /// JSON of the deployed artifact, or "".
    #[sea_orm(column_type = "Text")]
    pub artifact: String,
    pub outcome: String,
    pub start_time: DateTimeUtc,
    pub first_wave_end_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    pub change_failure: bool,
    pub failure_alarm: String,
    pub failure_detect_time: Option<DateTimeUtc>,
    pub restore_time: Option<DateTimeUtc>,
    pub restored_by: String,
    pub commit_count: i64,
});

entity!(commit, "commits", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pipeline: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub sha: String,
    pub project: String,
    pub execution: String,
    pub author: String,
    pub land_time: DateTimeUtc,
    pub commit_time: Option<DateTimeUtc>,
    pub first_seen: DateTimeUtc,
    pub deployment: Option<String>,
    pub deploy_end_time: Option<DateTimeUtc>,
    pub lead_time_ms: Option<i64>,
    pub first_wave_lead_ms: Option<i64>,
});

entity!(stage_budget, "stage_budgets", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub stage: String,
    pub pipeline: String,
    pub project: String,
    pub tier: i32,
    pub end_time: DateTimeUtc,
    pub duration_ms: i64,
    pub budget_ms: i64,
});

entity!(streak, "streaks", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub pipeline: String,
    pub project: String,
    pub green: bool,
    pub start_time: DateTimeUtc,
    pub end_time: DateTimeUtc,
});

entity!(security_error, "security_errors", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub pipeline: String,
    pub project: String,
    pub execution: String,
    pub open_time: DateTimeUtc,
    pub resolve_time: Option<DateTimeUtc>,
});

entity!(health, "health", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pipeline: String,
    pub project: String,
    pub state: String,
    pub since: Option<DateTimeUtc>,
    pub last_execution: String,
    pub last_start_time: Option<DateTimeUtc>,
    pub last_outcome: String,
    pub failed_stage: String,
    #[sea_orm(column_type = "Text")]
    pub failure_reason: String,
    pub current_execution: String,
    pub update_time: DateTimeUtc,
});

entity!(conformance, "conformance", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pipeline: String,
    pub project: String,
    pub revision: String,
    pub security_percent: f64,
    pub update_time: DateTimeUtc,
});

entity!(survey, "surveys", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub pipeline: String,
    pub project: String,
    pub team: String,
    pub respondent: String,
    pub period_start: DateTimeUtc,
    pub period_end: DateTimeUtc,
    /// JSON array of [metric, score] pairs.
    #[sea_orm(column_type = "Text")]
    pub answers: String,
    #[sea_orm(column_type = "Text")]
    pub comment: String,
    pub request_id: Option<String>,
    pub create_time: DateTimeUtc,
});

entity!(notification_rule, "notification_rules", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub display_name: String,
    pub pipeline: String,
    pub project: String,
    /// JSON array of NotificationEvent numbers.
    #[sea_orm(column_type = "Text")]
    pub events: String,
    /// JSON of the channel (`notify::Channel`).
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    pub disabled: bool,
    pub created_by: String,
    pub etag: String,
    pub request_id: Option<String>,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
});

entity!(delivery, "deliveries", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub rule: String,
    pub event_id: String,
    pub event_type: String,
    pub subject: String,
    /// JSON of the notice sent (`notify::Notice`).
    #[sea_orm(column_type = "Text")]
    pub notice: String,
    pub state: String,
    pub attempts: i32,
    #[sea_orm(column_type = "Text")]
    pub last_error: String,
    pub response_code: i32,
    pub create_time: DateTimeUtc,
    pub last_attempt_time: Option<DateTimeUtc>,
    pub next_attempt_time: DateTimeUtc,
});
