//! The gRPC adapter: validate and convert the request, call the domain,
//! convert the result, map the error. No business rules here.

mod convert;

pub use convert::pipeline_type_to_pb;

use conveyor_api::definitions::v1 as pb;
use conveyor_api::definitions::v1::pipeline_service_server::{
    PipelineService, PipelineServiceServer,
};
use tonic::{Request, Response, Status};

pub use convert::View;

use crate::domain::{self, Change, Definitions};
use crate::spec::Format;
use crate::store::ListFilter;

pub struct PipelineApi {
    definitions: Definitions,
}

impl PipelineApi {
    pub fn new(definitions: Definitions) -> Self {
        PipelineApi { definitions }
    }

    /// The tonic service with explicit message-size limits.
    pub fn into_server(self, max_message_bytes: usize) -> PipelineServiceServer<Self> {
        PipelineServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }
}

/// FULL pages carry whole documents; keep them well inside the message limit.
const MAX_FULL_PAGE_SIZE: i32 = 100;

fn page_size(view: View, requested: i32) -> i32 {
    match view {
        View::Full => requested.min(MAX_FULL_PAGE_SIZE),
        View::Basic => requested,
    }
}

fn change(
    author: String,
    message: String,
    accept_non_conformance: bool,
    request_id: String,
) -> Change {
    Change {
        author,
        message,
        accept_non_conformance,
        request_id: (!request_id.is_empty()).then_some(request_id),
    }
}

#[tonic::async_trait]
impl PipelineService for PipelineApi {
    async fn create_pipeline(
        &self,
        request: Request<pb::CreatePipelineRequest>,
    ) -> Result<Response<pb::Pipeline>, Status> {
        let r = request.into_inner();
        let source = convert::source(r.source)?;
        let change = change(r.author, r.message, r.accept_non_conformance, r.request_id);
        let created = self
            .definitions
            .create(&r.pipeline_id, source, change)
            .await?;
        Ok(Response::new(convert::pipeline(created, View::Full)))
    }

    async fn get_pipeline(
        &self,
        request: Request<pb::GetPipelineRequest>,
    ) -> Result<Response<pb::Pipeline>, Status> {
        let r = request.into_inner();
        let view = View::from_pb(r.view, View::Full)?;
        let pipeline = self.definitions.get(&r.name, r.revision).await?;
        Ok(Response::new(convert::pipeline(pipeline, view)))
    }

    async fn list_pipelines(
        &self,
        request: Request<pb::ListPipelinesRequest>,
    ) -> Result<Response<pb::ListPipelinesResponse>, Status> {
        let r = request.into_inner();
        let view = View::from_pb(r.view, View::Basic)?;
        let filter = ListFilter {
            project: (!r.project.is_empty()).then_some(r.project),
            pipeline_type: convert::pipeline_type(r.r#type, "type", false)?,
            upstream: match r.upstream.as_str() {
                "" => None,
                name => Some(crate::domain::pipeline_id(name, "upstream")?.to_owned()),
            },
        };
        let page = self
            .definitions
            .list(filter, page_size(view, r.page_size), &r.page_token)
            .await?;
        Ok(Response::new(pb::ListPipelinesResponse {
            pipelines: page
                .items
                .into_iter()
                .map(|p| convert::pipeline(p, view))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_pipeline(
        &self,
        request: Request<pb::UpdatePipelineRequest>,
    ) -> Result<Response<pb::Pipeline>, Status> {
        let r = request.into_inner();
        let source = convert::source(r.source)?;
        let change = change(r.author, r.message, r.accept_non_conformance, r.request_id);
        let written = self
            .definitions
            .update(&r.name, source, &r.etag, change)
            .await?;
        Ok(Response::new(convert::pipeline(
            written.pipeline,
            View::Full,
        )))
    }

    async fn apply_pipeline(
        &self,
        request: Request<pb::ApplyPipelineRequest>,
    ) -> Result<Response<pb::ApplyPipelineResponse>, Status> {
        let r = request.into_inner();
        let source = convert::source(r.source)?;
        let change = change(r.author, r.message, r.accept_non_conformance, r.request_id);
        let written = self.definitions.apply(source, change).await?;
        Ok(Response::new(pb::ApplyPipelineResponse {
            pipeline: Some(convert::pipeline(written.pipeline, View::Full)),
            created: written.created,
            revision_created: written.revision_created,
        }))
    }

    async fn delete_pipeline(
        &self,
        request: Request<pb::DeletePipelineRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        self.definitions.delete(&r.name, &r.etag).await?;
        Ok(Response::new(()))
    }

    async fn list_pipeline_revisions(
        &self,
        request: Request<pb::ListPipelineRevisionsRequest>,
    ) -> Result<Response<pb::ListPipelineRevisionsResponse>, Status> {
        let r = request.into_inner();
        let view = View::from_pb(r.view, View::Basic)?;
        let page = self
            .definitions
            .list_revisions(&r.parent, page_size(view, r.page_size), &r.page_token)
            .await?;
        Ok(Response::new(pb::ListPipelineRevisionsResponse {
            revisions: page
                .items
                .into_iter()
                .map(|rev| convert::revision(rev, view))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_pipeline_revision(
        &self,
        request: Request<pb::GetPipelineRevisionRequest>,
    ) -> Result<Response<pb::PipelineRevision>, Status> {
        let r = request.into_inner();
        let revision = self.definitions.get_revision(&r.name).await?;
        Ok(Response::new(convert::revision(revision, View::Full)))
    }

    async fn validate_pipeline(
        &self,
        request: Request<pb::ValidatePipelineRequest>,
    ) -> Result<Response<pb::ValidatePipelineResponse>, Status> {
        let source = convert::source(request.into_inner().source)?;
        // Parsing and rule checks are CPU work; keep them off the I/O threads.
        let validation = tokio::task::spawn_blocking(move || domain::validate(&source))
            .await
            .map_err(|e| crate::error::Error::Internal(Box::new(e)))?;
        Ok(Response::new(convert::validation(validation)))
    }

    async fn render_template(
        &self,
        request: Request<pb::RenderTemplateRequest>,
    ) -> Result<Response<pb::RenderTemplateResponse>, Status> {
        let r = request.into_inner();
        let pipeline_type = convert::pipeline_type(r.r#type, "type", true)?
            .ok_or_else(|| crate::error::Error::invalid("type", "required"))?;
        let format = match convert::format(r.format, "format")? {
            Format::Auto => Format::Yaml,
            other => other,
        };
        let name = if r.pipeline_id.is_empty() {
            pipeline_type.as_str().to_owned()
        } else {
            r.pipeline_id
        };
        let project = if r.project.is_empty() {
            "default".to_owned()
        } else {
            r.project
        };
        let content = self
            .definitions
            .render_template(pipeline_type, &name, &project, format)?;
        Ok(Response::new(convert::rendered(content, format)))
    }
}
