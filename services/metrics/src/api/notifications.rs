//! The NotificationService over gRPC: rules checked field by field (a rule
//! that cannot deliver is refused when created, not discovered later) and
//! the delivery log.

use chrono::Utc;
use conveyor_api::metrics::v1 as pb;
use conveyor_api::metrics::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use conveyor_api::time::timestamp;
use tonic::{Request, Response, Status};

use super::convert::{page_size, pipeline_name};
use crate::error::Error;
use crate::notify::Channel;
use crate::notify::channels::{Channels, resolve_secret};
use crate::store::Store;
use crate::store::entities::{delivery, notification_rule};
use crate::store::notifications::{DeliveryFilter, state};

#[derive(Clone)]
pub struct NotificationApi {
    store: Store,
    channels: Channels,
}

impl NotificationApi {
    pub fn new(store: Store, channels: Channels) -> Self {
        NotificationApi { store, channels }
    }

    pub fn into_server(self, max_message_bytes: usize) -> NotificationServiceServer<Self> {
        NotificationServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }
}

fn rule_id(name: &str, field: &str) -> Result<String, Error> {
    name.strip_prefix("notificationRules/")
        .filter(|id| is_rule_id(id))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("{name:?} is not \"notificationRules/{{notification_rule}}\""),
            )
        })
}

fn is_rule_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn http_url(url: &str, field: &str) -> Result<(), Error> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Error::invalid(field, format!("{url:?} is not a URL: {e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(Error::invalid(
            field,
            format!("{url:?} is not an http or https URL"),
        )),
    }
}

fn channel(c: Option<pb::NotificationChannel>, channels: &Channels) -> Result<Channel, Error> {
    use pb::notification_channel::Kind;
    const FIELD: &str = "notification_rule.channel";
    match c.and_then(|c| c.kind) {
        None => Err(Error::invalid(
            FIELD,
            "give a webhook, slack or email channel",
        )),
        Some(Kind::Webhook(w)) => {
            http_url(&w.url, &format!("{FIELD}.webhook.url"))?;
            if !w.secret_ref.is_empty() {
                resolve_secret(&w.secret_ref)
                    .map_err(|e| Error::invalid(format!("{FIELD}.webhook.secret_ref"), e))?;
            }
            Ok(Channel::Webhook {
                url: w.url,
                secret_ref: w.secret_ref,
            })
        }
        Some(Kind::Slack(s)) => {
            http_url(&s.url, &format!("{FIELD}.slack.url"))?;
            Ok(Channel::Slack { url: s.url })
        }
        Some(Kind::Email(e)) => {
            if !channels.email_enabled() {
                return Err(Error::invalid(
                    format!("{FIELD}.email"),
                    "this metrics service has no SMTP server configured (smtp_url)",
                ));
            }
            if e.to.is_empty() {
                return Err(Error::invalid(
                    format!("{FIELD}.email.to"),
                    "at least one address",
                ));
            }
            for (i, address) in e.to.iter().enumerate() {
                address.parse::<lettre::Address>().map_err(|err| {
                    Error::invalid(
                        format!("{FIELD}.email.to[{i}]"),
                        format!("{address:?}: {err}"),
                    )
                })?;
            }
            Ok(Channel::Email {
                to: e.to,
                subject_prefix: e.subject_prefix,
            })
        }
    }
}

fn to_pb(r: notification_rule::Model) -> pb::NotificationRule {
    use pb::notification_channel::Kind;
    let channel = serde_json::from_str::<Channel>(&r.channel).ok().map(|c| {
        let kind = match c {
            Channel::Webhook { url, secret_ref } => {
                Kind::Webhook(pb::WebhookChannel { url, secret_ref })
            }
            // The URL embeds a token: show only the scheme and host.
            Channel::Slack { url } => Kind::Slack(pb::SlackChannel { url: masked(&url) }),
            Channel::Email { to, subject_prefix } => {
                Kind::Email(pb::EmailChannel { to, subject_prefix })
            }
        };
        pb::NotificationChannel { kind: Some(kind) }
    });
    pb::NotificationRule {
        name: format!("notificationRules/{}", r.id),
        display_name: r.display_name,
        pipeline: r.pipeline,
        project: r.project,
        events: serde_json::from_str(&r.events).unwrap_or_default(),
        channel,
        disabled: r.disabled,
        created_by: Some(conveyor_api::common::v1::Principal {
            id: r.created_by,
            groups: Vec::new(),
        }),
        etag: r.etag,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}

fn masked(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => format!(
            "{}://{}/***",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map_or("", |a| a.as_str())
        ),
        Err(_) => "***".to_owned(),
    }
}

fn delivery_state(s: &str) -> pb::DeliveryState {
    match s {
        state::PENDING => pb::DeliveryState::Pending,
        state::RETRYING => pb::DeliveryState::Retrying,
        state::SUCCEEDED => pb::DeliveryState::Succeeded,
        state::FAILED => pb::DeliveryState::Failed,
        _ => pb::DeliveryState::Unspecified,
    }
}

