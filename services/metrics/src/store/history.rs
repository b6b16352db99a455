//! What a window's metrics are read from: the daily rollups of its whole
//! UTC days, and the raw records of its partial first and last day (and of
//! the days being rolled up).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use conveyor_api::common::v1 as common;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{commit, deployment, security_error, stage_budget, streak};
use super::queries::Scope;
use super::{Store, StoreError, rollups};
use crate::compute::tally::{self, RECENT_VIOLATIONS};
use crate::compute::{self, History, Summary, Window};
use crate::model::Outcome;

const PRODUCTION: i32 = common::Tier::Production as i32;

/// Whose records to read.
pub(crate) enum Select<'a> {
    Scope(&'a Scope),
    Pipelines(&'a [String]),
}

impl Select<'_> {
    fn condition(&self, pipeline: impl ColumnTrait, project: impl ColumnTrait) -> Condition {
        match self {
            Select::Scope(scope) => scope.condition(pipeline, project),
            Select::Pipelines(names) => Condition::all().add(pipeline.is_in(names.iter().cloned())),
        }
    }
}

/// Per pipeline: its project and its records.
pub(crate) type ByPipeline = BTreeMap<String, (String, History)>;

fn entry(map: &mut ByPipeline, pipeline: String, project: String) -> &mut History {
    &mut map
        .entry(pipeline)
        .or_insert_with(|| (project, History::default()))
        .1
}

/// The raw records `range` holds, per pipeline: completed production
/// deployments by end, change failures by detection, credited commits,
/// ended streaks and budgeted stage runs by end. Security errors are read
/// separately (they are few and span windows).
pub(crate) async fn load<C: ConnectionTrait>(
    db: &C,
    select: &Select<'_>,
    range: Window,
) -> Result<ByPipeline, DbErr> {
    use deployment::Column as D;
    let mut out = ByPipeline::new();
    let deployments = deployment::Entity::find()
        .select_only()
        .columns([
            D::Pipeline,
            D::Project,
            D::EndTime,
            D::Outcome,
            D::ChangeFailure,
            D::CommitCount,
        ])
        .filter(select.condition(D::Pipeline, D::Project))
        .filter(D::Tier.eq(PRODUCTION))
        .filter(D::Outcome.is_in([Outcome::Succeeded.as_str(), Outcome::RolledBack.as_str()]))
        .filter(D::EndTime.gte(range.start))
        .filter(D::EndTime.lt(range.end))
        .into_tuple::<(String, String, DateTime<Utc>, String, bool, i64)>()
        .all(db)
        .await?;
    for (pipeline, project, end_time, outcome, change_failure, commits) in deployments {
        entry(&mut out, pipeline, project)
            .deployments
            .push(compute::ProdDeployment {
                end_time,
                succeeded: outcome == Outcome::Succeeded.as_str(),
                change_failure,
                commits,
            });
    }
    let failures = deployment::Entity::find()
        .select_only()
        .columns([
            D::Pipeline,
            D::Project,
            D::FailureDetectTime,
            D::RestoreTime,
        ])
        .filter(select.condition(D::Pipeline, D::Project))
        .filter(D::Tier.eq(PRODUCTION))
        .filter(D::ChangeFailure.eq(true))
        .filter(D::FailureDetectTime.gte(range.start))
        .filter(D::FailureDetectTime.lt(range.end))
        .into_tuple::<(String, String, DateTime<Utc>, Option<DateTime<Utc>>)>()
        .all(db)
        .await?;
    for (pipeline, project, detect_time, restore_time) in failures {
        entry(&mut out, pipeline, project)
            .failures
            .push(compute::Failure {
                detect_time,
                restore_time,
            });
    }
    use commit::Column as K;
    let commits = commit::Entity::find()
        .select_only()
        .columns([
            K::Pipeline,
            K::Project,
            K::DeployEndTime,
            K::LeadTimeMs,
            K::FirstWaveLeadMs,
        ])
        .filter(select.condition(K::Pipeline, K::Project))
        .filter(K::DeployEndTime.gte(range.start))
        .filter(K::DeployEndTime.lt(range.end))
        .filter(K::LeadTimeMs.is_not_null())
        .into_tuple::<(String, String, DateTime<Utc>, i64, Option<i64>)>()
        .all(db)
        .await?;
    for (pipeline, project, deploy_end_time, lead, first_wave) in commits {
        entry(&mut out, pipeline, project)
            .lead_times
            .push(compute::LeadTime {
                deploy_end_time,
                lead: Duration::milliseconds(lead),
                first_wave_lead: first_wave.map(Duration::milliseconds),
            });
    }
    let streaks = streak::Entity::find()
        .filter(select.condition(streak::Column::Pipeline, streak::Column::Project))
        .filter(streak::Column::EndTime.gte(range.start))
        .filter(streak::Column::EndTime.lt(range.end))
        .all(db)
        .await?;
    for s in streaks {
        entry(&mut out, s.pipeline, s.project)
            .streaks
            .push(compute::Streak {
                green: s.green,
                start_time: s.start_time,
                end_time: s.end_time,
            });
    }
    let budgets = stage_budget::Entity::find()
        .filter(select.condition(
            stage_budget::Column::Pipeline,
            stage_budget::Column::Project,
        ))
        .filter(stage_budget::Column::EndTime.gte(range.start))
        .filter(stage_budget::Column::EndTime.lt(range.end))
        .all(db)
        .await?;
    for b in budgets {
        let (pipeline, project) = (b.pipeline.clone(), b.project.clone());
        entry(&mut out, pipeline, project).budgets.push(budgeted(b));
    }
    Ok(out)
}

