use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Notification rules and their delivery log.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NotificationRules::Table)
                    .if_not_exists()
                    .col(string(NotificationRules::Id).primary_key())
                    .col(string(NotificationRules::DisplayName))
                    .col(string(NotificationRules::Pipeline))
                    .col(string(NotificationRules::Project))
                    .col(text(NotificationRules::Events))
                    .col(text(NotificationRules::Channel))
                    .col(boolean(NotificationRules::Disabled))
                    .col(string(NotificationRules::CreatedBy))
                    .col(string(NotificationRules::Etag))
                    .col(string_null(NotificationRules::RequestId).unique_key())
                    .col(timestamp_with_time_zone(NotificationRules::CreateTime))
                    .col(timestamp_with_time_zone(NotificationRules::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(string(Deliveries::Id).primary_key())
                    .col(string(Deliveries::Rule))
                    .col(string(Deliveries::EventId))
                    .col(string(Deliveries::EventType))
                    .col(string(Deliveries::Subject))
                    .col(text(Deliveries::Notice))
                    .col(string(Deliveries::State))
                    .col(integer(Deliveries::Attempts))
                    .col(text(Deliveries::LastError))
                    .col(integer(Deliveries::ResponseCode))
                    .col(timestamp_with_time_zone(Deliveries::CreateTime))
                    .col(timestamp_with_time_zone_null(Deliveries::LastAttemptTime))
                    .col(timestamp_with_time_zone(Deliveries::NextAttemptTime))
                    .to_owned(),
            )
            .await?;
        // One delivery per rule and event: a redelivered event sends nothing new.
        manager
            .create_index(
                Index::create()
                    .name("ux_deliveries_rule_event")
                    .table(Deliveries::Table)
                    .col(Deliveries::Rule)
                    .col(Deliveries::EventId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::State)
                    .col(Deliveries::NextAttemptTime)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Deliveries::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(NotificationRules::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum NotificationRules {
    Table,
    Id,
    DisplayName,
    Pipeline,
    Project,
    Events,
    Channel,
    Disabled,
    CreatedBy,
    Etag,
    RequestId,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    Rule,
    EventId,
    EventType,
    Subject,
    Notice,
    State,
    Attempts,
    LastError,
    ResponseCode,
    CreateTime,
    LastAttemptTime,
    NextAttemptTime,
}
