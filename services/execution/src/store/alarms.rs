//! Promotion blockers and alarm states: what holds a stage before it starts.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::entities::{alarm, blocker};
use super::{Store, StoreError};
use crate::model::Blocker;

/// A blocker as stored, lifted or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockerRecord {
    pub id: String,
    pub pipeline: String,
    pub stage: String,
    pub reason: String,
    pub created_by: String,
    pub create_time: DateTime<Utc>,
    pub lifted_by: Option<String>,
    pub lift_reason: String,
    pub lift_time: Option<DateTime<Utc>>,
}

/// An alarm as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRecord {
    pub name: String,
    pub pipeline: String,
    pub environment: String,
    pub state: String,
    pub reason: String,
    pub source: String,
    pub state_change_time: DateTime<Utc>,
    pub observe_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

fn blocker_record(m: blocker::Model) -> BlockerRecord {
    BlockerRecord {
        id: m.id,
        pipeline: m.pipeline,
        stage: m.stage,
        reason: m.reason,
        created_by: m.created_by,
        create_time: m.create_time,
        lifted_by: m.lifted_by,
        lift_reason: m.lift_reason,
        lift_time: m.lift_time,
    }
}

fn alarm_record(m: alarm::Model) -> AlarmRecord {
    AlarmRecord {
        name: m.name,
        pipeline: m.pipeline,
        environment: m.environment,
        state: m.state,
        reason: m.reason,
        source: m.source,
        state_change_time: m.state_change_time,
        observe_time: m.observe_time,
        update_time: m.update_time,
    }
}

pub(super) async fn active_blockers<C: sea_orm::ConnectionTrait>(
    db: &C,
    pipeline: &str,
) -> Result<Vec<Blocker>, StoreError> {
    Ok(blocker::Entity::find()
        .filter(blocker::Column::Pipeline.eq(pipeline))
        .filter(blocker::Column::LiftTime.is_null())
        .order_by_asc(blocker::Column::CreateTime)
        .all(db)
        .await?
        .into_iter()
        .map(|b| Blocker {
            id: b.id,
            stage: b.stage,
            reason: b.reason,
            created_by: b.created_by,
        })
        .collect())
}

pub(super) async fn firing<C: sea_orm::ConnectionTrait>(
    db: &C,
    pipeline: &str,
) -> Result<std::collections::HashSet<String>, StoreError> {
    Ok(alarm::Entity::find()
        .filter(alarm::Column::State.eq("alarm"))
        .filter(alarm::Column::Pipeline.is_in(["", pipeline]))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect())
}

impl Store {
    pub async fn add_blocker(
        &self,
        pipeline: &str,
        stage: &str,
        reason: &str,
        by: &str,
    ) -> Result<BlockerRecord, StoreError> {
        let model = blocker::ActiveModel {
            id: Set(uuid::Uuid::now_v7().simple().to_string()),
            pipeline: Set(pipeline.to_owned()),
            stage: Set(stage.to_owned()),
            reason: Set(reason.to_owned()),
            created_by: Set(by.to_owned()),
            create_time: Set(Utc::now()),
            lifted_by: Set(None),
            lift_reason: Set(String::new()),
            lift_time: Set(None),
        }
        .insert(self.connection())
        .await?;
        Ok(blocker_record(model))
    }

    /// Lifts the active blockers matching `id`, or `pipeline` and `stage`.
    pub async fn lift_blockers(
        &self,
        pipeline: &str,
        id: Option<&str>,
        stage: Option<&str>,
        reason: &str,
        by: &str,
    ) -> Result<Vec<BlockerRecord>, StoreError> {
        let mut query = blocker::Entity::find()
            .filter(blocker::Column::Pipeline.eq(pipeline))
            .filter(blocker::Column::LiftTime.is_null());
        if let Some(id) = id {
            query = query.filter(blocker::Column::Id.eq(id));
        }
        if let Some(stage) = stage {
            query = query.filter(blocker::Column::Stage.eq(stage));
        }
        let mut lifted = Vec::new();
        for b in query.all(self.connection()).await? {
            let mut active: blocker::ActiveModel = b.into();
            active.lifted_by = Set(Some(by.to_owned()));
            active.lift_reason = Set(reason.to_owned());
            active.lift_time = Set(Some(Utc::now()));
            lifted.push(blocker_record(active.update(self.connection()).await?));
        }
        Ok(lifted)
    }

    pub async fn blockers(
        &self,
        pipeline: &str,
        include_lifted: bool,
    ) -> Result<Vec<BlockerRecord>, StoreError> {
        let mut query = blocker::Entity::find()
            .filter(blocker::Column::Pipeline.eq(pipeline))
            .order_by_asc(blocker::Column::CreateTime);
        if !include_lifted {
            query = query.filter(blocker::Column::LiftTime.is_null());
        }
        Ok(query
            .all(self.connection())
            .await?
            .into_iter()
            .map(blocker_record)
            .collect())
    }

