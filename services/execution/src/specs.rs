//! Where an execution gets the pipeline revision it pins: the definitions
//! service over gRPC, or the definitions domain in the same process
//! (`conveyor dev`).

use conveyor_definitions::domain::Definitions;
use conveyor_definitions::spec::{self, Document};

/// A pipeline revision, pinned for the life of an execution.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub revision: i64,
    pub spec_sha256: String,
    pub document: Document,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("pipeline {0:?} not found")]
    NotFound(String),
    #[error("the definitions service is unavailable: {0}")]
    Unavailable(String),
    #[error("pipeline {pipeline:?} revision {revision} cannot be read: {reason}")]
    Unreadable {
        pipeline: String,
        revision: i64,
        reason: String,
    },
}

#[async_trait::async_trait]
pub trait SpecSource: Send + Sync + 'static {
    /// The current revision of `pipeline` (its id, not its resource name).
    async fn current(&self, pipeline: &str) -> Result<Pinned, SpecError>;
}

fn pinned(
    pipeline: &str,
    revision: i64,
    sha256: String,
    canonical: &str,
) -> Result<Pinned, SpecError> {
    let document = spec::from_canonical(canonical).map_err(|e| SpecError::Unreadable {
        pipeline: pipeline.to_owned(),
        revision,
        reason: e.to_string(),
    })?;
    Ok(Pinned {
        revision,
        spec_sha256: sha256,
        document,
    })
}

#[async_trait::async_trait]
impl SpecSource for Definitions {
    async fn current(&self, pipeline: &str) -> Result<Pinned, SpecError> {
        use conveyor_definitions::error::Error;
        let record = self
            .get(&format!("pipelines/{pipeline}"), 0)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) | Error::RevisionNotFound { .. } => {
                    SpecError::NotFound(pipeline.to_owned())
                }
                other => SpecError::Unavailable(other.to_string()),
            })?;
        let r = record.revision;
        pinned(pipeline, r.revision, r.spec_sha256, &r.canonical_spec)
    }
}

#[async_trait::async_trait]
impl SpecSource for conveyor_api::pipelines::PipelineClient {
    async fn current(&self, pipeline: &str) -> Result<Pinned, SpecError> {
        use conveyor_api::definitions::v1 as pb;
        let request = pb::GetPipelineRequest {
            name: format!("pipelines/{pipeline}"),
            revision: 0,
            view: pb::PipelineView::Full as i32,
        };
        let p = self
            .get(request)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => SpecError::NotFound(pipeline.to_owned()),
                _ => SpecError::Unavailable(status.message().to_owned()),
            })?;
        let r = p.revision.unwrap_or_default();
        pinned(pipeline, r.revision, r.spec_sha256, &r.canonical_spec)
    }
}
