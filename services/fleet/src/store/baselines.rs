//! Baselines and their immutable versions. A new version whose content
//! equals the latest one's is not stored: the latest is returned.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::{baseline, baseline_version};
use super::requests::{remember, replay};
use super::{Outcome, RequestKey, Store, StoreError, records};
use crate::model::{Baseline, BaselineFile, BaselineVersion};
use crate::names::{VersionRef, baseline_name};

/// The content of a version to store, already packed and checked.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The canonical tar.
    pub bundle: Vec<u8>,
    /// The files, for the manifest (contents are not read).
    pub files: Vec<BaselineFile>,
    pub apply_command: String,
    pub check_command: String,
    pub timeout_secs: i64,
    pub digest: String,
    pub content_key: String,
    pub author: String,
    pub message: String,
}

pub(super) async fn find_version<C: ConnectionTrait>(
    db: &C,
    v: &VersionRef,
    full: bool,
) -> Result<BaselineVersion, StoreError> {
    let m = baseline_version::Entity::find_by_id((v.baseline.clone(), v.version))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(v.name()))?;
    records::baseline_version(m, full)
}

async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<baseline::Model>, StoreError> {
    Ok(baseline::Entity::find_by_id(id.to_owned()).one(db).await?)
}

impl Store {
    /// Adds the next version of `baseline`, creating the baseline with
    /// `description` when it is new. Returns the version and whether it
    /// was created (false: same content as the latest).
    pub async fn create_version(
        &self,
        id: &str,
        description: &str,
        new: NewVersion,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<(BaselineVersion, bool)>, StoreError> {
        let (id, description) = (id.to_owned(), description.to_owned());
        let request = request.cloned();
        self.transaction(|txn| {
            let (id, description, new, request) = (
                id.clone(),
                description.clone(),
                new.clone(),
                request.clone(),
            );
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                let now = Utc::now();
                let next = match find(txn, &id).await? {
                    None => {
                        baseline::ActiveModel::from(baseline::Model {
                            id: id.clone(),
                            description,
                            latest_version: 1,
                            create_time: now,
                            update_time: now,
                        })
                        .insert(txn)
                        .await
                        .map_err(|e| super::exists_or(e, &baseline_name(&id)))
                        // Another writer created it first: start over.
                        .map_err(|e| match e {
                            StoreError::AlreadyExists(n) => StoreError::Conflict(n),
                            e => e,
                        })?;
                        1
                    }
                    Some(b) => {
                        let latest = VersionRef {
                            baseline: id.clone(),
                            version: b.latest_version,
                        };
                        let head =
                            baseline_version::Entity::find_by_id((id.clone(), b.latest_version))
                                .one(txn)
                                .await?
                                .ok_or_else(|| {
                                    StoreError::Corrupt(format!("{} is missing", latest.name()))
                                })?;
                        if head.content_key == new.content_key {
                            remember(txn, request.as_ref(), &latest.name()).await?;
                            return Ok(Outcome::Done((
                                records::baseline_version(head, false)?,
                                false,
                            )));
                        }
                        let next = b.latest_version + 1;
                        let updated = baseline::Entity::update_many()
                            .col_expr(baseline::Column::LatestVersion, Expr::value(next))
                            .col_expr(baseline::Column::UpdateTime, Expr::value(now))
                            .filter(baseline::Column::Id.eq(id.as_str()))
                            .filter(baseline::Column::LatestVersion.eq(b.latest_version))
                            .exec(txn)
                            .await?;
                        if updated.rows_affected != 1 {
                            return Err(StoreError::Conflict(baseline_name(&id)));
                        }
                        next
                    }
                };
                let row = baseline_version::Model {
                    baseline: id.clone(),
                    version: next,
                    size_bytes: new.bundle.len() as i64,
                    bundle: new.bundle,
                    manifest: records::to_json(&new.files),
                    apply_command: new.apply_command,
                    check_command: new.check_command,
                    timeout_secs: new.timeout_secs,
                    digest: new.digest,
                    content_key: new.content_key,
                    author: new.author,
                    message: new.message,
                    create_time: now,
                };
                let inserted = baseline_version::ActiveModel::from(row)
                    .insert(txn)
                    .await
                    .map_err(|e| super::exists_or(e, &baseline_name(&id)))
                    .map_err(|e| match e {
                        StoreError::AlreadyExists(n) => StoreError::Conflict(n),
                        e => e,
                    })?;
                let version = records::baseline_version(inserted, false)?;
                remember(txn, request.as_ref(), &version.version.name()).await?;
                Ok(Outcome::Done((version, true)))
            })
        })
        .await
    }

    pub async fn baseline(&self, id: &str) -> Result<Baseline, StoreError> {
        find(&self.db, id)
            .await?
            .map(records::baseline)
            .ok_or_else(|| StoreError::NotFound(baseline_name(id)))
    }

    /// Baselines by id, after `after`, at most `limit`.
    pub async fn list_baselines(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Baseline>, StoreError> {
        let mut query = baseline::Entity::find()
            .order_by_asc(baseline::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(baseline::Column::Id.gt(after));
        }
        Ok(query
            .all(&self.db)
            .await?
            .into_iter()
            .map(records::baseline)
            .collect())
    }

    pub async fn baseline_version(
        &self,
        v: &VersionRef,
        full: bool,
    ) -> Result<BaselineVersion, StoreError> {
        find_version(&self.db, v, full).await
    }

    /// A baseline's versions newest first, older than `before`, at most `limit`.
    pub async fn list_versions(
        &self,
        id: &str,
        before: Option<i64>,
        limit: u64,
        full: bool,
    ) -> Result<Vec<BaselineVersion>, StoreError> {
        self.baseline(id).await?;
        let mut query = baseline_version::Entity::find()
            .filter(baseline_version::Column::Baseline.eq(id))
            .order_by_desc(baseline_version::Column::Version)
            .limit(limit);
        if let Some(before) = before {
            query = query.filter(baseline_version::Column::Version.lt(before));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| records::baseline_version(m, full))
            .collect()
    }
}
