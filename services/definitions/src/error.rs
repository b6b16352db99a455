//! The definitions service's one error type, mapped once to gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::conformance::{Report, Severity};
use crate::spec::SpecError;
use crate::store::StoreError;

pub use conveyor_platform::errors::ERROR_DOMAIN;
use conveyor_platform::errors::error_info as info;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid pipeline spec: {}", summary(.0))]
    InvalidSpec(Vec<SpecError>),
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("pipeline {0:?} not found")]
    NotFound(String),
    #[error("revision {revision} of pipeline {pipeline:?} not found")]
    RevisionNotFound { pipeline: String, revision: i64 },
    #[error("pipeline {0:?} already exists")]
    AlreadyExists(String),
    #[error("pipeline {name:?} changed since etag {expected:?} (now {actual:?})")]
    EtagMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("spec fails {} required DPRA rule(s); fix them or set accept_non_conformance", .0.required_failures)]
    NonConformant(Box<Report>),
    #[error("pipeline {0:?} changed concurrently; retry")]
    Conflict(String),
    #[error("the database is unavailable")]
    Unavailable(#[source] sea_orm::DbErr),
    #[error("the database is busy with concurrent changes; retry")]
    Contended(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn summary(errors: &[SpecError]) -> String {
    match errors {
        [] => "no details".to_owned(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(name) => Error::NotFound(name),
            StoreError::RevisionNotFound { pipeline, revision } => {
                Error::RevisionNotFound { pipeline, revision }
            }
            StoreError::AlreadyExists(name) => Error::AlreadyExists(name),
            StoreError::EtagMismatch {
                name,
                expected,
                actual,
            } => Error::EtagMismatch {
                name,
                expected,
                actual,
            },
            StoreError::Conflict(name) => Error::Conflict(name),
            StoreError::RequestIdReused(id) => Error::invalid(
                "request_id",
                format!("request id {id:?} was already used for a different request"),
            ),
            StoreError::Database(db) if conveyor_platform::database::is_unavailable(&db) => {
                Error::Unavailable(db)
            }
            // Contention that outlasted the store's retries: safe to retry.
            StoreError::Database(db) if conveyor_platform::database::is_retryable(&db) => {
                Error::Contended(db)
            }
            StoreError::Database(db) => Error::Internal(Box::new(db)),
            e @ StoreError::Corrupt(_) => Error::Internal(Box::new(e)),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let message = e.to_string();
        let mut d = ErrorDetails::new();
        let code = match &e {
            Error::InvalidSpec(errors) => {
                info(&mut d, "INVALID_SPEC", &[]);
                for err in errors {
                    let field = if err.field.is_empty() {
                        "source.content".to_owned()
                    } else {
                        err.field.clone()
                    };
                    let description = if err.line > 0 {
                        format!("{} (line {}, column {})", err.message, err.line, err.column)
                    } else {
                        err.message.clone()
                    };
                    d.add_bad_request_violation(field, description);
                }
                Code::InvalidArgument
            }
            Error::InvalidArgument { field, message } => {
                info(&mut d, "INVALID_ARGUMENT", &[]);
                d.add_bad_request_violation(field.clone(), message.clone());
                Code::InvalidArgument
            }
            Error::NotFound(name) => {
                info(&mut d, "PIPELINE_NOT_FOUND", &[("pipeline", name)]);
                Code::NotFound
            }
            Error::RevisionNotFound { pipeline, revision } => {
                info(
                    &mut d,
                    "REVISION_NOT_FOUND",
                    &[("pipeline", pipeline), ("revision", &revision.to_string())],
                );
                Code::NotFound
            }
            Error::AlreadyExists(name) => {
                info(&mut d, "PIPELINE_ALREADY_EXISTS", &[("pipeline", name)]);
                Code::AlreadyExists
            }
            Error::EtagMismatch { name, actual, .. } => {
                info(
                    &mut d,
                    "ETAG_MISMATCH",
                    &[("pipeline", name), ("etag", actual)],
                );
                Code::Aborted
            }
            Error::NonConformant(report) => {
                info(
                    &mut d,
                    "DPRA_NONCONFORMANT",
                    &[("required_failures", &report.required_failures.to_string())],
                );
                for rule in report.failures().filter(|r| r.severity == Severity::Error) {
                    d.add_precondition_failure_violation(
                        "DPRA_RULE",
                        rule.rule_id.clone(),
                        format!("{}: {}", rule.field, rule.message),
                    );
                }
                Code::FailedPrecondition
            }
            Error::Conflict(name) => {
                info(&mut d, "CONCURRENT_CHANGE", &[("pipeline", name)]);
                Code::Aborted
            }
            Error::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                info(&mut d, "DATABASE_UNAVAILABLE", &[]);
                Code::Unavailable
            }
            Error::Contended(source) => {
                tracing::warn!(error = %source, "database contention outlasted the retries");
                info(&mut d, "DATABASE_CONTENTION", &[]);
                Code::Aborted
            }
            Error::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                info(&mut d, "INTERNAL", &[]);
                Code::Internal
            }
        };
        Status::with_error_details(code, message, d)
    }
}
