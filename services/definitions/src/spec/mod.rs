//! The pipeline-as-code document: model, parsing, structural validation and
//! canonical form.

mod canonical;
pub mod duration;
pub mod model;
mod names;
mod parse;
mod validate;

use std::fmt;

pub use canonical::{canonical_json, sha256_hex};
pub use model::*;
pub use names::{NAME_RULE, is_valid_name};
pub use parse::{Locations, MAX_DEPTH, MAX_DOCUMENT_BYTES};
pub use validate::{parse_hhmm, parse_utc_offset, parse_zone};

/// How a document is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// JSON when the document starts with `{`, YAML otherwise.
    #[default]
    Auto,
    Yaml,
    Json,
}

impl Format {
    fn resolve(self, text: &str) -> Format {
        match self {
            Format::Auto if text.trim_start().starts_with('{') => Format::Json,
            Format::Auto => Format::Yaml,
            other => other,
        }
    }
}

/// One problem in a spec, with the path of the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// e.g. `spec.stages[2].actions[0].needs[1]`; empty for the whole document.
    pub field: String,
    pub message: String,
    /// 1-based; 0 when unknown.
    pub line: u32,
    pub column: u32,
}

impl SpecError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            message: message.into(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.is_empty() {
            "document"
        } else {
            &self.field
        };
        if self.line > 0 {
            write!(
                f,
                "{field} (line {}, column {}): {}",
                self.line, self.column, self.message
            )
        } else {
            write!(f, "{field}: {}", self.message)
        }
    }
}

/// A spec that parsed and passed structural validation.
#[derive(Debug, Clone)]
pub struct ValidSpec {
    pub document: Document,
    /// The canonical JSON form: what executions run and what the digest covers.
    pub canonical: String,
    /// Lowercase hex sha256 of `canonical`.
    pub sha256: String,
    /// Where each field sits in the source, for conformance findings.
    pub locations: Locations,
}

/// Parses and structurally validates a document.
///
/// Returns every structural error found; parse errors stop at the first one.
pub fn load(content: &[u8], format: Format) -> Result<ValidSpec, Vec<SpecError>> {
    let (document, locations) = parse::parse(content, format)?;
    let errors = validate::validate(&document);
    if !errors.is_empty() {
        return Err(errors.into_iter().map(|e| locations.locate(e)).collect());
    }
    let canonical = canonical_json(&document);
    let sha256 = sha256_hex(canonical.as_bytes());
    Ok(ValidSpec {
        document,
        canonical,
        sha256,
        locations,
    })
}

/// The JSON Schema of the document format (`docs/pipeline.schema.json`).
///
/// It describes shape and types; the limits and cross-field rules of
/// structural validation (unique names, `needs` references, ...) are not
/// expressible in it and are checked by [`load`].
pub fn json_schema() -> String {
    let mut schema = schemars::SchemaGenerator::default().into_root_schema_for::<Document>();
    schema.insert(
        "$id".to_owned(),
        "https://conveyor.dev/schemas/pipeline/v1".into(),
    );
    schema.insert("title".to_owned(), "Conveyor pipeline (conveyor/v1)".into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads a canonical spec back, as stored on a revision.
pub fn from_canonical(canonical: &str) -> Result<Document, serde_json::Error> {
    serde_json::from_str(canonical)
}
