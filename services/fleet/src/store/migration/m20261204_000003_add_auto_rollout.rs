use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// The strategy an OU follows its baseline's newer versions with (JSON),
/// when it does.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OrganizationalUnits::Table)
                    .add_column(text_null(OrganizationalUnits::AutoRollout))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OrganizationalUnits::Table)
                    .drop_column(OrganizationalUnits::AutoRollout)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum OrganizationalUnits {
    Table,
    AutoRollout,
}
