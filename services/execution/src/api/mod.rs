//! The gRPC adapters: ExecutionService for people and tools, WorkerService
//! for workers. Validate, convert, call the domain, convert back.

pub(crate) mod alarms;
mod convert;
mod worker;

pub use alarms::AlarmApi;
pub use worker::WorkerApi;

use std::collections::HashSet;
use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_server::{
    ExecutionService, ExecutionServiceServer,
};
use tonic::{Request, Response, Status};

pub use convert::{
    approval, approval_state, execution_state, parse_action_name, parse_execution_name, stage_state,
};

use crate::domain::{Executions, StartRequest};
use crate::error::Error;

pub struct ExecutionApi {
    executions: Executions,
}

impl ExecutionApi {
    pub fn new(executions: Executions) -> Self {
        ExecutionApi { executions }
    }

    /// ApproveStage and RejectStage: one decision on a stage waiting for approval.
    async fn decide(
        &self,
        name: &str,
        stage: &str,
        principal: Option<conveyor_api::common::v1::Principal>,
        approve: bool,
        comment: &str,
    ) -> Result<Response<pb::Execution>, Status> {
        let (pipeline, id) = convert::parse_execution_name(name)?;
        let principal = principal.unwrap_or_default();
        let snapshot = self
            .executions
            .decide(
                pipeline,
                id,
                stage,
                &principal.id,
                &principal.groups,
                approve,
                comment,
            )
            .await?;
        Ok(Response::new(convert::execution(&snapshot, true)))
    }

    pub fn into_server(self, max_message_bytes: usize) -> ExecutionServiceServer<Self> {
        ExecutionServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }
}

fn full_view(view: i32) -> Result<bool, Error> {
    match pb::ExecutionView::try_from(view) {
        Ok(pb::ExecutionView::Unspecified | pb::ExecutionView::Full) => Ok(true),
        Ok(pb::ExecutionView::Basic) => Ok(false),
        Err(_) => Err(Error::invalid("view", format!("unknown view {view}"))),
    }
}

#[tonic::async_trait]
impl ExecutionService for ExecutionApi {
    async fn start_execution(
        &self,
        request: Request<pb::StartExecutionRequest>,
    ) -> Result<Response<pb::Execution>, Status> {
        let r = request.into_inner();
        let pipeline = convert::parse_parent(&r.parent)?;
        let commit = r.commit.unwrap_or_default();
        let started = self
            .executions
            .start(StartRequest {
                pipeline: pipeline.to_owned(),
                commit_sha: commit.sha,
                branch: commit.branch,
                author: commit.author,
                message: commit.message,
                commit_time: commit
                    .commit_time
                    .as_ref()
                    .and_then(convert::from_timestamp),
                land_time: commit.land_time.as_ref().and_then(convert::from_timestamp),
                earlier_commits: r
                    .additional_commits
                    .iter()
                    .map(|c| crate::model::CommitInfo {
                        sha: c.sha.clone(),
                        author: c.author.clone(),
                        message: c.message.clone(),
                        commit_time: c.commit_time.as_ref().and_then(convert::from_timestamp),
                        land_time: c
                            .land_time
                            .as_ref()
                            .and_then(convert::from_timestamp)
                            .unwrap_or_else(chrono::Utc::now),
                    })
                    .collect(),
                request_id: (!r.request_id.is_empty()).then_some(r.request_id),
                parameters: r.parameters.into_iter().collect(),
                upstream_executions: r
                    .trigger
                    .map(|t| t.upstream_execution)
                    .filter(|name| !name.is_empty())
                    .into_iter()
                    .collect(),
                triggered_by: String::new(),
                redeploy: r.redeploy,
            })
            .await?;
        Ok(Response::new(convert::execution(&started, true)))
    }

    async fn get_execution(
        &self,
        request: Request<pb::GetExecutionRequest>,
    ) -> Result<Response<pb::Execution>, Status> {
        let r = request.into_inner();
        let (pipeline, id) = convert::parse_execution_name(&r.name)?;
        let full = full_view(r.view)?;
        let snapshot = self.executions.get(pipeline, id).await?;
        let mut execution = convert::execution(&snapshot, full);
        if full {
            let stored = self.executions.artifacts().of_execution(id).await?;
            convert::attach_artifacts(&mut execution, &snapshot, &stored);
        }
        Ok(Response::new(execution))
    }

