//! Pipelines and their immutable revisions, in SQLite or Postgres through
//! one sea-orm implementation. Every mutation is one transaction that
//! checks the state it expects (compare-and-set on the current revision).

mod cache;
mod entities;
mod migration;
mod records;

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, Condition,
    DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr,
};

use entities::{pipeline, request, revision, upstream};
pub use migration::Migrator;
pub use records::{NewRevision, PipelineRecord, RevisionRecord, SourceFormat};

use crate::spec::PipelineType;

/// The Postgres schema the definitions service owns.
pub const SCHEMA: &str = "definitions";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("pipeline {0:?} not found")]
    NotFound(String),
    #[error("revision {revision} of pipeline {pipeline:?} not found")]
    RevisionNotFound { pipeline: String, revision: i64 },
    #[error("pipeline {0:?} already exists")]
    AlreadyExists(String),
    #[error("pipeline {name:?} has etag {actual:?}, not {expected:?}")]
    EtagMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("pipeline {0:?} changed concurrently; retry")]
    Conflict(String),
    #[error("request id {0:?} was already used for a different request")]
    RequestIdReused(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// What an apply or update did.
#[derive(Debug, Clone)]
pub struct Written {
    pub pipeline: PipelineRecord,
    pub created: bool,
    pub revision_created: bool,
}

/// A mutation, for [`Store::write`].
#[derive(Debug, Clone)]
enum Op {
    Create,
    Update { etag: Option<String> },
    Apply,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update { .. } => "update",
            Op::Apply => "apply",
        }
    }
}

/// Which pipelines to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub project: Option<String>,
    pub pipeline_type: Option<PipelineType>,
    /// Only pipelines that take artifacts from this pipeline (its name).
    pub upstream: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    revisions: std::sync::Arc<cache::RevisionCache>,
}

/// Revisions kept in memory per process.
const CACHED_REVISIONS: usize = 4096;

