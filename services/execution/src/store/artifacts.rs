//! The artifacts index: which signed digest each execution stored under
//! each declared output name. The bytes live in the artifact store.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::artifact;
use super::{Store, StoreError};
use crate::model::{Artifact, ArtifactKind};

fn from_row(m: artifact::Model) -> Result<Artifact, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("artifact {}: {what}", m.name));
    Ok(Artifact {
        kind: ArtifactKind::parse(&m.kind).ok_or_else(|| corrupt(format!("kind {:?}", m.kind)))?,
        signature: conveyor_platform::signing::Signature {
            algorithm: m.signature_algorithm.clone(),
            key_id: m.signature_key_id.clone(),
            value: hex::decode(&m.signature).map_err(|e| corrupt(format!("signature: {e}")))?,
        },
        annotations: serde_json::from_str(&m.annotations)
            .map_err(|e| corrupt(format!("annotations: {e}")))?,
        execution_id: m.execution_id,
        pipeline: m.pipeline,
        name: m.name,
        action_id: m.action_id,
        stage_index: m.stage_index,
        digest: m.digest,
        size_bytes: m.size_bytes,
        media_type: m.media_type,
        subject_digest: m.subject_digest,
        commit_sha: m.commit_sha,
        create_time: m.create_time,
    })
}

impl Store {
    /// Records an artifact; a later upload under the same execution and
    /// name (a retried attempt) replaces the earlier one.
    pub async fn put_artifact(&self, a: &Artifact) -> Result<(), StoreError> {
        let row = artifact::ActiveModel {
            execution_id: Set(a.execution_id.clone()),
            name: Set(a.name.clone()),
            pipeline: Set(a.pipeline.clone()),
            action_id: Set(a.action_id.clone()),
            stage_index: Set(a.stage_index),
            kind: Set(a.kind.as_str().to_owned()),
            digest: Set(a.digest.clone()),
            size_bytes: Set(a.size_bytes),
            media_type: Set(a.media_type.clone()),
            subject_digest: Set(a.subject_digest.clone()),
            commit_sha: Set(a.commit_sha.clone()),
            signature_algorithm: Set(a.signature.algorithm.clone()),
            signature_key_id: Set(a.signature.key_id.clone()),
            signature: Set(hex::encode(&a.signature.value)),
            annotations: Set(serde_json::to_string(&a.annotations).unwrap_or_else(|_| "{}".into())),
            create_time: Set(a.create_time),
        };
        artifact::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([artifact::Column::ExecutionId, artifact::Column::Name])
                    .update_columns([
                        artifact::Column::ActionId,
                        artifact::Column::StageIndex,
                        artifact::Column::Kind,
                        artifact::Column::Digest,
                        artifact::Column::SizeBytes,
                        artifact::Column::MediaType,
                        artifact::Column::SubjectDigest,
                        artifact::Column::CommitSha,
                        artifact::Column::SignatureAlgorithm,
                        artifact::Column::SignatureKeyId,
                        artifact::Column::Signature,
                        artifact::Column::Annotations,
                        artifact::Column::CreateTime,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The artifacts an execution stored, in name order.
    pub async fn artifacts(&self, execution_id: &str) -> Result<Vec<Artifact>, StoreError> {
        artifact::Entity::find()
            .filter(artifact::Column::ExecutionId.eq(execution_id))
            .order_by_asc(artifact::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }
}

/// The artifacts the events of `s`'s transitions name: one query, made only
/// when an event names artifacts.
pub(super) async fn for_events<C: sea_orm::ConnectionTrait>(
    db: &C,
    s: &crate::model::Snapshot,
) -> Result<crate::events::EventArtifacts, StoreError> {
    let mut ids = vec![s.execution.id.clone()];
    ids.extend(s.last_good.as_ref().map(|g| g.execution_id.clone()));
    let rows = artifact::Entity::find()
        .filter(artifact::Column::ExecutionId.is_in(ids))
        .filter(
            artifact::Column::Kind
                .is_in([ArtifactKind::Package.as_str(), ArtifactKind::Sbom.as_str()]),
        )
        .order_by_asc(artifact::Column::Name)
        .all(db)
        .await?;
    let mut out = crate::events::EventArtifacts::default();
    for row in rows {
        let a = from_row(row)?;
        let reference = crate::events::artifact_ref(&a);
        let package = a.kind == ArtifactKind::Package;
        if a.execution_id == s.execution.id {
            if package && out.package.is_none() {
                out.package = Some(reference.clone());
            }
            out.built.push(reference);
        } else if package && out.restored.is_none() {
            out.restored = Some(reference);
        }
    }
    Ok(out)
}
