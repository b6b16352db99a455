use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Ous::Table)
                    .if_not_exists()
                    .col(string(Ous::Id).primary_key())
                    .col(string(Ous::DisplayName))
                    .col(string_null(Ous::Parent))
                    .col(text(Ous::Path))
                    .col(string_null(Ous::BaselineVersion))
                    .col(string(Ous::Etag))
                    .col(timestamp_with_time_zone(Ous::CreateTime))
                    .col(timestamp_with_time_zone(Ous::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ous_parent")
                    .table(Ous::Table)
                    .col(Ous::Parent)
                    .col(Ous::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .if_not_exists()
                    .col(string(Accounts::Id).primary_key())
                    .col(string(Accounts::DisplayName))
                    .col(string(Accounts::Owner))
                    .col(string(Accounts::Ou))
                    .col(text(Accounts::OuPath))
                    .col(string(Accounts::Tier))
                    .col(text(Accounts::Regions))
                    .col(text(Accounts::Tags))
                    .col(string(Accounts::State))
                    .col(text(Accounts::StateReason))
                    .col(string(Accounts::VendingExecution))
                    .col(string_null(Accounts::AppliedVersion))
                    .col(timestamp_with_time_zone_null(Accounts::ApplyTime))
                    .col(string(Accounts::ApplyExecution))
                    .col(timestamp_with_time_zone_null(Accounts::CheckTime))
                    .col(boolean_null(Accounts::CheckPassed))
                    .col(text(Accounts::CheckDetail))
                    .col(string(Accounts::Etag))
                    .col(timestamp_with_time_zone(Accounts::CreateTime))
                    .col(timestamp_with_time_zone(Accounts::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_accounts_ou")
                    .table(Accounts::Table)
                    .col(Accounts::Ou)
                    .to_owned(),
            )
            .await?;
        // Subtree queries are `ou_path LIKE '/root/x/%'`: on Postgres only a
        // pattern-ops index serves a prefix LIKE whatever the collation.
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_accounts_ou_path \
                 ON accounts (ou_path text_pattern_ops, id)",
            )
            .await?;
            db.execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_ous_path ON organizational_units (path text_pattern_ops)",
            )
            .await?;
        } else {
            manager
                .create_index(
                    Index::create()
                        .name("ix_accounts_ou_path")
                        .table(Accounts::Table)
                        .col(Accounts::OuPath)
                        .col(Accounts::Id)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Baselines::Table)
                    .if_not_exists()
                    .col(string(Baselines::Id).primary_key())
                    .col(text(Baselines::Description))
                    .col(big_integer(Baselines::LatestVersion))
                    .col(timestamp_with_time_zone(Baselines::CreateTime))
                    .col(timestamp_with_time_zone(Baselines::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BaselineVersions::Table)
                    .if_not_exists()
                    .col(string(BaselineVersions::Baseline))
                    .col(big_integer(BaselineVersions::Version))
                    .col(blob(BaselineVersions::Bundle))
                    .col(text(BaselineVersions::Manifest))
                    .col(text(BaselineVersions::ApplyCommand))
                    .col(text(BaselineVersions::CheckCommand))
                    .col(big_integer(BaselineVersions::TimeoutSecs))
                    .col(string(BaselineVersions::Digest))
                    .col(big_integer(BaselineVersions::SizeBytes))
                    .col(string(BaselineVersions::ContentKey))
                    .col(string(BaselineVersions::Author))
                    .col(text(BaselineVersions::Message))
                    .col(timestamp_with_time_zone(BaselineVersions::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(BaselineVersions::Baseline)
                            .col(BaselineVersions::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_versions_baseline")
                            .from(BaselineVersions::Table, BaselineVersions::Baseline)
                            .to(Baselines::Table, Baselines::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FreezeWindows::Table)
                    .if_not_exists()
                    .col(string(FreezeWindows::Id).primary_key())
                    .col(string(FreezeWindows::Ou))
                    .col(text(FreezeWindows::Reason))
                    .col(timestamp_with_time_zone(FreezeWindows::StartTime))
                    .col(timestamp_with_time_zone(FreezeWindows::EndTime))
                    .col(text(FreezeWindows::CreatedBy))
                    .col(text(FreezeWindows::Overrides))
                    .col(string(FreezeWindows::Etag))
                    .col(timestamp_with_time_zone(FreezeWindows::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_freeze_windows_end")
                    .table(FreezeWindows::Table)
                    .col(FreezeWindows::EndTime)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Rollouts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Rollouts::Seq))
                    .col(string_uniq(Rollouts::Id))
                    .col(string(Rollouts::Baseline))
                    .col(string(Rollouts::BaselineVersion))
                    .col(text(Rollouts::Plan))
                    .col(string(Rollouts::State))
                    .col(text(Rollouts::StateReason))
                    .col(string(Rollouts::Pipeline))
                    .col(string(Rollouts::Execution))
                    .col(integer(Rollouts::CurrentWave))
                    .col(text(Rollouts::RevertedAccounts))
                    .col(text(Rollouts::CreatedBy))
                    .col(timestamp_with_time_zone(Rollouts::CreateTime))
                    .col(timestamp_with_time_zone_null(Rollouts::StartTime))
                    .col(timestamp_with_time_zone_null(Rollouts::EndTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_rollouts_state")
                    .table(Rollouts::Table)
                    .col(Rollouts::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Requests::Table)
                    .if_not_exists()
                    .col(string(Requests::RequestId).primary_key())
                    .col(text(Requests::Fingerprint))
                    .col(string(Requests::Resource))
                    .col(timestamp_with_time_zone(Requests::CreateTime))
                    .to_owned(),
            )
            .await?;
        // The root OU always exists.
        let now = chrono::Utc::now();
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Ous::Table)
                    .columns([
                        Ous::Id,
                        Ous::DisplayName,
                        Ous::Path,
                        Ous::Etag,
                        Ous::CreateTime,
                        Ous::UpdateTime,
                    ])
                    .values_panic([
                        "root".into(),
                        "Root".into(),
                        "/root/".into(),
                        "root-0".into(),
                        now.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Requests::Table.into_iden(),
            Rollouts::Table.into_iden(),
            FreezeWindows::Table.into_iden(),
            BaselineVersions::Table.into_iden(),
            Baselines::Table.into_iden(),
            Accounts::Table.into_iden(),
            Ous::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Ous {
    #[sea_orm(iden = "organizational_units")]
    Table,
    Id,
    DisplayName,
    Parent,
    Path,
    BaselineVersion,
    Etag,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    DisplayName,
    Owner,
    Ou,
    OuPath,
    Tier,
    Regions,
    Tags,
    State,
    StateReason,
    VendingExecution,
    AppliedVersion,
    ApplyTime,
    ApplyExecution,
    CheckTime,
    CheckPassed,
    CheckDetail,
    Etag,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Baselines {
    Table,
    Id,
    Description,
    LatestVersion,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum BaselineVersions {
    Table,
    Baseline,
    Version,
    Bundle,
    Manifest,
    ApplyCommand,
    CheckCommand,
    TimeoutSecs,
    Digest,
    SizeBytes,
    ContentKey,
    Author,
    Message,
    CreateTime,
}

#[derive(DeriveIden)]
enum FreezeWindows {
    Table,
    Id,
    Ou,
    Reason,
    StartTime,
    EndTime,
    CreatedBy,
    Overrides,
    Etag,
    CreateTime,
}

#[derive(DeriveIden)]
enum Rollouts {
    Table,
    Seq,
    Id,
    Baseline,
    BaselineVersion,
    Plan,
    State,
    StateReason,
    Pipeline,
    Execution,
    CurrentWave,
    RevertedAccounts,
    CreatedBy,
    CreateTime,
    StartTime,
    EndTime,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    RequestId,
    Fingerprint,
    Resource,
    CreateTime,
}
