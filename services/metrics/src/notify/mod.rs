//! Notifications: which events are worth telling someone about (`notices`),
//! the rules that route them to channels, and the sender that delivers them
//! with retries (`sender`, `channels`).
//!
//! Matching runs in the ingest transaction, so a delivery is recorded once
//! per rule and event (a unique key), however often the event arrives.
//! Sending is at least once: a crash after a channel accepted a message and
//! before the delivery was marked can send it again, so webhooks carry the
//! event id (`X-Conveyor-Event-Id`) for receivers to deduplicate.

pub mod channels;
pub mod sender;

use chrono::{DateTime, Utc};
use conveyor_api::events::v1 as ev;
use conveyor_api::events::v1::event::Payload as P;
use conveyor_api::execution::v1 as exec;
use conveyor_api::metrics::v1 as pb;
use serde::{Deserialize, Serialize};

/// One thing to tell: what happened, to which pipeline, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// The event it comes from (for mainline changes: that event's id
    /// with a `:mainline` suffix).
    pub event_id: String,
    pub event_type: String,
    /// `pb::NotificationEvent` as its name, e.g. "NOTIFICATION_EVENT_ACTION_FAILED".
    pub notification: String,
    pub time: DateTime<Utc>,
    pub subject: String,
    pub pipeline: String,
    pub project: String,
    pub execution: String,
    pub title: String,
    pub text: String,
}

impl Notice {
    pub fn kind(&self) -> pb::NotificationEvent {
        pb::NotificationEvent::from_str_name(&self.notification)
            .unwrap_or(pb::NotificationEvent::Unspecified)
    }
}

/// Where a rule's notifications go, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Channel {
    Webhook {
        url: String,
        #[serde(default)]
        secret_ref: String,
    },
    Slack {
        url: String,
    },
    Email {
        to: Vec<String>,
        #[serde(default)]
        subject_prefix: String,
    },
}

fn notice(
    event: &ev::Event,
    kind: pb::NotificationEvent,
    ctx: &ev::ExecutionContext,
    title: String,
    text: String,
) -> Notice {
    Notice {
        event_id: event.id.clone(),
        event_type: event.r#type.clone(),
        notification: kind.as_str_name().to_owned(),
        time: event
            .time
            .as_ref()
            .and_then(conveyor_api::time::from_timestamp)
            .unwrap_or_else(Utc::now),
        subject: event.subject.clone(),
        pipeline: ctx.pipeline.clone(),
        project: ctx.project.clone(),
        execution: ctx.execution.clone(),
        title,
        text,
    }
}

fn short(execution: &str) -> &str {
    let id = execution.rsplit('/').next().unwrap_or(execution);
    &id[..id.len().min(12)]
}

fn stage_name(stage: &Option<ev::StageContext>) -> &str {
    stage.as_ref().map_or("", |s| s.stage.as_str())
}

