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
                    .table(Pipelines::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Pipelines::Id))
                    .col(string_uniq(Pipelines::Name))
                    .col(string(Pipelines::Project))
                    .col(string(Pipelines::PipelineType))
                    .col(text(Pipelines::Labels))
                    .col(big_integer(Pipelines::CurrentRevision))
                    .col(string(Pipelines::Etag))
                    .col(timestamp_with_time_zone(Pipelines::CreateTime))
                    .col(timestamp_with_time_zone(Pipelines::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_pipelines_project_name")
                    .table(Pipelines::Table)
                    .col(Pipelines::Project)
                    .col(Pipelines::Name)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PipelineRevisions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PipelineRevisions::Id))
                    .col(big_integer(PipelineRevisions::PipelineId))
                    .col(big_integer(PipelineRevisions::Revision))
                    .col(string(PipelineRevisions::SpecSha256))
                    .col(string(PipelineRevisions::Author))
                    .col(text(PipelineRevisions::Message))
                    .col(text(PipelineRevisions::Source))
                    .col(string(PipelineRevisions::SourceFormat))
                    .col(text(PipelineRevisions::CanonicalSpec))
                    .col(boolean(PipelineRevisions::NonConformanceAccepted))
                    .col(text(PipelineRevisions::Conformance))
                    .col(timestamp_with_time_zone(PipelineRevisions::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_revisions_pipeline")
                            .from(PipelineRevisions::Table, PipelineRevisions::PipelineId)
                            .to(Pipelines::Table, Pipelines::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_revisions_pipeline_revision")
                    .table(PipelineRevisions::Table)
                    .col(PipelineRevisions::PipelineId)
                    .col(PipelineRevisions::Revision)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PipelineRequests::Table)
                    .if_not_exists()
                    .col(string(PipelineRequests::RequestId).primary_key())
                    .col(string(PipelineRequests::Fingerprint))
                    .col(string(PipelineRequests::PipelineName))
                    .col(big_integer(PipelineRequests::Revision))
                    .col(boolean(PipelineRequests::Created))
                    .col(boolean(PipelineRequests::RevisionCreated))
                    .col(timestamp_with_time_zone(PipelineRequests::CreateTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PipelineRequests::Table.into_iden(),
            PipelineRevisions::Table.into_iden(),
            Pipelines::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    Id,
    Name,
    Project,
    PipelineType,
    Labels,
    CurrentRevision,
    Etag,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum PipelineRevisions {
    Table,
    Id,
    PipelineId,
    Revision,
    SpecSha256,
    Author,
    Message,
    Source,
    SourceFormat,
    CanonicalSpec,
    NonConformanceAccepted,
    Conformance,
    CreateTime,
}

#[derive(DeriveIden)]
enum PipelineRequests {
    Table,
    RequestId,
    Fingerprint,
    PipelineName,
    Revision,
    Created,
    RevisionCreated,
    CreateTime,
}