fn budgeted(b: stage_budget::Model) -> compute::BudgetedStage {
    compute::BudgetedStage {
        execution: b.execution,
        stage: b.stage,
        tier: b.tier,
        end_time: b.end_time,
        duration: Duration::milliseconds(b.duration_ms),
        budget: Duration::milliseconds(b.budget_ms),
    }
}

/// All pipelines' records together.
pub(crate) fn merged(by_pipeline: ByPipeline) -> History {
    let mut all = History::default();
    for (_, (_, h)) in by_pipeline {
        all.deployments.extend(h.deployments);
        all.failures.extend(h.failures);
        all.lead_times.extend(h.lead_times);
        all.streaks.extend(h.streaks);
        all.budgets.extend(h.budgets);
    }
    all
}

/// The UTC midnight starting `t`'s day.
pub(crate) fn midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.from_utc_datetime(&t.date_naive().and_time(NaiveTime::MIN))
}

/// The whole UTC days inside `window`, if any.
fn whole_days(window: Window) -> Option<Window> {
    let start = match midnight(window.start) {
        m if m == window.start => m,
        m => m + Duration::days(1),
    };
    let end = midnight(window.end);
    (start < end).then_some(Window { start, end })
}

impl Store {
    /// Everything the DORA and DPRA metrics of `scope` over `window` need:
    /// the rollups of its whole days, corrected for failures restored only
    /// after the window, and the raw records of its partial days.
    pub async fn summary(&self, scope: &Scope, window: Window) -> Result<Summary, StoreError> {
        let db = &self.db;
        let select = Select::Scope(scope);
        let mut raw = Vec::new();
        let mut days = Vec::new();
        match whole_days(window) {
            None => raw.push(window),
            Some(whole) => {
                if window.start < whole.start {
                    raw.push(Window {
                        start: window.start,
                        end: whole.start,
                    });
                }
                if whole.end < window.end {
                    raw.push(Window {
                        start: whole.end,
                        end: window.end,
                    });
                }
                days = rollups::read(db, scope, whole).await?;
                for (detect, recovery) in self.late_restores(scope, whole, window.end).await? {
                    if let Some((_, t)) = days.iter_mut().find(|(d, _)| d.contains(detect)) {
                        t.recoveries.remove(recovery);
                        t.unrecovered += 1;
                    }
                }
            }
        }
        for range in raw {
            let history = merged(load(db, &select, range).await?);
            days.extend(tally::daily(range, &history, window.end));
        }
        days.sort_by_key(|(d, _)| d.start);
        Ok(Summary {
            days,
            security_errors: self.security_errors(scope, window).await?,
            violations: self.recent_violations(scope, window).await?,
        })
    }

    /// Change failures detected in `range` and restored at or after `cut`:
    /// (detection, time to restore). Seen from `cut`, not restored yet.
    async fn late_restores(
        &self,
        scope: &Scope,
        range: Window,
        cut: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Duration)>, StoreError> {
        use deployment::Column as D;
        let rows = deployment::Entity::find()
            .select_only()
            .columns([D::FailureDetectTime, D::RestoreTime])
            .filter(scope.condition(D::Pipeline, D::Project))
            .filter(D::Tier.eq(PRODUCTION))
            .filter(D::ChangeFailure.eq(true))
            .filter(D::RestoreTime.gte(cut))
            .filter(D::FailureDetectTime.gte(range.start))
            .filter(D::FailureDetectTime.lt(range.end))
            .into_tuple::<(DateTime<Utc>, DateTime<Utc>)>()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|(d, r)| (d, r - d)).collect())
    }

    /// Security errors resolved in the window or open at its end.
    async fn security_errors(
        &self,
        scope: &Scope,
        window: Window,
    ) -> Result<Vec<compute::SecurityError>, StoreError> {
        use security_error::Column as S;
        Ok(security_error::Entity::find()
            .filter(scope.condition(S::Pipeline, S::Project))
            .filter(S::OpenTime.lt(window.end))
            .filter(
                Condition::any()
                    .add(S::ResolveTime.is_null())
                    .add(S::ResolveTime.gte(window.start)),
            )
            .all(&self.db)
            .await?
            .into_iter()
            .map(|e| compute::SecurityError {
                open_time: e.open_time,
                resolve_time: e.resolve_time,
            })
            .collect())
    }

    /// The window's most recent stage runs over their budget.
    async fn recent_violations(
        &self,
        scope: &Scope,
        window: Window,
    ) -> Result<Vec<compute::BudgetedStage>, StoreError> {
        use stage_budget::Column as B;
        Ok(stage_budget::Entity::find()
            .filter(scope.condition(B::Pipeline, B::Project))
            .filter(B::EndTime.gte(window.start))
            .filter(B::EndTime.lt(window.end))
            .filter(Expr::col(B::DurationMs).gt(Expr::col(B::BudgetMs)))
            .order_by_desc(B::EndTime)
            .limit(RECENT_VIOLATIONS as u64)
            .all(&self.db)
            .await?
            .into_iter()
            .map(budgeted)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn whole_days_are_the_midnights_inside_the_window() {
        let w = |start, end| Window { start, end };
        assert_eq!(whole_days(w(t(1, 0), t(3, 0))), Some(w(t(1, 0), t(3, 0))));
        assert_eq!(whole_days(w(t(1, 6), t(3, 6))), Some(w(t(2, 0), t(3, 0))));
        assert_eq!(whole_days(w(t(1, 6), t(2, 6))), None);
        assert_eq!(whole_days(w(t(1, 0), t(1, 6))), None);
    }
}