fn delivery_to_pb(d: delivery::Model) -> pb::Delivery {
    let retrying = d.state == state::RETRYING;
    pb::Delivery {
        name: format!("notificationRules/{}/deliveries/{}", d.rule, d.id),
        event_id: d.event_id,
        event_type: d.event_type,
        subject: d.subject,
        state: delivery_state(&d.state) as i32,
        attempts: d.attempts,
        last_error: d.last_error,
        response_code: d.response_code,
        create_time: Some(timestamp(d.create_time)),
        last_attempt_time: d.last_attempt_time.map(timestamp),
        next_attempt_time: retrying.then(|| timestamp(d.next_attempt_time)),
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn create_notification_rule(
        &self,
        request: Request<pb::CreateNotificationRuleRequest>,
    ) -> Result<Response<pb::NotificationRule>, Status> {
        let r = request.into_inner();
        let rule = r
            .notification_rule
            .ok_or_else(|| Error::invalid("notification_rule", "required"))?;
        let id = if r.notification_rule_id.is_empty() {
            format!("rule-{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
        } else if is_rule_id(&r.notification_rule_id) {
            r.notification_rule_id
        } else {
            return Err(Error::invalid(
                "notification_rule_id",
                "lowercase letters, digits and '-', at most 63",
            )
            .into());
        };
        let pipeline = if rule.pipeline.is_empty() {
            String::new()
        } else {
            pipeline_name(&rule.pipeline, "notification_rule.pipeline")?
        };
        if !pipeline.is_empty() && !rule.project.is_empty() {
            return Err(Error::invalid(
                "notification_rule",
                "set at most one of pipeline and project",
            )
            .into());
        }
        if rule.events.is_empty() {
            return Err(Error::invalid("notification_rule.events", "at least one event").into());
        }
        for (i, e) in rule.events.iter().enumerate() {
            if !matches!(pb::NotificationEvent::try_from(*e), Ok(k) if k != pb::NotificationEvent::Unspecified)
            {
                return Err(Error::invalid(
                    format!("notification_rule.events[{i}]"),
                    format!("unknown event {e}"),
                )
                .into());
            }
        }
        if rule.display_name.len() > 200 {
            return Err(
                Error::invalid("notification_rule.display_name", "at most 200 bytes").into(),
            );
        }
        let channel = channel(rule.channel, &self.channels)?;
        let now = Utc::now();
        let stored = self
            .store
            .create_rule(notification_rule::Model {
                id,
                display_name: rule.display_name,
                pipeline,
                project: rule.project,
                events: serde_json::to_string(&rule.events).unwrap_or_default(),
                channel: serde_json::to_string(&channel).unwrap_or_default(),
                disabled: rule.disabled,
                created_by: rule.created_by.map(|p| p.id).unwrap_or_default(),
                etag: uuid::Uuid::now_v7().simple().to_string(),
                request_id: (!r.request_id.is_empty()).then_some(r.request_id),
                create_time: now,
                update_time: now,
            })
            .await
            .map_err(Error::from)?;
        Ok(Response::new(to_pb(stored)))
    }

    async fn get_notification_rule(
        &self,
        request: Request<pb::GetNotificationRuleRequest>,
    ) -> Result<Response<pb::NotificationRule>, Status> {
        let id = rule_id(&request.into_inner().name, "name")?;
        let rule = self.store.rule(&id).await.map_err(Error::from)?;
        Ok(Response::new(to_pb(rule)))
    }

    async fn list_notification_rules(
        &self,
        request: Request<pb::ListNotificationRulesRequest>,
    ) -> Result<Response<pb::ListNotificationRulesResponse>, Status> {
        let r = request.into_inner();
        let limit = page_size(r.page_size)?;
        let after = if r.page_token.is_empty() {
            None
        } else {
            Some(rule_id(
                &format!("notificationRules/{}", r.page_token),
                "page_token",
            )?)
        };
        let mut rows = self
            .store
            .rules(
                (!r.pipeline.is_empty()).then_some(r.pipeline.as_str()),
                (!r.project.is_empty()).then_some(r.project.as_str()),
                after.as_deref(),
                limit + 1,
            )
            .await
            .map_err(Error::from)?;
        let next_page_token = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListNotificationRulesResponse {
            notification_rules: rows.into_iter().map(to_pb).collect(),
            next_page_token,
        }))
    }

    async fn delete_notification_rule(
        &self,
        request: Request<pb::DeleteNotificationRuleRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        let id = rule_id(&r.name, "name")?;
        self.store
            .delete_rule(&id, Some(&r.etag))
            .await
            .map_err(Error::from)?;
        Ok(Response::new(()))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let r = request.into_inner();
        let limit = page_size(r.page_size)?;
        let rule = if r.parent == "notificationRules/-" {
            None
        } else {
            Some(rule_id(&r.parent, "parent")?)
        };
        let mut states = Vec::new();
        for (i, s) in r.states.iter().enumerate() {
            states.push(
                match pb::DeliveryState::try_from(*s) {
                    Ok(pb::DeliveryState::Pending) => state::PENDING,
                    Ok(pb::DeliveryState::Retrying) => state::RETRYING,
                    Ok(pb::DeliveryState::Succeeded) => state::SUCCEEDED,
                    Ok(pb::DeliveryState::Failed) => state::FAILED,
                    _ => {
                        return Err(Error::invalid(
                            format!("states[{i}]"),
                            format!("unknown state {s}"),
                        )
                        .into());
                    }
                }
                .to_owned(),
            );
        }
        let filter = DeliveryFilter {
            rule,
            states,
            event_id: (!r.event_id.is_empty()).then_some(r.event_id),
        };
        let after = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
        let mut rows = self
            .store
            .deliveries(&filter, after, limit + 1)
            .await
            .map_err(Error::from)?;
        let next_page_token = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|d| d.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: rows.into_iter().map(delivery_to_pb).collect(),
            next_page_token,
        }))
    }
}