impl Store {
    /// Connects and migrates. `url` is `postgres://...` or `sqlite://path`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let db =
            conveyor_platform::database::connect::<Migrator>(url, SCHEMA, max_connections).await?;
        Ok(Store {
            db,
            revisions: std::sync::Arc::new(cache::RevisionCache::new(CACHED_REVISIONS)),
        })
    }

    /// An empty in-memory SQLite store.
    pub async fn for_test() -> Result<Self, DbErr> {
        Self::connect("sqlite::memory:", 1).await
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Creates a pipeline with its first revision.
    pub async fn create(
        &self,
        new: NewRevision,
        request_id: Option<&str>,
    ) -> Result<PipelineRecord, StoreError> {
        Ok(self.write(Op::Create, new, request_id).await?.pipeline)
    }

    /// Adds a revision to an existing pipeline unless the spec is unchanged.
    pub async fn update(
        &self,
        new: NewRevision,
        etag: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<Written, StoreError> {
        let op = Op::Update {
            etag: etag.map(str::to_owned),
        };
        self.write(op, new, request_id).await
    }

    /// Creates the pipeline, or adds a revision when the spec changed.
    pub async fn apply(
        &self,
        new: NewRevision,
        request_id: Option<&str>,
    ) -> Result<Written, StoreError> {
        self.write(Op::Apply, new, request_id).await
    }

    /// One transaction: replay a request already done, or perform `op` and
    /// remember it under `request_id`.
    async fn write(
        &self,
        op: Op,
        new: NewRevision,
        request_id: Option<&str>,
    ) -> Result<Written, StoreError> {
        let request_id = request_id.map(str::to_owned);
        let fingerprint = format!("{}:{}:{}", op.name(), new.name, new.spec_sha256);
        self.transaction(|txn| {
            let (op, new, request_id) = (op.clone(), new.clone(), request_id.clone());
            let fingerprint = fingerprint.clone();
            Box::pin(async move {
                let request_id = request_id.as_deref();
                if let Some(done) = replay(txn, request_id, &fingerprint).await? {
                    return Ok(done);
                }
                let current = find_pipeline(txn, &new.name).await?;
                let written = match (op, current) {
                    (Op::Create, _) | (Op::Apply, None) => insert_pipeline(txn, new).await?,
                    (Op::Update { etag }, Some(current)) => {
                        append_revision(txn, current, new, etag.as_deref()).await?
                    }
                    (Op::Apply, Some(current)) => append_revision(txn, current, new, None).await?,
                    (Op::Update { .. }, None) => return Err(StoreError::NotFound(new.name)),
                };
                remember(txn, request_id, &fingerprint, &written).await?;
                Ok(written)
            })
        })
        .await
    }

    /// A pipeline with its current revision, or `revision` when given.
    pub async fn get(
        &self,
        name: &str,
        revision: Option<i64>,
    ) -> Result<PipelineRecord, StoreError> {
        load(&self.db, &self.revisions, name, revision).await
    }

    /// Pipelines ordered by name, after `after`, at most `limit`.
    pub async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<PipelineRecord>, StoreError> {
        let mut query = pipeline::Entity::find()
            .order_by_asc(pipeline::Column::Name)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(pipeline::Column::Name.gt(after));
        }
        if let Some(project) = &filter.project {
            query = query.filter(pipeline::Column::Project.eq(project.as_str()));
        }
        if let Some(t) = filter.pipeline_type {
            query = query.filter(pipeline::Column::PipelineType.eq(t.as_str()));
        }
        if let Some(name) = &filter.upstream {
            query = query.filter(
                pipeline::Column::Id.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(upstream::Column::PipelineId)
                        .from(upstream::Entity)
                        .and_where(upstream::Column::Upstream.eq(name.as_str()))
                        .to_owned(),
                ),
            );
        }
        let pipelines = query.all(&self.db).await?;
        if pipelines.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted = Condition::any();
        for p in &pipelines {
            wanted = wanted.add(
                Condition::all()
                    .add(revision::Column::PipelineId.eq(p.id))
                    .add(revision::Column::Revision.eq(p.current_revision)),
            );
        }
        let mut revisions: BTreeMap<i64, revision::Model> = revision::Entity::find()
            .filter(wanted)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| (r.pipeline_id, r))
            .collect();
        pipelines
            .into_iter()
            .map(|p| {
                let rev = revisions.remove(&p.id).ok_or_else(|| {
                    StoreError::Corrupt(format!("pipeline {:?} has no current revision", p.name))
                })?;
                let rev = records::revision_record(&p.name, rev)?;
                records::pipeline_record(p, rev)
            })
            .collect()
    }

    /// Deletes a pipeline and its revisions.
    pub async fn delete(&self, name: &str, etag: Option<&str>) -> Result<(), StoreError> {
        let name = name.to_owned();
        let etag = etag.map(str::to_owned);
        self.transaction(|txn| {
            let (name, etag) = (name.clone(), etag.clone());
            Box::pin(async move {
                let current = find_pipeline(txn, &name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(name.clone()))?;
                check_etag(&current, etag.as_deref())?;
                set_upstream(txn, current.id, &[]).await?;
                revision::Entity::delete_many()
                    .filter(revision::Column::PipelineId.eq(current.id))
                    .exec(txn)
                    .await?;
                let deleted = pipeline::Entity::delete_many()
                    .filter(pipeline::Column::Id.eq(current.id))
                    .filter(pipeline::Column::Etag.eq(current.etag.as_str()))
                    .exec(txn)
                    .await?;
                if deleted.rows_affected == 0 {
                    return Err(StoreError::Conflict(name));
                }
                Ok(())
            })
        })
        .await
    }

    /// Revisions newest first, older than `before`, at most `limit`.
    pub async fn list_revisions(
        &self,
        name: &str,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<RevisionRecord>, StoreError> {
        let p = find_pipeline(&self.db, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        let mut query = revision::Entity::find()
            .filter(revision::Column::PipelineId.eq(p.id))
            .order_by_desc(revision::Column::Revision)
            .limit(limit);
        if let Some(before) = before {
            query = query.filter(revision::Column::Revision.lt(before));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| records::revision_record(&p.name, r))
            .collect()
    }

    /// Runs `op` in a transaction, retrying contention a bounded number of times.
    async fn transaction<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'c> Fn(
            &'c DatabaseTransaction,
        ) -> conveyor_platform::database::TxnFuture<'c, T, StoreError>,
    {
        conveyor_platform::database::transaction(&self.db, 5, StoreError::is_contention, op).await
    }
}

