//! The definitions service's logic, free of gRPC and SQL: validate specs,
//! check conformance, and store revisions.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::conformance::{self, Report};
use crate::error::Error;
use crate::spec::{self, Format, PipelineType, SpecError};
use crate::store::{
    ListFilter, NewRevision, PipelineRecord, RevisionRecord, SourceFormat, Store, Written,
};
use crate::templates;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;
const MAX_AUTHOR_BYTES: usize = 256;
const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_REQUEST_ID_BYTES: usize = 128;

/// A spec as submitted.
#[derive(Debug, Clone)]
pub struct Source {
    /// The document's bytes; UTF-8 is checked when it is parsed.
    pub content: Vec<u8>,
    pub format: Format,
}

/// Who changes a pipeline, and how.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub author: String,
    pub message: String,
    pub accept_non_conformance: bool,
    pub request_id: Option<String>,
}

/// The outcome of validating a spec without storing it.
#[derive(Debug, Clone)]
pub struct Validation {
    pub errors: Vec<SpecError>,
    pub conformance: Report,
    pub canonical: String,
    pub sha256: String,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty() && self.conformance.conforms()
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// Validates a spec offline: the same checks the service runs.
pub fn validate(source: &Source) -> Validation {
    match spec::load(&source.content, source.format) {
        Ok(valid) => Validation {
            conformance: conformance::check(&valid.document, &valid.locations),
            errors: Vec::new(),
            canonical: valid.canonical,
            sha256: valid.sha256,
        },
        Err(errors) => Validation {
            errors,
            conformance: Report::default(),
            canonical: String::new(),
            sha256: String::new(),
        },
    }
}

#[derive(Clone)]
pub struct Definitions {
    store: Store,
    /// Where `pipeline.revision.created` goes; none: not published.
    pub events: Option<std::sync::Arc<dyn conveyor_platform::queue::Queue>>,
}

impl Definitions {
    pub fn new(store: Store) -> Self {
        Definitions {
            store,
            events: None,
        }
    }

