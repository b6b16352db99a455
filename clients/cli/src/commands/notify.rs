//! `conveyor notify rule add|list|remove` and `notify deliveries`:
//! notification rules and their delivery log on the metrics service.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use conveyor_api::metrics::v1 as pb;
use conveyor_api::metrics::v1::notification_service_client::NotificationServiceClient;
use pb::notification_channel::Kind;
use serde_json::json;

use super::Context;
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// Notification rules.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// The delivery log, newest first.
    Deliveries {
        /// One rule's deliveries [default: every rule's].
        rule: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i32,
    },
}

#[derive(Subcommand)]
pub enum RuleCommand {
    /// Add a rule: which events of which pipelines go to which channel.
    Add(AddArgs),
    /// List rules.
    List,
    /// Remove a rule (its delivery log stays).
    Remove { name: String },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventName {
    ActionFailed,
    ApprovalNeeded,
    RolledBack,
    Succeeded,
    Failed,
    MainlineRed,
    MainlineGreen,
    PromotionBlocked,
}

impl EventName {
    fn to_pb(self) -> pb::NotificationEvent {
        match self {
            EventName::ActionFailed => pb::NotificationEvent::ActionFailed,
            EventName::ApprovalNeeded => pb::NotificationEvent::ApprovalNeeded,
            EventName::RolledBack => pb::NotificationEvent::RolledBack,
            EventName::Succeeded => pb::NotificationEvent::Succeeded,
            EventName::Failed => pb::NotificationEvent::Failed,
            EventName::MainlineRed => pb::NotificationEvent::MainlineRed,
            EventName::MainlineGreen => pb::NotificationEvent::MainlineGreen,
            EventName::PromotionBlocked => pb::NotificationEvent::PromotionBlocked,
        }
    }
}

fn event_name(e: i32) -> String {
    pb::NotificationEvent::try_from(e)
        .map(|e| {
            e.as_str_name()
                .trim_start_matches("NOTIFICATION_EVENT_")
                .to_lowercase()
                .replace('_', "-")
        })
        .unwrap_or_default()
}

#[derive(Args)]
pub struct AddArgs {
    /// The rule's id (lowercase letters, digits, '-').
    id: String,
    /// Only this pipeline's events.
    #[arg(long, conflicts_with = "project")]
    pipeline: Option<String>,
    /// Only events of this project's pipelines.
    #[arg(long)]
    project: Option<String>,
    /// The events to notify about (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    events: Vec<EventName>,
    /// A JSON webhook (signed when --secret-ref is given).
    #[arg(long, group = "channel")]
    webhook: Option<String>,
    /// Where the webhook's HMAC key is read: env:NAME or file:/path.
    #[arg(long, requires = "webhook")]
    secret_ref: Option<String>,
    /// A Slack-compatible incoming webhook URL.
    #[arg(long, group = "channel")]
    slack: Option<String>,
    /// Email recipients (comma-separated), through the service's SMTP server.
    #[arg(long, group = "channel", value_delimiter = ',')]
    email: Vec<String>,
    /// Prepended to email subjects.
    #[arg(long, default_value = "[conveyor]")]
    subject_prefix: String,
}

fn client(ctx: &Context) -> anyhow::Result<NotificationServiceClient<tonic::transport::Channel>> {
    let channel = conveyor_api::client::channel(&ctx.endpoint)
        .with_context(|| format!("invalid endpoint {:?}", ctx.endpoint))?;
    Ok(NotificationServiceClient::new(channel))
}

fn rule_name(r: &str) -> String {
    format!(
        "notificationRules/{}",
        r.trim_start_matches("notificationRules/")
    )
}

fn channel_text(c: &Option<pb::NotificationChannel>) -> String {
    match c.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(Kind::Webhook(w)) if w.secret_ref.is_empty() => format!("webhook {}", w.url),
        Some(Kind::Webhook(w)) => format!("webhook {} (signed)", w.url),
        Some(Kind::Slack(s)) => format!("slack {}", s.url),
        Some(Kind::Email(e)) => format!("email {}", e.to.join(",")),
        None => String::new(),
    }
}

fn rule_json(r: &pb::NotificationRule) -> serde_json::Value {
    json!({
        "name": r.name,
        "pipeline": r.pipeline,
        "project": r.project,
        "events": r.events.iter().map(|e| event_name(*e)).collect::<Vec<_>>(),
        "channel": channel_text(&r.channel),
        "disabled": r.disabled,
        "etag": r.etag,
    })
}

