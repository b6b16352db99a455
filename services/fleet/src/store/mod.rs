//! The fleet's state in SQLite or Postgres through one sea-orm
//! implementation: the OU tree as materialized paths (`/root/eng/prod/`),
//! so a subtree is one prefix query; accounts carry their OU's path for
//! the same reason. Every mutation is one transaction that checks the
//! state it expects (etags, compare-and-set), retried on contention.

mod accounts;
mod baselines;
mod entities;
mod freezes;
mod migration;
mod ous;
mod records;
mod requests;
mod rollouts;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

pub use accounts::{AccountFilter, AccountPatch, PlanRow};
pub use baselines::NewVersion;
pub use migration::Migrator;
pub use requests::RequestKey;

/// The Postgres schema the fleet service owns.
pub const SCHEMA: &str = "fleet";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{name} has etag {actual:?}, not {expected:?}")]
    EtagMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("{message}")]
    Precondition {
        reason: &'static str,
        subject: String,
        message: String,
    },
    /// A request argument that only the stored state shows to be wrong
    /// (a move into the OU's own subtree, say).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0} changed concurrently; retry")]
    Conflict(String),
    #[error("request id {0:?} was already used for a different request")]
    RequestIdReused(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

impl StoreError {
    fn is_contention(&self) -> bool {
        match self {
            StoreError::Database(e) => conveyor_platform::database::is_retryable(e),
            StoreError::Conflict(_) => true,
            _ => false,
        }
    }

    fn precondition(reason: &'static str, subject: &str, message: impl Into<String>) -> Self {
        StoreError::Precondition {
            reason,
            subject: subject.to_owned(),
            message: message.into(),
        }
    }
}

/// What a mutation did: its result, or, for a request id seen before, the
/// resource that request wrote (the caller reads it again).
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    Replayed(String),
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects and migrates. `url` is `postgres://...` or `sqlite://path`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let db =
            conveyor_platform::database::connect::<Migrator>(url, SCHEMA, max_connections).await?;
        Ok(Store { db })
    }

    /// An empty in-memory SQLite store.
    pub async fn for_test() -> Result<Self, DbErr> {
        Self::connect("sqlite::memory:", 1).await
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn transaction<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'c> Fn(
            &'c DatabaseTransaction,
        ) -> conveyor_platform::database::TxnFuture<'c, T, StoreError>,
    {
        conveyor_platform::database::transaction(&self.db, 5, StoreError::is_contention, op).await
    }
}

fn new_etag() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Refuses a change when the caller sent an etag that is not the current one.
fn check_etag(name: &str, current: &str, expected: Option<&str>) -> Result<(), StoreError> {
    match expected {
        Some(e) if !e.is_empty() && e != current => Err(StoreError::EtagMismatch {
            name: name.to_owned(),
            expected: e.to_owned(),
            actual: current.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// A unique-key violation from an insert, as ALREADY_EXISTS for `name`.
fn exists_or(e: DbErr, name: &str) -> StoreError {
    match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            StoreError::AlreadyExists(name.to_owned())
        }
        _ => e.into(),
    }
}

/// `prefix%` for LIKE, with LIKE's wildcards in `prefix` escaped by `\`.
fn like_prefix(prefix: &str) -> sea_orm::sea_query::LikeExpr {
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    sea_orm::sea_query::LikeExpr::new(format!("{escaped}%")).escape('\\')
}

/// `%needle%` for LIKE, escaped the same way.
fn like_contains(needle: &str) -> sea_orm::sea_query::LikeExpr {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')
}
