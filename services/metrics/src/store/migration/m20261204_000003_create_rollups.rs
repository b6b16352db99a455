use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Daily rollups; when an event id was claimed; the indexes retention and
/// the rollups' corrections read by.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rollups::Table)
                    .if_not_exists()
                    .col(string(Rollups::Kind))
                    .col(string(Rollups::Key))
                    .col(date(Rollups::Day))
                    .col(string(Rollups::Project))
                    .col(text(Rollups::Tally))
                    .col(timestamp_with_time_zone(Rollups::UpdateTime))
                    .primary_key(
                        Index::create()
                            .col(Rollups::Kind)
                            .col(Rollups::Key)
                            .col(Rollups::Day),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ProcessedEvents::Table)
                    .add_column(timestamp_with_time_zone_null(ProcessedEvents::ClaimTime))
                    .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            ("ix_rollups_kind_day", "rollups", &["kind", "day"][..]),
            ("ix_deployments_restore", "deployments", &["restore_time"]),
            (
                "ix_deployments_detect",
                "deployments",
                &["failure_detect_time"],
            ),
            ("ix_runs_end", "runs", &["end_time"]),
            (
                "ix_processed_events_claim",
                "processed_events",
                &["claim_time"],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Alias::new(table)).if_not_exists();
            for col in cols {
                index.col(Alias::new(*col));
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ProcessedEvents::Table)
                    .drop_column(ProcessedEvents::ClaimTime)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Rollups::Table).if_exists().to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Rollups {
    Table,
    Kind,
    Key,
    Day,
    Project,
    Tally,
    UpdateTime,
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Table,
    ClaimTime,
}