fn delivery_state(s: i32) -> &'static str {
    match pb::DeliveryState::try_from(s) {
        Ok(pb::DeliveryState::Pending) => "pending",
        Ok(pb::DeliveryState::Retrying) => "retrying",
        Ok(pb::DeliveryState::Succeeded) => "succeeded",
        Ok(pb::DeliveryState::Failed) => "failed",
        _ => "",
    }
}

pub async fn run(ctx: &Context, cmd: NotifyCommand) -> anyhow::Result<ExitCode> {
    let mut client = client(ctx)?;
    match cmd {
        NotifyCommand::Rule(RuleCommand::Add(a)) => {
            let kind = if let Some(url) = a.webhook {
                Kind::Webhook(pb::WebhookChannel {
                    url,
                    secret_ref: a.secret_ref.unwrap_or_default(),
                })
            } else if let Some(url) = a.slack {
                Kind::Slack(pb::SlackChannel { url })
            } else if !a.email.is_empty() {
                Kind::Email(pb::EmailChannel {
                    to: a.email,
                    subject_prefix: a.subject_prefix,
                })
            } else {
                anyhow::bail!("give a channel: --webhook, --slack or --email");
            };
            let created = client
                .create_notification_rule(pb::CreateNotificationRuleRequest {
                    notification_rule_id: a.id,
                    notification_rule: Some(pb::NotificationRule {
                        pipeline: a
                            .pipeline
                            .map(|p| format!("pipelines/{}", p.trim_start_matches("pipelines/")))
                            .unwrap_or_default(),
                        project: a.project.unwrap_or_default(),
                        events: a.events.iter().map(|e| e.to_pb() as i32).collect(),
                        channel: Some(pb::NotificationChannel { kind: Some(kind) }),
                        created_by: Some(conveyor_api::common::v1::Principal {
                            id: std::env::var("USER").unwrap_or_default(),
                            groups: Vec::new(),
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&rule_json(&created)),
                OutputFormat::Table => println!("{} added", created.name),
            }
        }
        NotifyCommand::Rule(RuleCommand::List) => {
            let page = client
                .list_notification_rules(pb::ListNotificationRulesRequest {
                    page_size: 500,
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!(
                    page.notification_rules
                        .iter()
                        .map(rule_json)
                        .collect::<Vec<_>>()
                )),
                OutputFormat::Table => output::table(
                    &["RULE", "SCOPE", "EVENTS", "CHANNEL"],
                    &page
                        .notification_rules
                        .iter()
                        .map(|r| {
                            vec![
                                r.name.trim_start_matches("notificationRules/").to_owned(),
                                if !r.pipeline.is_empty() {
                                    r.pipeline.clone()
                                } else if !r.project.is_empty() {
                                    format!("project {}", r.project)
                                } else {
                                    "every pipeline".to_owned()
                                },
                                r.events
                                    .iter()
                                    .map(|e| event_name(*e))
                                    .collect::<Vec<_>>()
                                    .join(","),
                                channel_text(&r.channel),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        NotifyCommand::Rule(RuleCommand::Remove { name }) => {
            client
                .delete_notification_rule(pb::DeleteNotificationRuleRequest {
                    name: rule_name(&name),
                    etag: String::new(),
                })
                .await
                .map_err(to_anyhow)?;
            if ctx.output == OutputFormat::Table {
                println!("{} removed", rule_name(&name));
            }
        }
        NotifyCommand::Deliveries { rule, limit } => {
            let page = client
                .list_deliveries(pb::ListDeliveriesRequest {
                    parent: rule
                        .as_deref()
                        .map_or("notificationRules/-".to_owned(), rule_name),
                    page_size: limit,
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!(
                    page.deliveries
                        .iter()
                        .map(|d| json!({
                            "name": d.name,
                            "eventId": d.event_id,
                            "eventType": d.event_type,
                            "state": delivery_state(d.state),
                            "attempts": d.attempts,
                            "responseCode": d.response_code,
                            "lastError": d.last_error,
                        }))
                        .collect::<Vec<_>>()
                )),
                OutputFormat::Table => output::table(
                    &["DELIVERY", "EVENT", "STATE", "ATTEMPTS", "CODE", "ERROR"],
                    &page
                        .deliveries
                        .iter()
                        .map(|d| {
                            vec![
                                d.name.trim_start_matches("notificationRules/").to_owned(),
                                d.event_type.clone(),
                                delivery_state(d.state).to_owned(),
                                d.attempts.to_string(),
                                d.response_code.to_string(),
                                d.last_error.clone(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