impl StoreError {
    /// Whether trying the transaction again may succeed.
    fn is_contention(&self) -> bool {
        match self {
            StoreError::Database(e) => conveyor_platform::database::is_retryable(e),
            StoreError::Conflict(_) => true,
            _ => false,
        }
    }
}

async fn find_pipeline<C: sea_orm::ConnectionTrait>(
    db: &C,
    name: &str,
) -> Result<Option<pipeline::Model>, StoreError> {
    Ok(pipeline::Entity::find()
        .filter(pipeline::Column::Name.eq(name))
        .one(db)
        .await?)
}

/// A pipeline with one revision: one small query for the pipeline row,
/// and the revision from the cache when it was read before.
async fn load<C: sea_orm::ConnectionTrait>(
    db: &C,
    cache: &cache::RevisionCache,
    name: &str,
    revision: Option<i64>,
) -> Result<PipelineRecord, StoreError> {
    let p = find_pipeline(db, name)
        .await?
        .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
    let number = revision.unwrap_or(p.current_revision);
    let rev = match cache.get(p.id, number) {
        Some(rev) => rev,
        None => {
            let model = revision::Entity::find()
                .filter(revision::Column::PipelineId.eq(p.id))
                .filter(revision::Column::Revision.eq(number))
                .one(db)
                .await?
                .ok_or_else(|| StoreError::RevisionNotFound {
                    pipeline: name.to_owned(),
                    revision: number,
                })?;
            cache.insert(p.id, records::revision_record(&p.name, model)?)
        }
    };
    records::pipeline_record(p, (*rev).clone())
}

fn check_etag(current: &pipeline::Model, etag: Option<&str>) -> Result<(), StoreError> {
    match etag {
        Some(expected) if !expected.is_empty() && expected != current.etag => {
            Err(StoreError::EtagMismatch {
                name: current.name.clone(),
                expected: expected.to_owned(),
                actual: current.etag.clone(),
            })
        }
        _ => Ok(()),
    }
}

fn new_etag() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

async fn insert_pipeline(
    txn: &DatabaseTransaction,
    new: NewRevision,
) -> Result<Written, StoreError> {
    let now = Utc::now();
    let inserted = pipeline::ActiveModel {
        id: NotSet,
        name: Set(new.name.clone()),
        project: Set(new.project.clone()),
        pipeline_type: Set(new.pipeline_type.as_str().to_owned()),
        labels: Set(records::labels_json(&new.labels)),
        current_revision: Set(1),
        etag: Set(new_etag()),
        create_time: Set(now),
        update_time: Set(now),
    }
    .insert(txn)
    .await;
    let p = match inserted {
        Ok(p) => p,
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(StoreError::AlreadyExists(new.name));
        }
        Err(e) => return Err(e.into()),
    };
    let rev = insert_revision(txn, p.id, 1, &new, now).await?;
    set_upstream(txn, p.id, &new.upstream).await?;
    Ok(Written {
        pipeline: records::pipeline_record(p.clone(), records::revision_record(&p.name, rev)?)?,
        created: true,
        revision_created: true,
    })
}

async fn append_revision(
    txn: &DatabaseTransaction,
    current: pipeline::Model,
    new: NewRevision,
    etag: Option<&str>,
) -> Result<Written, StoreError> {
    check_etag(&current, etag)?;
    let head = revision::Entity::find()
        .filter(revision::Column::PipelineId.eq(current.id))
        .filter(revision::Column::Revision.eq(current.current_revision))
        .one(txn)
        .await?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "pipeline {:?} has no current revision",
                current.name
            ))
        })?;
    if head.spec_sha256 == new.spec_sha256 {
        return Ok(Written {
            pipeline: records::pipeline_record(
                current.clone(),
                records::revision_record(&current.name, head)?,
            )?,
            created: false,
            revision_created: false,
        });
    }
    let now = Utc::now();
    let next = current.current_revision + 1;
    let etag = new_etag();
    let updated = pipeline::Entity::update_many()
        .col_expr(pipeline::Column::CurrentRevision, Expr::value(next))
        .col_expr(pipeline::Column::Etag, Expr::value(etag.clone()))
        .col_expr(pipeline::Column::Project, Expr::value(new.project.clone()))
        .col_expr(
            pipeline::Column::PipelineType,
            Expr::value(new.pipeline_type.as_str()),
        )
        .col_expr(
            pipeline::Column::Labels,
            Expr::value(records::labels_json(&new.labels)),
        )
        .col_expr(pipeline::Column::UpdateTime, Expr::value(now))
        .filter(pipeline::Column::Id.eq(current.id))
        .filter(pipeline::Column::CurrentRevision.eq(current.current_revision))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Conflict(current.name));
    }
    let rev = insert_revision(txn, current.id, next, &new, now).await?;
    set_upstream(txn, current.id, &new.upstream).await?;
    let p = pipeline::Model {
        current_revision: next,
        etag,
        project: new.project.clone(),
        pipeline_type: new.pipeline_type.as_str().to_owned(),
        labels: records::labels_json(&new.labels),
        update_time: now,
        ..current
    };
    Ok(Written {
        pipeline: records::pipeline_record(p.clone(), records::revision_record(&p.name, rev)?)?,
        created: false,
        revision_created: true,
    })
}