/// The notices an event gives rise to. Runs of branches other than the
/// trunk (build only) notify nobody.
pub fn notices(event: &ev::Event) -> Vec<Notice> {
    use pb::NotificationEvent as N;
    let Some(payload) = &event.payload else {
        return Vec::new();
    };
    let one = |kind, ctx: &ev::ExecutionContext, title: String, text: String| {
        if ctx.build_only {
            Vec::new()
        } else {
            vec![notice(event, kind, ctx, title, text)]
        }
    };
    match payload {
        P::ActionFailed(e) if e.last_attempt => {
            let (Some(ctx), Some(action)) = (&e.context, &e.action) else {
                return Vec::new();
            };
            let pipeline = crate::model::pipeline_id(&ctx.pipeline);
            one(
                N::ActionFailed,
                ctx,
                format!("{pipeline}: action {} failed", action.action),
                format!(
                    "Action {} of stage {} failed in execution {}{}: {}",
                    action.action,
                    stage_name(&e.stage),
                    short(&ctx.execution),
                    action
                        .target
                        .as_ref()
                        .map(|t| format!(" (target {}/{})", t.account, t.region))
                        .unwrap_or_default(),
                    e.reason
                ),
            )
        }
        P::ApprovalRequested(e) => {
            let Some(ctx) = &e.context else {
                return Vec::new();
            };
            let pipeline = crate::model::pipeline_id(&ctx.pipeline);
            one(
                N::ApprovalNeeded,
                ctx,
                format!("{pipeline}: {} waits for approval", stage_name(&e.stage)),
                format!(
                    "Execution {} waits for {} approval(s) before stage {}; approvers: {}",
                    short(&ctx.execution),
                    e.required_approvals.max(1),
                    stage_name(&e.stage),
                    if e.approvers.is_empty() {
                        "anyone allowed".to_owned()
                    } else {
                        e.approvers.join(", ")
                    }
                ),
            )
        }
        P::RollbackStarted(e) => {
            let Some(ctx) = &e.context else {
                return Vec::new();
            };
            let pipeline = crate::model::pipeline_id(&ctx.pipeline);
            one(
                N::RolledBack,
                ctx,
                format!("{pipeline}: rolling back {}", stage_name(&e.stage)),
                format!(
                    "Execution {} is rolling back stage {} in wave {}: {}",
                    short(&ctx.execution),
                    stage_name(&e.stage),
                    e.wave,
                    e.reason
                ),
            )
        }
        P::ExecutionFinished(e) => {
            let Some(ctx) = &e.context else {
                return Vec::new();
            };
            let pipeline = crate::model::pipeline_id(&ctx.pipeline);
            match exec::ExecutionState::try_from(e.outcome) {
                Ok(exec::ExecutionState::Succeeded) => one(
                    N::Succeeded,
                    ctx,
                    format!("{pipeline}: execution succeeded"),
                    format!("Execution {} succeeded.", short(&ctx.execution)),
                ),
                Ok(exec::ExecutionState::Failed) => one(
                    N::Failed,
                    ctx,
                    format!("{pipeline}: execution failed"),
                    format!(
                        "Execution {} failed in stage {}: {}",
                        short(&ctx.execution),
                        e.failed_stage,
                        e.reason
                    ),
                ),
                _ => Vec::new(),
            }
        }
        P::PromotionBlocked(e) => vec![promotion(
            event,
            &e.pipeline,
            &e.project,
            true,
            &e.stage,
            &e.reason,
        )],
        P::PromotionUnblocked(e) => {
            vec![promotion(
                event,
                &e.pipeline,
                &e.project,
                false,
                &e.stage,
                &e.reason,
            )]
        }
        _ => Vec::new(),
    }
}

fn promotion(
    event: &ev::Event,
    pipeline: &str,
    project: &str,
    blocked: bool,
    stage: &str,
    reason: &str,
) -> Notice {
    let ctx = ev::ExecutionContext {
        pipeline: pipeline.to_owned(),
        project: project.to_owned(),
        ..Default::default()
    };
    let what = if blocked { "blocked" } else { "unblocked" };
    let scope = if stage.is_empty() {
        "every stage".to_owned()
    } else {
        format!("stage {stage}")
    };
    notice(
        event,
        pb::NotificationEvent::PromotionBlocked,
        &ctx,
        format!("{}: promotion {what}", crate::model::pipeline_id(pipeline)),
        format!("Promotion of {scope} was {what}: {reason}"),
    )
}

/// The notice of a pipeline's mainline turning red or green, caused by
/// `event` (the run's `execution.finished`).
pub fn mainline(
    event_id: &str,
    time: DateTime<Utc>,
    run: &crate::store::entities::run::Model,
    green: bool,
) -> Notice {
    let pipeline = crate::model::pipeline_id(&run.pipeline);
    let (kind, title, text) = if green {
        (
            pb::NotificationEvent::MainlineGreen,
            format!("{pipeline}: mainline is green again"),
            format!(
                "Execution {} succeeded; the trunk is deployable.",
                short(&run.execution)
            ),
        )
    } else {
        (
            pb::NotificationEvent::MainlineRed,
            format!("{pipeline}: mainline is red"),
            format!(
                "Execution {} failed in stage {}: {}",
                short(&run.execution),
                run.failed_stage,
                run.failure_reason
            ),
        )
    };
    Notice {
        event_id: format!("{event_id}:mainline"),
        event_type: "execution.finished".to_owned(),
        notification: kind.as_str_name().to_owned(),
        time,
        subject: run.execution.clone(),
        pipeline: run.pipeline.clone(),
        project: run.project.clone(),
        execution: run.execution.clone(),
        title,
        text,
    }
}

/// Whether a rule (its scope and events) wants a notice.
pub fn matches(rule: &crate::store::entities::notification_rule::Model, n: &Notice) -> bool {
    if rule.disabled
        || (!rule.pipeline.is_empty() && rule.pipeline != n.pipeline)
        || (!rule.project.is_empty() && rule.project != n.project)
    {
        return false;
    }
    let events: Vec<i32> = serde_json::from_str(&rule.events).unwrap_or_default();
    events.contains(&(n.kind() as i32))
}
