//! Connecting to the database: Postgres in production, SQLite for the
//! embedded default and tests. Each service keeps its tables in its own
//! Postgres schema.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, RuntimeErr, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

/// Opens a pool and brings the schema up to date.
///
/// `schema` is the service's Postgres schema (created if missing); SQLite
/// has one namespace per file and ignores it. A SQLite URL without `mode=`
/// gets `mode=rwc`, so the file is created. On Postgres, migrations run under
/// an advisory lock, so replicas starting together migrate one at a time.
pub async fn connect<M: MigratorTrait>(
    url: &str,
    schema: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    let in_memory = url.contains(":memory:");
    let url = if is_sqlite && !url.contains("mode=") && !in_memory {
        format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
    } else {
        url.to_owned()
    };
    if !is_sqlite {
        migrate_postgres::<M>(&url, schema).await?;
    }
    let mut options = ConnectOptions::new(url.clone());
    options
        // Each connection to an in-memory SQLite database is its own database.
        .max_connections(if in_memory { 1 } else { max_connections })
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    if !is_sqlite {
        options.set_schema_search_path(schema.to_owned());
    }
    let db = Database::connect(options).await?;
    if is_sqlite {
        M::up(&db, None).await?;
    }
    Ok(db)
}

/// Creates the schema and migrates it on one connection that holds a
/// session advisory lock keyed by the schema name.
async fn migrate_postgres<M: MigratorTrait>(url: &str, schema: &str) -> Result<(), DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .set_schema_search_path(schema.to_owned());
    let db = Database::connect(options).await?;
    let key = lock_key(schema);
    db.execute_unprepared(&format!("SELECT pg_advisory_lock({key})"))
        .await?;
    let quoted = schema.replace('"', "\"\"");
    let migrated = async {
        db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{quoted}\""))
            .await?;
        M::up(&db, None).await
    }
    .await;
    let unlocked = db
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({key})"))
        .await;
    db.close().await?;
    migrated?;
    unlocked.map(|_| ())
}

/// A stable advisory-lock key per schema (FNV-1a).
fn lock_key(schema: &str) -> i64 {
    let hash = format!("conveyor-migrate:{schema}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    hash as i64
}

/// Whether an error means "try the transaction again": a serialization
/// failure or deadlock on Postgres, a busy database on SQLite.
pub fn is_retryable(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::Exec(e) | DbErr::Query(e) | DbErr::Conn(e) => e,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    let Some(db_err) = sqlx.as_database_error() else {
        return false;
    };
    matches!(
        db_err.code().as_deref(),
        Some("40001") | Some("40P01") | Some("5") | Some("6") | Some("517")
    )
}

/// Whether the database could not be reached at all (the caller should see
/// UNAVAILABLE rather than INTERNAL).
pub fn is_unavailable(err: &DbErr) -> bool {
    matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
}

/// Runs `op` until it succeeds or fails for a reason other than contention,
/// at most `attempts` times, and records its latency.
pub async fn with_retry<T, F, Fut>(what: &'static str, attempts: u32, mut op: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbErr>>,
{
    let start = Instant::now();
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < attempts && is_retryable(&e) => {
                tracing::debug!(what, attempt, error = %e, "retrying transaction");
                back_off(attempt).await;
                attempt += 1;
            }
            result => {
                tracing::trace!(
                    what,
                    attempt,
                    elapsed_us = start.elapsed().as_micros() as u64,
                    "database call"
                );
                return result;
            }
        }
    }
}

/// What a transaction body returns: a boxed future borrowing the transaction.
pub type TxnFuture<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

