//! sea-orm entities, one module per table.

pub mod ou {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "organizational_units")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub display_name: String,
        pub parent: Option<String>,
        /// `/root/.../{id}/`.
        pub path: String,
        pub baseline_version: Option<String>,
        pub etag: String,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        /// The OU's auto-rollout strategy (JSON), when it follows its baseline.
        pub auto_rollout: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub display_name: String,
        pub owner: String,
        pub ou: String,
        /// The path of the account's OU, for subtree queries.
        pub ou_path: String,
        pub tier: String,
        /// JSON array of region names.
        #[sea_orm(column_type = "Text")]
        pub regions: String,
        /// JSON object of tags (compact, keys sorted).
        #[sea_orm(column_type = "Text")]
        pub tags: String,
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub state_reason: String,
        pub vending_execution: String,
        /// The pipeline that vends the account; empty: the configured one.
        pub vending_pipeline: String,
        pub applied_version: Option<String>,
        pub apply_time: Option<DateTimeUtc>,
        pub apply_execution: String,
        pub check_time: Option<DateTimeUtc>,
        pub check_passed: Option<bool>,
        #[sea_orm(column_type = "Text")]
        pub check_detail: String,
        pub etag: String,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod baseline {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "baselines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_type = "Text")]
        pub description: String,
        pub latest_version: i64,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod baseline_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "baseline_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub baseline: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        /// The canonical tar of the files.
        #[sea_orm(column_type = "Blob")]
        pub bundle: Vec<u8>,
        /// JSON list of the files without their contents.
        #[sea_orm(column_type = "Text")]
        pub manifest: String,
        #[sea_orm(column_type = "Text")]
        pub apply_command: String,
        #[sea_orm(column_type = "Text")]
        pub check_command: String,
        pub timeout_secs: i64,
        pub digest: String,
        pub size_bytes: i64,
        /// sha256 over digest, commands and timeout: equal content, equal key.
        pub content_key: String,
        pub author: String,
        #[sea_orm(column_type = "Text")]
        pub message: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod freeze_window {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "freeze_windows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub ou: String,
        #[sea_orm(column_type = "Text")]
        pub reason: String,
        pub start_time: DateTimeUtc,
        pub end_time: DateTimeUtc,
        /// JSON principal.
        #[sea_orm(column_type = "Text")]
        pub created_by: String,
        /// JSON list of overrides, oldest first: the audit trail.
        #[sea_orm(column_type = "Text")]
        pub overrides: String,
        pub etag: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod rollout {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rollouts")]
    pub struct Model {
        /// Orders rollouts newest first.
        #[sea_orm(primary_key)]
        pub seq: i64,
        #[sea_orm(unique)]
        pub id: String,
        pub baseline: String,
        pub baseline_version: String,
        /// JSON of the plan snapshotted at start.
        #[sea_orm(column_type = "Text")]
        pub plan: String,
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub state_reason: String,
        pub pipeline: String,
        pub execution: String,
        pub current_wave: i32,
        /// JSON list of account ids.
        #[sea_orm(column_type = "Text")]
        pub reverted_accounts: String,
        /// JSON principal.
        #[sea_orm(column_type = "Text")]
        pub created_by: String,
        pub create_time: DateTimeUtc,
        pub start_time: Option<DateTimeUtc>,
        pub end_time: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod request {
    use sea_orm::entity::prelude::*;

    /// Idempotency keys (AIP-155): what a request id did.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        /// The method and its arguments; a reuse with others is refused.
        pub fingerprint: String,
        /// The resource the request created or changed.
        pub resource: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
