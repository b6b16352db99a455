use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&'static str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table)).if_not_exists();
    for col in cols {
        index.col(Alias::new(*col));
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Event ids already applied: the consumer's idempotency.
        manager
            .create_table(
                Table::create()
                    .table(ProcessedEvents::Table)
                    .if_not_exists()
                    .col(string(ProcessedEvents::Id).primary_key())
                    .col(timestamp_with_time_zone(ProcessedEvents::EventTime))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_processed_events_time",
            "processed_events",
            &["event_time"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .if_not_exists()
                    .col(string(Runs::Execution).primary_key())
                    .col(string(Runs::Pipeline))
                    .col(string(Runs::Project))
                    .col(integer(Runs::PipelineType))
                    .col(boolean(Runs::BuildOnly))
                    .col(timestamp_with_time_zone(Runs::CreateTime))
                    .col(timestamp_with_time_zone_null(Runs::EndTime))
                    .col(string(Runs::Outcome))
                    .col(string(Runs::CurrentStage))
                    .col(text(Runs::Stages))
                    .col(string(Runs::FailedStage))
                    .col(text(Runs::FailureReason))
                    .col(boolean(Runs::ApprovalRejected))
                    .col(timestamp_with_time_zone(Runs::UpdateTime))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_runs_pipeline",
            "runs",
            &["pipeline", "create_time"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Deployments::Table)
                    .if_not_exists()
                    .col(string(Deployments::Id).primary_key())
                    .col(string(Deployments::Execution))
                    .col(string(Deployments::Pipeline))
                    .col(string(Deployments::Project))
                    .col(integer(Deployments::PipelineType))
                    .col(string(Deployments::Stage))
                    .col(string(Deployments::Environment))
                    .col(integer(Deployments::Tier))
                    .col(text(Deployments::Targets))
                    .col(text(Deployments::Artifact))
                    .col(string(Deployments::Outcome))
                    .col(timestamp_with_time_zone(Deployments::StartTime))
                    .col(timestamp_with_time_zone_null(Deployments::FirstWaveEndTime))
                    .col(timestamp_with_time_zone_null(Deployments::EndTime))
                    .col(boolean(Deployments::ChangeFailure))
                    .col(string(Deployments::FailureAlarm))
                    .col(timestamp_with_time_zone_null(
                        Deployments::FailureDetectTime,
                    ))
                    .col(timestamp_with_time_zone_null(Deployments::RestoreTime))
                    .col(string(Deployments::RestoredBy))
                    .col(big_integer(Deployments::CommitCount))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_deployments_tier_end",
            "deployments",
            &["tier", "end_time"],
        )
        .await?;
        index(
            manager,
            "ix_deployments_pipeline_end",
            "deployments",
            &["pipeline", "end_time"],
        )
        .await?;
        index(
            manager,
            "ix_deployments_start",
            "deployments",
            &["start_time", "id"],
        )
        .await?;
        index(
            manager,
            "ix_deployments_execution",
            "deployments",
            &["execution"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Commits::Table)
                    .if_not_exists()
                    .col(string(Commits::Pipeline))
                    .col(string(Commits::Sha))
                    .col(string(Commits::Project))
                    .col(string(Commits::Execution))
                    .col(string(Commits::Author))
                    .col(timestamp_with_time_zone(Commits::LandTime))
                    .col(timestamp_with_time_zone_null(Commits::CommitTime))
                    .col(timestamp_with_time_zone(Commits::FirstSeen))
                    .col(string_null(Commits::Deployment))
                    .col(timestamp_with_time_zone_null(Commits::DeployEndTime))
                    .col(big_integer_null(Commits::LeadTimeMs))
                    .col(big_integer_null(Commits::FirstWaveLeadMs))
                    .primary_key(Index::create().col(Commits::Pipeline).col(Commits::Sha))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_commits_pending",
            "commits",
            &["pipeline", "deployment"],
        )
        .await?;
        index(
            manager,
            "ix_commits_deploy_end",
            "commits",
            &["deploy_end_time"],
        )
        .await?;
        index(manager, "ix_commits_deployment", "commits", &["deployment"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(StageBudgets::Table)
                    .if_not_exists()
                    .col(string(StageBudgets::Execution))
                    .col(string(StageBudgets::Stage))
                    .col(string(StageBudgets::Pipeline))
                    .col(string(StageBudgets::Project))
                    .col(integer(StageBudgets::Tier))
                    .col(timestamp_with_time_zone(StageBudgets::EndTime))
                    .col(big_integer(StageBudgets::DurationMs))
                    .col(big_integer(StageBudgets::BudgetMs))
                    .primary_key(
                        Index::create()
                            .col(StageBudgets::Execution)
                            .col(StageBudgets::Stage),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_stage_budgets_end",
            "stage_budgets",
            &["end_time"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Streaks::Table)
                    .if_not_exists()
                    .col(pk_auto(Streaks::Id).big_integer())
                    .col(string(Streaks::Pipeline))
                    .col(string(Streaks::Project))
                    .col(boolean(Streaks::Green))
                    .col(timestamp_with_time_zone(Streaks::StartTime))
                    .col(timestamp_with_time_zone(Streaks::EndTime))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_streaks_end", "streaks", &["end_time"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(SecurityErrors::Table)
                    .if_not_exists()
                    .col(pk_auto(SecurityErrors::Id).big_integer())
                    .col(string(SecurityErrors::Pipeline))
                    .col(string(SecurityErrors::Project))
                    .col(string(SecurityErrors::Execution))
                    .col(timestamp_with_time_zone(SecurityErrors::OpenTime))
                    .col(timestamp_with_time_zone_null(SecurityErrors::ResolveTime))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_security_errors_pipeline",
            "security_errors",
            &["pipeline", "resolve_time"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Health::Table)
                    .if_not_exists()
                    .col(string(Health::Pipeline).primary_key())
                    .col(string(Health::Project))
                    .col(string(Health::State))
                    .col(timestamp_with_time_zone_null(Health::Since))
                    .col(string(Health::LastExecution))
                    .col(timestamp_with_time_zone_null(Health::LastStartTime))
                    .col(string(Health::LastOutcome))
                    .col(string(Health::FailedStage))
                    .col(text(Health::FailureReason))
                    .col(string(Health::CurrentExecution))
                    .col(timestamp_with_time_zone(Health::UpdateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Conformance::Table)
                    .if_not_exists()
                    .col(string(Conformance::Pipeline).primary_key())
                    .col(string(Conformance::Project))
                    .col(string(Conformance::Revision))
                    .col(double(Conformance::SecurityPercent))
                    .col(timestamp_with_time_zone(Conformance::UpdateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Surveys::Table)
                    .if_not_exists()
                    .col(string(Surveys::Id).primary_key())
                    .col(string(Surveys::Pipeline))
                    .col(string(Surveys::Project))
                    .col(string(Surveys::Team))
                    .col(string(Surveys::Respondent))
                    .col(timestamp_with_time_zone(Surveys::PeriodStart))
                    .col(timestamp_with_time_zone(Surveys::PeriodEnd))
                    .col(text(Surveys::Answers))
                    .col(text(Surveys::Comment))
                    .col(string_null(Surveys::RequestId).unique_key())
                    .col(timestamp_with_time_zone(Surveys::CreateTime))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_surveys_period", "surveys", &["period_end"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Surveys::Table.into_iden(),
            Conformance::Table.into_iden(),
            Health::Table.into_iden(),
            SecurityErrors::Table.into_iden(),
            Streaks::Table.into_iden(),
            StageBudgets::Table.into_iden(),
            Commits::Table.into_iden(),
            Deployments::Table.into_iden(),
            Runs::Table.into_iden(),
            ProcessedEvents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Table,
    Id,
    EventTime,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Execution,
    Pipeline,
    Project,
    PipelineType,
    BuildOnly,
    CreateTime,
    EndTime,
    Outcome,
    CurrentStage,
    Stages,
    FailedStage,
    FailureReason,
    ApprovalRejected,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Deployments {
    Table,
    Id,
    Execution,
    Pipeline,
    Project,
    PipelineType,
    Stage,
    Environment,
    Tier,
    Targets,
    Artifact,
    Outcome,
    StartTime,
    FirstWaveEndTime,
    EndTime,
    ChangeFailure,
    FailureAlarm,
    FailureDetectTime,
    RestoreTime,
    RestoredBy,
    CommitCount,
}

#[derive(DeriveIden)]
enum Commits {
    Table,
    Pipeline,
    Sha,
    Project,
    Execution,
    Author,
    LandTime,
    CommitTime,
    FirstSeen,
    Deployment,
    DeployEndTime,
    LeadTimeMs,
    FirstWaveLeadMs,
}

#[derive(DeriveIden)]
enum StageBudgets {
    Table,
    Execution,
    Stage,
    Pipeline,
    Project,
    Tier,
    EndTime,
    DurationMs,
    BudgetMs,
}

#[derive(DeriveIden)]
enum Streaks {
    Table,
    Id,
    Pipeline,
    Project,
    Green,
    StartTime,
    EndTime,
}

#[derive(DeriveIden)]
enum SecurityErrors {
    Table,
    Id,
    Pipeline,
    Project,
    Execution,
    OpenTime,
    ResolveTime,
}

#[derive(DeriveIden)]
enum Health {
    Table,
    Pipeline,
    Project,
    State,
    Since,
    LastExecution,
    LastStartTime,
    LastOutcome,
    FailedStage,
    FailureReason,
    CurrentExecution,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Conformance {
    Table,
    Pipeline,
    Project,
    Revision,
    SecurityPercent,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Surveys {
    Table,
    Id,
    Pipeline,
    Project,
    Team,
    Respondent,
    PeriodStart,
    PeriodEnd,
    Answers,
    Comment,
    RequestId,
    CreateTime,
}
