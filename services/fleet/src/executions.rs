//! The execution service as the fleet sees it: it starts account-fleet
//! pipeline executions (vending, rollouts) and reads how they went.

use std::collections::BTreeMap;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use tonic::transport::Channel;

use crate::model::Principal;

#[async_trait::async_trait]
pub trait ExecutionService: Send + Sync + 'static {
    /// Starts `pipeline` ("pipelines/{p}") at its trunk's head with
    /// `parameters`; `request_id` makes a retry return the same execution.
    /// Returns the execution's name.
    async fn start(
        &self,
        pipeline: &str,
        parameters: BTreeMap<String, String>,
        request_id: &str,
        principal: &Principal,
    ) -> Result<String, tonic::Status>;

    /// An execution with its stages and runs.
    async fn get(&self, name: &str) -> Result<pb::Execution, tonic::Status>;

    /// Cancels an execution that has not ended.
    async fn cancel(&self, name: &str, reason: &str) -> Result<(), tonic::Status>;
}

#[async_trait::async_trait]
impl ExecutionService for ExecutionServiceClient<Channel> {
    async fn start(
        &self,
        pipeline: &str,
        parameters: BTreeMap<String, String>,
        request_id: &str,
        principal: &Principal,
    ) -> Result<String, tonic::Status> {
        let mut request = tonic::Request::new(pb::StartExecutionRequest {
            parent: pipeline.to_owned(),
            commit: Some(pb::Commit {
                author: principal.id.clone(),
                message: "started by the fleet service".to_owned(),
                ..Default::default()
            }),
            trigger: Some(pb::Trigger {
                kind: pb::TriggerKind::Fleet as i32,
                principal: Some(conveyor_api::common::v1::Principal {
                    id: principal.id.clone(),
                    groups: principal.groups.clone(),
                }),
                ..Default::default()
            }),
            parameters: parameters.into_iter().collect(),
            request_id: request_id.to_owned(),
            additional_commits: Vec::new(),
            redeploy: String::new(),
        });
        conveyor_platform::telemetry::inject(request.metadata_mut());
        let started = self.clone().start_execution(request).await?.into_inner();
        Ok(started.name)
    }

    async fn get(&self, name: &str) -> Result<pb::Execution, tonic::Status> {
        let mut request = tonic::Request::new(pb::GetExecutionRequest {
            name: name.to_owned(),
            view: pb::ExecutionView::Full as i32,
        });
        conveyor_platform::telemetry::inject(request.metadata_mut());
        Ok(self.clone().get_execution(request).await?.into_inner())
    }

    async fn cancel(&self, name: &str, reason: &str) -> Result<(), tonic::Status> {
        let mut request = tonic::Request::new(pb::CancelExecutionRequest {
            name: name.to_owned(),
            principal: Some(conveyor_api::common::v1::Principal {
                id: "conveyor-fleet".to_owned(),
                groups: Vec::new(),
            }),
            reason: reason.to_owned(),
            ..Default::default()
        });
        conveyor_platform::telemetry::inject(request.metadata_mut());
        self.clone().cancel_execution(request).await?;
        Ok(())
    }
}

/// No execution service: every call is UNAVAILABLE, so vending and rollouts
/// wait (the domain's tests, and tools that only plan).
pub struct NoExecutions;

#[async_trait::async_trait]
impl ExecutionService for NoExecutions {
    async fn start(
        &self,
        _pipeline: &str,
        _parameters: BTreeMap<String, String>,
        _request_id: &str,
        _principal: &Principal,
    ) -> Result<String, tonic::Status> {
        Err(tonic::Status::unavailable(
            "no execution service is configured",
        ))
    }

    async fn get(&self, _name: &str) -> Result<pb::Execution, tonic::Status> {
        Err(tonic::Status::unavailable(
            "no execution service is configured",
        ))
    }

    async fn cancel(&self, _name: &str, _reason: &str) -> Result<(), tonic::Status> {
        Err(tonic::Status::unavailable(
            "no execution service is configured",
        ))
    }
}
