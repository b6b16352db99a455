//! Freeze windows on OUs, with their break-glass overrides kept on the
//! window, oldest first: the audit trail.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::entities::freeze_window;
use super::requests::{remember, replay};
use super::{Outcome, RequestKey, Store, StoreError, check_etag, exists_or, new_etag, records};
use crate::model::{FreezeWindow, Override};
use crate::names::freeze_window_name;

async fn find<C: ConnectionTrait>(db: &C, ou: &str, id: &str) -> Result<FreezeWindow, StoreError> {
    let name = freeze_window_name(ou, id);
    let m = freeze_window::Entity::find_by_id(id.to_owned())
        .filter(freeze_window::Column::Ou.eq(ou))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(name))?;
    records::freeze_window(m)
}

impl Store {
    pub async fn insert_freeze(
        &self,
        window: FreezeWindow,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<FreezeWindow>, StoreError> {
        let request = request.cloned();
        self.transaction(|txn| {
            let (mut window, request) = (window.clone(), request.clone());
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                super::ous::find(txn, &window.ou).await?;
                window.etag = new_etag();
                let name = freeze_window_name(&window.ou, &window.id);
                let inserted =
                    freeze_window::ActiveModel::from(records::freeze_window_row(&window))
                        .insert(txn)
                        .await
                        .map_err(|e| exists_or(e, &name))?;
                remember(txn, request.as_ref(), &name).await?;
                Ok(Outcome::Done(records::freeze_window(inserted)?))
            })
        })
        .await
    }

    pub async fn freeze(&self, ou: &str, id: &str) -> Result<FreezeWindow, StoreError> {
        find(&self.db, ou, id).await
    }

    /// Windows on `ous` (all OUs with `None`) that end after `ending_after`
    /// (all with `None`), by start time then id.
    pub async fn freezes(
        &self,
        ous: Option<&[String]>,
        ending_after: Option<DateTime<Utc>>,
    ) -> Result<Vec<FreezeWindow>, StoreError> {
        let mut query = freeze_window::Entity::find()
            .order_by_asc(freeze_window::Column::StartTime)
            .order_by_asc(freeze_window::Column::Id);
        if let Some(ous) = ous {
            query = query.filter(freeze_window::Column::Ou.is_in(ous.iter().cloned()));
        }
        if let Some(t) = ending_after {
            query = query.filter(freeze_window::Column::EndTime.gt(t));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(records::freeze_window)
            .collect()
    }

    pub async fn delete_freeze(
        &self,
        ou: &str,
        id: &str,
        etag: Option<&str>,
    ) -> Result<(), StoreError> {
        let (ou, id, etag) = (ou.to_owned(), id.to_owned(), etag.map(str::to_owned));
        self.transaction(|txn| {
            let (ou, id, etag) = (ou.clone(), id.clone(), etag.clone());
            Box::pin(async move {
                let name = freeze_window_name(&ou, &id);
                let current = find(txn, &ou, &id).await?;
                check_etag(&name, &current.etag, etag.as_deref())?;
                let deleted = freeze_window::Entity::delete_many()
                    .filter(freeze_window::Column::Id.eq(id.as_str()))
                    .filter(freeze_window::Column::Etag.eq(current.etag.as_str()))
                    .exec(txn)
                    .await?;
                if deleted.rows_affected != 1 {
                    return Err(StoreError::Conflict(name));
                }
                Ok(())
            })
        })
        .await
    }

    /// Appends a break-glass override to a window.
    pub async fn add_override(
        &self,
        ou: &str,
        id: &str,
        grant: Override,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<FreezeWindow>, StoreError> {
        let (ou, id) = (ou.to_owned(), id.to_owned());
        let request = request.cloned();
        self.transaction(|txn| {
            let (ou, id, grant, request) = (ou.clone(), id.clone(), grant.clone(), request.clone());
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                let name = freeze_window_name(&ou, &id);
                let current = find(txn, &ou, &id).await?;
                let mut changed = current.clone();
                changed.overrides.push(grant);
                changed.etag = new_etag();
                let updated = freeze_window::Entity::update_many()
                    .set(
                        freeze_window::ActiveModel::from(records::freeze_window_row(&changed))
                            .reset_all(),
                    )
                    .filter(freeze_window::Column::Id.eq(id.as_str()))
                    .filter(freeze_window::Column::Etag.eq(current.etag.as_str()))
                    .exec(txn)
                    .await?;
                if updated.rows_affected != 1 {
                    return Err(StoreError::Conflict(name));
                }
                remember(txn, request.as_ref(), &name).await?;
                Ok(Outcome::Done(changed))
            })
        })
        .await
    }
}
