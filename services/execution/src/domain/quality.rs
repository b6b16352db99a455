//! The model-quality gate's baseline: the model in production is the one
//! the pipeline's newest successful trunk execution (before this one)
//! evaluated, and its value of the gated metric is what a new model is
//! compared with.

use super::Executions;
use crate::error::Error;
use crate::model::{Baseline, Gate};

impl Executions {
    /// For an action with a model-quality gate, the production model's
    /// value of the gated metric; `None` for other actions, and for the
    /// first model of a pipeline.
    pub(super) async fn baseline(
        &self,
        execution_id: &str,
        action_id: &str,
    ) -> Result<Option<Baseline>, Error> {
        let action = self.store.action(action_id).await?;
        let Some(Gate::ModelQuality { metric, .. }) = &action.gate else {
            return Ok(None);
        };
        Ok(self
            .store
            .deployed_metric(execution_id, action.stage_index, &action.name, metric)
            .await?)
    }
}
