use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Artifacts: the outputs actions declare, stored by digest and signed, and
/// the declared outputs of each action run.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Artifacts::Table)
                    .if_not_exists()
                    .col(string(Artifacts::ExecutionId))
                    .col(string(Artifacts::Name))
                    .col(string(Artifacts::Pipeline))
                    .col(string(Artifacts::ActionId))
                    .col(integer(Artifacts::StageIndex))
                    .col(string(Artifacts::Kind))
                    .col(string(Artifacts::Digest))
                    .col(big_integer(Artifacts::SizeBytes))
                    .col(string(Artifacts::MediaType))
                    .col(string(Artifacts::SubjectDigest))
                    .col(string(Artifacts::CommitSha))
                    .col(string(Artifacts::SignatureAlgorithm))
                    .col(string(Artifacts::SignatureKeyId))
                    .col(string(Artifacts::Signature))
                    .col(text(Artifacts::Annotations))
                    .col(timestamp_with_time_zone(Artifacts::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(Artifacts::ExecutionId)
                            .col(Artifacts::Name),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_artifacts_digest")
                    .table(Artifacts::Table)
                    .col(Artifacts::Digest)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ActionRuns::Table)
                    .add_column(text(ActionRuns::Outputs).default("[]"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ActionRuns::Table)
                    .drop_column(ActionRuns::Outputs)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Artifacts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Artifacts {
    Table,
    ExecutionId,
    Name,
    Pipeline,
    ActionId,
    StageIndex,
    Kind,
    Digest,
    SizeBytes,
    MediaType,
    SubjectDigest,
    CommitSha,
    SignatureAlgorithm,
    SignatureKeyId,
    Signature,
    Annotations,
    CreateTime,
}

#[derive(DeriveIden)]
enum ActionRuns {
    Table,
    Outputs,
}
