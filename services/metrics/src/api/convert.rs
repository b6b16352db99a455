//! Requests into queries, records into messages.

use chrono::{DateTime, Duration, Utc};
use conveyor_api::common::v1 as common;
use conveyor_api::metrics::v1 as pb;
use conveyor_api::time::{from_timestamp, timestamp};

use crate::compute::{Window, pb_duration};
use crate::error::Error;
use crate::model::{HealthState, Outcome};
use crate::store::Scope;
use crate::store::entities::{commit, deployment, health, survey};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;
/// The longest window a query may cover.
const MAX_WINDOW_DAYS: i64 = 400;
const DEFAULT_WINDOW_DAYS: i64 = 30;

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// "pipelines/{pipeline}", checked.
pub fn pipeline_name(value: &str, field: &str) -> Result<String, Error> {
    match value.strip_prefix("pipelines/") {
        Some(id) if is_id(id) => Ok(value.to_owned()),
        _ => Err(Error::invalid(
            field,
            format!("{value:?} is not \"pipelines/{{pipeline}}\""),
        )),
    }
}

pub fn scope(s: Option<&pb::MetricsScope>, field: &str) -> Result<Scope, Error> {
    let Some(s) = s else { return Ok(Scope::Fleet) };
    match (s.pipeline.as_str(), s.project.as_str()) {
        ("", "") => Ok(Scope::Fleet),
        (p, "") => Ok(Scope::Pipeline(pipeline_name(
            p,
            &format!("{field}.pipeline"),
        )?)),
        ("", p) => Ok(Scope::Project(p.to_owned())),
        _ => Err(Error::invalid(
            field,
            "set at most one of pipeline and project",
        )),
    }
}

pub fn scope_to_pb(s: &Scope) -> pb::MetricsScope {
    match s {
        Scope::Fleet => pb::MetricsScope::default(),
        Scope::Pipeline(p) => pb::MetricsScope {
            pipeline: p.clone(),
            ..Default::default()
        },
        Scope::Project(p) => pb::MetricsScope {
            project: p.clone(),
            ..Default::default()
        },
    }
}

fn time(t: &Option<prost_types::Timestamp>, field: &str) -> Result<Option<DateTime<Utc>>, Error> {
    match t {
        None => Ok(None),
        Some(t) => from_timestamp(t)
            .map(Some)
            .ok_or_else(|| Error::invalid(field, "a timestamp out of range")),
    }
}

/// The window with defaults filled in: the 30 days before now.
pub fn window(
    w: Option<&pb::TimeWindow>,
    field: &str,
    now: DateTime<Utc>,
) -> Result<Window, Error> {
    let w = w.cloned().unwrap_or_default();
    let end = time(&w.end_time, &format!("{field}.end_time"))?.unwrap_or(now);
    let start = time(&w.start_time, &format!("{field}.start_time"))?
        .unwrap_or(end - Duration::days(DEFAULT_WINDOW_DAYS));
    if start >= end {
        return Err(Error::invalid(field, "start_time must be before end_time"));
    }
    if end - start > Duration::days(MAX_WINDOW_DAYS) {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok(Window { start, end })
}

pub fn granularity(value: i32) -> Result<pb::SeriesGranularity, Error> {
    pb::SeriesGranularity::try_from(value)
        .map_err(|_| Error::invalid("granularity", format!("unknown granularity {value}")))
}

pub fn page_size(value: i32) -> Result<u64, Error> {
    match value {
        v if v < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        v => Ok((v as u64).min(MAX_PAGE_SIZE)),
    }
}

/// A deployments page token: the last record's start time and id.
pub fn deployments_token(d: &deployment::Model) -> String {
    format!("{}.{}", d.start_time.timestamp_micros(), d.id)
}

pub fn parse_deployments_token(token: &str) -> Result<Option<(DateTime<Utc>, String)>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "not a token this service returned");
    let (micros, id) = token.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let time = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok(Some((time, id.to_owned())))
}

pub fn deployment_id(name: &str) -> Result<&str, Error> {
    name.strip_prefix("deployments/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            Error::invalid(
                "name",
                format!("{name:?} is not \"deployments/{{deployment}}\""),
            )
        })
}

/// "pipelines/{p}/health" into "pipelines/{p}".
pub fn health_pipeline(name: &str) -> Result<String, Error> {
    name.strip_suffix("/health")
        .and_then(|p| pipeline_name(p, "name").ok())
        .ok_or_else(|| {
            Error::invalid(
                "name",
                format!("{name:?} is not \"pipelines/{{pipeline}}/health\""),
            )
        })
}

