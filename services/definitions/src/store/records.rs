//! What the store hands out: plain records, free of sea-orm types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::StoreError;
use super::entities::{pipeline, revision};
use crate::conformance::Report;
use crate::spec::PipelineType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Yaml,
    Json,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Yaml => "yaml",
            SourceFormat::Json => "json",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "yaml" => Some(SourceFormat::Yaml),
            "json" => Some(SourceFormat::Json),
            _ => None,
        }
    }
}

/// A pipeline with one of its revisions (the current one unless asked otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRecord {
    pub name: String,
    pub project: String,
    pub pipeline_type: PipelineType,
    pub labels: BTreeMap<String, String>,
    pub etag: String,
    pub current_revision: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub revision: RevisionRecord,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRecord {
    pub pipeline: String,
    pub revision: i64,
    pub spec_sha256: String,
    pub author: String,
    pub message: String,
    pub source: String,
    pub source_format: SourceFormat,
    pub canonical_spec: String,
    pub non_conformance_accepted: bool,
    pub conformance: Report,
    pub create_time: DateTime<Utc>,
}

/// A validated spec to store as a pipeline's next revision.
#[derive(Debug, Clone)]
pub struct NewRevision {
    pub name: String,
    pub project: String,
    pub pipeline_type: PipelineType,
    pub labels: BTreeMap<String, String>,
    /// The pipelines whose artifacts it takes (`spec.upstream`).
    pub upstream: Vec<String>,
    pub author: String,
    pub message: String,
    pub source: String,
    pub source_format: SourceFormat,
    pub canonical_spec: String,
    pub spec_sha256: String,
    pub non_conformance_accepted: bool,
    pub conformance: Report,
}

pub(super) fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_owned())
}

pub(super) fn pipeline_record(
    p: pipeline::Model,
    revision: RevisionRecord,
) -> Result<PipelineRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("pipeline {:?}: {what}", p.name));
    let pipeline_type =
        PipelineType::parse(&p.pipeline_type).ok_or_else(|| corrupt("unknown pipeline type"))?;
    let labels =
        serde_json::from_str(&p.labels).map_err(|_| corrupt("labels are not a JSON object"))?;
    Ok(PipelineRecord {
        name: p.name,
        project: p.project,
        pipeline_type,
        labels,
        etag: p.etag,
        current_revision: p.current_revision,
        create_time: p.create_time,
        update_time: p.update_time,
        revision,
    })
}

pub(super) fn revision_record(
    pipeline: &str,
    r: revision::Model,
) -> Result<RevisionRecord, StoreError> {
    let corrupt = |what: &str| {
        StoreError::Corrupt(format!(
            "pipeline {pipeline:?} revision {}: {what}",
            r.revision
        ))
    };
    Ok(RevisionRecord {
        pipeline: pipeline.to_owned(),
        revision: r.revision,
        source_format: SourceFormat::parse(&r.source_format)
            .ok_or_else(|| corrupt("unknown source format"))?,
        conformance: serde_json::from_str(&r.conformance)
            .map_err(|_| corrupt("conformance report is not valid JSON"))?,
        spec_sha256: r.spec_sha256,
        author: r.author,
        message: r.message,
        source: r.source,
        canonical_spec: r.canonical_spec,
        non_conformance_accepted: r.non_conformance_accepted,
        create_time: r.create_time,
    })
}
