//! Baseline rollouts: the plan snapshotted at start and how its execution
//! is going. Listed newest first by insertion order.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::rollout;
use super::requests::{remember, replay};
use super::{Outcome, RequestKey, Store, StoreError, exists_or, records};
use crate::model::{Rollout, RolloutState};
use crate::names::rollout_name;

async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<rollout::Model, StoreError> {
    rollout::Entity::find()
        .filter(rollout::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(rollout_name(id)))
}

impl Store {
    pub async fn insert_rollout(
        &self,
        r: Rollout,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<Rollout>, StoreError> {
        let request = request.cloned();
        self.transaction(|txn| {
            let (r, request) = (r.clone(), request.clone());
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                let name = rollout_name(&r.id);
                let mut row = records::rollout_row(&r).into_active_model();
                row.seq = NotSet;
                let inserted = row.insert(txn).await.map_err(|e| exists_or(e, &name))?;
                remember(txn, request.as_ref(), &name).await?;
                Ok(Outcome::Done(records::rollout(inserted)?))
            })
        })
        .await
    }

    pub async fn rollout(&self, id: &str) -> Result<Rollout, StoreError> {
        records::rollout(find(&self.db, id).await?)
    }

    /// Rollouts newest first, before position `before`, at most `limit`,
    /// with their positions (the page token).
    pub async fn list_rollouts(
        &self,
        baseline: Option<&str>,
        states: &[RolloutState],
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<(i64, Rollout)>, StoreError> {
        let mut query = rollout::Entity::find()
            .order_by_desc(rollout::Column::Seq)
            .limit(limit);
        if let Some(b) = baseline {
            query = query.filter(rollout::Column::Baseline.eq(b));
        }
        if !states.is_empty() {
            query = query.filter(rollout::Column::State.is_in(states.iter().map(|s| s.as_str())));
        }
        if let Some(before) = before {
            query = query.filter(rollout::Column::Seq.lt(before));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| Ok((m.seq, records::rollout(m)?)))
            .collect()
    }

    /// Rollouts that have not ended, oldest first.
    pub async fn open_rollouts(&self) -> Result<Vec<Rollout>, StoreError> {
        let finals = RolloutState::ALL.into_iter().filter(|s| s.is_final());
        rollout::Entity::find()
            .filter(rollout::Column::State.is_not_in(finals.map(|s| s.as_str())))
            .order_by_asc(rollout::Column::Seq)
            .all(&self.db)
            .await?
            .into_iter()
            .map(records::rollout)
            .collect()
    }

    /// Saves `change` applied to a rollout that has not ended; a rollout
    /// that ended meanwhile is returned unchanged.
    pub async fn update_rollout<F>(&self, id: &str, change: F) -> Result<Rollout, StoreError>
    where
        F: Fn(&mut Rollout) + Send + Sync + Clone + 'static,
    {
        let id = id.to_owned();
        self.transaction(|txn| {
            let (id, change) = (id.clone(), change.clone());
            Box::pin(async move {
                let current = find(txn, &id).await?;
                let mut r = records::rollout(current.clone())?;
                if r.state.is_final() {
                    return Ok(r);
                }
                change(&mut r);
                if r.state.is_final() && r.end_time.is_none() {
                    r.end_time = Some(Utc::now());
                }
                let mut row = records::rollout_row(&r);
                row.seq = current.seq;
                let updated = rollout::Entity::update_many()
                    .set(rollout::ActiveModel::from(row).reset_all())
                    .filter(rollout::Column::Seq.eq(current.seq))
                    .filter(rollout::Column::State.eq(current.state.as_str()))
                    .filter(rollout::Column::Execution.eq(current.execution.as_str()))
                    .filter(rollout::Column::CurrentWave.eq(current.current_wave))
                    .exec(txn)
                    .await?;
                if updated.rows_affected != 1 {
                    return Err(StoreError::Conflict(rollout_name(&id)));
                }
                Ok(r)
            })
        })
        .await
    }
}
