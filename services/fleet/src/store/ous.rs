//! The OU tree. A move rewrites the path prefix of the whole subtree (OUs
//! and accounts) in one transaction; a move into the OU's own subtree
//! would make a cycle and is refused.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::sea_query::{BinOper, Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{account, freeze_window, ou};
use super::requests::{remember, replay};
use super::{
    Outcome, RequestKey, Store, StoreError, check_etag, exists_or, like_prefix, new_etag, records,
};
use crate::model::{AccountState, Ou, Strategy};
use crate::names::{ROOT_OU, VersionRef, ou_name};

pub(super) async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Ou, StoreError> {
    let m = ou::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(ou_name(id)))?;
    records::ou(m)
}

impl Store {
    pub async fn ou(&self, id: &str) -> Result<Ou, StoreError> {
        find(&self.db, id).await
    }

    /// Every OU; the tree is small next to the accounts in it.
    pub async fn ous(&self) -> Result<Vec<Ou>, StoreError> {
        ou::Entity::find()
            .order_by_asc(ou::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(records::ou)
            .collect()
    }

    /// The children (or, `recursive`, the whole subtree) of `parent` by id,
    /// after `after`, at most `limit`.
    pub async fn list_ous(
        &self,
        parent: &Ou,
        recursive: bool,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Ou>, StoreError> {
        let mut query = ou::Entity::find().order_by_asc(ou::Column::Id).limit(limit);
        query = if recursive {
            query
                .filter(Expr::col(ou::Column::Path).like(like_prefix(&parent.path)))
                .filter(ou::Column::Id.ne(parent.id.as_str()))
        } else {
            query.filter(ou::Column::Parent.eq(parent.id.as_str()))
        };
        if let Some(after) = after {
            query = query.filter(ou::Column::Id.gt(after));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(records::ou)
            .collect()
    }

    /// Per OU: direct children, and accounts directly in it that are not closed.
    pub async fn ou_counts(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, (u32, u32)>, StoreError> {
        let mut counts: HashMap<String, (u32, u32)> =
            ids.iter().map(|id| (id.clone(), (0, 0))).collect();
        let children: Vec<(Option<String>, i64)> = ou::Entity::find()
            .select_only()
            .column(ou::Column::Parent)
            .column_as(ou::Column::Id.count(), "n")
            .filter(ou::Column::Parent.is_in(ids.iter().cloned()))
            .group_by(ou::Column::Parent)
            .into_tuple()
            .all(&self.db)
            .await?;
        for (parent, n) in children {
            if let Some(c) = parent.and_then(|p| counts.get_mut(&p)) {
                c.0 = n as u32;
            }
        }
        let accounts: Vec<(String, i64)> = account::Entity::find()
            .select_only()
            .column(account::Column::Ou)
            .column_as(account::Column::Id.count(), "n")
            .filter(account::Column::Ou.is_in(ids.iter().cloned()))
            .filter(account::Column::State.ne(AccountState::Closed.as_str()))
            .group_by(account::Column::Ou)
            .into_tuple()
            .all(&self.db)
            .await?;
        for (ou, n) in accounts {
            if let Some(c) = counts.get_mut(&ou) {
                c.1 = n as u32;
            }
        }
        Ok(counts)
    }

    pub async fn create_ou(
        &self,
        parent: &str,
        id: &str,
        display_name: &str,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<Ou>, StoreError> {
        let (parent, id, display_name) =
            (parent.to_owned(), id.to_owned(), display_name.to_owned());
        let request = request.cloned();
        self.transaction(|txn| {
            let (parent, id, display_name, request) = (
                parent.clone(),
                id.clone(),
                display_name.clone(),
                request.clone(),
            );
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                let parent = find(txn, &parent).await?;
                let now = Utc::now();
                let row = ou::Model {
                    path: format!("{}{id}/", parent.path),
                    id: id.clone(),
                    display_name,
                    parent: Some(parent.id),
                    baseline_version: None,
                    etag: new_etag(),
                    create_time: now,
                    update_time: now,
                    auto_rollout: None,
                };
                let inserted = ou::ActiveModel::from(row)
                    .insert(txn)
                    .await
                    .map_err(|e| exists_or(e, &ou_name(&id)))?;
                remember(txn, request.as_ref(), &ou_name(&id)).await?;
                Ok(Outcome::Done(records::ou(inserted)?))
            })
        })
        .await
    }

    pub async fn rename_ou(
        &self,
        id: &str,
        display_name: &str,
        etag: Option<&str>,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<Ou>, StoreError> {
        let display_name = display_name.to_owned();
        self.change_ou(id, etag, request, move |ou| {
            ou.display_name = display_name.clone();
        })
        .await
    }

    /// Assigns (or with `None` removes) an OU's baseline version, which
    /// must exist.
    pub async fn assign_baseline(
        &self,
        id: &str,
        version: Option<VersionRef>,
        auto_rollout: Option<Strategy>,
        etag: Option<&str>,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<Ou>, StoreError> {
        let (id, etag) = (id.to_owned(), etag.map(str::to_owned));
        let request = request.cloned();
        self.transaction(|txn| {
            let (id, etag, request, version, auto_rollout) = (
                id.clone(),
                etag.clone(),
                request.clone(),
                version.clone(),
                auto_rollout.clone(),
            );
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                if let Some(v) = &version {
                    super::baselines::find_version(txn, v, false).await?;
                }
                let current = find(txn, &id).await?;
                check_etag(&ou_name(&id), &current.etag, etag.as_deref())?;
                let mut changed = current.clone();
                changed.baseline = version;
                changed.auto_rollout = auto_rollout;
                let saved = save(txn, &current, changed).await?;
                remember(txn, request.as_ref(), &ou_name(&id)).await?;
                Ok(Outcome::Done(saved))
            })
        })
        .await
    }

    /// Moves an OU and everything below it under `destination`.
    pub async fn move_ou(
        &self,
        id: &str,
        destination: &str,
        etag: Option<&str>,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<Ou>, StoreError> {
        let (id, destination, etag) = (
            id.to_owned(),
            destination.to_owned(),
            etag.map(str::to_owned),
        );
        let request = request.cloned();
        self.transaction(|txn| {
            let (id, destination, etag, request) = (
                id.clone(),
                destination.clone(),
                etag.clone(),
                request.clone(),
            );
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                if id == ROOT_OU {
                    return Err(StoreError::Invalid {
                        field: "name".into(),
                        message: "the root OU cannot be moved".into(),
                    });
                }
                let current = find(txn, &id).await?;
                check_etag(&ou_name(&id), &current.etag, etag.as_deref())?;
                let dest = find(txn, &destination).await?;
                if dest.path.starts_with(&current.path) {
                    return Err(StoreError::Invalid {
                        field: "destination".into(),
                        message: format!(
                            "{} is {} {}: the move would make a cycle",
                            ou_name(&dest.id),
                            if dest.id == id {
                                "the OU itself, not a parent of"
                            } else {
                                "below"
                            },
                            ou_name(&id)
                        ),
                    });
                }
                let new_path = format!("{}{id}/", dest.path);
                rewrite_paths(txn, &current.path, &new_path).await?;
                let mut moved = current.clone();
                moved.parent = Some(dest.id);
                moved.path = new_path;
                let saved = save(txn, &current, moved).await?;
                remember(txn, request.as_ref(), &ou_name(&id)).await?;
                Ok(Outcome::Done(saved))
            })
        })
        .await
    }

    /// Deletes an OU with no child OU, no account that is not closed and
    /// no freeze window.
    pub async fn delete_ou(&self, id: &str, etag: Option<&str>) -> Result<(), StoreError> {
        let (id, etag) = (id.to_owned(), etag.map(str::to_owned));
        self.transaction(|txn| {
            let (id, etag) = (id.clone(), etag.clone());
            Box::pin(async move {
                let name = ou_name(&id);
                if id == ROOT_OU {
                    return Err(StoreError::Invalid {
                        field: "name".into(),
                        message: "the root OU cannot be deleted".into(),
                    });
                }
                let current = find(txn, &id).await?;
                check_etag(&name, &current.etag, etag.as_deref())?;
                let children = ou::Entity::find()
                    .filter(ou::Column::Parent.eq(id.as_str()))
                    .count(txn)
                    .await?;
                let accounts = account::Entity::find()
                    .filter(account::Column::Ou.eq(id.as_str()))
                    .filter(account::Column::State.ne(AccountState::Closed.as_str()))
                    .count(txn)
                    .await?;
                if children > 0 || accounts > 0 {
                    return Err(StoreError::precondition(
                        "OU_NOT_EMPTY",
                        &name,
                        format!(
                            "{name} holds {children} OU(s) and {accounts} account(s) that are not closed; move or close them first"
                        ),
                    ));
                }
                // Freeze windows carry the break-glass audit trail: an OU
                // that has any is not deleted until they are removed.
                let windows = freeze_window::Entity::find()
                    .filter(freeze_window::Column::Ou.eq(id.as_str()))
                    .count(txn)
                    .await?;
                if windows > 0 {
                    return Err(StoreError::precondition(
                        "OU_HAS_FREEZE_WINDOWS",
                        &name,
                        format!(
                            "{name} has {windows} freeze window(s); delete them first (their overrides are the audit trail)"
                        ),
                    ));
                }
                let deleted = ou::Entity::delete_many()
                    .filter(ou::Column::Id.eq(id.as_str()))
                    .filter(ou::Column::Etag.eq(current.etag.as_str()))
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

    /// Loads an OU, checks the etag, applies `change` and saves it.
    async fn change_ou<F>(
        &self,
        id: &str,
        etag: Option<&str>,
        request: Option<&RequestKey>,
        change: F,
    ) -> Result<Outcome<Ou>, StoreError>
    where
        F: Fn(&mut Ou) + Send + Sync + Clone + 'static,
    {
        let (id, etag) = (id.to_owned(), etag.map(str::to_owned));
        let request = request.cloned();
        self.transaction(|txn| {
            let (id, etag, request, change) =
                (id.clone(), etag.clone(), request.clone(), change.clone());
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                let current = find(txn, &id).await?;
                check_etag(&ou_name(&id), &current.etag, etag.as_deref())?;
                let mut changed = current.clone();
                change(&mut changed);
                let saved = save(txn, &current, changed).await?;
                remember(txn, request.as_ref(), &ou_name(&id)).await?;
                Ok(Outcome::Done(saved))
            })
        })
        .await
    }
}

/// Writes `changed` over `current` if nobody changed it meanwhile.
async fn save(txn: &DatabaseTransaction, current: &Ou, mut changed: Ou) -> Result<Ou, StoreError> {
    changed.etag = new_etag();
    changed.update_time = Utc::now();
    let updated = ou::Entity::update_many()
        .col_expr(
            ou::Column::DisplayName,
            Expr::value(changed.display_name.clone()),
        )
        .col_expr(ou::Column::Parent, Expr::value(changed.parent.clone()))
        .col_expr(ou::Column::Path, Expr::value(changed.path.clone()))
        .col_expr(
            ou::Column::BaselineVersion,
            Expr::value(changed.baseline.as_ref().map(VersionRef::name)),
        )
        .col_expr(
            ou::Column::AutoRollout,
            Expr::value(
                changed
                    .auto_rollout
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("auto_rollout: {e}")))?,
            ),
        )
        .col_expr(ou::Column::Etag, Expr::value(changed.etag.clone()))
        .col_expr(ou::Column::UpdateTime, Expr::value(changed.update_time))
        .filter(ou::Column::Id.eq(current.id.as_str()))
        .filter(ou::Column::Etag.eq(current.etag.as_str()))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Conflict(ou_name(&current.id)));
    }
    Ok(changed)
}

/// Replaces the path prefix `old` by `new` on every OU and account below.
async fn rewrite_paths(txn: &DatabaseTransaction, old: &str, new: &str) -> Result<(), StoreError> {
    // new || substr(column, len(old) + 1): substr is 1-based.
    let keep_from = old.chars().count() as i32 + 1;
    let rewritten = |column: Expr| {
        Expr::val(new).binary(
            BinOper::Custom("||"),
            Func::cust("substr").arg(column).arg(keep_from),
        )
    };
    ou::Entity::update_many()
        .col_expr(ou::Column::Path, rewritten(Expr::col(ou::Column::Path)))
        .filter(Expr::col(ou::Column::Path).like(like_prefix(old)))
        .exec(txn)
        .await?;
    account::Entity::update_many()
        .col_expr(
            account::Column::OuPath,
            rewritten(Expr::col(account::Column::OuPath)),
        )
        .filter(Expr::col(account::Column::OuPath).like(like_prefix(old)))
        .exec(txn)
        .await?;
    Ok(())
}
