use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// StartExecution's parameters (JSON object), exposed to actions as
/// CONVEYOR_PARAM_<KEY>.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(text(Executions::Parameters).default("{}"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .drop_column(Executions::Parameters)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    Parameters,
}
