//! Conformant starting pipelines, one per pipeline type.

use crate::spec::{self, Format, PipelineType, SpecError};

fn source(pipeline_type: PipelineType) -> &'static str {
    match pipeline_type {
        PipelineType::Application => include_str!("application.yaml"),
        PipelineType::ComputeImage => include_str!("compute-image.yaml"),
        PipelineType::AccountFleet => include_str!("account-fleet.yaml"),
        PipelineType::MachineLearning => include_str!("machine-learning.yaml"),
        PipelineType::DynamicConfiguration => include_str!("dynamic-configuration.yaml"),
    }
}

/// Renders the template of `pipeline_type` for a pipeline `name` in
/// `project`, as YAML (with comments) or as pretty JSON.
pub fn render(
    pipeline_type: PipelineType,
    name: &str,
    project: &str,
    format: Format,
) -> Result<String, SpecError> {
    if !spec::is_valid_name(name) {
        return Err(SpecError::new(
            "pipeline_id",
            format!("invalid name {name:?}: {}", spec::NAME_RULE),
        ));
    }
    if !spec::is_valid_name(project) {
        return Err(SpecError::new(
            "project",
            format!("invalid name {project:?}: {}", spec::NAME_RULE),
        ));
    }
    let yaml = source(pipeline_type)
        .replace("${NAME}", name)
        .replace("${PROJECT}", project);
    match format {
        Format::Yaml | Format::Auto => Ok(yaml),
        Format::Json => {
            let valid =
                spec::load(yaml.as_bytes(), Format::Yaml).map_err(|mut errors| errors.remove(0))?;
            serde_json::to_string_pretty(&valid.document)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| SpecError::new("", e.to_string()))
        }
    }
}