    /// Records an observation; one older than the stored one is ignored.
    /// Returns the alarm after the write and whether its state changed; a
    /// change is announced (`alarm.state.changed`) in the same transaction.
    pub async fn set_alarm(&self, record: AlarmRecord) -> Result<(AlarmRecord, bool), StoreError> {
        // A read then a write: on SQLite another writer can make the
        // upgrade fail at once (SQLITE_BUSY), so contention is retried.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.set_alarm_once(record.clone()).await {
                Err(StoreError::Database(e))
                    if attempt < 5 && conveyor_platform::database::is_retryable(&e) =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn set_alarm_once(&self, record: AlarmRecord) -> Result<(AlarmRecord, bool), StoreError> {
        let txn = self.db.begin().await?;
        let existing = alarm::Entity::find_by_id(record.name.clone())
            .one(&txn)
            .await?;
        let now = Utc::now();
        let (stored, previous) = match existing {
            Some(old) if old.observe_time > record.observe_time => {
                return Ok((alarm_record(old), false));
            }
            Some(old) => {
                let previous = old.state.clone();
                let mut active: alarm::ActiveModel = old.into();
                if previous != record.state {
                    active.state_change_time = Set(now);
                }
                active.pipeline = Set(record.pipeline);
                active.environment = Set(record.environment);
                active.state = Set(record.state);
                active.reason = Set(record.reason);
                active.source = Set(record.source);
                active.observe_time = Set(record.observe_time);
                active.update_time = Set(now);
                (alarm_record(active.update(&txn).await?), Some(previous))
            }
            None => {
                let model = alarm::ActiveModel {
                    name: Set(record.name),
                    pipeline: Set(record.pipeline),
                    environment: Set(record.environment),
                    state: Set(record.state),
                    reason: Set(record.reason),
                    source: Set(record.source),
                    state_change_time: Set(now),
                    observe_time: Set(record.observe_time),
                    update_time: Set(now),
                }
                .insert(&txn)
                .await?;
                (alarm_record(model), None)
            }
        };
        let changed = previous.as_deref() != Some(stored.state.as_str());
        if changed {
            super::write_outbox(
                &txn,
                vec![crate::events::alarm_changed(previous.as_deref(), &stored)],
            )
            .await?;
        }
        txn.commit().await?;
        Ok((stored, changed))
    }

    pub async fn alarm(&self, name: &str) -> Result<Option<AlarmRecord>, StoreError> {
        Ok(alarm::Entity::find_by_id(name.to_owned())
            .one(self.connection())
            .await?
            .map(alarm_record))
    }

    pub async fn alarms(&self, pipeline: Option<&str>) -> Result<Vec<AlarmRecord>, StoreError> {
        let mut query = alarm::Entity::find().order_by_asc(alarm::Column::Name);
        if let Some(p) = pipeline {
            query = query.filter(alarm::Column::Pipeline.is_in(["", p]));
        }
        Ok(query
            .all(self.connection())
            .await?
            .into_iter()
            .map(alarm_record)
            .collect())
    }
}

impl Store {
    /// Stores `count` data points observed on `metric` at `time`.
    pub async fn record_data_points(
        &self,
        metric: &str,
        pipeline: &str,
        count: i64,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        super::entities::data_point::ActiveModel {
            metric: Set(metric.to_owned()),
            pipeline: Set(pipeline.to_owned()),
            count: Set(count),
            observe_time: Set(time),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Data points on `metric` for `pipeline` (or for every pipeline)
    /// observed at or after `since`.
    pub async fn data_points_since(
        &self,
        metric: &str,
        pipeline: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        data_points_since(&self.db, metric, pipeline, since).await
    }
}

pub(super) async fn data_points_since<C: sea_orm::ConnectionTrait>(
    db: &C,
    metric: &str,
    pipeline: &str,
    since: DateTime<Utc>,
) -> Result<i64, StoreError> {
    use super::entities::data_point;
    use sea_orm::{QuerySelect, sea_query::Expr};
    let total: Option<i64> = data_point::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(\"count\"), 0) AS BIGINT)"),
            "total",
        )
        .filter(data_point::Column::Metric.eq(metric))
        .filter(data_point::Column::Pipeline.is_in([pipeline, ""]))
        .filter(data_point::Column::ObserveTime.gte(since))
        .into_tuple()
        .one(db)
        .await?;
    Ok(total.unwrap_or(0))
}
