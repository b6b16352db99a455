//! The metrics service's records in SQLite or Postgres (schema `metrics`):
//! runs, deployment records, commits with their lead times, mainline health
//! and streaks, security errors, stage budgets, conformance and surveys.

pub mod entities;
mod history;
mod migration;
pub mod notifications;
mod queries;
mod retention;
pub(crate) mod rollups;
pub(crate) mod upsert;

use std::collections::HashSet;

use conveyor_api::events::v1 as ev;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};

pub use migration::Migrator;
pub use queries::{DeploymentFilter, HealthFilter, Scope};
pub use retention::{Pruned, Retention};

use crate::ingest::project::Working;
use entities::processed_event;

/// The Postgres schema the metrics service owns.
pub const SCHEMA: &str = "metrics";

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
    #[error("request id {0:?} was already used for a different request")]
    RequestIdReused(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

impl StoreError {
    fn is_contention(&self) -> bool {
        matches!(self, StoreError::Database(e) if conveyor_platform::database::is_retryable(e))
    }
}

/// What applying a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Events applied for the first time.
    pub new: usize,
    /// Events seen before (redelivered), skipped.
    pub duplicates: usize,
    /// Deliveries recorded for notification rules.
    pub deliveries: usize,
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

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Builds the daily rollups when there are records but none (the first
    /// start after they were added); the ingest leader calls it.
    pub async fn ensure_rollups(&self, retention: Retention) -> Result<(), StoreError> {
        let frozen = retention.frozen_until(chrono::Utc::now());
        Ok(rollups::ensure(&self.db, frozen).await?)
    }

    /// Makes every daily rollup again from the records, but for the days
    /// `retention` may have pruned records of; returns the days.
    pub async fn rebuild_rollups(&self, retention: Retention) -> Result<i64, StoreError> {
        let frozen = retention.frozen_until(chrono::Utc::now());
        Ok(rollups::rebuild(&self.db, frozen).await?)
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

    /// Applies a batch of events in one transaction, each event id once
    /// however often it is delivered.
    /// The rollups of the days the batch changed are recomputed with it,
    /// but for days `retention` may have pruned records of.
    pub async fn apply(
        &self,
        events: &[ev::Event],
        retention: Retention,
    ) -> Result<Applied, StoreError> {
        let frozen = retention.frozen_until(chrono::Utc::now());
        let events = std::sync::Arc::new(events.to_vec());
        self.transaction(move |txn| {
            let events = events.clone();
            Box::pin(async move {
                let mut seen = claim(txn, &events).await?;
                let mut fresh = Vec::new();
                let mut applied = Applied::default();
                for e in events.iter() {
                    // Claimed now, and once: a second copy in the batch is a duplicate.
                    if seen.remove(&e.id) {
                        fresh.push(e.clone());
                    } else {
                        applied.duplicates += 1;
                    }
                }
                applied.new = fresh.len();
                if fresh.is_empty() {
                    return Ok(applied);
                }
                let mut working = Working::new(txn);
                working.prefetch(&fresh).await?;
                for e in &fresh {
                    working.apply(e).await?;
                }
                let mut notices: Vec<crate::notify::Notice> =
                    fresh.iter().flat_map(crate::notify::notices).collect();
                notices.append(&mut working.mainline);
                let mut days = working.save().await?;
                days.retain(|(day, _, _)| frozen.is_none_or(|f| *day > f));
                rollups::refresh(txn, &days).await?;
                let now = chrono::Utc::now();
                applied.deliveries = notifications::record(txn, &notices, now).await?;
                Ok(applied)
            })
        })
        .await
    }
}

/// Records the batch's event ids as processed and returns those not seen
/// before. On Postgres one statement does both (the ids travel as one JSON
/// parameter); SQLite reads, then inserts.
async fn claim(
    txn: &DatabaseTransaction,
    events: &[ev::Event],
) -> Result<HashSet<String>, StoreError> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let now = chrono::Utc::now();
    let time = |e: &ev::Event| {
        e.time
            .as_ref()
            .and_then(conveyor_api::time::from_timestamp)
            .unwrap_or(now)
    };
    if txn.get_database_backend() == DbBackend::Postgres {
        let rows: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::json!({"id": e.id, "t": time(e).to_rfc3339()}))
            .collect();
        let claimed = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO processed_events (id, event_time, claim_time) \
                 SELECT id, t, now() FROM json_to_recordset($1::json) AS x(id text, t timestamptz) \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                [serde_json::Value::Array(rows).to_string().into()],
            ))
            .await?;
        return claimed
            .iter()
            .map(|row| row.try_get::<String>("", "id").map_err(StoreError::from))
            .collect();
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let mut seen: HashSet<String> = HashSet::new();
    for chunk in ids.chunks(500) {
        seen.extend(
            processed_event::Entity::find()
                .filter(processed_event::Column::Id.is_in(chunk.iter().cloned()))
                .all(txn)
                .await?
                .into_iter()
                .map(|p| p.id),
        );
    }
    let mut fresh = HashSet::new();
    let mut rows = Vec::new();
    for e in events {
        if !seen.contains(&e.id) && fresh.insert(e.id.clone()) {
            rows.push(processed_event::ActiveModel {
                id: sea_orm::ActiveValue::Set(e.id.clone()),
                event_time: sea_orm::ActiveValue::Set(time(e)),
                claim_time: sea_orm::ActiveValue::Set(Some(now)),
            });
        }
    }
    for chunk in rows.chunks(500) {
        processed_event::Entity::insert_many(chunk.to_vec())
            .exec(txn)
            .await?;
    }
    Ok(fresh)
}
