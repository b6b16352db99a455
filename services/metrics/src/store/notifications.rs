//! Notification rules and the delivery log.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};

use super::entities::{delivery, notification_rule};
use super::{Store, StoreError};
use crate::notify::{Notice, matches};

/// Where a delivery stands, as stored.
pub mod state {
    pub const PENDING: &str = "pending";
    pub const RETRYING: &str = "retrying";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// One rule's, or every rule's.
    pub rule: Option<String>,
    pub states: Vec<String>,
    pub event_id: Option<String>,
}

/// Records a delivery for every enabled rule that wants one of `notices`;
/// a (rule, event) pair already recorded is left alone.
pub(super) async fn record<C: ConnectionTrait>(
    db: &C,
    notices: &[Notice],
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    if notices.is_empty() {
        return Ok(0);
    }
    let rules = notification_rule::Entity::find()
        .filter(notification_rule::Column::Disabled.eq(false))
        .all(db)
        .await?;
    let mut rows = Vec::new();
    for n in notices {
        for rule in rules.iter().filter(|r| matches(r, n)) {
            rows.push(delivery::ActiveModel {
                id: Set(uuid::Uuid::now_v7().simple().to_string()),
                rule: Set(rule.id.clone()),
                event_id: Set(n.event_id.clone()),
                event_type: Set(n.event_type.clone()),
                subject: Set(n.subject.clone()),
                notice: Set(serde_json::to_string(n).unwrap_or_default()),
                state: Set(state::PENDING.to_owned()),
                attempts: Set(0),
                last_error: Set(String::new()),
                response_code: Set(0),
                create_time: Set(now),
                last_attempt_time: Set(None),
                next_attempt_time: Set(now),
            });
        }
    }
    let count = rows.len();
    if count > 0 {
        delivery::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([delivery::Column::Rule, delivery::Column::EventId])
            .exec(db)
            .await?;
    }
    Ok(count)
}

impl Store {
    /// Stores a new rule; a request id seen before returns the rule it made.
    pub async fn create_rule(
        &self,
        rule: notification_rule::Model,
    ) -> Result<notification_rule::Model, StoreError> {
        if let Some(id) = &rule.request_id
            && let Some(existing) = self.rule_by_request(id).await?
        {
            return Ok(existing);
        }
        match rule.clone().into_active_model().insert(&self.db).await {
            Ok(stored) => Ok(stored),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                if let Some(id) = &rule.request_id
                    && let Some(existing) = self.rule_by_request(id).await?
                {
                    return Ok(existing);
                }
                Err(StoreError::AlreadyExists(format!(
                    "notificationRules/{}",
                    rule.id
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn rule_by_request(
        &self,
        id: &str,
    ) -> Result<Option<notification_rule::Model>, StoreError> {
        Ok(notification_rule::Entity::find()
            .filter(notification_rule::Column::RequestId.eq(id))
            .one(&self.db)
            .await?)
    }

    pub async fn rule(&self, id: &str) -> Result<notification_rule::Model, StoreError> {
        notification_rule::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("notificationRules/{id}")))
    }

    /// One page of rules ordered by id, after `after`.
    pub async fn rules(
        &self,
        pipeline: Option<&str>,
        project: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<notification_rule::Model>, StoreError> {
        let mut query = notification_rule::Entity::find();
        if let Some(p) = pipeline {
            query = query.filter(notification_rule::Column::Pipeline.eq(p));
        }
        if let Some(p) = project {
            query = query.filter(notification_rule::Column::Project.eq(p));
        }
        if let Some(a) = after {
            query = query.filter(notification_rule::Column::Id.gt(a));
        }
        Ok(query
            .order_by_asc(notification_rule::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Deletes a rule (when `etag` is given, only at that etag); its
    /// deliveries stay in the log.
    pub async fn delete_rule(&self, id: &str, etag: Option<&str>) -> Result<(), StoreError> {
        let rule = self.rule(id).await?;
        if let Some(etag) = etag.filter(|e| !e.is_empty())
            && etag != rule.etag
        {
            return Err(StoreError::EtagMismatch {
                name: format!("notificationRules/{id}"),
                expected: etag.to_owned(),
                actual: rule.etag,
            });
        }
        let deleted = notification_rule::Entity::delete_many()
            .filter(notification_rule::Column::Id.eq(id))
            .filter(notification_rule::Column::Etag.eq(rule.etag.as_str()))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("notificationRules/{id}")));
        }
        Ok(())
    }

    /// Deliveries due now: pending, or retrying with their time come.
    pub async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<delivery::Model>, StoreError> {
        Ok(delivery::Entity::find()
            .filter(delivery::Column::State.is_in([state::PENDING, state::RETRYING]))
            .filter(delivery::Column::NextAttemptTime.lte(now))
            .order_by_asc(delivery::Column::NextAttemptTime)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Records an attempt's outcome.
    pub async fn record_attempt(&self, d: delivery::Model) -> Result<(), StoreError> {
        delivery::Entity::insert(d.into_active_model())
            .on_conflict(
                OnConflict::column(delivery::Column::Id)
                    .update_columns([
                        delivery::Column::State,
                        delivery::Column::Attempts,
                        delivery::Column::LastError,
                        delivery::Column::ResponseCode,
                        delivery::Column::LastAttemptTime,
                        delivery::Column::NextAttemptTime,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// One page of the log, newest first, after the delivery id `after`.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<delivery::Model>, StoreError> {
        let mut query = delivery::Entity::find();
        if let Some(rule) = &filter.rule {
            query = query.filter(delivery::Column::Rule.eq(rule.as_str()));
        }
        if !filter.states.is_empty() {
            query = query.filter(delivery::Column::State.is_in(filter.states.clone()));
        }
        if let Some(e) = &filter.event_id {
            query = query.filter(delivery::Column::EventId.eq(e.as_str()));
        }
        if let Some(a) = after {
            query = query.filter(Condition::all().add(delivery::Column::Id.lt(a)));
        }
        Ok(query
            .order_by_desc(delivery::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
}
