//! Notification rules and deliveries: a webhook signed with HMAC-SHA256,
//! retried until the receiver takes it, never sent twice for one event; a
//! Slack-compatible webhook; email through an SMTP server; bad rules
//! refused with the field named.

use axum::http::StatusCode;
use chrono::Utc;
use conveyor_api::execution::v1::ExecutionState as S;
use conveyor_api::metrics::v1 as pb;
use pb::notification_channel::Kind;

use crate::events::{PIPELINE, Script};
use crate::on_every_backend;
use crate::receivers::{HttpReceiver, SmtpReceiver};

fn rule(events: &[pb::NotificationEvent], kind: Kind) -> pb::NotificationRule {
    pb::NotificationRule {
        display_name: "team alerts".into(),
        pipeline: PIPELINE.into(),
        events: events.iter().map(|e| *e as i32).collect(),
        channel: Some(pb::NotificationChannel { kind: Some(kind) }),
        ..Default::default()
    }
}

async fn create(
    server: &mut crate::support::Server,
    id: &str,
    rule: pb::NotificationRule,
) -> pb::NotificationRule {
    server
        .notifications
        .create_notification_rule(pb::CreateNotificationRuleRequest {
            notification_rule_id: id.into(),
            notification_rule: Some(rule),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn deliveries(server: &mut crate::support::Server, rule: &str) -> Vec<pb::Delivery> {
    server
        .notifications
        .list_deliveries(pb::ListDeliveriesRequest {
            parent: format!("notificationRules/{rule}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// Waits until every delivery of `rule` reached a final state.
async fn settled(server: &mut crate::support::Server, rule: &str) -> Vec<pb::Delivery> {
    for _ in 0..400 {
        let all = deliveries(server, rule).await;
        if !all.is_empty()
            && all.iter().all(|d| {
                d.state == pb::DeliveryState::Succeeded as i32
                    || d.state == pb::DeliveryState::Failed as i32
            })
        {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries of {rule} never settled: {:?}",
        deliveries(server, rule).await
    );
}

on_every_backend!(a_failed_action_reaches_a_signed_webhook_once, |server| {
    // Refused twice, then taken: delivered on the third attempt.
    let receiver =
        HttpReceiver::start(&[StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_GATEWAY]).await;
    let secret = std::env::temp_dir().join(format!("hook-{}", uuid::Uuid::new_v4()));
    std::fs::write(&secret, "hook-secret\n").unwrap();
    create(
        &mut server,
        "hooks",
        rule(
            &[pb::NotificationEvent::ActionFailed],
            Kind::Webhook(pb::WebhookChannel {
                url: receiver.url.clone(),
                secret_ref: format!("file:{}", secret.display()),
            }),
        ),
    )
    .await;
    let mut s = Script::new(PIPELINE);
    let now = Utc::now();
    s.start("r1", now, &[("a1", now)]);
    s.action_failed("r1", "build", "unit-tests", now);
    server.publish(&s.events).await;
    server.settle().await;
    let got = receiver.wait_for(3).await;
    let body = &got[2].body;
    let signature = got[2].headers["x-conveyor-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        conveyor_metrics::notify::channels::signature(b"hook-secret", body)
    );
    let event_id = &s.events[1].id;
    assert_eq!(got[2].headers["x-conveyor-event-id"], event_id.as_str());
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["notification"], "NOTIFICATION_EVENT_ACTION_FAILED");
    assert!(
        json["text"].as_str().unwrap().contains("unit-tests"),
        "{json}"
    );
    let log = settled(&mut server, "hooks").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].state, pb::DeliveryState::Succeeded as i32);
    assert_eq!((log[0].attempts, log[0].response_code), (3, 200));
    assert_eq!(&log[0].event_id, event_id);
    // The same event again (the relay is at least once): nothing new is sent.
    server.publish(&s.events).await;
    server.settle().await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(deliveries(&mut server, "hooks").await.len(), 1);
    let _ = std::fs::remove_file(secret);
});

on_every_backend!(a_receiver_that_refuses_is_not_retried, |server| {
    let receiver = HttpReceiver::start(&[StatusCode::NOT_FOUND]).await;
    create(
        &mut server,
        "gone",
        rule(
            &[pb::NotificationEvent::Failed],
            Kind::Webhook(pb::WebhookChannel {
                url: receiver.url.clone(),
                secret_ref: String::new(),
            }),
        ),
    )
    .await;
    let mut s = Script::new(PIPELINE);
    let now = Utc::now();
    s.start("r1", now, &[("a1", now)]);
    s.finish("r1", now, S::Failed);
    server.publish(&s.events).await;
    server.settle().await;
    let log = settled(&mut server, "gone").await;
    assert_eq!(log[0].state, pb::DeliveryState::Failed as i32);
    assert_eq!((log[0].attempts, log[0].response_code), (1, 404));
    assert!(log[0].last_error.contains("404"), "{:?}", log[0]);
});

on_every_backend!(mainline_changes_reach_a_slack_webhook, |server| {
    let receiver = HttpReceiver::start(&[]).await;
    let created = create(
        &mut server,
        "chat",
        rule(
            &[
                pb::NotificationEvent::MainlineRed,
                pb::NotificationEvent::MainlineGreen,
            ],
            Kind::Slack(pb::SlackChannel {
                url: format!("{}/T000/B000/XXXX", receiver.url),
            }),
        ),
    )
    .await;
    let Some(Kind::Slack(slack)) = created.channel.and_then(|c| c.kind) else {
        panic!("a slack channel");
    };
    assert!(
        slack.url.ends_with("/***"),
        "the token is masked: {}",
        slack.url
    );
    let mut s = Script::new(PIPELINE);
    let now = Utc::now();
    s.start("r1", now, &[("a1", now)]);
    s.stage_failed("r1", "beta", now, 1);
    s.finish("r1", now, S::Failed);
    s.start("r2", now + chrono::Duration::minutes(5), &[("a2", now)]);
    s.finish("r2", now + chrono::Duration::minutes(9), S::Succeeded);
    server.publish(&s.events).await;
    server.settle().await;
    let got = receiver.wait_for(2).await;
    let texts: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("mainline is red") && t.contains("beta")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("green again")), "{texts:?}");
});

#[tokio::test]
async fn a_rollback_is_emailed_over_smtp() {
    let smtp = SmtpReceiver::start().await;
    for backend in crate::support::backends().await {
        let (queue, prefix) = crate::support::queue_for(&backend).await;
        let url = smtp.url.clone();
        let mut server =
            crate::support::Server::start_configured(&backend, queue, &prefix, "it", |c| {
                c.smtp_url = Some(url)
            })
            .await;
        create(
            &mut server,
            "mail",
            rule(
                &[pb::NotificationEvent::RolledBack],
                Kind::Email(pb::EmailChannel {
                    to: vec!["oncall@example.com".into()],
                    subject_prefix: "[conveyor]".into(),
                }),
            ),
        )
        .await;
        let mut s = Script::new(PIPELINE);
        let now = Utc::now();
        s.start("r1", now, &[("a1", now)]);
        s.rolled_back("r1", now, now, now, "r0");
        server.publish(&s.events).await;
        server.settle().await;
        let log = settled(&mut server, "mail").await;
        assert_eq!(log[0].state, pb::DeliveryState::Succeeded as i32, "{log:?}");
        assert_eq!(log[0].response_code, 250);
        server.stop().await;
        backend.cleanup().await;
    }
    let messages = smtp.wait_for(1).await;
    assert!(
        messages[0].contains("Subject: [conveyor] shop: rolling back prod"),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("oncall@example.com"),
        "{}",
        messages[0]
    );
}

/// The field a rejected request names.
fn field(status: tonic::Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

on_every_backend!(bad_rules_are_refused_with_the_field, |server| {
    let hook = |url: &str, secret: &str| {
        Kind::Webhook(pb::WebhookChannel {
            url: url.into(),
            secret_ref: secret.into(),
        })
    };
    let cases = [
        (
            rule(&[pb::NotificationEvent::Failed], hook("ftp://x/y", "")),
            "notification_rule.channel.webhook.url",
        ),
        (
            rule(&[], hook("http://x/y", "")),
            "notification_rule.events",
        ),
        (
            rule(
                &[pb::NotificationEvent::Failed],
                hook("http://x/y", "env:CONVEYOR_NO_SUCH_SECRET"),
            ),
            "notification_rule.channel.webhook.secret_ref",
        ),
        (
            rule(
                &[pb::NotificationEvent::Failed],
                Kind::Email(pb::EmailChannel {
                    to: vec!["a@example.com".into()],
                    subject_prefix: String::new(),
                }),
            ),
            "notification_rule.channel.email",
        ),
    ];
    for (rule, expected) in cases {
        let refused = server
            .notifications
            .create_notification_rule(pb::CreateNotificationRuleRequest {
                notification_rule: Some(rule),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(refused), expected);
    }
    let listed = server
        .notifications
        .list_notification_rules(pb::ListNotificationRulesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.notification_rules.is_empty(), "nothing was stored");
    let created = create(
        &mut server,
        "ok",
        rule(
            &[pb::NotificationEvent::Failed],
            hook("https://hooks.example.com/x", ""),
        ),
    )
    .await;
    let stale = server
        .notifications
        .delete_notification_rule(pb::DeleteNotificationRuleRequest {
            name: created.name.clone(),
            etag: "stale".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    server
        .notifications
        .delete_notification_rule(pb::DeleteNotificationRuleRequest {
            name: created.name,
            etag: created.etag,
        })
        .await
        .unwrap();
});
