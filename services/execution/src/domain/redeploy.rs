//! Redeploys: an execution that deploys an earlier execution's artifacts
//! again instead of building, e.g. to roll a configuration back to the
//! version before the one in production. The new execution takes the
//! earlier one's commit and upstream pins, and a copy of its package and
//! SBOM records (same digests, same signed blobs), so every later stage,
//! its rollbacks, its provenance and its publish treat them as its own.
//! The stages before the first environment stage are skipped (see
//! `engine::plan`); the environment stages run as usual.

use chrono::Utc;

use super::Executions;
use super::upstream::execution_name;
use crate::error::Error;
use crate::model::*;
use crate::store::StoreError;

impl Executions {
    /// The execution named by `redeploy` (`pipelines/P/executions/E`), if
    /// `pipeline` may redeploy it: one of its own that succeeded on trunk.
    pub(super) async fn redeployable(
        &self,
        pipeline: &str,
        redeploy: &str,
    ) -> Result<Execution, Error> {
        let field = "redeploy";
        let (of, id) = execution_name(redeploy).ok_or_else(|| {
            Error::invalid(
                field,
                format!("{redeploy:?} is not an execution name \"pipelines/{{pipeline}}/executions/{{execution}}\""),
            )
        })?;
        if of != pipeline {
            return Err(Error::invalid(
                field,
                format!("{redeploy} is not an execution of pipelines/{pipeline}"),
            ));
        }
        let earlier = match self.store.execution(id).await {
            Ok(e) if e.pipeline == pipeline => e,
            Ok(_) | Err(StoreError::NotFound(_)) => {
                return Err(Error::invalid(field, format!("{redeploy} not found")));
            }
            Err(e) => return Err(e.into()),
        };
        if !earlier.published() {
            return Err(Error::invalid(
                field,
                format!(
                    "{redeploy} is {}{}: only a successful trunk execution can be redeployed",
                    earlier.state.as_str(),
                    if earlier.build_only {
                        " (build only)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(earlier)
    }

    /// Records `from`'s packages and SBOMs as artifacts of execution `to`.
    pub(super) async fn copy_artifacts(&self, from: &str, to: &str) -> Result<(), Error> {
        let now = Utc::now();
        for artifact in self.store.artifacts(from).await? {
            if !artifact.kind.is_input() {
                continue;
            }
            self.store
                .put_artifact(&Artifact {
                    execution_id: to.to_owned(),
                    create_time: now,
                    ..artifact
                })
                .await?;
        }
        Ok(())
    }
}