pub fn outcome_of(value: &str) -> Outcome {
    Outcome::parse(value).unwrap_or(Outcome::InProgress)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

pub fn deployment(d: deployment::Model, commits: Vec<&commit::Model>) -> pb::Deployment {
    let targets: Vec<(String, String)> = serde_json::from_str(&d.targets).unwrap_or_default();
    let artifact: Option<common::ArtifactRef> =
        serde_json::from_str::<serde_json::Value>(&d.artifact)
            .ok()
            .map(|a| common::ArtifactRef {
                digest: a["digest"].as_str().unwrap_or_default().to_owned(),
                name: a["name"].as_str().unwrap_or_default().to_owned(),
                size_bytes: a["sizeBytes"].as_i64().unwrap_or_default(),
                commit_sha: a["commitSha"].as_str().unwrap_or_default().to_owned(),
                execution: a["execution"].as_str().unwrap_or_default().to_owned(),
            });
    pb::Deployment {
        name: format!("deployments/{}", d.id),
        execution: d.execution,
        pipeline: d.pipeline,
        project: d.project,
        pipeline_type: d.pipeline_type,
        environment: d.environment,
        tier: d.tier,
        targets: targets
            .into_iter()
            .map(|(account, region)| common::Target { account, region })
            .collect(),
        artifact,
        commits: commits
            .into_iter()
            .map(|c| pb::DeployedCommit {
                sha: c.sha.clone(),
                author: c.author.clone(),
                land_time: Some(timestamp(c.land_time)),
                commit_time: opt_ts(c.commit_time),
                lead_time: c
                    .lead_time_ms
                    .map(|ms| pb_duration(Duration::milliseconds(ms))),
            })
            .collect(),
        outcome: outcome_of(&d.outcome).to_pb() as i32,
        start_time: Some(timestamp(d.start_time)),
        first_wave_end_time: opt_ts(d.first_wave_end_time),
        end_time: opt_ts(d.end_time),
        change_failure: d.change_failure,
        failure_alarm: d.failure_alarm,
        failure_detect_time: opt_ts(d.failure_detect_time),
        restore_time: opt_ts(d.restore_time),
        restored_by: if d.restored_by.is_empty() {
            String::new()
        } else {
            format!("deployments/{}", d.restored_by)
        },
    }
}

pub fn health(h: health::Model) -> pb::PipelineHealth {
    pb::PipelineHealth {
        name: format!("{}/health", h.pipeline),
        project: h.project,
        state: HealthState::parse(&h.state)
            .unwrap_or(HealthState::Unknown)
            .to_pb() as i32,
        since: opt_ts(h.since),
        last_execution: h.last_execution,
        last_outcome: if h.last_outcome.is_empty() {
            pb::RunOutcome::Unspecified as i32
        } else {
            outcome_of(&h.last_outcome).to_pb() as i32
        },
        failed_stage: h.failed_stage,
        failure_reason: h.failure_reason,
        current_execution: h.current_execution,
        update_time: Some(timestamp(h.update_time)),
    }
}

pub fn health_states(values: &[i32]) -> Result<Vec<String>, Error> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match pb::MainlineHealthState::try_from(*v) {
            Ok(pb::MainlineHealthState::Green) => Ok(HealthState::Green.as_str().to_owned()),
            Ok(pb::MainlineHealthState::Red) => Ok(HealthState::Red.as_str().to_owned()),
            Ok(pb::MainlineHealthState::Unspecified) => {
                Ok(HealthState::Unknown.as_str().to_owned())
            }
            Err(_) => Err(Error::invalid(
                format!("states[{i}]"),
                format!("unknown state {v}"),
            )),
        })
        .collect()
}

pub fn outcomes(values: &[i32]) -> Result<Vec<Outcome>, Error> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            pb::RunOutcome::try_from(*v)
                .ok()
                .and_then(Outcome::from_pb)
                .ok_or_else(|| {
                    Error::invalid(format!("outcomes[{i}]"), format!("unknown outcome {v}"))
                })
        })
        .collect()
}

pub fn tiers(values: &[i32]) -> Result<Vec<i32>, Error> {
    for (i, v) in values.iter().enumerate() {
        match common::Tier::try_from(*v) {
            Ok(common::Tier::Unspecified) | Err(_) => {
                return Err(Error::invalid(
                    format!("tiers[{i}]"),
                    format!("unknown tier {v}"),
                ));
            }
            Ok(_) => {}
        }
    }
    Ok(values.to_vec())
}

