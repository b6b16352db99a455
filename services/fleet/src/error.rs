//! The fleet service's one error type, mapped once to gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::store::StoreError;

pub use conveyor_platform::errors::ERROR_DOMAIN;
use conveyor_platform::errors::error_info as info;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{name} changed since etag {expected:?} (now {actual:?})")]
    EtagMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    /// The resource's state forbids the change; `reason` is a stable code.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        subject: String,
        message: String,
    },
    #[error("the plan changed since it was reviewed (digest {expected}, now {actual})")]
    PlanChanged { expected: String, actual: String },
    #[error("{0} changed concurrently; retry")]
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

    pub fn precondition(
        reason: &'static str,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::FailedPrecondition {
            reason,
            subject: subject.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(name) => Error::NotFound(name),
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
            StoreError::Precondition {
                reason,
                subject,
                message,
            } => Error::FailedPrecondition {
                reason,
                subject,
                message,
            },
            StoreError::Invalid { field, message } => Error::InvalidArgument { field, message },
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
            Error::InvalidArgument { field, message } => {
                info(&mut d, "INVALID_ARGUMENT", &[]);
                d.add_bad_request_violation(field.clone(), message.clone());
                Code::InvalidArgument
            }
            Error::NotFound(name) => {
                info(&mut d, "NOT_FOUND", &[("resource", name)]);
                Code::NotFound
            }
            Error::AlreadyExists(name) => {
                info(&mut d, "ALREADY_EXISTS", &[("resource", name)]);
                Code::AlreadyExists
            }
            Error::EtagMismatch { name, actual, .. } => {
                info(
                    &mut d,
                    "ETAG_MISMATCH",
                    &[("resource", name), ("etag", actual)],
                );
                Code::Aborted
            }
            Error::FailedPrecondition {
                reason,
                subject,
                message,
            } => {
                info(&mut d, reason, &[("resource", subject)]);
                d.add_precondition_failure_violation(*reason, subject.clone(), message.clone());
                Code::FailedPrecondition
            }
            Error::PlanChanged { actual, .. } => {
                info(&mut d, "PLAN_CHANGED", &[("plan_digest", actual)]);
                Code::Aborted
            }
            Error::Conflict(name) => {
                info(&mut d, "CONCURRENT_CHANGE", &[("resource", name)]);
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
