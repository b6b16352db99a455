//! The JSON behind the dashboard: the same DORA computation the gRPC API
//! answers with, plus mainline health, where each pipeline's newest run
//! stands, and the recent deployments.

use axum::http::StatusCode;
use chrono::Utc;
use conveyor_api::metrics::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::compute::{self, Window};
use crate::store::entities::deployment;
use crate::store::{DeploymentFilter, HealthFilter, Scope, Store};

/// `?window=30d&pipeline=pipelines/x` or `&project=y`.
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    window: Option<String>,
    pipeline: Option<String>,
    project: Option<String>,
}

/// A request the dashboard cannot answer, with its HTTP status.
pub struct Refused(pub StatusCode, pub String);

const MAX_DAYS: u64 = 400;

fn seconds(d: Option<prost_types::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.seconds))
}

fn rfc3339(t: Option<chrono::DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

fn parse(q: &DashboardQuery) -> Result<(Window, Scope), Refused> {
    let span = match q.window.as_deref().filter(|w| !w.is_empty()) {
        None => std::time::Duration::from_secs(30 * 86_400),
        Some(w) => {
            humantime::parse_duration(w).map_err(|e| super::bad_request(format!("window: {e}")))?
        }
    };
    if span.is_zero() || span.as_secs() > MAX_DAYS * 86_400 {
        return Err(super::bad_request(format!(
            "window: from 1s to {MAX_DAYS} days"
        )));
    }
    let end = Utc::now();
    let span = chrono::Duration::from_std(span).map_err(|e| super::bad_request(e.to_string()))?;
    let scope = match (q.pipeline.as_deref(), q.project.as_deref()) {
        (Some(p), _) if !p.is_empty() => Scope::Pipeline(
            crate::api::convert::pipeline_name(p, "pipeline")
                .map_err(|e| super::bad_request(e.to_string()))?,
        ),
        (_, Some(p)) if !p.is_empty() => Scope::Project(p.to_owned()),
        _ => Scope::Fleet,
    };
    Ok((
        Window {
            start: end - span,
            end,
        },
        scope,
    ))
}

fn unavailable(e: crate::store::StoreError) -> Refused {
    tracing::warn!(error = %e, "dashboard query failed");
    Refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

pub async fn build(store: &Store, q: &DashboardQuery) -> Result<Value, Refused> {
    let (window, scope) = parse(q)?;
    let summary = store.summary(&scope, window).await.map_err(unavailable)?;
    let dora = compute::dora(window, &summary, pb::SeriesGranularity::Daily);
    let project = match &scope {
        Scope::Project(p) => Some(p.clone()),
        _ => None,
    };
    let mut health = store
        .health_list(
            &HealthFilter {
                project,
                states: Vec::new(),
            },
            None,
            200,
        )
        .await
        .map_err(unavailable)?;
    if let Scope::Pipeline(p) = &scope {
        health.retain(|h| &h.pipeline == p);
    }
    let current: Vec<String> = health
        .iter()
        .map(|h| h.current_execution.clone())
        .filter(|e| !e.is_empty())
        .collect();
    let runs = store.runs(&current).await.map_err(unavailable)?;
    let deployments = store
        .deployments(
            &DeploymentFilter {
                scope: scope.clone(),
                ..Default::default()
            },
            None,
            20,
        )
        .await
        .map_err(unavailable)?;
    let ids: Vec<String> = deployments.iter().map(|d| d.id.clone()).collect();
    let commits = store.commits_of(&ids).await.map_err(unavailable)?;
    let data_time = store.data_time().await.map_err(unavailable)?;

    let f = dora.deployment_frequency.unwrap_or_default();
    let l = dora.lead_time_for_changes.unwrap_or_default();
    let c = dora.change_failure_rate.unwrap_or_default();
    let r = dora.failed_deployment_recovery_time.unwrap_or_default();
    Ok(json!({
        "window": {"start": window.start.to_rfc3339(), "end": window.end.to_rfc3339()},
        "dataTime": rfc3339(data_time),
        "dora": {
            "deployments": f.deployments,
            "perDay": f.per_day,
            "band": pb::DeploymentFrequencyBand::try_from(f.band)
                .map(|b| b.as_str_name().trim_start_matches("DEPLOYMENT_FREQUENCY_BAND_").to_lowercase())
                .unwrap_or_default(),
            "leadTimeMedianSeconds": seconds(l.median),
            "leadTimeP90Seconds": seconds(l.p90),
            "commits": l.commits,
            "changeFailureRate": c.rate,
            "failedDeployments": c.failed_deployments,
            "countedDeployments": c.deployments,
            "recoveryMedianSeconds": seconds(r.median),
            "recoveries": r.recoveries,
            "unrecovered": r.unrecovered,
        },
        "series": dora.series.iter().map(|p| json!({
            "start": p.start_time.as_ref().and_then(conveyor_api::time::from_timestamp).map(|t| t.to_rfc3339()),
            "deployments": p.deployments,
            "leadTimeMedianSeconds": seconds(p.lead_time_median),
            "changeFailureRate": p.change_failure_rate,
            "recoveryMedianSeconds": seconds(p.recovery_time_median),
        })).collect::<Vec<_>>(),
        "pipelines": health.iter().map(|h| {
            let run = runs.iter().find(|r| r.execution == h.current_execution);
            let stages: Vec<(String, String)> = run
                .map(|r| serde_json::from_str(&r.stages).unwrap_or_default())
                .unwrap_or_default();
            json!({
                "name": h.pipeline,
                "project": h.project,
                "health": if h.state.is_empty() { "unknown" } else { h.state.as_str() },
                "since": rfc3339(h.since),
                "failedStage": h.failed_stage,
                "failureReason": h.failure_reason,
                "currentExecution": h.current_execution,
                "currentOutcome": run.map(|r| r.outcome.clone()),
                "stages": stages.iter().map(|(name, state)| json!({"name": name, "state": state})).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "deployments": deployments.iter().map(|d| deployment_json(d, commits.iter().filter(|c| c.deployment.as_deref() == Some(d.id.as_str())).count())).collect::<Vec<_>>(),
    }))
}

fn deployment_json(d: &deployment::Model, commits: usize) -> Value {
    json!({
        "name": format!("deployments/{}", d.id),
        "execution": d.execution,
        "pipeline": d.pipeline,
        "environment": d.environment,
        "production": d.tier == conveyor_api::common::v1::Tier::Production as i32,
        "outcome": d.outcome,
        "startTime": d.start_time.to_rfc3339(),
        "endTime": rfc3339(d.end_time),
        "changeFailure": d.change_failure,
        "restoredBy": d.restored_by,
        "commits": commits,
    })
}
