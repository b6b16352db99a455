use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Artifacts flowing between pipelines: the upstream artifacts an execution
/// pinned (JSON array), the upstream execution that triggered it, and the
/// publishes whose downstream pipelines are still to be started; and each
/// action run's schema checks (JSON array) and metrics (JSON object).
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
                    .add_column(text(Executions::Upstream).default("[]"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(string(Executions::TriggeredBy).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ActionRuns::Table)
                    .add_column(text(ActionRuns::Validate).default("[]"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ActionRuns::Table)
                    .add_column(text(ActionRuns::Metrics).default("{}"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PendingTriggers::Table)
                    .if_not_exists()
                    .col(string(PendingTriggers::ExecutionId).primary_key())
                    .col(string(PendingTriggers::Pipeline))
                    .col(timestamp_with_time_zone(PendingTriggers::CreateTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PendingTriggers::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ActionRuns::Table)
                    .drop_column(ActionRuns::Validate)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ActionRuns::Table)
                    .drop_column(ActionRuns::Metrics)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .drop_column(Executions::TriggeredBy)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .drop_column(Executions::Upstream)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    Upstream,
    TriggeredBy,
}

#[derive(DeriveIden)]
enum ActionRuns {
    Table,
    Validate,
    Metrics,
}

#[derive(DeriveIden)]
enum PendingTriggers {
    Table,
    ExecutionId,
    Pipeline,
    CreateTime,
}
