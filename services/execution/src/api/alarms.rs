//! AlarmService: external monitors report alarm states; production stages
//! do not start while one of their alarms is in ALARM.

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::alarm_service_server::{AlarmService, AlarmServiceServer};
use tonic::{Request, Response, Status};

use super::convert::{from_timestamp, timestamp};
use crate::domain::Executions;
use crate::error::Error;
use crate::store::AlarmRecord;

pub struct AlarmApi {
    executions: Executions,
}

impl AlarmApi {
    pub fn new(executions: Executions) -> Self {
        AlarmApi { executions }
    }

    pub fn into_server(self, max_message_bytes: usize) -> AlarmServiceServer<Self> {
        AlarmServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }
}

fn alarm_id(name: &str) -> Result<&str, Error> {
    name.strip_prefix("alarms/")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::invalid("name", format!("{name:?} is not \"alarms/{{alarm}}\"")))
}

fn state_name(state: i32) -> Result<&'static str, Error> {
    match pb::AlarmState::try_from(state) {
        Ok(pb::AlarmState::Ok) => Ok("ok"),
        Ok(pb::AlarmState::Alarm) => Ok("alarm"),
        Ok(pb::AlarmState::InsufficientData) => Ok("insufficient_data"),
        _ => Err(Error::invalid(
            "state",
            "required: OK, ALARM or INSUFFICIENT_DATA",
        )),
    }
}

/// A stored alarm state ("ok", "alarm", ...) as the contract's enum.
pub fn alarm_state(state: &str) -> pb::AlarmState {
    match state {
        "ok" => pb::AlarmState::Ok,
        "alarm" => pb::AlarmState::Alarm,
        _ => pb::AlarmState::InsufficientData,
    }
}

/// An alarm as the API and its events show it.
pub fn to_pb(a: AlarmRecord) -> pb::Alarm {
    pb::Alarm {
        name: format!("alarms/{}", a.name),
        scope: Some(pb::AlarmScope {
            pipeline: if a.pipeline.is_empty() {
                String::new()
            } else {
                format!("pipelines/{}", a.pipeline)
            },
            environment: a.environment,
            target: None,
        }),
        state: alarm_state(&a.state) as i32,
        reason: a.reason,
        source: if a.source == "health_probe" {
            pb::AlarmSource::HealthProbe
        } else {
            pb::AlarmSource::External
        } as i32,
        state_change_time: Some(timestamp(a.state_change_time)),
        update_time: Some(timestamp(a.update_time)),
        etag: a.update_time.timestamp_micros().to_string(),
    }
}

/// "pipelines/{pipeline}" as the pipeline's name, or empty for every pipeline.
fn pipeline_scope(value: &str, field: &str) -> Result<String, Error> {
    match value {
        "" => Ok(String::new()),
        p => p
            .strip_prefix("pipelines/")
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::invalid(field, "\"pipelines/{pipeline}\" or empty")),
    }
}

#[tonic::async_trait]
impl AlarmService for AlarmApi {
    async fn set_alarm_state(
        &self,
        request: Request<pb::SetAlarmStateRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        let r = request.into_inner();
        let name = alarm_id(&r.name)?.to_owned();
        let state = state_name(r.state)?.to_owned();
        if r.reason.len() > 4096 {
            return Err(Error::invalid("reason", "at most 4096 bytes").into());
        }
        let scope = r.scope.unwrap_or_default();
        let pipeline = pipeline_scope(&scope.pipeline, "scope.pipeline")?;
        let now = chrono::Utc::now();
        let observe_time = r
            .observe_time
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or(now);
        let alarm = self
            .executions
            .set_alarm(AlarmRecord {
                name,
                pipeline,
                environment: scope.environment,
                state,
                reason: r.reason,
                source: "external".to_owned(),
                state_change_time: now,
                observe_time,
                update_time: now,
            })
            .await?;
        Ok(Response::new(to_pb(alarm)))
    }

    async fn get_alarm(
        &self,
        request: Request<pb::GetAlarmRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        let r = request.into_inner();
        let alarm = self.executions.alarm(alarm_id(&r.name)?).await?;
        Ok(Response::new(to_pb(alarm)))
    }

    async fn list_alarms(
        &self,
        request: Request<pb::ListAlarmsRequest>,
    ) -> Result<Response<pb::ListAlarmsResponse>, Status> {
        let r = request.into_inner();
        let pipeline = r
            .pipeline
            .strip_prefix("pipelines/")
            .or((!r.pipeline.is_empty()).then_some(r.pipeline.as_str()));
        let states: Vec<&str> = r
            .states
            .iter()
            .map(|s| state_name(*s))
            .collect::<Result<_, _>>()?;
        let alarms = self
            .executions
            .alarms(pipeline)
            .await?
            .into_iter()
            .filter(|a| states.is_empty() || states.contains(&a.state.as_str()))
            .filter(|a| r.environment.is_empty() || a.environment == r.environment)
            .map(to_pb)
            .collect();
        Ok(Response::new(pb::ListAlarmsResponse {
            alarms,
            next_page_token: String::new(),
        }))
    }

    async fn record_data_points(
        &self,
        request: Request<pb::RecordDataPointsRequest>,
    ) -> Result<Response<pb::RecordDataPointsResponse>, Status> {
        let r = request.into_inner();
        if r.metric.is_empty() || r.metric.len() > 256 {
            return Err(Error::invalid("metric", "1 to 256 bytes").into());
        }
        if r.count < 1 {
            return Err(Error::invalid("count", "at least 1").into());
        }
        let pipeline = pipeline_scope(&r.pipeline, "pipeline")?;
        let time = r
            .observe_time
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(chrono::Utc::now);
        let recent_count = self
            .executions
            .record_data_points(&r.metric, &pipeline, r.count, time)
            .await?;
        Ok(Response::new(pb::RecordDataPointsResponse { recent_count }))
    }
}
