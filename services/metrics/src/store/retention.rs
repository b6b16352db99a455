//! How long records are kept, and the pruning that enforces it. The daily
//! rollups outlive the raw records: a window older than the records still
//! has its metrics, from whole days.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use super::entities::{
    commit, delivery, deployment, processed_event, rollup, run, security_error, stage_budget,
    streak,
};
use super::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    /// Days raw records are kept after they end (deployments, commits,
    /// runs, streaks, stage runs, resolved security errors, notification
    /// deliveries); 0 keeps them forever.
    pub records_days: u32,
    /// Days daily rollups are kept; 0 keeps them forever.
    pub rollups_days: u32,
    /// Days an applied event's id is remembered, so that a redelivery is
    /// skipped; longer than any message stays pending in the stream.
    pub dedup_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            records_days: 400,
            rollups_days: 0,
            dedup_days: 7,
        }
    }
}

fn cutoff(days: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (days > 0).then(|| now - Duration::days(days.into()))
}

impl Retention {
    /// The last day whose records may be partly pruned: its rollups, and
    /// those of earlier days, are never recomputed.
    pub fn frozen_until(&self, now: DateTime<Utc>) -> Option<NaiveDate> {
        cutoff(self.records_days, now).map(|c| c.date_naive())
    }
}

/// What one pruning pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub records: u64,
    pub rollups: u64,
    pub event_ids: u64,
}

impl Store {
    /// Deletes what `retention` no longer keeps as of `now`.
    pub async fn prune(
        &self,
        retention: Retention,
        now: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        let db = &self.db;
        let mut pruned = Pruned::default();
        if let Some(cut) = cutoff(retention.records_days, now) {
            let counts = [
                deployment::Entity::delete_many()
                    .filter(
                        Condition::any()
                            .add(deployment::Column::EndTime.lt(cut))
                            .add(
                                Condition::all()
                                    .add(deployment::Column::EndTime.is_null())
                                    .add(deployment::Column::StartTime.lt(cut)),
                            ),
                    )
                    .exec(db)
                    .await?,
                commit::Entity::delete_many()
                    .filter(
                        Condition::any()
                            .add(commit::Column::DeployEndTime.lt(cut))
                            .add(
                                Condition::all()
                                    .add(commit::Column::DeployEndTime.is_null())
                                    .add(commit::Column::FirstSeen.lt(cut)),
                            ),
                    )
                    .exec(db)
                    .await?,
                run::Entity::delete_many()
                    .filter(
                        Condition::any().add(run::Column::EndTime.lt(cut)).add(
                            Condition::all()
                                .add(run::Column::EndTime.is_null())
                                .add(run::Column::CreateTime.lt(cut)),
                        ),
                    )
                    .exec(db)
                    .await?,
                streak::Entity::delete_many()
                    .filter(streak::Column::EndTime.lt(cut))
                    .exec(db)
                    .await?,
                stage_budget::Entity::delete_many()
                    .filter(stage_budget::Column::EndTime.lt(cut))
                    .exec(db)
                    .await?,
                security_error::Entity::delete_many()
                    .filter(security_error::Column::ResolveTime.lt(cut))
                    .exec(db)
                    .await?,
                delivery::Entity::delete_many()
                    .filter(delivery::Column::CreateTime.lt(cut))
                    .exec(db)
                    .await?,
            ];
            pruned.records = counts.iter().map(|r| r.rows_affected).sum();
        }
        if let Some(cut) = cutoff(retention.rollups_days, now) {
            pruned.rollups = rollup::Entity::delete_many()
                .filter(rollup::Column::Day.lt(cut.date_naive()))
                .exec(db)
                .await?
                .rows_affected;
        }
        if let Some(cut) = cutoff(retention.dedup_days, now) {
            // Ids claimed before claim times were kept go by the event's time.
            pruned.event_ids = processed_event::Entity::delete_many()
                .filter(
                    Condition::any()
                        .add(processed_event::Column::ClaimTime.lt(cut))
                        .add(
                            Condition::all()
                                .add(processed_event::Column::ClaimTime.is_null())
                                .add(processed_event::Column::EventTime.lt(cut)),
                        ),
                )
                .exec(db)
                .await?
                .rows_affected;
        }
        Ok(pruned)
    }
}
