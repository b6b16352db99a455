//! sea-orm entities, one module per table.

pub mod pipeline {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipelines")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        pub project: String,
        pub pipeline_type: String,
        /// JSON object of the spec's labels.
        #[sea_orm(column_type = "Text")]
        pub labels: String,
        pub current_revision: i64,
        pub etag: String,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::revision::Entity")]
        Revision,
    }

    impl Related<super::revision::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Revision.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod revision {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipeline_revisions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub pipeline_id: i64,
        pub revision: i64,
        pub spec_sha256: String,
        pub author: String,
        #[sea_orm(column_type = "Text")]
        pub message: String,
        #[sea_orm(column_type = "Text")]
        pub source: String,
        pub source_format: String,
        #[sea_orm(column_type = "Text")]
        pub canonical_spec: String,
        pub non_conformance_accepted: bool,
        /// JSON of the conformance report.
        #[sea_orm(column_type = "Text")]
        pub conformance: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::pipeline::Entity",
            from = "Column::PipelineId",
            to = "super::pipeline::Column::Id"
        )]
        Pipeline,
    }

    impl Related<super::pipeline::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Pipeline.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod request {
    use sea_orm::entity::prelude::*;

    /// Mutations already applied, by request id (AIP-155).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipeline_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        /// What the request did: method, pipeline and spec digest.
        pub fingerprint: String,
        pub pipeline_name: String,
        pub revision: i64,
        pub created: bool,
        pub revision_created: bool,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod upstream {
    use sea_orm::entity::prelude::*;

    /// A pipeline's current revision takes artifacts from `upstream`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipeline_upstreams")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub pipeline_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub upstream: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
