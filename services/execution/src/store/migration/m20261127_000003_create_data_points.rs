use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Data points monitors report on metrics, which gate the end of a bake.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DataPoints::Table)
                    .if_not_exists()
                    .col(big_pk_auto(DataPoints::Id))
                    .col(string(DataPoints::Metric))
                    .col(string(DataPoints::Pipeline))
                    .col(big_integer(DataPoints::Count))
                    .col(timestamp_with_time_zone(DataPoints::ObserveTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_data_points_metric_time")
                    .table(DataPoints::Table)
                    .col(DataPoints::Metric)
                    .col(DataPoints::ObserveTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DataPoints::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DataPoints {
    Table,
    Id,
    Metric,
    Pipeline,
    Count,
    ObserveTime,
}
