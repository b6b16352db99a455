//! Idempotency keys (AIP-155): a request id names the resource its first
//! call wrote; a retry with the same arguments reads that resource again,
//! a reuse with other arguments is refused.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseTransaction, EntityTrait};

use super::StoreError;
use super::entities::request;

/// A request id and the method plus arguments it was sent with.
#[derive(Debug, Clone)]
pub struct RequestKey {
    pub id: String,
    pub fingerprint: String,
}

/// The resource an earlier call with this key wrote, if any.
pub(super) async fn replay(
    txn: &DatabaseTransaction,
    key: Option<&RequestKey>,
) -> Result<Option<String>, StoreError> {
    let Some(key) = key else { return Ok(None) };
    let Some(done) = request::Entity::find_by_id(key.id.clone()).one(txn).await? else {
        return Ok(None);
    };
    if done.fingerprint != key.fingerprint {
        return Err(StoreError::RequestIdReused(key.id.clone()));
    }
    Ok(Some(done.resource))
}

pub(super) async fn remember(
    txn: &DatabaseTransaction,
    key: Option<&RequestKey>,
    resource: &str,
) -> Result<(), StoreError> {
    let Some(key) = key else { return Ok(()) };
    request::ActiveModel {
        request_id: Set(key.id.clone()),
        fingerprint: Set(key.fingerprint.clone()),
        resource: Set(resource.to_owned()),
        create_time: Set(Utc::now()),
    }
    .insert(txn)
    .await
    .map_err(|e| match e.sql_err() {
        // A concurrent retry of the same request committed first.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            StoreError::Conflict(resource.to_owned())
        }
        _ => e.into(),
    })?;
    Ok(())
}
