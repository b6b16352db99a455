//! Which pipelines take artifacts from which: one row per pipeline and
//! upstream pipeline of its current revision, so the execution service can
//! find the pipelines a publish triggers without reading every spec.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PipelineUpstreams::Table)
                    .if_not_exists()
                    .col(big_integer(PipelineUpstreams::PipelineId))
                    .col(string(PipelineUpstreams::Upstream))
                    .primary_key(
                        Index::create()
                            .col(PipelineUpstreams::PipelineId)
                            .col(PipelineUpstreams::Upstream),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_upstreams_pipeline")
                            .from(PipelineUpstreams::Table, PipelineUpstreams::PipelineId)
                            .to(Pipelines::Table, Pipelines::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_pipeline_upstreams_upstream")
                    .table(PipelineUpstreams::Table)
                    .col(PipelineUpstreams::Upstream)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PipelineUpstreams::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PipelineUpstreams {
    Table,
    PipelineId,
    Upstream,
}

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    Id,
}
