//! Action output: appended by workers in chunks keyed by byte offset (a
//! resent chunk is ignored), capped per attempt with a truncation marker,
//! and read back in order.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::log_chunk;
use super::{Store, StoreError};

/// One piece of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub id: i64,
    pub action_id: String,
    pub attempt: i32,
    pub offset: i64,
    pub stream: String,
    pub data: Vec<u8>,
    pub truncated: bool,
    pub time: DateTime<Utc>,
}

/// The text of the marker chunk stored when an attempt reaches the cap.
pub const TRUNCATED_MARKER: &[u8] =
    b"\n[conveyor: output truncated: the per-action log limit was reached]\n";

impl Store {
    /// Bytes stored for an attempt so far, and whether it was truncated.
    pub async fn log_size(&self, action_id: &str, attempt: i32) -> Result<(i64, bool), StoreError> {
        let last = log_chunk::Entity::find()
            .filter(log_chunk::Column::ActionId.eq(action_id))
            .filter(log_chunk::Column::Attempt.eq(attempt))
            .order_by_desc(log_chunk::Column::Offset)
            .one(self.connection())
            .await?;
        Ok(last.map_or((0, false), |c| {
            (c.offset + c.data.len() as i64, c.truncated)
        }))
    }

    /// Stores `chunks` (offset, stream, data) of an attempt, up to `limit`
    /// bytes in all; returns the committed size and whether the cap was hit.
    pub async fn append_logs(
        &self,
        execution_id: &str,
        action_id: &str,
        attempt: i32,
        chunks: Vec<(i64, String, Vec<u8>)>,
        limit: i64,
    ) -> Result<(i64, bool), StoreError> {
        let (mut size, mut truncated) = self.log_size(action_id, attempt).await?;
        let now = Utc::now();
        let mut rows = Vec::new();
        for (offset, stream, mut data) in chunks {
            if truncated {
                break;
            }
            if offset > limit {
                break; // beyond the cap: nothing of it is kept
            }
            if offset + (data.len() as i64) <= size {
                continue; // already stored
            }
            if offset != size {
                // A gap: the worker must resend from `size`.
                break;
            }
            if size + data.len() as i64 > limit {
                data.truncate((limit - size).max(0) as usize);
                truncated = true;
            }
            let len = data.len() as i64;
            if len > 0 {
                rows.push(row(
                    execution_id,
                    action_id,
                    attempt,
                    size,
                    &stream,
                    data,
                    false,
                    now,
                ));
                size += len;
            }
            if truncated {
                rows.push(row(
                    execution_id,
                    action_id,
                    attempt,
                    size,
                    "system",
                    TRUNCATED_MARKER.to_vec(),
                    true,
                    now,
                ));
            }
        }
        if !rows.is_empty() {
            // A concurrent resend of the same offsets is ignored.
            log_chunk::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([
                    log_chunk::Column::ActionId,
                    log_chunk::Column::Attempt,
                    log_chunk::Column::Offset,
                ])
                .exec(self.connection())
                .await?;
        }
        Ok((size, truncated))
    }

    /// Chunks of an execution after chunk `after`, in the order stored.
    pub async fn read_logs(
        &self,
        execution_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<Chunk>, StoreError> {
        Ok(log_chunk::Entity::find()
            .filter(log_chunk::Column::ExecutionId.eq(execution_id))
            .filter(log_chunk::Column::Id.gt(after))
            .order_by_asc(log_chunk::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|m| Chunk {
                id: m.id,
                action_id: m.action_id,
                attempt: m.attempt,
                offset: m.offset,
                stream: m.stream,
                data: m.data,
                truncated: m.truncated,
                time: m.time,
            })
            .collect())
    }
}

#[allow(clippy::too_many_arguments)]
fn row(
    execution_id: &str,
    action_id: &str,
    attempt: i32,
    offset: i64,
    stream: &str,
    data: Vec<u8>,
    truncated: bool,
    time: DateTime<Utc>,
) -> log_chunk::ActiveModel {
    log_chunk::ActiveModel {
        id: NotSet,
        execution_id: Set(execution_id.to_owned()),
        action_id: Set(action_id.to_owned()),
        attempt: Set(attempt),
        offset: Set(offset),
        stream: Set(stream.to_owned()),
        data: Set(data),
        truncated: Set(truncated),
        time: Set(time),
    }
}
