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

    /// The pipelines whose current revision takes artifacts from
    /// `upstream` (ids, not resource names), in name order.
    async fn downstream(&self, upstream: &str) -> Result<Vec<String>, SpecError>;
}

/// Pages through a listing until its last page.
async fn all_pages<F, Fut>(mut page: F) -> Result<Vec<String>, SpecError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<String>, String), SpecError>>,
{
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let (found, next) = page(token).await?;
        names.extend(found);
        if next.is_empty() {
            return Ok(names);
        }
        token = next;
    }
}

fn id(name: &str) -> String {
    name.strip_prefix("pipelines/").unwrap_or(name).to_owned()
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

    async fn downstream(&self, upstream: &str) -> Result<Vec<String>, SpecError> {
        let filter = conveyor_definitions::store::ListFilter {
            upstream: Some(upstream.to_owned()),
            ..Default::default()
        };
        all_pages(|token| {
            let filter = filter.clone();
            async move {
                let page = self
                    .list(filter, 500, &token)
                    .await
                    .map_err(|e| SpecError::Unavailable(e.to_string()))?;
                let names = page.items.into_iter().map(|p| id(&p.name)).collect();
                Ok((names, page.next_page_token))
            }
        })
        .await
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

    async fn downstream(&self, upstream: &str) -> Result<Vec<String>, SpecError> {
        use conveyor_api::definitions::v1 as pb;
        all_pages(|page_token| async move {
            let page = self
                .list(pb::ListPipelinesRequest {
                    page_size: 500,
                    page_token,
                    upstream: format!("pipelines/{upstream}"),
                    ..Default::default()
                })
                .await
                .map_err(|status| SpecError::Unavailable(status.message().to_owned()))?;
            let names = page.pipelines.iter().map(|p| id(&p.name)).collect();
            Ok((names, page.next_page_token))
        })
        .await
    }
}
