//! The MetricsService over gRPC: requests checked and converted, the store
//! and `compute` asked, errors mapped once.

pub mod convert;
pub mod notifications;

use chrono::Utc;
use conveyor_api::metrics::v1 as pb;
use conveyor_api::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use tonic::{Request, Response, Status};

use crate::compute::{self, Window};
use crate::error::Error;
use crate::store::{DeploymentFilter, HealthFilter, Scope, Store};

#[derive(Clone)]
pub struct MetricsApi {
    store: Store,
}

impl MetricsApi {
    pub fn new(store: Store) -> Self {
        MetricsApi { store }
    }

    pub fn into_server(self, max_message_bytes: usize) -> MetricsServiceServer<Self> {
        MetricsServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }

    /// The summary, surveys and data time every metrics answer needs.
    async fn inputs(
        &self,
        scope: &Scope,
        window: Window,
    ) -> Result<
        (
            compute::Summary,
            pb::SurveySummary,
            Option<prost_types::Timestamp>,
        ),
        Error,
    > {
        let summary = self.store.summary(scope, window).await?;
        let surveys = self.store.surveys(scope, window).await?;
        let data_time = self.store.data_time().await?;
        Ok((
            summary,
            convert::survey_summary(&surveys),
            data_time.map(conveyor_api::time::timestamp),
        ))
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn get_dora_metrics(
        &self,
        request: Request<pb::GetDoraMetricsRequest>,
    ) -> Result<Response<pb::DoraMetrics>, Status> {
        let r = request.into_inner();
        let scope = convert::scope(r.scope.as_ref(), "scope")?;
        let window = convert::window(r.window.as_ref(), "window", Utc::now())?;
        let granularity = convert::granularity(r.granularity)?;
        let (summary, survey, data_time) = self.inputs(&scope, window).await?;
        let mut metrics = compute::dora(window, &summary, granularity);
        metrics.scope = Some(convert::scope_to_pb(&scope));
        metrics.survey = Some(survey);
        metrics.data_time = data_time;
        Ok(Response::new(metrics))
    }

    async fn get_dpra_metrics(
        &self,
        request: Request<pb::GetDpraMetricsRequest>,
    ) -> Result<Response<pb::DpraMetrics>, Status> {
        let r = request.into_inner();
        let scope = convert::scope(r.scope.as_ref(), "scope")?;
        let window = convert::window(r.window.as_ref(), "window", Utc::now())?;
        let granularity = convert::granularity(r.granularity)?;
        let (summary, survey, data_time) = self.inputs(&scope, window).await?;
        let security = self
            .store
            .security_percent(&scope)
            .await
            .map_err(Error::from)?;
        let mut metrics = compute::dpra(window, &summary, security, granularity);
        metrics.scope = Some(convert::scope_to_pb(&scope));
        metrics.survey = Some(survey);
        metrics.data_time = data_time;
        Ok(Response::new(metrics))
    }

    async fn list_deployments(
        &self,
        request: Request<pb::ListDeploymentsRequest>,
    ) -> Result<Response<pb::ListDeploymentsResponse>, Status> {
        let r = request.into_inner();
        let limit = convert::page_size(r.page_size)?;
        let filter = DeploymentFilter {
            scope: convert::scope(r.scope.as_ref(), "scope")?,
            environment: (!r.environment.is_empty()).then_some(r.environment),
            tiers: convert::tiers(&r.tiers)?,
            outcomes: convert::outcomes(&r.outcomes)?,
            started: match &r.window {
                Some(w) => Some(convert::window(Some(w), "window", Utc::now())?),
                None => None,
            },
        };
        let after = convert::parse_deployments_token(&r.page_token)?;
        let mut rows = self
            .store
            .deployments(&filter, after, limit + 1)
            .await
            .map_err(Error::from)?;
        let next_page_token = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(convert::deployments_token)
                .unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
        let commits = self.store.commits_of(&ids).await.map_err(Error::from)?;
        let deployments = rows
            .into_iter()
            .map(|d| {
                let mine = commits
                    .iter()
                    .filter(|c| c.deployment.as_deref() == Some(d.id.as_str()))
                    .collect();
                convert::deployment(d, mine)
            })
            .collect();
        Ok(Response::new(pb::ListDeploymentsResponse {
            deployments,
            next_page_token,
        }))
    }

    async fn get_deployment(
        &self,
        request: Request<pb::GetDeploymentRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        let r = request.into_inner();
        let id = convert::deployment_id(&r.name)?;
        let d = self.store.deployment(id).await.map_err(Error::from)?;
        let commits = self
            .store
            .commits_of(std::slice::from_ref(&d.id))
            .await
            .map_err(Error::from)?;
        Ok(Response::new(convert::deployment(
            d,
            commits.iter().collect(),
        )))
    }

    async fn get_pipeline_health(
        &self,
        request: Request<pb::GetPipelineHealthRequest>,
    ) -> Result<Response<pb::PipelineHealth>, Status> {
        let pipeline = convert::health_pipeline(&request.into_inner().name)?;
        let h = self.store.health(&pipeline).await.map_err(Error::from)?;
        Ok(Response::new(convert::health(h)))
    }

    async fn list_pipeline_health(
        &self,
        request: Request<pb::ListPipelineHealthRequest>,
    ) -> Result<Response<pb::ListPipelineHealthResponse>, Status> {
        let r = request.into_inner();
        let limit = convert::page_size(r.page_size)?;
        let filter = HealthFilter {
            project: (!r.project.is_empty()).then_some(r.project),
            states: convert::health_states(&r.states)?,
        };
        let after = if r.page_token.is_empty() {
            None
        } else {
            Some(convert::pipeline_name(&r.page_token, "page_token")?)
        };
        let mut rows = self
            .store
            .health_list(&filter, after, limit + 1)
            .await
            .map_err(Error::from)?;
        let next_page_token = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|h| h.pipeline.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListPipelineHealthResponse {
            pipelines: rows.into_iter().map(convert::health).collect(),
            next_page_token,
        }))
    }

    async fn record_survey(
        &self,
        request: Request<pb::RecordSurveyRequest>,
    ) -> Result<Response<pb::SurveyResponse>, Status> {
        let survey = convert::new_survey(request.into_inner(), Utc::now())?;
        let stored = self
            .store
            .record_survey(survey)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(convert::survey(stored)))
    }
}