/// Makes `upstream` the pipelines `pipeline_id` takes artifacts from.
async fn set_upstream(
    txn: &DatabaseTransaction,
    pipeline_id: i64,
    upstream: &[String],
) -> Result<(), StoreError> {
    upstream::Entity::delete_many()
        .filter(upstream::Column::PipelineId.eq(pipeline_id))
        .exec(txn)
        .await?;
    if !upstream.is_empty() {
        upstream::Entity::insert_many(upstream.iter().map(|name| upstream::ActiveModel {
            pipeline_id: Set(pipeline_id),
            upstream: Set(name.clone()),
        }))
        .exec(txn)
        .await?;
    }
    Ok(())
}

async fn insert_revision(
    txn: &DatabaseTransaction,
    pipeline_id: i64,
    number: i64,
    new: &NewRevision,
    now: chrono::DateTime<Utc>,
) -> Result<revision::Model, StoreError> {
    let inserted = revision::ActiveModel {
        id: NotSet,
        pipeline_id: Set(pipeline_id),
        revision: Set(number),
        spec_sha256: Set(new.spec_sha256.clone()),
        author: Set(new.author.clone()),
        message: Set(new.message.clone()),
        source: Set(new.source.clone()),
        source_format: Set(new.source_format.as_str().to_owned()),
        canonical_spec: Set(new.canonical_spec.clone()),
        non_conformance_accepted: Set(new.non_conformance_accepted),
        conformance: Set(serde_json::to_string(&new.conformance)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?),
        create_time: Set(now),
    }
    .insert(txn)
    .await;
    match inserted {
        Ok(rev) => Ok(rev),
        // Two writers raced for the same revision number.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(StoreError::Conflict(new.name.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The result of a mutation already applied under `request_id`.
async fn replay(
    txn: &DatabaseTransaction,
    request_id: Option<&str>,
    fingerprint: &str,
) -> Result<Option<Written>, StoreError> {
    let Some(id) = request_id else {
        return Ok(None);
    };
    let Some(done) = request::Entity::find_by_id(id.to_owned()).one(txn).await? else {
        return Ok(None);
    };
    if done.fingerprint != fingerprint {
        return Err(StoreError::RequestIdReused(id.to_owned()));
    }
    // Replays are rare; read through without caching.
    let uncached = cache::RevisionCache::new(0);
    let pipeline = load(txn, &uncached, &done.pipeline_name, Some(done.revision)).await?;
    Ok(Some(Written {
        pipeline,
        created: done.created,
        revision_created: done.revision_created,
    }))
}

async fn remember(
    txn: &DatabaseTransaction,
    request_id: Option<&str>,
    fingerprint: &str,
    written: &Written,
) -> Result<(), StoreError> {
    let Some(id) = request_id else { return Ok(()) };
    request::ActiveModel {
        request_id: Set(id.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        pipeline_name: Set(written.pipeline.name.clone()),
        revision: Set(written.pipeline.revision.revision),
        created: Set(written.created),
        revision_created: Set(written.revision_created),
        create_time: Set(Utc::now()),
    }
    .insert(txn)
    .await
    .map_err(|e| match e.sql_err() {
        // A concurrent retry of the same request committed first.
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            StoreError::Conflict(written.pipeline.name.clone())
        }
        _ => e.into(),
    })?;
    Ok(())
}
