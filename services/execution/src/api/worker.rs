//! WorkerService: the executor's side of the worker protocol (claims,
//! heartbeats, reports, logs, artifacts), fenced by attempt numbers.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::worker_service_server::{WorkerService, WorkerServiceServer};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use crate::domain::Executions;
use crate::engine::AttemptReport;
use crate::error::Error;
use crate::model::Findings;
use crate::store::Lease;

/// The most a claim may wait for work before returning empty-handed.
const MAX_CLAIM_WAIT: Duration = Duration::from_secs(20);

pub struct WorkerApi {
    executions: Executions,
}

impl WorkerApi {
    pub fn new(executions: Executions) -> Self {
        WorkerApi { executions }
    }

    pub fn into_server(self, max_message_bytes: usize) -> WorkerServiceServer<Self> {
        WorkerServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    async fn claim_task(
        &self,
        request: Request<pb::ClaimTaskRequest>,
    ) -> Result<Response<pb::ClaimTaskResponse>, Status> {
        let r = request.into_inner();
        let wanted = if r.action_run.is_empty() {
            None
        } else {
            Some((convert::parse_action_name(&r.action_run)?, r.attempt))
        };
        let pool = if r.pool.is_empty() {
            "default"
        } else {
            r.pool.as_str()
        };
        let wait = r
            .wait
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
            .unwrap_or_default()
            .min(MAX_CLAIM_WAIT);
        let claimed = self.executions.claim(&r.worker, pool, wanted, wait).await?;
        let task = match claimed {
            Some((action, execution, stage)) => {
                let inputs = self.executions.artifacts().inputs(&action).await?;
                Some(convert::task(
                    &action,
                    &execution,
                    &stage,
                    self.executions.lease,
                    &inputs,
                ))
            }
            None => None,
        };
        Ok(Response::new(pb::ClaimTaskResponse { task }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let r = request.into_inner();
        let id = convert::parse_action_name(&r.action_run)?;
        let response = match self.executions.heartbeat(id, r.attempt, &r.worker).await? {
            Lease::Extended(until) => pb::HeartbeatResponse {
                lease_expire_time: Some(convert::timestamp(until)),
                cancel: false,
                cancel_reason: String::new(),
            },
            Lease::Cancelled(reason) => pb::HeartbeatResponse {
                lease_expire_time: None,
                cancel: true,
                cancel_reason: reason,
            },
            Lease::Stale { current_attempt } => {
                return Err(Error::StaleAttempt {
                    action: id.to_owned(),
                    attempt: r.attempt,
                    current: current_attempt,
                }
                .into());
            }
        };
        Ok(Response::new(response))
    }

    async fn report_result(
        &self,
        request: Request<pb::ReportResultRequest>,
    ) -> Result<Response<pb::ReportResultResponse>, Status> {
        let r = request.into_inner();
        let id = convert::parse_action_name(&r.action_run)?;
        let outcome = convert::outcome(r.outcome)?;
        if r.message.len() > 64 * 1024 {
            return Err(Error::invalid("message", "at most 64 KiB").into());
        }
        let findings = r.findings.unwrap_or_default();
        let count = |n: i32, field: &str| {
            u32::try_from(n)
                .map_err(|_| Error::invalid(format!("findings.{field}"), "must not be negative"))
        };
        let report = AttemptReport {
            attempt: r.attempt,
            outcome,
            exit_code: r.exit_code,
            message: r.message,
            findings: Findings {
                critical: count(findings.critical, "critical")?,
                high: count(findings.high, "high")?,
                medium: count(findings.medium, "medium")?,
                low: count(findings.low, "low")?,
                info: count(findings.info, "info")?,
            },
            metrics: metrics(r.metrics)?,
            baseline: None,
        };
        let (action, snapshot, duplicate) = self.executions.report(id, report).await?;
        let stage = snapshot
            .stages
            .iter()
            .find(|s| s.index == action.stage_index)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        Ok(Response::new(pb::ReportResultResponse {
            action_run: Some(convert::action(&snapshot.execution, &stage, &action)),
            duplicate,
        }))
    }

    async fn append_logs(
        &self,
        request: Request<pb::AppendLogsRequest>,
    ) -> Result<Response<pb::AppendLogsResponse>, Status> {
        let r = request.into_inner();
        let id = convert::parse_action_name(&r.action_run)?;
        let mut chunks = Vec::with_capacity(r.chunks.len());
        for (i, c) in r.chunks.into_iter().enumerate() {
            if c.offset < 0 {
                return Err(
                    Error::invalid(format!("chunks[{i}].offset"), "must not be negative").into(),
                );
            }
            let stream = match pb::LogStream::try_from(c.stream) {
                Ok(pb::LogStream::Stderr) => "stderr",
                Ok(pb::LogStream::System) => "system",
                _ => "stdout",
            };
            chunks.push((c.offset, stream.to_owned(), c.data));
        }
        let (committed, truncated, cancel) =
            self.executions.append_logs(id, r.attempt, chunks).await?;
        Ok(Response::new(pb::AppendLogsResponse {
            committed_offset: committed,
            truncated,
            cancel,
        }))
    }

    async fn upload_artifact(
        &self,
        request: Request<Streaming<pb::UploadArtifactRequest>>,
    ) -> Result<Response<pb::Artifact>, Status> {
        let mut parts = request.into_inner();
        let first = parts.message().await?.and_then(|m| m.part);
        let Some(pb::upload_artifact_request::Part::Metadata(metadata)) = first else {
            return Err(
                Error::invalid("metadata", "the first message must carry the metadata").into(),
            );
        };
        let upload = upload(metadata)?;
        let chunks = parts.map(|m| match m {
            Ok(pb::UploadArtifactRequest {
                part: Some(pb::upload_artifact_request::Part::Chunk(chunk)),
            }) => Ok(bytes::Bytes::from(chunk)),
            Ok(_) => Err(Error::invalid(
                "chunk",
                "every message after the first carries bytes",
            )),
            Err(status) => Err(Error::Unavailable(format!(
                "upload stream: {}",
                status.message()
            ))),
        });
        let artifact = self.executions.artifacts().upload(upload, chunks).await?;
        Ok(Response::new(convert::artifact(&artifact, "")))
    }

    async fn register_artifact(
        &self,
        request: Request<pb::RegisterArtifactRequest>,
    ) -> Result<Response<pb::Artifact>, Status> {
        let metadata = request
            .into_inner()
            .metadata
            .ok_or_else(|| Error::invalid("metadata", "required"))?;
        let artifact = self
            .executions
            .artifacts()
            .register(upload(metadata)?)
            .await?;
        Ok(Response::new(convert::artifact(&artifact, "")))
    }

    type DownloadArtifactStream =
        futures::stream::BoxStream<'static, Result<pb::DownloadArtifactResponse, Status>>;

    async fn download_artifact(
        &self,
        request: Request<pb::DownloadArtifactRequest>,
    ) -> Result<Response<Self::DownloadArtifactStream>, Status> {
        let r = request.into_inner();
        let id = convert::parse_action_name(&r.action_run)?;
        let (artifact, bytes) = self
            .executions
            .artifacts()
            .download(&r.digest, id, r.attempt)
            .await?;
        let first = pb::DownloadArtifactResponse {
            part: Some(pb::download_artifact_response::Part::Artifact(
                convert::artifact(&artifact, ""),
            )),
        };
        let rest = bytes.map(|chunk| {
            chunk
                .map(|c| pb::DownloadArtifactResponse {
                    part: Some(pb::download_artifact_response::Part::Chunk(c.to_vec())),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(
            futures::stream::once(async { Ok(first) })
                .chain(rest)
                .boxed(),
        ))
    }
}

/// Upload metadata, checked for what does not need the database.
fn upload(m: pb::ArtifactUpload) -> Result<crate::artifacts::Upload, Error> {
    let action_id = convert::parse_action_name(&m.action_run)?.to_owned();
    if m.name.is_empty() || m.name.len() > 1024 {
        return Err(Error::invalid("metadata.name", "1 to 1024 bytes"));
    }
    if m.media_type.len() > 256 {
        return Err(Error::invalid("metadata.media_type", "at most 256 bytes"));
    }
    if m.annotations.len() > 64
        || m.annotations
            .iter()
            .any(|(k, v)| k.len() > 256 || v.len() > 4096)
    {
        return Err(Error::invalid(
            "metadata.annotations",
            "at most 64 entries, keys up to 256 bytes, values up to 4096",
        ));
    }
    Ok(crate::artifacts::Upload {
        action_id,
        attempt: m.attempt,
        worker: m.worker,
        name: m.name,
        media_type: m.media_type,
        digest: m.digest,
        size_bytes: m.size_bytes,
        subject_digest: m.subject_digest,
        annotations: m.annotations.into_iter().collect(),
    })
}

/// A report's metrics, refused (naming the entry) when there are too many,
/// a name is empty or too long, or a value is not finite.
fn metrics(
    reported: std::collections::HashMap<String, f64>,
) -> Result<std::collections::BTreeMap<String, f64>, Error> {
    if reported.len() > 100 {
        return Err(Error::invalid("metrics", "at most 100 metrics"));
    }
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in reported {
        if name.is_empty() || name.len() > 64 {
            return Err(Error::invalid("metrics", "names are 1 to 64 bytes"));
        }
        if !value.is_finite() {
            return Err(Error::invalid(
                format!("metrics[{name:?}]"),
                "must be a finite number",
            ));
        }
        out.insert(name, value);
    }
    Ok(out)
}
