use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Every commit an execution carries with its trunk-landing time (JSON
/// array, head last), and each stage's environment tier, for the delivery
/// metrics the events report.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One operation per ALTER: SQLite takes no more.
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(text(Executions::Commits).default("[]"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(StageRuns::Table)
                    .add_column(string(StageRuns::Tier).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(StageRuns::Table)
                    .drop_column(StageRuns::Tier)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .drop_column(Executions::Commits)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    Commits,
}

#[derive(DeriveIden)]
enum StageRuns {
    Table,
    Tier,
}