/// A survey response to store, checked field by field.
pub fn new_survey(r: pb::RecordSurveyRequest, now: DateTime<Utc>) -> Result<survey::Model, Error> {
    let s = r
        .survey_response
        .ok_or_else(|| Error::invalid("survey_response", "required"))?;
    let scope = scope(s.scope.as_ref(), "survey_response.scope")?;
    let period = s
        .period
        .ok_or_else(|| Error::invalid("survey_response.period", "required"))?;
    let start = time(&period.start_time, "survey_response.period.start_time")?
        .ok_or_else(|| Error::invalid("survey_response.period.start_time", "required"))?;
    let end = time(&period.end_time, "survey_response.period.end_time")?
        .ok_or_else(|| Error::invalid("survey_response.period.end_time", "required"))?;
    if start >= end {
        return Err(Error::invalid(
            "survey_response.period",
            "start_time must be before end_time",
        ));
    }
    if s.answers.is_empty() {
        return Err(Error::invalid(
            "survey_response.answers",
            "at least one answer",
        ));
    }
    let mut answers: Vec<(i32, i32)> = Vec::new();
    for (i, a) in s.answers.iter().enumerate() {
        let field = format!("survey_response.answers[{i}]");
        match pb::SurveyMetric::try_from(a.metric) {
            Ok(pb::SurveyMetric::Unspecified) | Err(_) => {
                return Err(Error::invalid(format!("{field}.metric"), "a survey metric"));
            }
            Ok(_) => {}
        }
        if !(1..=5).contains(&a.score) {
            return Err(Error::invalid(
                format!("{field}.score"),
                format!("{} is not a Likert score from 1 to 5", a.score),
            ));
        }
        if answers.iter().any(|(m, _)| *m == a.metric) {
            return Err(Error::invalid(
                format!("{field}.metric"),
                "each metric at most once",
            ));
        }
        answers.push((a.metric, a.score));
    }
    for (field, value, max) in [
        ("team", &s.team, 200),
        ("respondent", &s.respondent, 200),
        ("comment", &s.comment, 4096),
    ] {
        if value.len() > max {
            return Err(Error::invalid(
                format!("survey_response.{field}"),
                format!("at most {max} bytes"),
            ));
        }
    }
    let (pipeline, project) = match scope {
        Scope::Fleet => (String::new(), String::new()),
        Scope::Pipeline(p) => (p, String::new()),
        Scope::Project(p) => (String::new(), p),
    };
    Ok(survey::Model {
        id: uuid::Uuid::now_v7().simple().to_string(),
        pipeline,
        project,
        team: s.team,
        respondent: s.respondent,
        period_start: start,
        period_end: end,
        answers: serde_json::to_string(&answers).unwrap_or_default(),
        comment: s.comment,
        request_id: (!r.request_id.is_empty()).then_some(r.request_id),
        create_time: now,
    })
}

fn survey_answers(s: &survey::Model) -> Vec<(i32, i32)> {
    serde_json::from_str(&s.answers).unwrap_or_default()
}

pub fn survey(s: survey::Model) -> pb::SurveyResponse {
    let scope = if !s.pipeline.is_empty() {
        Scope::Pipeline(s.pipeline.clone())
    } else if !s.project.is_empty() {
        Scope::Project(s.project.clone())
    } else {
        Scope::Fleet
    };
    pb::SurveyResponse {
        name: format!("surveyResponses/{}", s.id),
        scope: Some(scope_to_pb(&scope)),
        team: s.team.clone(),
        respondent: s.respondent.clone(),
        period: Some(pb::TimeWindow {
            start_time: Some(timestamp(s.period_start)),
            end_time: Some(timestamp(s.period_end)),
        }),
        answers: survey_answers(&s)
            .into_iter()
            .map(|(metric, score)| pb::SurveyAnswer { metric, score })
            .collect(),
        comment: s.comment,
        create_time: Some(timestamp(s.create_time)),
    }
}

/// Mean score per metric over `responses`, in metric order.
pub fn survey_summary(responses: &[survey::Model]) -> pb::SurveySummary {
    let mut totals: std::collections::BTreeMap<i32, (i64, i64)> = Default::default();
    for s in responses {
        for (metric, score) in survey_answers(s) {
            let entry = totals.entry(metric).or_default();
            entry.0 += score as i64;
            entry.1 += 1;
        }
    }
    pb::SurveySummary {
        scores: totals
            .into_iter()
            .map(|(metric, (sum, n))| pb::SurveyScore {
                metric,
                mean_score: sum as f64 / n as f64,
                responses: n,
            })
            .collect(),
    }
}
