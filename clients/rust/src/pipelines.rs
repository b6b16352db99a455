//! A typed client of the definitions service's PipelineService: every call
//! goes through the one retry policy; mutations get a request id first, so a
//! retried mutation is applied once.

use tonic::Status;
use tonic::transport::Channel;

use crate::client::{RetryPolicy, channel};
use crate::definitions::v1 as pb;
use crate::definitions::v1::pipeline_service_client::PipelineServiceClient;

#[derive(Clone)]
pub struct PipelineClient {
    inner: PipelineServiceClient<Channel>,
    retry: RetryPolicy,
}

impl PipelineClient {
    /// A client of the service at `endpoint`; connects on first use.
    pub fn new(endpoint: &str) -> Result<Self, tonic::transport::Error> {
        Ok(Self::from_channel(channel(endpoint)?))
    }

    pub fn from_channel(channel: Channel) -> Self {
        PipelineClient {
            inner: PipelineServiceClient::new(channel),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The generated client, for calls this wrapper does not cover.
    pub fn raw(&self) -> PipelineServiceClient<Channel> {
        self.inner.clone()
    }

    pub async fn get(&self, request: pb::GetPipelineRequest) -> Result<pb::Pipeline, Status> {
        self.call(request, |mut c, r| async move { c.get_pipeline(r).await })
            .await
    }

    pub async fn list(
        &self,
        request: pb::ListPipelinesRequest,
    ) -> Result<pb::ListPipelinesResponse, Status> {
        self.call(request, |mut c, r| async move { c.list_pipelines(r).await })
            .await
    }

    pub async fn list_revisions(
        &self,
        request: pb::ListPipelineRevisionsRequest,
    ) -> Result<pb::ListPipelineRevisionsResponse, Status> {
        self.call(request, |mut c, r| async move {
            c.list_pipeline_revisions(r).await
        })
        .await
    }

    pub async fn get_revision(
        &self,
        request: pb::GetPipelineRevisionRequest,
    ) -> Result<pb::PipelineRevision, Status> {
        self.call(request, |mut c, r| async move {
            c.get_pipeline_revision(r).await
        })
        .await
    }

    pub async fn create(
        &self,
        mut request: pb::CreatePipelineRequest,
    ) -> Result<pb::Pipeline, Status> {
        ensure_request_id(&mut request.request_id);
        self.call(
            request,
            |mut c, r| async move { c.create_pipeline(r).await },
        )
        .await
    }

    pub async fn update(
        &self,
        mut request: pb::UpdatePipelineRequest,
    ) -> Result<pb::Pipeline, Status> {
        ensure_request_id(&mut request.request_id);
        self.call(
            request,
            |mut c, r| async move { c.update_pipeline(r).await },
        )
        .await
    }

    pub async fn apply(
        &self,
        mut request: pb::ApplyPipelineRequest,
    ) -> Result<pb::ApplyPipelineResponse, Status> {
        ensure_request_id(&mut request.request_id);
        self.call(request, |mut c, r| async move { c.apply_pipeline(r).await })
            .await
    }

    /// Not retried: a delete whose answer was lost would come back NOT_FOUND.
    pub async fn delete(&self, request: pb::DeletePipelineRequest) -> Result<(), Status> {
        self.inner
            .clone()
            .delete_pipeline(request)
            .await
            .map(|_| ())
    }

    pub async fn validate(
        &self,
        request: pb::ValidatePipelineRequest,
    ) -> Result<pb::ValidatePipelineResponse, Status> {
        self.call(
            request,
            |mut c, r| async move { c.validate_pipeline(r).await },
        )
        .await
    }

    pub async fn render_template(
        &self,
        request: pb::RenderTemplateRequest,
    ) -> Result<pb::RenderTemplateResponse, Status> {
        self.call(
            request,
            |mut c, r| async move { c.render_template(r).await },
        )
        .await
    }

    async fn call<Req, Res, F, Fut>(&self, request: Req, f: F) -> Result<Res, Status>
    where
        Req: Clone,
        F: Fn(PipelineServiceClient<Channel>, Req) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Res>, Status>>,
    {
        self.retry
            .run(|| f(self.inner.clone(), request.clone()))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// A request id unique to this process and moment, when the caller gave none.
fn ensure_request_id(id: &mut String) {
    if id.is_empty() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        *id = format!(
            "{}-{nanos:x}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
    }
}
