//! Hand-built events, as the execution service publishes them.

use chrono::{DateTime, Duration, Utc};
use conveyor_api::common::v1 as common;
use conveyor_api::events::v1 as ev;
use conveyor_api::events::v1::event::Payload as P;
use conveyor_api::execution::v1 as exec;
use conveyor_api::time::timestamp;

pub const PIPELINE: &str = "pipelines/shop";
pub const PROJECT: &str = "retail";

/// A history built one event at a time, each at its own time.
pub struct Script {
    pub pipeline: String,
    pub events: Vec<ev::Event>,
}

fn event(kind: &str, at: DateTime<Utc>, payload: P) -> ev::Event {
    ev::Event {
        id: uuid::Uuid::now_v7().to_string(),
        time: Some(timestamp(at)),
        source: "conveyor.execution".into(),
        r#type: kind.into(),
        subject: String::new(),
        schema_version: 1,
        payload: Some(payload),
        ..Default::default()
    }
}

/// Stages of the pipeline used below: build, beta, prod.
pub fn stage(name: &str) -> ev::StageContext {
    let (environment, tier) = match name {
        "beta" => ("beta", common::Tier::Beta),
        "prod" => ("prod", common::Tier::Production),
        _ => ("", common::Tier::Unspecified),
    };
    ev::StageContext {
        stage: name.into(),
        environment: environment.into(),
        tier: tier as i32,
    }
}

impl Script {
    pub fn new(pipeline: &str) -> Script {
        Script {
            pipeline: pipeline.into(),
            events: Vec::new(),
        }
    }

    pub fn ctx(&self, run: &str) -> ev::ExecutionContext {
        ev::ExecutionContext {
            execution: format!("{}/executions/{run}", self.pipeline),
            pipeline: self.pipeline.clone(),
            project: PROJECT.into(),
            pipeline_type: common::PipelineType::Application as i32,
            revision: format!("{}/revisions/1", self.pipeline),
            build_only: false,
        }
    }

    /// A run starts carrying `commits` (sha, landed at).
    pub fn start(&mut self, run: &str, at: DateTime<Utc>, commits: &[(&str, DateTime<Utc>)]) {
        let commits: Vec<exec::Commit> = commits
            .iter()
            .map(|(sha, landed)| exec::Commit {
                sha: (*sha).into(),
                branch: "main".into(),
                author: "dev".into(),
                land_time: Some(timestamp(*landed)),
                ..Default::default()
            })
            .collect();
        let payload = P::ExecutionStarted(ev::ExecutionStarted {
            context: Some(self.ctx(run)),
            commit: commits.last().cloned(),
            commits,
            ..Default::default()
        });
        self.events.push(event("execution.started", at, payload));
    }

