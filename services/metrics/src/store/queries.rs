//! Reads: deployment records, mainline health, conformance and surveys
//! (what metrics are computed from is in `history`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};

use super::entities::{commit, conformance, deployment, health, run, survey};
use super::{Store, StoreError};
use crate::compute::Window;
use crate::model::Outcome;

/// What a query covers: one pipeline ("pipelines/{p}"), one project, or
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    Fleet,
    Pipeline(String),
    Project(String),
}

impl Scope {
    pub(crate) fn condition(
        &self,
        pipeline: impl ColumnTrait,
        project: impl ColumnTrait,
    ) -> Condition {
        match self {
            Scope::Fleet => Condition::all(),
            Scope::Pipeline(p) => Condition::all().add(pipeline.eq(p.as_str())),
            Scope::Project(p) => Condition::all().add(project.eq(p.as_str())),
        }
    }
}

/// Which deployment records to list.
#[derive(Debug, Clone, Default)]
pub struct DeploymentFilter {
    pub scope: Scope,
    pub environment: Option<String>,
    pub tiers: Vec<i32>,
    pub outcomes: Vec<Outcome>,
    pub started: Option<Window>,
}

/// Which health records to list.
#[derive(Debug, Clone, Default)]
pub struct HealthFilter {
    pub project: Option<String>,
    pub states: Vec<String>,
}

impl Store {
    /// The mean security-control automation percentage of the scope's
    /// pipelines' current revisions; 0 when none is known.
    pub async fn security_percent(&self, scope: &Scope) -> Result<f64, StoreError> {
        let rows = conformance::Entity::find()
            .filter(scope.condition(conformance::Column::Pipeline, conformance::Column::Project))
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(0.0);
        }
        Ok(rows.iter().map(|r| r.security_percent).sum::<f64>() / rows.len() as f64)
    }

    /// One page of deployment records, newest first, after `after`
    /// (start time, id) of the previous page's last record.
    pub async fn deployments(
        &self,
        filter: &DeploymentFilter,
        after: Option<(DateTime<Utc>, String)>,
        limit: u64,
    ) -> Result<Vec<deployment::Model>, StoreError> {
        let mut query = deployment::Entity::find().filter(
            filter
                .scope
                .condition(deployment::Column::Pipeline, deployment::Column::Project),
        );
        if let Some(env) = &filter.environment {
            query = query.filter(deployment::Column::Environment.eq(env.as_str()));
        }
        if !filter.tiers.is_empty() {
            query = query.filter(deployment::Column::Tier.is_in(filter.tiers.clone()));
        }
        if !filter.outcomes.is_empty() {
            query = query.filter(
                deployment::Column::Outcome.is_in(filter.outcomes.iter().map(|o| o.as_str())),
            );
        }
        if let Some(w) = filter.started {
            query = query
                .filter(deployment::Column::StartTime.gte(w.start))
                .filter(deployment::Column::StartTime.lt(w.end));
        }
        if let Some((time, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(deployment::Column::StartTime.lt(time))
                    .add(
                        Condition::all()
                            .add(deployment::Column::StartTime.eq(time))
                            .add(deployment::Column::Id.lt(id)),
                    ),
            );
        }
        Ok(query
            .order_by_desc(deployment::Column::StartTime)
            .order_by_desc(deployment::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    pub async fn deployment(&self, id: &str) -> Result<deployment::Model, StoreError> {
        deployment::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("deployments/{id}")))
    }

    /// The commits credited to deployments `ids`, oldest landing first.
    pub async fn commits_of(&self, ids: &[String]) -> Result<Vec<commit::Model>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(commit::Entity::find()
            .filter(commit::Column::Deployment.is_in(ids.iter().cloned()))
            .order_by_asc(commit::Column::LandTime)
            .order_by_asc(commit::Column::Sha)
            .all(&self.db)
            .await?)
    }

    /// The runs of `executions`, in no particular order.
    pub async fn runs(&self, executions: &[String]) -> Result<Vec<run::Model>, StoreError> {
        if executions.is_empty() {
            return Ok(Vec::new());
        }
        Ok(run::Entity::find()
            .filter(run::Column::Execution.is_in(executions.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    pub async fn health(&self, pipeline: &str) -> Result<health::Model, StoreError> {
        health::Entity::find_by_id(pipeline.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{pipeline}/health")))
    }

    /// One page of health records ordered by pipeline, after `after`.
    pub async fn health_list(
        &self,
        filter: &HealthFilter,
        after: Option<String>,
        limit: u64,
    ) -> Result<Vec<health::Model>, StoreError> {
        let mut query = health::Entity::find();
        if let Some(p) = &filter.project {
            query = query.filter(health::Column::Project.eq(p.as_str()));
        }
        if !filter.states.is_empty() {
            query = query.filter(health::Column::State.is_in(filter.states.clone()));
        }
        if let Some(after) = after {
            query = query.filter(health::Column::Pipeline.gt(after));
        }
        Ok(query
            .order_by_asc(health::Column::Pipeline)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Stores a survey response; a request id seen before returns the
    /// response it stored.
    pub async fn record_survey(&self, s: survey::Model) -> Result<survey::Model, StoreError> {
        if let Some(id) = &s.request_id
            && let Some(existing) = self.survey_by_request(id).await?
        {
            return Ok(existing);
        }
        let active = survey::ActiveModel {
            id: Set(s.id.clone()),
            pipeline: Set(s.pipeline.clone()),
            project: Set(s.project.clone()),
            team: Set(s.team.clone()),
            respondent: Set(s.respondent.clone()),
            period_start: Set(s.period_start),
            period_end: Set(s.period_end),
            answers: Set(s.answers.clone()),
            comment: Set(s.comment.clone()),
            request_id: Set(s.request_id.clone()),
            create_time: Set(s.create_time),
        };
        match survey::Entity::insert(active).exec(&self.db).await {
            Ok(_) => Ok(s),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                let id = s.request_id.unwrap_or_default();
                self.survey_by_request(&id)
                    .await?
                    .ok_or(StoreError::RequestIdReused(id))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn survey_by_request(&self, id: &str) -> Result<Option<survey::Model>, StoreError> {
        Ok(survey::Entity::find()
            .filter(survey::Column::RequestId.eq(id))
            .one(&self.db)
            .await?)
    }

    /// Survey responses about exactly this scope whose period overlaps
    /// `window`.
    pub async fn surveys(
        &self,
        scope: &Scope,
        window: Window,
    ) -> Result<Vec<survey::Model>, StoreError> {
        let (pipeline, project) = match scope {
            Scope::Fleet => ("", ""),
            Scope::Pipeline(p) => (p.as_str(), ""),
            Scope::Project(p) => ("", p.as_str()),
        };
        Ok(survey::Entity::find()
            .filter(survey::Column::Pipeline.eq(pipeline))
            .filter(survey::Column::Project.eq(project))
            .filter(survey::Column::PeriodStart.lt(window.end))
            .filter(survey::Column::PeriodEnd.gt(window.start))
            .all(&self.db)
            .await?)
    }

    /// When the newest event applied was published; none before the first.
    pub async fn data_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        use super::entities::processed_event;
        let newest = processed_event::Entity::find()
            .select_only()
            .column_as(processed_event::Column::EventTime.max(), "newest")
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(&self.db)
            .await?;
        Ok(newest.flatten())
    }
}