    /// Announces a pipeline's new current revision.
    async fn announce(&self, pipeline: &PipelineRecord) {
        if let Some(queue) = &self.events {
            conveyor_platform::events::publish(queue, crate::events::revision_created(pipeline))
                .await;
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn create(
        &self,
        pipeline_id: &str,
        source: Source,
        change: Change,
    ) -> Result<PipelineRecord, Error> {
        let new = prepare(source, &change)?;
        self.refuse_nonconformant(&new, &change).await?;
        if !pipeline_id.is_empty() && pipeline_id != new.name {
            return Err(Error::invalid(
                "pipeline_id",
                format!(
                    "{pipeline_id:?} differs from the spec's metadata.name {:?}",
                    new.name
                ),
            ));
        }
        let created = self.store.create(new, change.request_id.as_deref()).await?;
        self.announce(&created).await;
        Ok(created)
    }

    pub async fn update(
        &self,
        name: &str,
        source: Source,
        etag: &str,
        change: Change,
    ) -> Result<Written, Error> {
        let id = pipeline_id(name, "name")?;
        let new = prepare(source, &change)?;
        if id != new.name {
            return Err(Error::invalid(
                "metadata.name",
                format!(
                    "the spec names {:?}, not {id:?}; a pipeline cannot be renamed",
                    new.name
                ),
            ));
        }
        self.refuse_nonconformant(&new, &change).await?;
        let etag = (!etag.is_empty()).then_some(etag);
        let written = self
            .store
            .update(new, etag, change.request_id.as_deref())
            .await?;
        if written.revision_created {
            self.announce(&written.pipeline).await;
        }
        Ok(written)
    }

    pub async fn apply(&self, source: Source, change: Change) -> Result<Written, Error> {
        let new = prepare(source, &change)?;
        self.refuse_nonconformant(&new, &change).await?;
        let written = self.store.apply(new, change.request_id.as_deref()).await?;
        if written.revision_created {
            self.announce(&written.pipeline).await;
        }
        Ok(written)
    }

    /// Refuses a spec that fails required rules without
    /// `accept_non_conformance`, unless it is the pipeline's current spec:
    /// re-applying that writes nothing, even when rules became stricter
    /// since it was stored.
    async fn refuse_nonconformant(&self, new: &NewRevision, change: &Change) -> Result<(), Error> {
        if new.conformance.conforms() || change.accept_non_conformance {
            return Ok(());
        }
        match self.store.get(&new.name, None).await {
            Ok(current) if current.revision.spec_sha256 == new.spec_sha256 => Ok(()),
            Ok(_) | Err(crate::store::StoreError::NotFound(_)) => {
                Err(Error::NonConformant(Box::new(new.conformance.clone())))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, name: &str, revision: i64) -> Result<PipelineRecord, Error> {
        let id = pipeline_id(name, "name")?;
        if revision < 0 {
            return Err(Error::invalid(
                "revision",
                "must be 0 (current) or a revision number",
            ));
        }
        Ok(self
            .store
            .get(id, (revision > 0).then_some(revision))
            .await?)
    }

    pub async fn list(
        &self,
        filter: ListFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<PipelineRecord>, Error> {
        if let Some(project) = &filter.project
            && !spec::is_valid_name(project)
        {
            return Err(Error::invalid(
                "project",
                format!("invalid project {project:?}: {}", spec::NAME_RULE),
            ));
        }
        if let Some(upstream) = &filter.upstream
            && !spec::is_valid_name(upstream)
        {
            return Err(Error::invalid(
                "upstream",
                format!("invalid pipeline {upstream:?}: {}", spec::NAME_RULE),
            ));
        }
        let limit = page_size_of(page_size)?;
        let scope = PageScope::Pipelines {
            project: filter.project.clone(),
            pipeline_type: filter.pipeline_type.map(|t| t.as_str().to_owned()),
            upstream: filter.upstream.clone(),
        };
        let after = decode_token::<String>(page_token, &scope)?;
        let mut items = self
            .store
            .list(&filter, after.as_deref(), limit + 1)
            .await?;
        let next = next_token(&mut items, limit, &scope, |p| p.name.clone());
        Ok(Page {
            items,
            next_page_token: next,
        })
    }

    pub async fn delete(&self, name: &str, etag: &str) -> Result<(), Error> {
        let id = pipeline_id(name, "name")?;
        Ok(self
            .store
            .delete(id, (!etag.is_empty()).then_some(etag))
            .await?)
    }

    pub async fn list_revisions(
        &self,
        parent: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<RevisionRecord>, Error> {
        let id = pipeline_id(parent, "parent")?;
        let limit = page_size_of(page_size)?;
        let scope = PageScope::Revisions {
            pipeline: id.to_owned(),
        };
        let before = decode_token::<i64>(page_token, &scope)?;
        let mut items = self.store.list_revisions(id, before, limit + 1).await?;
        let next = next_token(&mut items, limit, &scope, |r| r.revision);
        Ok(Page {
            items,
            next_page_token: next,
        })
    }

    pub async fn get_revision(&self, name: &str) -> Result<RevisionRecord, Error> {
        let (pipeline, revision) = revision_name(name)?;
        Ok(self.store.get(pipeline, Some(revision)).await?.revision)
    }

    pub fn render_template(
        &self,
        pipeline_type: PipelineType,
        name: &str,
        project: &str,
        format: Format,
    ) -> Result<String, Error> {
        templates::render(pipeline_type, name, project, format)
            .map_err(|e| Error::invalid(e.field, e.message))
    }
}

/// Checks a submitted spec and turns it into the revision to store.
fn prepare(source: Source, change: &Change) -> Result<NewRevision, Error> {
    if change.author.len() > MAX_AUTHOR_BYTES {
        return Err(Error::invalid(
            "author",
            format!("at most {MAX_AUTHOR_BYTES} bytes"),
        ));
    }
    if change.message.len() > MAX_MESSAGE_BYTES {
        return Err(Error::invalid(
            "message",
            format!("at most {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    if let Some(id) = &change.request_id
        && (id.is_empty() || id.len() > MAX_REQUEST_ID_BYTES)
    {
        return Err(Error::invalid(
            "request_id",
            format!("1 to {MAX_REQUEST_ID_BYTES} bytes"),
        ));
    }
    let valid = spec::load(&source.content, source.format).map_err(Error::InvalidSpec)?;
    let report = conformance::check(&valid.document, &valid.locations);
    let source_format = match source.format {
        Format::Json => SourceFormat::Json,
        Format::Yaml => SourceFormat::Yaml,
        Format::Auto if source.content.trim_ascii_start().starts_with(b"{") => SourceFormat::Json,
        Format::Auto => SourceFormat::Yaml,
    };
    let doc = valid.document;
    Ok(NewRevision {
        name: doc.metadata.name,
        project: doc.metadata.project,
        pipeline_type: doc.spec.pipeline_type,
        labels: doc.metadata.labels,
        upstream: doc.spec.upstream.into_iter().map(|u| u.pipeline).collect(),
        author: if change.author.trim().is_empty() {
            "anonymous".to_owned()
        } else {
            change.author.clone()
        },
        message: change.message.clone(),
        // `spec::load` accepted the bytes, so they are UTF-8.
        source: String::from_utf8_lossy(&source.content).into_owned(),
        source_format,
        canonical_spec: valid.canonical,
        spec_sha256: valid.sha256,
        non_conformance_accepted: !report.conforms(),
        conformance: report,
    })
}

/// `{pipeline}` from `pipelines/{pipeline}`.
pub fn pipeline_id<'a>(name: &'a str, field: &str) -> Result<&'a str, Error> {
    match name.strip_prefix("pipelines/") {
        Some(id) if spec::is_valid_name(id) => Ok(id),
        _ => Err(Error::invalid(
            field,
            format!("{name:?} is not a pipeline name \"pipelines/{{pipeline}}\""),
        )),
    }
}

/// (`{pipeline}`, `{revision}`) from `pipelines/{pipeline}/revisions/{revision}`.
fn revision_name(name: &str) -> Result<(&str, i64), Error> {
    let bad = || {
        Error::invalid(
            "name",
            format!(
                "{name:?} is not a revision name \"pipelines/{{pipeline}}/revisions/{{revision}}\""
            ),
        )
    };
    let rest = name.strip_prefix("pipelines/").ok_or_else(bad)?;
    let (pipeline, number) = rest.split_once("/revisions/").ok_or_else(bad)?;
    let number: i64 = number.parse().map_err(|_| bad())?;
    if !spec::is_valid_name(pipeline) || number < 1 {
        return Err(bad());
    }
    Ok((pipeline, number))
}

fn page_size_of(page_size: i32) -> Result<u64, Error> {
    match page_size {
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// What a page token is valid for: a token from one listing cannot be
/// replayed against another filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
enum PageScope {
    Pipelines {
        project: Option<String>,
        pipeline_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upstream: Option<String>,
    },
    Revisions {
        pipeline: String,
    },
}

#[derive(Serialize, Deserialize)]
struct PageToken<K> {
    #[serde(flatten)]
    scope: PageScope,
    after: K,
}

fn decode_token<K: for<'de> Deserialize<'de>>(
    token: &str,
    scope: &PageScope,
) -> Result<Option<K>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "not a page token from this listing");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let parsed: PageToken<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if &parsed.scope != scope {
        return Err(Error::invalid(
            "page_token",
            "the page token was issued for a different filter",
        ));
    }
    Ok(Some(parsed.after))
}

/// Trims the extra item fetched to learn whether another page exists, and
/// returns the token of the next page (empty on the last).
fn next_token<T, K: Serialize>(
    items: &mut Vec<T>,
    limit: u64,
    scope: &PageScope,
    key: impl Fn(&T) -> K,
) -> String {
    if items.len() as u64 <= limit {
        return String::new();
    }
    items.truncate(limit as usize);
    let Some(last) = items.last() else {
        return String::new();
    };
    let token = PageToken {
        scope: scope.clone(),
        after: key(last),
    };
    serde_json::to_vec(&token)
        .map(|bytes| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
        .unwrap_or_default()
}