    pub fn stage_started(&mut self, run: &str, name: &str, at: DateTime<Utc>) {
        let payload = P::StageStarted(ev::StageStarted {
            context: Some(self.ctx(run)),
            stage: Some(stage(name)),
            targets: vec![common::Target {
                account: "111".into(),
                region: "eu-west-1".into(),
            }],
            artifacts: vec![common::ArtifactRef {
                digest: format!("sha256:{run}"),
                name: "app.tar".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        self.events
            .push(event("execution.stage.started", at, payload));
    }

    /// A stage runs from `at` for `minutes` and succeeds.
    pub fn stage_ok(&mut self, run: &str, name: &str, at: DateTime<Utc>, minutes: i64) {
        self.stage_started(run, name, at);
        let end = at + Duration::minutes(minutes);
        let budget = match name {
            "build" => 600,
            "beta" => 1800,
            _ => 0,
        };
        let payload = P::StageSucceeded(ev::StageSucceeded {
            context: Some(self.ctx(run)),
            stage: Some(stage(name)),
            start_time: Some(timestamp(at)),
            end_time: Some(timestamp(end)),
            budget: (budget > 0).then_some(prost_types::Duration {
                seconds: budget,
                nanos: 0,
            }),
            ..Default::default()
        });
        self.events
            .push(event("execution.stage.succeeded", end, payload));
    }

    pub fn stage_failed(&mut self, run: &str, name: &str, at: DateTime<Utc>, minutes: i64) {
        self.stage_started(run, name, at);
        let end = at + Duration::minutes(minutes);
        let payload = P::StageFailed(ev::StageFailed {
            context: Some(self.ctx(run)),
            stage: Some(stage(name)),
            state: exec::StageState::Failed as i32,
            reason: format!("{name} tests failed"),
            start_time: Some(timestamp(at)),
            end_time: Some(timestamp(end)),
            ..Default::default()
        });
        self.events
            .push(event("execution.stage.failed", end, payload));
    }

    /// Production starts at `at`; an alarm at `alarm_at` rolls it back,
    /// restored at `restored_at` to `previous`'s version.
    pub fn rolled_back(
        &mut self,
        run: &str,
        at: DateTime<Utc>,
        alarm_at: DateTime<Utc>,
        restored_at: DateTime<Utc>,
        previous: &str,
    ) {
        self.stage_started(run, "prod", at);
        let payload = P::RollbackStarted(ev::RollbackStarted {
            context: Some(self.ctx(run)),
            stage: Some(stage("prod")),
            wave: 1,
            alarm: "alarms/errors".into(),
            alarm_time: Some(timestamp(alarm_at)),
            restored_execution: format!("{}/executions/{previous}", self.pipeline),
            ..Default::default()
        });
        self.events
            .push(event("execution.rollback.started", alarm_at, payload));
        let payload = P::RollbackCompleted(ev::RollbackCompleted {
            context: Some(self.ctx(run)),
            stage: Some(stage("prod")),
            state: exec::RollbackState::Succeeded as i32,
            alarm: "alarms/errors".into(),
            end_time: Some(timestamp(restored_at)),
            ..Default::default()
        });
        self.events
            .push(event("execution.rollback.completed", restored_at, payload));
        let payload = P::StageFailed(ev::StageFailed {
            context: Some(self.ctx(run)),
            stage: Some(stage("prod")),
            state: exec::StageState::RolledBack as i32,
            reason: "alarm errors fired; rolled back".into(),
            start_time: Some(timestamp(at)),
            end_time: Some(timestamp(restored_at)),
            ..Default::default()
        });
        self.events
            .push(event("execution.stage.failed", restored_at, payload));
    }

    pub fn gate(&mut self, run: &str, at: DateTime<Utc>, passed: bool) {
        let payload = P::GateEvaluated(ev::GateEvaluated {
            context: Some(self.ctx(run)),
            stage: Some(stage("build")),
            kind: exec::GateKind::Sast as i32,
            passed,
            security_control: true,
            ..Default::default()
        });
        self.events
            .push(event("execution.gate.evaluated", at, payload));
    }

    pub fn finish(&mut self, run: &str, at: DateTime<Utc>, outcome: exec::ExecutionState) {
        let payload = P::ExecutionFinished(ev::ExecutionFinished {
            context: Some(self.ctx(run)),
            outcome: outcome as i32,
            end_time: Some(timestamp(at)),
            ..Default::default()
        });
        self.events.push(event("execution.finished", at, payload));
    }

    pub fn alarm(&mut self, at: DateTime<Utc>) {
        let payload = P::AlarmStateChanged(ev::AlarmStateChanged {
            alarm: "alarms/latency".into(),
            scope: Some(exec::AlarmScope {
                pipeline: self.pipeline.clone(),
                ..Default::default()
            }),
            previous_state: exec::AlarmState::Ok as i32,
            state: exec::AlarmState::Alarm as i32,
            ..Default::default()
        });
        self.events.push(event("alarm.state.changed", at, payload));
    }

    /// The definitions service stored a revision with this conformance.
    pub fn revision(&mut self, at: DateTime<Utc>, security_percent: f64) {
        let payload = P::PipelineRevisionCreated(ev::PipelineRevisionCreated {
            pipeline: self.pipeline.clone(),
            project: PROJECT.into(),
            revision: format!("{}/revisions/1", self.pipeline),
            security_control_automation_percent: security_percent,
            ..Default::default()
        });
        self.events
            .push(event("pipeline.revision.created", at, payload));
    }

    /// An action's last attempt failed.
    pub fn action_failed(&mut self, run: &str, stage_name: &str, action: &str, at: DateTime<Utc>) {
        let payload = P::ActionFailed(ev::ActionFailed {
            context: Some(self.ctx(run)),
            stage: Some(stage(stage_name)),
            action: Some(ev::ActionContext {
                action_run: format!("{}/executions/{run}/actionRuns/a1", self.pipeline),
                action: action.into(),
                attempt: 2,
                ..Default::default()
            }),
            state: exec::ActionState::Failed as i32,
            exit_code: Some(1),
            reason: "exit status 1".into(),
            last_attempt: true,
            ..Default::default()
        });
        self.events
            .push(event("execution.action.failed", at, payload));
    }
}
