//! Artifacts flowing between pipelines. An execution of a pipeline with
//! `spec.upstream` pins, when it starts, one published execution of each
//! upstream pipeline (of each optional one that has published) and the
//! artifacts it takes from it. A successful trunk
//! execution leaves a pending trigger (in the transaction that ends it);
//! firing it starts every downstream pipeline that asks to be triggered,
//! pinned to that execution, once (the request id is the pair).

use std::collections::BTreeSet;

use conveyor_definitions::spec::Upstream;

use super::{Executions, StartRequest};
use crate::error::Error;
use crate::model::*;
use crate::specs::SpecError;
use crate::store::StoreError;

/// How far up a chain of triggers the cycle check looks.
const MAX_CHAIN: usize = 16;

/// Who starts triggered executions.
pub const TRIGGER_AUTHOR: &str = "conveyor:trigger";

impl Executions {
    /// The pins of a new execution: for each upstream, the execution named
    /// in `explicit` (`pipelines/P/executions/E`) or else the upstream's
    /// newest successful trunk execution, and the artifacts taken from it.
    pub(super) async fn pin_upstream(
        &self,
        upstream: &[Upstream],
        explicit: &[String],
    ) -> Result<Vec<UpstreamPin>, Error> {
        let mut chosen = Vec::with_capacity(explicit.len());
        for name in explicit {
            let field = "trigger.upstream_execution";
            let (pipeline, id) = execution_name(name)
                .ok_or_else(|| Error::invalid(field, format!("{name:?} is not an execution name \"pipelines/{{pipeline}}/executions/{{execution}}\"")))?;
            if !upstream.iter().any(|u| u.pipeline == pipeline) {
                return Err(Error::invalid(
                    field,
                    format!("pipeline {pipeline:?} is not in this pipeline's spec.upstream"),
                ));
            }
            chosen.push((pipeline.to_owned(), id.to_owned()));
        }
        let mut pins = Vec::new();
        for u in upstream {
            let published = match chosen.iter().find(|(p, _)| *p == u.pipeline) {
                Some((_, id)) => {
                    let e = match self.store.execution(id).await {
                        Ok(e) => e,
                        Err(StoreError::NotFound(_)) => {
                            return Err(Error::invalid(
                                "trigger.upstream_execution",
                                format!("execution {id:?} of pipeline {:?} not found", u.pipeline),
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if e.pipeline != u.pipeline {
                        return Err(Error::invalid(
                            "trigger.upstream_execution",
                            format!("execution {id:?} is not one of pipeline {:?}", u.pipeline),
                        ));
                    }
                    if !e.published() {
                        return Err(Error::UpstreamNotPublished {
                            pipeline: u.pipeline.clone(),
                            why: format!(
                                "execution {id} is {} ({}); only a successful trunk execution publishes",
                                e.state.as_str(),
                                if e.build_only { "build only" } else { "trunk" }
                            ),
                        });
                    }
                    e
                }
                None => match self.store.last_published(&u.pipeline).await? {
                    Some(e) => e,
                    // Nothing to pin yet, and nothing needed.
                    None if u.optional => continue,
                    None => {
                        return Err(Error::UpstreamNotPublished {
                            pipeline: u.pipeline.clone(),
                            why: "no successful trunk execution has published anything yet"
                                .to_owned(),
                        });
                    }
                },
            };
            let stored: Vec<Artifact> = self
                .store
                .artifacts(&published.id)
                .await?
                .into_iter()
                .filter(|a| a.kind.is_input())
                .collect();
            let taken: Vec<&Artifact> = if u.artifacts.is_empty() {
                stored.iter().collect()
            } else {
                let mut taken = Vec::new();
                for name in &u.artifacts {
                    let a = stored.iter().find(|a| &a.name == name).ok_or_else(|| {
                        Error::UpstreamNotPublished {
                            pipeline: u.pipeline.clone(),
                            why: format!(
                                "execution {} published no artifact {name:?}",
                                published.id
                            ),
                        }
                    })?;
                    taken.push(a);
                }
                taken
            };
            if taken.is_empty() {
                return Err(Error::UpstreamNotPublished {
                    pipeline: u.pipeline.clone(),
                    why: format!("execution {} published no artifacts", published.id),
                });
            }
            pins.extend(taken.into_iter().map(|a| UpstreamPin {
                pipeline: u.pipeline.clone(),
                execution_id: published.id.clone(),
                name: a.name.clone(),
                digest: a.digest.clone(),
                size_bytes: a.size_bytes,
                commit_sha: a.commit_sha.clone(),
            }));
        }
        Ok(pins)
    }

    /// Starts the downstream pipelines of every pending publish; returns
    /// how many executions it started. A publish stays pending while the
    /// definitions service cannot be reached, or its trigger fails.
    pub async fn fire_triggers(&self) -> Result<usize, Error> {
        let mut started = 0;
        for (execution_id, pipeline) in self.store.pending_triggers(100).await? {
            match self.fire(&execution_id, &pipeline).await {
                Ok(n) => {
                    started += n;
                    self.store.trigger_done(&execution_id).await?;
                }
                Err(e @ (Error::Unavailable(_) | Error::Contended(_))) => {
                    tracing::warn!(execution = %execution_id, error = %e, "triggers wait for the next pass");
                    return Ok(started);
                }
                // Kept pending and tried again next pass; the publishes
                // after it are not held up.
                Err(e) => {
                    tracing::warn!(execution = %execution_id, error = %e, "firing a trigger failed")
                }
            }
        }
        Ok(started)
    }

    /// Starts each pipeline downstream of `pipeline` that asks to be
    /// triggered, pinned to upstream execution `id`.
    async fn fire(&self, id: &str, pipeline: &str) -> Result<usize, Error> {
        let downstream = self.specs.downstream(pipeline).await?;
        if downstream.is_empty() {
            return Ok(0);
        }
        let chain = self.chain(id).await?;
        let name = format!("pipelines/{pipeline}/executions/{id}");
        let mut started = 0;
        for d in downstream {
            if chain.contains(&d) {
                tracing::warn!(upstream = %name, downstream = %d, "not triggered: the pipeline is already upstream of this execution (a trigger cycle)");
                continue;
            }
            let pinned = match self.specs.current(&d).await {
                Ok(pinned) => pinned,
                Err(SpecError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if !pinned
                .document
                .spec
                .upstream
                .iter()
                .any(|u| u.pipeline == pipeline && u.trigger)
            {
                continue;
            }
            let head = self.store.last_published(&d).await?;
            let request = StartRequest {
                pipeline: d.clone(),
                commit_sha: head
                    .as_ref()
                    .map(|h| h.commit_sha.clone())
                    .unwrap_or_default(),
                author: TRIGGER_AUTHOR.to_owned(),
                message: format!("{name} published"),
                commit_time: head.as_ref().and_then(|h| h.commit_time),
                land_time: head
                    .as_ref()
                    .and_then(|h| h.commits.last())
                    .map(|c| c.land_time),
                request_id: Some(format!("trigger-{id}-{d}")),
                upstream_executions: vec![name.clone()],
                triggered_by: name.clone(),
                ..Default::default()
            };
            // The revision just read is the one the execution pins.
            match self.start_pinned(request, Some(pinned)).await {
                Ok(s) => {
                    tracing::info!(upstream = %name, execution = %s.execution.id, pipeline = %d, "downstream pipeline triggered");
                    started += 1;
                }
                Err(e @ (Error::Unavailable(_) | Error::Contended(_))) => return Err(e),
                // The downstream cannot run with this publish (it lacks an
                // artifact the downstream takes, say): say so and go on.
                Err(e) => {
                    tracing::warn!(upstream = %name, pipeline = %d, error = %e, "downstream pipeline not triggered")
                }
            }
        }
        Ok(started)
    }

    /// The pipelines upstream of execution `id`, itself included, through
    /// the executions its pins name (at most `MAX_CHAIN` levels).
    async fn chain(&self, id: &str) -> Result<BTreeSet<String>, Error> {
        let mut pipelines = BTreeSet::new();
        let mut level = vec![id.to_owned()];
        for _ in 0..MAX_CHAIN {
            let mut next = Vec::new();
            for id in level {
                let e = self.store.execution(&id).await?;
                pipelines.insert(e.pipeline);
                next.extend(e.upstream.into_iter().map(|p| p.execution_id));
            }
            next.sort();
            next.dedup();
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok(pipelines)
    }
}

/// (`pipeline`, `execution`) of `pipelines/{pipeline}/executions/{execution}`.
pub fn execution_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("pipelines/")?;
    let (pipeline, id) = rest.split_once("/executions/")?;
    let valid_id =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    (conveyor_definitions::spec::is_valid_name(pipeline) && valid_id).then_some((pipeline, id))
}

/// How many levels of upstream executions a provenance goes into.
const MAX_PROVENANCE_DEPTH: usize = 8;

/// An execution with the artifacts it stored, and the same for each
/// upstream execution it pinned artifacts from.
pub struct ProvenanceNode {
    pub snapshot: Snapshot,
    pub artifacts: Vec<Artifact>,
    pub upstream: Vec<ProvenanceNode>,
}

type NodeFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ProvenanceNode, Error>> + Send + 'a>>;

impl Executions {
    /// Execution `id` of `pipeline` and, recursively, the upstream
    /// executions it pinned.
    pub async fn provenance(&self, pipeline: &str, id: &str) -> Result<ProvenanceNode, Error> {
        let snapshot = self.get(pipeline, id).await?;
        self.node(snapshot, MAX_PROVENANCE_DEPTH).await
    }

    fn node(&self, snapshot: Snapshot, depth: usize) -> NodeFuture<'_> {
        Box::pin(async move {
            let artifacts = self.store.artifacts(&snapshot.execution.id).await?;
            let mut upstream = Vec::new();
            if depth > 1 {
                let mut seen = BTreeSet::new();
                for pin in &snapshot.execution.upstream {
                    if seen.insert(pin.execution_id.clone()) {
                        let parent = self.store.load(&pin.execution_id).await?;
                        upstream.push(self.node(parent, depth - 1).await?);
                    }
                }
            }
            Ok(ProvenanceNode {
                snapshot,
                artifacts,
                upstream,
            })
        })
    }
}
