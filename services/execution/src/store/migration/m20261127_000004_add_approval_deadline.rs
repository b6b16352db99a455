use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// When a stage waiting for approval gives up (`approval.timeout`).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(StageRuns::Table)
                    .add_column(timestamp_with_time_zone_null(StageRuns::ApprovalDeadline))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(StageRuns::Table)
                    .drop_column(StageRuns::ApprovalDeadline)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum StageRuns {
    Table,
    ApprovalDeadline,
}
