//! Artifacts flowing between pipelines: what an upstream pipeline last
//! published, and the publishes whose downstream pipelines still have to
//! be started (written with the change that ended the execution, so a
//! crash between the two loses nothing).

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::{action_run, execution, pending_trigger};
use super::{Store, StoreError, rows};
use crate::model::Execution;

pub(super) async fn add_pending(
    txn: &DatabaseTransaction,
    e: &Execution,
) -> Result<(), StoreError> {
    pending_trigger::Entity::insert(pending_trigger::ActiveModel {
        execution_id: Set(e.id.clone()),
        pipeline: Set(e.pipeline.clone()),
        create_time: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([pending_trigger::Column::ExecutionId])
    .exec(txn)
    .await?;
    Ok(())
}

impl Store {
    /// Publishes whose downstream pipelines are still to be started,
    /// oldest first: (execution id, pipeline).
    pub async fn pending_triggers(&self, limit: u64) -> Result<Vec<(String, String)>, StoreError> {
        Ok(pending_trigger::Entity::find()
            .order_by_asc(pending_trigger::Column::CreateTime)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.execution_id, t.pipeline))
            .collect())
    }

    /// Every downstream pipeline of the publish has been started.
    pub async fn trigger_done(&self, execution_id: &str) -> Result<(), StoreError> {
        pending_trigger::Entity::delete_by_id(execution_id.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The pipeline's newest successful trunk execution: what it last
    /// published.
    pub async fn last_published(&self, pipeline: &str) -> Result<Option<Execution>, StoreError> {
        super::published(pipeline)
            .one(&self.db)
            .await?
            .map(rows::execution_from)
            .transpose()
    }

    /// The value of `metric` that action `name` of stage `stage_index`
    /// reported in the pipeline's newest successful trunk execution before
    /// `execution_id`: what is in production.
    pub async fn deployed_metric(
        &self,
        execution_id: &str,
        stage_index: i32,
        name: &str,
        metric: &str,
    ) -> Result<Option<crate::model::Baseline>, StoreError> {
        let pipeline = self.execution(execution_id).await?.pipeline;
        let Some(good) = super::last_good(&self.db, &pipeline, execution_id).await? else {
            return Ok(None);
        };
        let Some(row) = action_run::Entity::find()
            .filter(action_run::Column::ExecutionId.eq(good.execution_id.as_str()))
            .filter(action_run::Column::StageIndex.eq(stage_index))
            .filter(action_run::Column::Name.eq(name))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let action = rows::action_from(row)?;
        Ok(action
            .metrics
            .values
            .get(metric)
            .map(|&value| crate::model::Baseline {
                execution_id: good.execution_id,
                value,
            }))
    }

    /// The execution row alone, without its stages and actions.
    pub async fn execution(&self, id: &str) -> Result<Execution, StoreError> {
        execution::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(rows::execution_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }
}
