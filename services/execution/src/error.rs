//! The execution service's one error type, mapped once to gRPC status.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::specs::SpecError;
use crate::store::StoreError;

pub use conveyor_platform::errors::ERROR_DOMAIN;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("pipeline {0:?} not found")]
    PipelineNotFound(String),
    #[error("execution {0:?} not found")]
    ExecutionNotFound(String),
    #[error("action run {0:?} not found")]
    ActionNotFound(String),
    #[error("no active blocker {0:?}")]
    BlockerNotFound(String),
    #[error("alarm {0:?} not found")]
    AlarmNotFound(String),
    #[error("attempt {attempt} of action run {action:?} is not current (current: {current})")]
    StaleAttempt {
        action: String,
        attempt: i32,
        current: i32,
    },
    #[error("execution {0:?} already ended")]
    AlreadyEnded(String),
    #[error("stage {0:?} is not waiting for approval")]
    StageNotWaiting(String),
    #[error("upstream pipeline {pipeline:?}: {why}")]
    UpstreamNotPublished { pipeline: String, why: String },
    #[error("{message}")]
    PermissionDenied {
        reason: &'static str,
        message: String,
    },
    #[error("artifact {0:?} not found")]
    ArtifactNotFound(String),
    #[error("artifact bytes do not match: declared {declared}, got {actual}")]
    DigestMismatch { declared: String, actual: String },
    #[error("the signature of {digest} does not verify: {why}")]
    ArtifactUntrusted { digest: String, why: String },
    #[error("{0:?} changed concurrently; retry")]
    Conflict(String),
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
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

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => Error::ExecutionNotFound(id),
            StoreError::ActionNotFound(id) => Error::ActionNotFound(id),
            StoreError::Conflict(id) => Error::Conflict(id),
            StoreError::Database(db) if conveyor_platform::database::is_unavailable(&db) => {
                Error::Unavailable(format!("database: {db}"))
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

impl From<SpecError> for Error {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::NotFound(name) => Error::PipelineNotFound(name),
            SpecError::Unavailable(why) => Error::Unavailable(format!("definitions: {why}")),
            e @ SpecError::Unreadable { .. } => Error::Internal(Box::new(e)),
        }
    }
}

fn info(d: &mut ErrorDetails, reason: &str, metadata: &[(&str, String)]) {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    d.set_error_info(reason, ERROR_DOMAIN, metadata);
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let message = e.to_string();
        let mut d = ErrorDetails::new();
        let code = match &e {
            Error::InvalidArgument { field, message } => {
                info(&mut d, "INVALID_ARGUMENT", &[]);
                d.add_bad_request_violation(field.clone(), message.clone());
                Code::InvalidArgument
            }
            Error::PipelineNotFound(name) => {
                info(&mut d, "PIPELINE_NOT_FOUND", &[("pipeline", name.clone())]);
                Code::NotFound
            }
            Error::ExecutionNotFound(id) => {
                info(&mut d, "EXECUTION_NOT_FOUND", &[("execution", id.clone())]);
                Code::NotFound
            }
            Error::ActionNotFound(id) => {
                info(
                    &mut d,
                    "ACTION_RUN_NOT_FOUND",
                    &[("action_run", id.clone())],
                );
                Code::NotFound
            }
            Error::BlockerNotFound(name) => {
                info(&mut d, "BLOCKER_NOT_FOUND", &[("blocker", name.clone())]);
                Code::NotFound
            }
            Error::AlarmNotFound(name) => {
                info(&mut d, "ALARM_NOT_FOUND", &[("alarm", name.clone())]);
                Code::NotFound
            }
            Error::StaleAttempt {
                action,
                attempt,
                current,
            } => {
                info(
                    &mut d,
                    "STALE_ATTEMPT",
                    &[
                        ("action_run", action.clone()),
                        ("attempt", attempt.to_string()),
                        ("current_attempt", current.to_string()),
                    ],
                );
                Code::FailedPrecondition
            }
            Error::AlreadyEnded(id) => {
                info(&mut d, "EXECUTION_ENDED", &[("execution", id.clone())]);
                Code::FailedPrecondition
            }
            Error::StageNotWaiting(stage) => {
                info(&mut d, "STAGE_NOT_WAITING", &[("stage", stage.clone())]);
                Code::FailedPrecondition
            }
            Error::UpstreamNotPublished { pipeline, .. } => {
                info(
                    &mut d,
                    "UPSTREAM_NOT_PUBLISHED",
                    &[("pipeline", pipeline.clone())],
                );
                Code::FailedPrecondition
            }
            Error::PermissionDenied { reason, .. } => {
                info(&mut d, reason, &[]);
                Code::PermissionDenied
            }
            Error::ArtifactNotFound(digest) => {
                info(&mut d, "ARTIFACT_NOT_FOUND", &[("digest", digest.clone())]);
                Code::NotFound
            }
            Error::DigestMismatch { declared, actual } => {
                info(
                    &mut d,
                    "DIGEST_MISMATCH",
                    &[("declared", declared.clone()), ("actual", actual.clone())],
                );
                Code::DataLoss
            }
            Error::ArtifactUntrusted { digest, .. } => {
                info(&mut d, "ARTIFACT_UNTRUSTED", &[("digest", digest.clone())]);
                Code::DataLoss
            }
            Error::Conflict(id) => {
                info(&mut d, "CONCURRENT_CHANGE", &[("resource", id.clone())]);
                Code::Aborted
            }
            Error::Unavailable(why) => {
                tracing::warn!(reason = %why, "dependency unavailable");
                info(&mut d, "UNAVAILABLE", &[]);
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