    async fn get_provenance(
        &self,
        request: Request<pb::GetProvenanceRequest>,
    ) -> Result<Response<pb::Provenance>, Status> {
        let r = request.into_inner();
        let execution = r.name.strip_suffix("/provenance").ok_or_else(|| {
            Error::invalid(
                "name",
                format!(
                    "{:?} is not \"pipelines/{{pipeline}}/executions/{{execution}}/provenance\"",
                    r.name
                ),
            )
        })?;
        let (pipeline, id) = convert::parse_execution_name(execution)?;
        let node = self.executions.provenance(pipeline, id).await?;
        Ok(Response::new(convert::provenance(&node)))
    }

    async fn list_executions(
        &self,
        request: Request<pb::ListExecutionsRequest>,
    ) -> Result<Response<pb::ListExecutionsResponse>, Status> {
        let r = request.into_inner();
        let pipeline = convert::parse_parent(&r.parent)?;
        let states = r
            .states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                convert::model_state(*state)
                    .ok_or_else(|| Error::invalid(format!("states[{i}]"), "not an execution state"))
            })
            .collect::<Result<_, _>>()?;
        let filter = crate::store::ListFilter {
            states,
            branch: r.branch,
            commit_sha: r.commit_sha,
        };
        let (items, next) = self
            .executions
            .list(pipeline, r.page_size, &r.page_token, &filter)
            .await?;
        Ok(Response::new(pb::ListExecutionsResponse {
            executions: items.iter().map(convert::execution_basic).collect(),
            next_page_token: next,
        }))
    }

    async fn cancel_execution(
        &self,
        request: Request<pb::CancelExecutionRequest>,
    ) -> Result<Response<pb::Execution>, Status> {
        let r = request.into_inner();
        let (pipeline, id) = convert::parse_execution_name(&r.name)?;
        let who = r.principal.map(|p| p.id).unwrap_or_default();
        let snapshot = self.executions.cancel(pipeline, id, &who).await?;
        Ok(Response::new(convert::execution(&snapshot, true)))
    }

    async fn approve_stage(
        &self,
        request: Request<pb::ApproveStageRequest>,
    ) -> Result<Response<pb::Execution>, Status> {
        let r = request.into_inner();
        self.decide(&r.name, &r.stage, r.principal, true, &r.comment)
            .await
    }

    async fn reject_stage(
        &self,
        request: Request<pb::RejectStageRequest>,
    ) -> Result<Response<pb::Execution>, Status> {
        let r = request.into_inner();
        self.decide(&r.name, &r.stage, r.principal, false, &r.comment)
            .await
    }

    async fn block_promotion(
        &self,
        request: Request<pb::BlockPromotionRequest>,
    ) -> Result<Response<pb::Blocker>, Status> {
        let r = request.into_inner();
        let pipeline = convert::parse_parent(&r.parent)?;
        let by = r.principal.map(|p| p.id).unwrap_or_default();
        let blocker = self
            .executions
            .block(pipeline, &r.stage, &r.reason, &by)
            .await?;
        Ok(Response::new(convert::blocker(&blocker)))
    }

    async fn unblock_promotion(
        &self,
        request: Request<pb::UnblockPromotionRequest>,
    ) -> Result<Response<pb::UnblockPromotionResponse>, Status> {
        let r = request.into_inner();
        let by = r.principal.map(|p| p.id).unwrap_or_default();
        let (pipeline, id) = if r.name.is_empty() {
            (
                convert::parse_parent(&r.pipeline).map_err(|_| {
                    Error::invalid("pipeline", "give name, or pipeline (and stage)")
                })?,
                None,
            )
        } else {
            let (pipeline, id) = convert::parse_blocker_name(&r.name)?;
            (pipeline, Some(id))
        };
        let stage = (!r.stage.is_empty()).then_some(r.stage.as_str());
        let lifted = self
            .executions
            .unblock(pipeline, id, stage, &r.reason, &by)
            .await?;
        Ok(Response::new(pb::UnblockPromotionResponse {
            blockers: lifted.iter().map(convert::blocker).collect(),
        }))
    }

    async fn list_blockers(
        &self,
        request: Request<pb::ListBlockersRequest>,
    ) -> Result<Response<pb::ListBlockersResponse>, Status> {
        let r = request.into_inner();
        let pipeline = convert::parse_parent(&r.parent)?;
        let blockers = self.executions.blockers(pipeline, r.include_lifted).await?;
        Ok(Response::new(pb::ListBlockersResponse {
            blockers: blockers.iter().map(convert::blocker).collect(),
            next_page_token: String::new(),
        }))
    }

    type WatchExecutionStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::WatchExecutionResponse, Status>>;

    /// A snapshot first, then one whenever the execution changes (changes
    /// in quick succession may be coalesced); ends after the final state.
    async fn watch_execution(
        &self,
        request: Request<pb::WatchExecutionRequest>,
    ) -> Result<Response<Self::WatchExecutionStream>, Status> {
        let r = request.into_inner();
        let (pipeline, id) = convert::parse_execution_name(&r.name)?;
        let full = full_view(r.view)?;
        let first = self.executions.get(pipeline, id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let executions = self.executions.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let mut sequence = 0;
            let mut seen = -1;
            let mut snapshot = first;
            loop {
                if snapshot.execution.version != seen {
                    seen = snapshot.execution.version;
                    sequence += 1;
                    let message = pb::WatchExecutionResponse {
                        sequence,
                        change: None,
                        execution: Some(convert::execution(&snapshot, full)),
                    };
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                    if snapshot.execution.state.is_final() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                snapshot = match executions.store().load(&id).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(Error::from(e).into())).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    type StreamLogsStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::StreamLogsResponse, Status>>;

    async fn stream_logs(
        &self,
        request: Request<pb::StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let r = request.into_inner();
        let (pipeline, id) = convert::parse_execution_name(&r.name)?;
        let snapshot = self.executions.get(pipeline, id).await?;
        let after = match r.resume_token.as_str() {
            "" => 0,
            token => token
                .parse::<i64>()
                .map_err(|_| Error::invalid("resume_token", "not a token from this stream"))?,
        };
        let wanted_action = if r.action_run.is_empty() {
            None
        } else {
            Some(convert::parse_action_name(&r.action_run)?.to_owned())
        };
        // Which action runs match the filters: one run, or stage and action name.
        let matches: HashSet<String> = snapshot
            .actions
            .iter()
            .filter(|a| match &wanted_action {
                Some(id) => &a.id == id,
                None => {
                    let stage = snapshot.stages.iter().find(|s| s.index == a.stage_index);
                    (r.stage.is_empty() || stage.is_some_and(|s| s.name == r.stage))
                        && (r.action.is_empty() || a.name == r.action)
                }
            })
            .map(|a| a.id.clone())
            .collect();
        let follow = LogFollow {
            executions: self.executions.clone(),
            id: id.to_owned(),
            name: convert::execution_name(&snapshot.execution),
            matches,
            attempt: r.attempt,
            follow: r.follow,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(follow.run(after, tx));
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }
}

/// Sends an execution's stored output, then (when following) new output
/// until the execution ends.
struct LogFollow {
    executions: Executions,
    id: String,
    name: String,
    matches: HashSet<String>,
    attempt: i32,
    follow: bool,
}

impl LogFollow {
    async fn run(
        self,
        mut after: i64,
        tx: tokio::sync::mpsc::Sender<Result<pb::StreamLogsResponse, Status>>,
    ) {
        const PAGE: u64 = 500;
        loop {
            // Whether it ended is read before the output, so output written
            // just before the end is not missed.
            let read = async {
                let ended = self
                    .executions
                    .store()
                    .load(&self.id)
                    .await?
                    .execution
                    .state
                    .is_final();
                let chunks = self
                    .executions
                    .store()
                    .read_logs(&self.id, after, PAGE)
                    .await?;
                Ok::<_, crate::store::StoreError>((ended, chunks))
            };
            let (ended, chunks) = match read.await {
                Ok(read) => read,
                Err(e) => {
                    let _ = tx.send(Err(Error::from(e).into())).await;
                    return;
                }
            };
            let full_page = chunks.len() as u64 == PAGE;
            if let Some(last) = chunks.last() {
                after = last.id;
            }
            let chunks: Vec<pb::LogChunk> = chunks
                .into_iter()
                .filter(|c| {
                    self.matches.contains(&c.action_id)
                        && (self.attempt == 0 || c.attempt == self.attempt)
                })
                .map(|c| convert::log_chunk(&self.name, c))
                .collect();
            if !chunks.is_empty() {
                let message = pb::StreamLogsResponse {
                    chunks,
                    resume_token: after.to_string(),
                };
                if tx.send(Ok(message)).await.is_err() {
                    return; // the caller went away
                }
            }
            if full_page {
                continue;
            }
            if !self.follow || ended {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
