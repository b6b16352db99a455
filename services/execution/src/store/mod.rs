//! Executions, stage runs and action runs in SQLite or Postgres. Every
//! change to an execution is one transaction that loads its snapshot,
//! lets the engine change it, and writes back what changed only if the
//! execution's version is still the one it read (compare-and-set).

mod alarms;
mod artifacts;
mod entities;
mod logs;
mod migration;
mod rows;
mod upstream;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use tracing::Instrument;

pub use alarms::{AlarmRecord, BlockerRecord};
use entities::{action_run, execution, outbox, stage_lock, stage_run};
pub use logs::{Chunk, TRUNCATED_MARKER};
pub use migration::Migrator;

use crate::model::*;

/// The Postgres schema the execution service owns.
pub const SCHEMA: &str = "execution";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("execution {0:?} not found")]
    NotFound(String),
    #[error("action run {0:?} not found")]
    ActionNotFound(String),
    #[error("execution {0:?} changed concurrently; retry")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Which executions a listing returns; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<ExecutionState>,
    pub branch: String,
    pub commit_sha: String,
}

/// What a heartbeat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    Extended(DateTime<Utc>),
    /// The attempt was cancelled: the worker must stop it.
    Cancelled(String),
    /// The attempt is no longer current.
    Stale {
        current_attempt: i32,
    },
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let db =
            conveyor_platform::database::connect::<Migrator>(url, SCHEMA, max_connections).await?;
        Ok(Store { db })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Stores a new execution; with a request id already used, returns the
    /// execution created then instead.
    pub async fn insert(
        &self,
        s: Snapshot,
        request_id: Option<&str>,
    ) -> Result<Snapshot, StoreError> {
        if let Some(id) = request_id
            && let Some(existing) = execution::Entity::find()
                .filter(execution::Column::RequestId.eq(id))
                .one(&self.db)
                .await?
        {
            return self.load(&existing.id).await;
        }
        let txn = self.db.begin().await?;
        let messages = crate::events::outgoing(&s, &Default::default());
        let inserted = rows::execution_active(&s.execution, request_id.map(str::to_owned))
            .insert(&txn)
            .await;
        match inserted {
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                drop(txn);
                let id = request_id.unwrap_or_default();
                let existing = execution::Entity::find()
                    .filter(execution::Column::RequestId.eq(id))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| StoreError::Conflict(s.execution.id.clone()))?;
                return self.load(&existing.id).await;
            }
            other => other?,
        };
        for chunk in s.stages.chunks(100) {
            stage_run::Entity::insert_many(chunk.iter().map(rows::stage_active))
                .exec(&txn)
                .await?;
        }
        for chunk in s.actions.chunks(100) {
            action_run::Entity::insert_many(chunk.iter().map(rows::action_active))
                .exec(&txn)
                .await?;
        }
        if let Err(e) = sync_locks(&txn, &s).await {
            drop(txn);
            return Err(e);
        }
        write_outbox(&txn, messages).await?;
        txn.commit().await?;
        let mut stored = self.load(&s.execution.id).await?;
        stored.transitions = s.transitions;
        Ok(stored)
    }

    /// The execution as of one moment: its queries share one snapshot
    /// (a read-only repeatable-read transaction on Postgres, a read
    /// transaction on SQLite), so a reader never sees a stage from after a
    /// change with the execution row from before it.
    pub async fn load(&self, id: &str) -> Result<Snapshot, StoreError> {
        use sea_orm::{AccessMode, DbBackend, IsolationLevel};
        let txn = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                self.db
                    .begin_with_config(
                        Some(IsolationLevel::RepeatableRead),
                        Some(AccessMode::ReadOnly),
                    )
                    .await?
            }
            _ => self.db.begin().await?,
        };
        let snapshot = load(&txn, id).await;
        // Read only: nothing to commit either way.
        if let Err(e) = txn.rollback().await {
            tracing::debug!(error = %e, "ending a read transaction");
        }
        snapshot
    }

    /// Loads the execution, applies `change`, and saves what it changed;
    /// retried from the start when another writer got there first.
    pub async fn update<T>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Snapshot) -> T,
    ) -> Result<(Snapshot, T), StoreError> {
        const ATTEMPTS: u32 = 8;
        let mut attempt = 1;
        loop {
            let txn = self.db.begin().await?;
            let mut snapshot = load(&txn, id).await?;
            // The change, and the events and dispatches it writes, belong
            // to the execution's trace, whoever made it.
            let span = tracing::info_span!("execution.change", execution = %id);
            conveyor_platform::telemetry::follow(&span, &snapshot.execution.traceparent);
            let read_version = snapshot.execution.version;
            let before = snapshot.execution.clone();
            let result = span.in_scope(|| change(&mut snapshot));
            let unchanged = snapshot.execution == before
                && snapshot.transitions.is_empty()
                && !snapshot.stages.iter().any(|st| st.dirty)
                && !snapshot.actions.iter().any(|a| a.dirty);
            if unchanged {
                // Nothing to write: keep the version, so watchers see no change.
                drop(txn);
                return Ok((snapshot, result));
            }
            match save(&txn, &mut snapshot, read_version)
                .instrument(span)
                .await
            {
                Ok(()) => {
                    txn.commit().await?;
                    return Ok((snapshot, result));
                }
                Err(e) => {
                    drop(txn);
                    let retry = match &e {
                        StoreError::Conflict(_) => true,
                        StoreError::Database(db) => conveyor_platform::database::is_retryable(db),
                        _ => false,
                    };
                    if !retry || attempt >= ATTEMPTS {
                        return Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(1 << attempt)).await;
                }
            }
        }
    }

    /// Executions with a stage whose approval wait ended before `now`.
    pub async fn approvals_expired(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(stage_run::Entity::find()
            .select_only()
            .column(stage_run::Column::ExecutionId)
            .filter(stage_run::Column::State.eq(StageState::WaitingApproval.as_str()))
            .filter(stage_run::Column::ApprovalDeadline.lte(now))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// An execution's row and one of its stages, without the rest of the
    /// snapshot (what a claimed task needs).
    pub async fn execution_and_stage(
        &self,
        id: &str,
        stage_index: i32,
    ) -> Result<(Execution, StageRun), StoreError> {
        let execution = execution::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let stage = stage_run::Entity::find_by_id((id.to_owned(), stage_index))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("execution {id} has no stage {stage_index}"))
            })?;
        Ok((rows::execution_from(execution)?, rows::stage_from(stage)?))
    }

    /// The execution an action run belongs to.
    pub async fn execution_of(&self, action_id: &str) -> Result<String, StoreError> {
        action_run::Entity::find_by_id(action_id.to_owned())
            .one(&self.db)
            .await?
            .map(|a| a.execution_id)
            .ok_or_else(|| StoreError::ActionNotFound(action_id.to_owned()))
    }

    pub async fn action(&self, action_id: &str) -> Result<ActionRun, StoreError> {
        let m = action_run::Entity::find_by_id(action_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::ActionNotFound(action_id.to_owned()))?;
        rows::action_from(m)
    }

    /// Takes the lease on a queued attempt: `action_id` and `attempt` when a
    /// dispatch named them, else the oldest queued attempt of `pool`.
    pub async fn claim(
        &self,
        pool: &str,
        wanted: Option<(&str, i32)>,
        worker: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ActionRun>, StoreError> {
        let candidates: Vec<(String, i32)> = match wanted {
            Some((id, attempt)) => vec![(id.to_owned(), attempt)],
            None => {
                action_run::Entity::find()
                    .select_only()
                    .column(action_run::Column::Id)
                    .column(action_run::Column::Attempt)
                    .filter(action_run::Column::Pool.eq(pool))
                    .filter(action_run::Column::State.eq(ActionState::Queued.as_str()))
                    .order_by_asc(action_run::Column::QueueTime)
                    .limit(8)
                    .into_tuple()
                    .all(&self.db)
                    .await?
            }
        };
        for (id, attempt) in candidates {
            // The claim bumps the execution's version in the same
            // transaction, so a concurrent engine step that read the action
            // as queued fails its compare-and-set and reloads instead of
            // writing the old state back.
            let txn = self.db.begin().await?;
            let claimed = action_run::Entity::update_many()
                .col_expr(
                    action_run::Column::State,
                    Expr::value(ActionState::Running.as_str()),
                )
                .col_expr(action_run::Column::Worker, Expr::value(worker))
                .col_expr(
                    action_run::Column::LeaseExpireTime,
                    Expr::value(lease_until),
                )
                .col_expr(action_run::Column::StartTime, Expr::value(now))
                .filter(action_run::Column::Id.eq(id.as_str()))
                .filter(action_run::Column::Attempt.eq(attempt))
                .filter(action_run::Column::State.eq(ActionState::Queued.as_str()))
                .exec(&txn)
                .await?;
            if claimed.rows_affected != 1 {
                continue;
            }
            let action = action_run::Entity::find_by_id(id.clone())
                .one(&txn)
                .await?
                .ok_or_else(|| StoreError::ActionNotFound(id.clone()))?;
            execution::Entity::update_many()
                .col_expr(
                    execution::Column::Version,
                    Expr::col(execution::Column::Version).add(1),
                )
                .filter(execution::Column::Id.eq(action.execution_id.as_str()))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            return rows::action_from(action).map(Some);
        }
        Ok(None)
    }

    /// Extends the lease of a running attempt.
    pub async fn heartbeat(
        &self,
        action_id: &str,
        attempt: i32,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Lease, StoreError> {
        let extended = action_run::Entity::update_many()
            .col_expr(
                action_run::Column::LeaseExpireTime,
                Expr::value(lease_until),
            )
            .filter(action_run::Column::Id.eq(action_id))
            .filter(action_run::Column::Attempt.eq(attempt))
            .filter(action_run::Column::Worker.eq(worker))
            .filter(action_run::Column::State.eq(ActionState::Running.as_str()))
            .exec(&self.db)
            .await?;
        if extended.rows_affected == 1 {
            return Ok(Lease::Extended(lease_until));
        }
        let action = self.action(action_id).await?;
        if action.attempt == attempt && action.state == ActionState::Cancelled {
            Ok(Lease::Cancelled(action.failure_reason))
        } else {
            Ok(Lease::Stale {
                current_attempt: action.attempt,
            })
        }
    }

    /// Running attempts whose lease ran out: (execution, action, attempt).
    pub async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<(String, String, i32)>, StoreError> {
        Ok(action_run::Entity::find()
            .select_only()
            .column(action_run::Column::ExecutionId)
            .column(action_run::Column::Id)
            .column(action_run::Column::Attempt)
            .filter(action_run::Column::State.eq(ActionState::Running.as_str()))
            .filter(action_run::Column::LeaseExpireTime.lt(now))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Outbox messages not relayed yet, oldest first: (id, topic, payload).
    pub async fn pending_outbox(
        &self,
        limit: u64,
    ) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
        Ok(outbox::Entity::find()
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| (m.id, m.topic, m.payload))
            .collect())
    }

    /// Forgets relayed messages.
    pub async fn delete_outbox(&self, ids: &[i64]) -> Result<(), StoreError> {
        if !ids.is_empty() {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Id.is_in(ids.iter().copied()))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// What a new execution of `pipeline` must know before its first stage.
    pub async fn plan_context(
        &self,
        pipeline: &str,
        id: &str,
    ) -> Result<crate::engine::PlanContext, StoreError> {
        Ok(crate::engine::PlanContext {
            occupied: occupied(&self.db, pipeline, id).await?,
            blockers: alarms::active_blockers(&self.db, pipeline).await?,
            firing: alarms::firing(&self.db, pipeline).await?,
            last_good: last_good(&self.db, pipeline, id).await?,
        })
    }

    /// Stages of `pipeline` held by executions other than `except`.
    pub async fn occupied(
        &self,
        pipeline: &str,
        except: &str,
    ) -> Result<std::collections::HashMap<i32, String>, StoreError> {
        occupied(&self.db, pipeline, except).await
    }

    /// Executions waiting for a stage another execution holds, oldest
    /// first, of one pipeline or all.
    pub async fn held(
        &self,
        pipeline: Option<&str>,
        after: &str,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        let mut query = execution::Entity::find()
            .filter(execution::Column::Id.gt(after))
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::State.is_in([
                ExecutionState::Queued.as_str(),
                ExecutionState::Held.as_str(),
            ]))
            .order_by_asc(execution::Column::Id)
            .limit(limit);
        if let Some(p) = pipeline {
            query = query.filter(execution::Column::Pipeline.eq(p));
        }
        Ok(query.into_tuple().all(&self.db).await?)
    }

    /// Executions in the middle of a rollout (deploying, baking or rolling
    /// back), which must be looked at as time passes and alarms change.
    pub async fn rolling_out(&self, after: &str, limit: u64) -> Result<Vec<String>, StoreError> {
        Ok(stage_run::Entity::find()
            .select_only()
            .column(stage_run::Column::ExecutionId)
            .filter(stage_run::Column::ExecutionId.gt(after))
            .order_by_asc(stage_run::Column::ExecutionId)
            .filter(stage_run::Column::State.is_in([
                StageState::Running.as_str(),
                StageState::RollingBack.as_str(),
            ]))
            .filter(stage_run::Column::Waves.ne("[]"))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Queued attempts waiting since before `before`: (execution, action).
    pub async fn stale_queued(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(action_run::Entity::find()
            .select_only()
            .column(action_run::Column::ExecutionId)
            .column(action_run::Column::Id)
            .filter(action_run::Column::State.eq(ActionState::Queued.as_str()))
            .filter(action_run::Column::QueueTime.lt(before))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Executions newest first, optionally of one pipeline, older than
    /// `before`, matching `filter`.
    pub async fn list(
        &self,
        pipeline: Option<&str>,
        before: Option<&str>,
        limit: u64,
        filter: &ListFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        let mut query = execution::Entity::find()
            .order_by_desc(execution::Column::Id)
            .limit(limit);
        if let Some(p) = pipeline {
            query = query.filter(execution::Column::Pipeline.eq(p));
        }
        if !filter.states.is_empty() {
            query = query
                .filter(execution::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
        }
        if !filter.branch.is_empty() {
            query = query.filter(execution::Column::Branch.eq(filter.branch.as_str()));
        }
        if !filter.commit_sha.is_empty() {
            query = query.filter(execution::Column::CommitSha.eq(filter.commit_sha.as_str()));
        }
        if let Some(before) = before {
            query = query.filter(execution::Column::Id.lt(before));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(rows::execution_from)
            .collect()
    }
}

async fn load<C: sea_orm::ConnectionTrait>(db: &C, id: &str) -> Result<Snapshot, StoreError> {
    let execution = execution::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let pipeline = execution.pipeline.clone();
    let stages = stage_run::Entity::find()
        .filter(stage_run::Column::ExecutionId.eq(id))
        .order_by_asc(stage_run::Column::StageIndex)
        .all(db)
        .await?;
    let actions = action_run::Entity::find()
        .filter(action_run::Column::ExecutionId.eq(id))
        .order_by_asc(action_run::Column::StageIndex)
        .order_by_asc(action_run::Column::Id)
        .all(db)
        .await?;
    let mut snapshot = Snapshot {
        execution: rows::execution_from(execution)?,
        stages: stages
            .into_iter()
            .map(rows::stage_from)
            .collect::<Result<_, _>>()?,
        actions: actions
            .into_iter()
            .map(rows::action_from)
            .collect::<Result<_, _>>()?,
        transitions: Vec::new(),
        occupied: occupied(db, &pipeline, id).await?,
        blockers: alarms::active_blockers(db, &pipeline).await?,
        firing: alarms::firing(db, &pipeline).await?,
        last_good: last_good(db, &pipeline, id).await?,
        data_points: None,
    };
    snapshot.data_points = baking_data_points(db, &snapshot).await?;
    Ok(snapshot)
}

/// For a stage baking under `minDataPoints`: the data points on its metric
/// since the bake started.
async fn baking_data_points<C: sea_orm::ConnectionTrait>(
    db: &C,
    s: &Snapshot,
) -> Result<Option<i64>, StoreError> {
    for stage in s.stages.iter().filter(|st| st.state == StageState::Running) {
        let (Some(until), Some(min)) = (
            stage.bake_until,
            stage
                .guards
                .as_ref()
                .and_then(|g| g.min_data_points.as_ref()),
        ) else {
            continue;
        };
        let bake = stage
            .waves
            .get(stage.current_wave as usize)
            .map_or(0, |w| w.bake_secs);
        let since = until - chrono::Duration::seconds(bake as i64);
        let observed =
            alarms::data_points_since(db, &min.metric, &s.execution.pipeline, since).await?;
        return Ok(Some(observed));
    }
    Ok(None)
}

/// The pipeline's successful trunk executions (what it deployed and
/// published), newest first.
fn published(pipeline: &str) -> sea_orm::Select<execution::Entity> {
    execution::Entity::find()
        .filter(execution::Column::Pipeline.eq(pipeline))
        .filter(execution::Column::State.eq(ExecutionState::Succeeded.as_str()))
        .filter(execution::Column::BuildOnly.eq(false))
        .order_by_desc(execution::Column::Id)
}

/// The pipeline's newest successful deployment before `id`.
async fn last_good<C: sea_orm::ConnectionTrait>(
    db: &C,
    pipeline: &str,
    id: &str,
) -> Result<Option<crate::model::LastGood>, StoreError> {
    Ok(published(pipeline)
        .filter(execution::Column::Id.lt(id))
        .one(db)
        .await?
        .map(|e| crate::model::LastGood {
            execution_id: e.id,
            commit_sha: e.commit_sha,
        }))
}

/// Stages of `pipeline` held by executions other than `except`.
pub(crate) async fn occupied<C: sea_orm::ConnectionTrait>(
    db: &C,
    pipeline: &str,
    except: &str,
) -> Result<std::collections::HashMap<i32, String>, StoreError> {
    Ok(stage_lock::Entity::find()
        .filter(stage_lock::Column::Pipeline.eq(pipeline))
        .filter(stage_lock::Column::ExecutionId.ne(except))
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.stage_index, l.execution_id))
        .collect())
}

/// Makes the stage locks of the execution match the stages it is in:
/// takes the ones it entered (failing with a conflict when another
/// execution got there first) and releases the ones it left.
async fn sync_locks<C: sea_orm::ConnectionTrait>(db: &C, s: &Snapshot) -> Result<(), StoreError> {
    let e = &s.execution;
    let wanted: Vec<i32> = if e.mode == Mode::Parallel || e.state.is_final() {
        Vec::new()
    } else {
        s.stages
            .iter()
            // A stage rolling back stays held until its targets are back.
            .filter(|st| {
                matches!(
                    st.state,
                    StageState::Running | StageState::WaitingApproval | StageState::RollingBack
                )
            })
            .map(|st| st.index)
            .collect()
    };
    let held: Vec<i32> = stage_lock::Entity::find()
        .filter(stage_lock::Column::ExecutionId.eq(e.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.stage_index)
        .collect();
    let released: Vec<i32> = held
        .iter()
        .copied()
        .filter(|i| !wanted.contains(i))
        .collect();
    if !released.is_empty() {
        stage_lock::Entity::delete_many()
            .filter(stage_lock::Column::ExecutionId.eq(e.id.as_str()))
            .filter(stage_lock::Column::StageIndex.is_in(released))
            .exec(db)
            .await?;
    }
    for index in wanted.into_iter().filter(|i| !held.contains(i)) {
        let lock = stage_lock::ActiveModel {
            pipeline: sea_orm::ActiveValue::Set(e.pipeline.clone()),
            stage_index: sea_orm::ActiveValue::Set(index),
            execution_id: sea_orm::ActiveValue::Set(e.id.clone()),
            acquire_time: sea_orm::ActiveValue::Set(Utc::now()),
        };
        match stage_lock::Entity::insert(lock).exec(db).await {
            Ok(_) => {}
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(StoreError::Conflict(e.id.clone()));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Writes the execution row (if its version is still `read_version`) and
/// every stage and action the engine marked dirty.
async fn save(
    txn: &DatabaseTransaction,
    s: &mut Snapshot,
    read_version: i64,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let e = &mut s.execution;
    e.version = read_version + 1;
    e.update_time = now;
    let updated = execution::Entity::update_many()
        .col_expr(execution::Column::State, Expr::value(e.state.as_str()))
        .col_expr(
            execution::Column::StateReason,
            Expr::value(e.state_reason.clone()),
        )
        .col_expr(execution::Column::EndTime, Expr::value(e.end_time))
        .col_expr(execution::Column::UpdateTime, Expr::value(now))
        .col_expr(execution::Column::Version, Expr::value(e.version))
        .filter(
            Condition::all()
                .add(execution::Column::Id.eq(e.id.as_str()))
                .add(execution::Column::Version.eq(read_version)),
        )
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Conflict(e.id.clone()));
    }
    for stage in s.stages.iter_mut().filter(|st| st.dirty) {
        rows::stage_active(stage).update(txn).await?;
        stage.dirty = false;
    }
    for action in s.actions.iter_mut().filter(|a| a.dirty) {
        match rows::action_active(action).update(txn).await {
            Ok(_) => {}
            // A run the engine added (a rollback): not stored yet.
            Err(DbErr::RecordNotUpdated) => {
                action_run::Entity::insert(rows::action_active(action))
                    .exec(txn)
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        action.dirty = false;
    }
    sync_locks(txn, s).await?;
    if s.transitions.contains(&Transition::ExecutionFinished)
        && s.execution.state == ExecutionState::Succeeded
        && !s.execution.build_only
    {
        upstream::add_pending(txn, &s.execution).await?;
    }
    let artifacts = if crate::events::names_artifacts(s) {
        artifacts::for_events(txn, s).await?
    } else {
        Default::default()
    };
    write_outbox(txn, crate::events::outgoing(s, &artifacts)).await
}

pub(super) async fn write_outbox<C: sea_orm::ConnectionTrait>(
    db: &C,
    messages: Vec<crate::events::Outgoing>,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = messages.into_iter().map(|m| outbox::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        topic: sea_orm::ActiveValue::Set(m.topic),
        payload: sea_orm::ActiveValue::Set(m.payload),
        create_time: sea_orm::ActiveValue::Set(now),
    });
    outbox::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}
