//! Writing a batch's changed records back: one upsert per table and chunk.

use super::*;
use crate::store::rollups;
use crate::store::upsert::upsert;

impl<'c, C: ConnectionTrait> Working<'c, C> {
    /// Writes every changed record; returns the days whose rollups changed.
    pub async fn save(self) -> Result<rollups::Dirty, DbErr> {
        use sea_orm::{ActiveModelTrait, IntoActiveModel};

        fn dirty<T: Clone>(map: HashMap<impl std::hash::Hash + Eq, Slot<T>>) -> Vec<T> {
            map.into_values()
                .filter(|s| s.dirty)
                .filter_map(|s| s.value)
                .collect()
        }
        let db = self.db;
        let mut days = self.days;
        let runs = dirty(self.runs);
        let health = dirty(self.health);
        let deployments = dirty(self.deployments);
        let commits = dirty(self.commits);
        let production = common::Tier::Production as i32;
        for d in deployments.iter().filter(|d| d.tier == production) {
            rollups::mark(&mut days, &d.pipeline, &d.project, d.end_time);
            rollups::mark(&mut days, &d.pipeline, &d.project, d.failure_detect_time);
        }
        for c in &commits {
            rollups::mark(&mut days, &c.pipeline, &c.project, c.deploy_end_time);
        }
        for b in &self.budgets {
            rollups::mark(&mut days, &b.pipeline, &b.project, Some(b.end_time));
        }
        for s in &self.streaks {
            rollups::mark(&mut days, &s.pipeline, &s.project, Some(s.end_time));
        }
        upsert::<run::Entity, _>(
            db,
            &runs,
            &[run::Column::Execution],
            &[
                run::Column::Outcome,
                run::Column::EndTime,
                run::Column::CurrentStage,
                run::Column::Stages,
                run::Column::FailedStage,
                run::Column::FailureReason,
                run::Column::ApprovalRejected,
                run::Column::UpdateTime,
            ],
        )
        .await?;
        upsert::<deployment::Entity, _>(
            db,
            &deployments,
            &[deployment::Column::Id],
            &[
                deployment::Column::Targets,
                deployment::Column::Outcome,
                deployment::Column::FirstWaveEndTime,
                deployment::Column::EndTime,
                deployment::Column::ChangeFailure,
                deployment::Column::FailureAlarm,
                deployment::Column::FailureDetectTime,
                deployment::Column::RestoreTime,
                deployment::Column::RestoredBy,
                deployment::Column::CommitCount,
            ],
        )
        .await?;
        upsert::<health::Entity, _>(
            db,
            &health,
            &[health::Column::Pipeline],
            &[
                health::Column::State,
                health::Column::Since,
                health::Column::LastExecution,
                health::Column::LastStartTime,
                health::Column::LastOutcome,
                health::Column::FailedStage,
                health::Column::FailureReason,
                health::Column::CurrentExecution,
                health::Column::UpdateTime,
            ],
        )
        .await?;
        upsert::<commit::Entity, _>(
            db,
            &commits,
            &[commit::Column::Pipeline, commit::Column::Sha],
            &[
                commit::Column::Deployment,
                commit::Column::DeployEndTime,
                commit::Column::LeadTimeMs,
                commit::Column::FirstWaveLeadMs,
            ],
        )
        .await?;
        let conformance: Vec<conformance::Model> = self.conformance.into_values().collect();
        upsert::<conformance::Entity, _>(
            db,
            &conformance,
            &[conformance::Column::Pipeline],
            &[
                conformance::Column::Project,
                conformance::Column::Revision,
                conformance::Column::SecurityPercent,
                conformance::Column::UpdateTime,
            ],
        )
        .await?;
        for chunk in self.budgets.chunks(200) {
            stage_budget::Entity::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                .on_conflict_do_nothing_on([
                    stage_budget::Column::Execution,
                    stage_budget::Column::Stage,
                ])
                .exec(db)
                .await?;
        }
        // Resolutions apply to errors stored before this batch; the ones it
        // opened carry their resolution already.
        for (pipeline, end) in &self.security_resolved {
            security_error::Entity::update_many()
                .col_expr(
                    security_error::Column::ResolveTime,
                    sea_orm::sea_query::Expr::value(*end),
                )
                .filter(security_error::Column::Pipeline.eq(pipeline.as_str()))
                .filter(security_error::Column::ResolveTime.is_null())
                .filter(security_error::Column::OpenTime.lte(*end))
                .exec(db)
                .await?;
        }
        for s in self.security_opened {
            let mut active = s.into_active_model();
            active.id = sea_orm::ActiveValue::NotSet;
            active.insert(db).await?;
        }
        for s in self.streaks {
            let mut active = s.into_active_model();
            active.id = sea_orm::ActiveValue::NotSet;
            active.insert(db).await?;
        }
        Ok(days)
    }
}