/// Runs `op` in a transaction and commits it; rolls back on error. Tries
/// again from the start, at most `attempts` times, when the error is
/// contention (`is_retryable`) or `retry(&error)` says so (a lost
/// compare-and-set, say).
pub async fn transaction<T, E, F>(
    db: &DatabaseConnection,
    attempts: u32,
    retry: impl Fn(&E) -> bool,
    op: F,
) -> Result<T, E>
where
    T: Send,
    E: From<DbErr>,
    F: for<'c> Fn(&'c DatabaseTransaction) -> TxnFuture<'c, T, E>,
{
    let mut attempt = 1;
    loop {
        let txn = db.begin().await?;
        let result = match op(&txn).await {
            Ok(value) => match txn.commit().await {
                Ok(()) => Ok(value),
                Err(e) if attempt < attempts && is_retryable(&e) => Err(Some(e)),
                Err(e) => return Err(e.into()),
            },
            Err(e) => {
                // Dropping the transaction rolls it back; say so explicitly.
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                if attempt < attempts && retry(&e) {
                    Err(None)
                } else {
                    return Err(e);
                }
            }
        };
        match result {
            Ok(value) => return Ok(value),
            Err(cause) => {
                if let Some(e) = cause {
                    tracing::debug!(attempt, error = %e, "retrying transaction");
                }
                back_off(attempt).await;
                attempt += 1;
            }
        }
    }
}

/// Waits before trying again after `attempt`: exponential (4 ms doubling to
/// 128 ms), each wait drawn from its upper half so that writers which collided
/// do not collide again in lockstep.
async fn back_off(attempt: u32) {
    let ceiling = 2_u64 << attempt.min(6);
    let mut bytes = [0_u8; 8];
    let random = getrandom::fill(&mut bytes).map_or(0, |()| u64::from_le_bytes(bytes));
    let wait = ceiling / 2 + random % (ceiling / 2 + 1);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// The backend's name, for logs.
pub fn backend_name(db: &DatabaseConnection) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Postgres => "postgres",
        DbBackend::Sqlite => "sqlite",
        _ => "other",
    }
}

/// Whether this replica does work that one replica at a time must do:
/// always on SQLite (one process); on Postgres while it holds a session
/// advisory lock on a connection of its own, so another replica takes over
/// when its session ends.
pub struct Leader {
    url: String,
    key: i64,
    what: &'static str,
    session: Option<DatabaseConnection>,
}

impl Leader {
    /// A candidate for the lock `key`; `what` names the work in logs.
    pub fn new(url: String, key: i64, what: &'static str) -> Leader {
        Leader {
            url,
            key,
            what,
            session: None,
        }
    }

    /// True while this replica holds the lead; tries to take it otherwise.
    pub async fn holds(&mut self) -> bool {
        if !self.url.starts_with("postgres") {
            return true;
        }
        if let Some(session) = &self.session {
            // Still connected means still holding the lock.
            if session.execute_unprepared("SELECT 1").await.is_ok() {
                return true;
            }
            self.session = None;
        }
        let mut options = ConnectOptions::new(self.url.clone());
        options
            .max_connections(1)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let Ok(session) = Database::connect(options).await else {
            return false;
        };
        let acquired = session
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT pg_try_advisory_lock({}) AS acquired", self.key),
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get::<bool>("", "acquired").ok())
            .unwrap_or(false);
        if acquired {
            tracing::info!(work = self.what, "this replica took the lead");
            self.session = Some(session);
        }
        acquired
    }
}

#[cfg(test)]
mod leader_tests {
    use super::*;

    #[tokio::test]
    async fn one_replica_at_a_time_leads() {
        let url = match std::env::var("CONVEYOR_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var("CI").is_err(),
                    "CI must set CONVEYOR_TEST_DATABASE_URL"
                );
                return;
            }
        };
        const KEY: i64 = 0x7465_7374_6c65_6164;
        let mut first = Leader::new(url.clone(), KEY, "test");
        let mut second = Leader::new(url, KEY, "test");
        assert!(first.holds().await);
        assert!(first.holds().await, "it keeps the lead");
        assert!(!second.holds().await);
        // The leader's session ends: the other replica takes over.
        if let Some(session) = first.session.take() {
            session.close().await.expect("close");
        }
        assert!(second.holds().await);
        assert!(
            Leader::new("sqlite::memory:".into(), KEY, "test")
                .holds()
                .await
        );
    }
}
