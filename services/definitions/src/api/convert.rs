//! Conversions between the domain's records and the generated protobuf types.

use conveyor_api::common::v1 as common;
use conveyor_api::definitions::v1 as pb;

use crate::conformance::{Report, RuleResult, Severity};
use crate::domain::{Source, Validation};
use crate::error::Error;
use crate::spec::{Format, MAX_DOCUMENT_BYTES, PipelineType, SpecError};
use crate::store::{PipelineRecord, RevisionRecord, SourceFormat};

/// Whether a read returns the spec documents too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Basic,
    Full,
}

impl View {
    pub fn from_pb(view: i32, default: View) -> Result<View, Error> {
        match pb::PipelineView::try_from(view) {
            Ok(pb::PipelineView::Unspecified) => Ok(default),
            Ok(pb::PipelineView::Basic) => Ok(View::Basic),
            Ok(pb::PipelineView::Full) => Ok(View::Full),
            Err(_) => Err(Error::invalid("view", format!("unknown view {view}"))),
        }
    }
}

pub fn source(source: Option<pb::PipelineSource>) -> Result<Source, Error> {
    let source = source.ok_or_else(|| Error::invalid("source", "required"))?;
    if source.content.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(
            "source.content",
            format!(
                "document is {} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes (1 MiB)",
                source.content.len()
            ),
        ));
    }
    Ok(Source {
        content: source.content,
        format: format(source.format, "source.format")?,
    })
}

pub fn format(value: i32, field: &str) -> Result<Format, Error> {
    match common::SpecFormat::try_from(value) {
        Ok(common::SpecFormat::Unspecified) => Ok(Format::Auto),
        Ok(common::SpecFormat::Yaml) => Ok(Format::Yaml),
        Ok(common::SpecFormat::Json) => Ok(Format::Json),
        Err(_) => Err(Error::invalid(field, format!("unknown format {value}"))),
    }
}

fn format_to_pb(format: Format) -> common::SpecFormat {
    match format {
        Format::Auto => common::SpecFormat::Unspecified,
        Format::Yaml => common::SpecFormat::Yaml,
        Format::Json => common::SpecFormat::Json,
    }
}

/// A pipeline type from a request; `required` refuses UNSPECIFIED.
pub fn pipeline_type(
    value: i32,
    field: &str,
    required: bool,
) -> Result<Option<PipelineType>, Error> {
    let t = common::PipelineType::try_from(value)
        .map_err(|_| Error::invalid(field, format!("unknown pipeline type {value}")))?;
    let t = match t {
        common::PipelineType::Unspecified if required => {
            return Err(Error::invalid(field, "required"));
        }
        common::PipelineType::Unspecified => None,
        common::PipelineType::Application => Some(PipelineType::Application),
        common::PipelineType::ComputeImage => Some(PipelineType::ComputeImage),
        common::PipelineType::AccountFleet => Some(PipelineType::AccountFleet),
        common::PipelineType::MachineLearning => Some(PipelineType::MachineLearning),
        common::PipelineType::DynamicConfiguration => Some(PipelineType::DynamicConfiguration),
    };
    Ok(t)
}

pub fn pipeline_type_to_pb(t: PipelineType) -> common::PipelineType {
    match t {
        PipelineType::Application => common::PipelineType::Application,
        PipelineType::ComputeImage => common::PipelineType::ComputeImage,
        PipelineType::AccountFleet => common::PipelineType::AccountFleet,
        PipelineType::MachineLearning => common::PipelineType::MachineLearning,
        PipelineType::DynamicConfiguration => common::PipelineType::DynamicConfiguration,
    }
}

pub use conveyor_api::time::timestamp;

pub fn pipeline(p: PipelineRecord, view: View) -> pb::Pipeline {
    pb::Pipeline {
        name: format!("pipelines/{}", p.name),
        project: p.project,
        r#type: pipeline_type_to_pb(p.pipeline_type) as i32,
        labels: p.labels.into_iter().collect(),
        etag: p.etag,
        create_time: Some(timestamp(p.create_time)),
        update_time: Some(timestamp(p.update_time)),
        revision: Some(revision(p.revision, view)),
    }
}

pub fn revision(r: RevisionRecord, view: View) -> pb::PipelineRevision {
    let full = view == View::Full;
    pb::PipelineRevision {
        name: format!("pipelines/{}/revisions/{}", r.pipeline, r.revision),
        revision: r.revision,
        spec_sha256: r.spec_sha256,
        author: r.author,
        message: r.message,
        create_time: Some(timestamp(r.create_time)),
        source: full.then(|| pb::PipelineSource {
            content: r.source.into_bytes(),
            format: match r.source_format {
                SourceFormat::Yaml => common::SpecFormat::Yaml,
                SourceFormat::Json => common::SpecFormat::Json,
            } as i32,
        }),
        canonical_spec: if full {
            r.canonical_spec
        } else {
            String::new()
        },
        non_conformance_accepted: r.non_conformance_accepted,
        conformance: full.then(|| report(&r.conformance)),
    }
}

pub fn report(r: &Report) -> pb::ConformanceReport {
    pb::ConformanceReport {
        rules: r.rules.iter().map(rule).collect(),
        score: r.score,
        security_control_automation_percent: r.security_control_automation_percent,
        required_failures: r.required_failures as i32,
        recommended_failures: r.recommended_failures as i32,
        waived: r.waived as i32,
    }
}

fn rule(r: &RuleResult) -> pb::RuleResult {
    pb::RuleResult {
        rule_id: r.rule_id.clone(),
        severity: match r.severity {
            Severity::Error => pb::RuleSeverity::Error,
            Severity::Warning => pb::RuleSeverity::Warning,
        } as i32,
        passed: r.passed,
        message: r.message.clone(),
        field: r.field.clone(),
        reference: r.reference.clone(),
        security_control: r.security_control,
        line: r.line as i32,
        column: r.column as i32,
        waiver: r.waiver.clone(),
    }
}

fn spec_error(e: SpecError) -> pb::SpecError {
    pb::SpecError {
        field: e.field,
        message: e.message,
        line: e.line as i32,
        column: e.column as i32,
    }
}

pub fn validation(v: Validation) -> pb::ValidatePipelineResponse {
    pb::ValidatePipelineResponse {
        valid: v.is_valid(),
        conformance: v.errors.is_empty().then(|| report(&v.conformance)),
        errors: v.errors.into_iter().map(spec_error).collect(),
        canonical_spec: v.canonical,
        spec_sha256: v.sha256,
    }
}

pub fn rendered(content: String, format: Format) -> pb::RenderTemplateResponse {
    pb::RenderTemplateResponse {
        source: Some(pb::PipelineSource {
            content: content.into_bytes(),
            format: format_to_pb(format) as i32,
        }),
    }
}
