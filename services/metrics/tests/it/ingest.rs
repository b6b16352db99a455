//! The consumer: redelivered events count once, unusable ones go to the
//! dead-letter stream, and a consumer that was down catches up. Also the
//! survey fallback and request validation.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use conveyor_api::metrics::v1 as pb;
use conveyor_api::time::timestamp;
use conveyor_metrics::ingest::DEAD_LETTER_STREAM;

use crate::history::known_history;
use crate::on_every_backend;

async fn deployments(server: &mut crate::support::Server) -> i64 {
    server
        .client
        .get_dora_metrics(pb::GetDoraMetricsRequest {
            window: Some(pb::TimeWindow {
                start_time: Some(timestamp(
                    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(),
                )),
                end_time: Some(timestamp(
                    Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap(),
                )),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deployment_frequency
        .unwrap()
        .deployments
}

on_every_backend!(redelivered_events_count_once, |server| {
    let events = known_history().events;
    server.publish(&events).await;
    server.settle().await;
    // The relay delivers at least once: everything again.
    server.publish(&events).await;
    server.settle().await;
    assert_eq!(
        server.stats().duplicates.load(Ordering::Relaxed),
        events.len() as u64
    );
    assert_eq!(deployments(&mut server).await, 4);
});

on_every_backend!(unusable_events_go_to_the_dead_letter_stream, |server| {
    let mut dead = server
        .queue
        .reader(DEAD_LETTER_STREAM, "test", "t")
        .await
        .unwrap();
    server.publish_raw(b"\xff\x01 not protobuf").await;
    let mut future = known_history().events.remove(0);
    future.schema_version = 2;
    server.publish(&[future]).await;
    // The consumer goes on with the events after them.
    server.publish(&known_history().events).await;
    server.settle().await;
    assert_eq!(server.stats().dead_letters.load(Ordering::Relaxed), 2);
    assert_eq!(deployments(&mut server).await, 4);
    let mut parked = Vec::new();
    for _ in 0..20 {
        parked.extend(dead.next(Duration::from_millis(200), 10).await.unwrap());
        if parked.len() >= 2 {
            break;
        }
    }
    assert_eq!(parked.len(), 2);
    assert_eq!(
        parked[0].payload, b"\xff\x01 not protobuf",
        "kept byte for byte"
    );
});

#[tokio::test]
async fn a_consumer_that_was_down_catches_up() {
    for backend in crate::support::backends().await {
        eprintln!("-- catch up on {}", backend.name);
        let (queue, prefix) = crate::support::queue_for(&backend).await;
        let mut first =
            crate::support::Server::start_with(&backend, queue.clone(), &prefix, "m1").await;
        let events = known_history().events;
        let (early, late) = events.split_at(events.len() / 2);
        first.publish(early).await;
        first.settle().await;
        first.stop_ingest();
        first.stop().await;
        // Published while no consumer runs.
        let mut second =
            crate::support::Server::start_with(&backend, queue.clone(), &prefix, "m1").await;
        second.publish(late).await;
        second.settle().await;
        assert_eq!(deployments(&mut second).await, 4);
        second.stop().await;
        backend.cleanup().await;
    }
}

on_every_backend!(surveys_are_recorded_and_summarised, |server| {
    let period = pb::TimeWindow {
        start_time: Some(timestamp(
            Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(),
        )),
        end_time: Some(timestamp(
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        )),
    };
    let scope = Some(pb::MetricsScope {
        project: "legacy".into(),
        ..Default::default()
    });
    for (team, score) in [("a", 2), ("b", 4)] {
        let stored = server
            .client
            .record_survey(pb::RecordSurveyRequest {
                survey_response: Some(pb::SurveyResponse {
                    scope: scope.clone(),
                    team: team.into(),
                    period: Some(period),
                    answers: vec![pb::SurveyAnswer {
                        metric: pb::SurveyMetric::LeadTime as i32,
                        score,
                    }],
                    ..Default::default()
                }),
                request_id: format!("survey-{team}"),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(stored.name.starts_with("surveyResponses/"));
    }
    // A retried request stores nothing new.
    let again = server
        .client
        .record_survey(pb::RecordSurveyRequest {
            survey_response: Some(pb::SurveyResponse {
                scope: scope.clone(),
                team: "a".into(),
                period: Some(period),
                answers: vec![pb::SurveyAnswer {
                    metric: pb::SurveyMetric::LeadTime as i32,
                    score: 2,
                }],
                ..Default::default()
            }),
            request_id: "survey-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.team, "a");
    let m = server
        .client
        .get_dora_metrics(pb::GetDoraMetricsRequest {
            scope: scope.clone(),
            window: Some(pb::TimeWindow {
                start_time: Some(timestamp(
                    Utc.with_ymd_and_hms(2026, 10, 15, 0, 0, 0).unwrap(),
                )),
                end_time: Some(timestamp(
                    Utc.with_ymd_and_hms(2026, 11, 15, 0, 0, 0).unwrap(),
                )),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let scores = m.survey.unwrap().scores;
    assert_eq!(scores.len(), 1);
    assert_eq!(scores[0].metric, pb::SurveyMetric::LeadTime as i32);
    assert_eq!((scores[0].mean_score, scores[0].responses), (3.0, 2));
});

/// The field a rejected request names.
fn field(status: tonic::Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

on_every_backend!(bad_requests_name_the_field, |server| {
    let both = server
        .client
        .get_dora_metrics(pb::GetDoraMetricsRequest {
            scope: Some(pb::MetricsScope {
                pipeline: "pipelines/a".into(),
                project: "p".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(both), "scope");
    let backwards = server
        .client
        .get_dpra_metrics(pb::GetDpraMetricsRequest {
            window: Some(pb::TimeWindow {
                start_time: Some(timestamp(
                    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap(),
                )),
                end_time: Some(timestamp(
                    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
                )),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(backwards), "window");
    let score = server
        .client
        .record_survey(pb::RecordSurveyRequest {
            survey_response: Some(pb::SurveyResponse {
                period: Some(pb::TimeWindow {
                    start_time: Some(timestamp(
                        Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(),
                    )),
                    end_time: Some(timestamp(
                        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
                    )),
                }),
                answers: vec![pb::SurveyAnswer {
                    metric: pb::SurveyMetric::MainlineHealth as i32,
                    score: 6,
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(field(score), "survey_response.answers[0].score");
    let token = server
        .client
        .list_deployments(pb::ListDeploymentsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(token), "page_token");
    let name = server
        .client
        .get_deployment(pb::GetDeploymentRequest {
            name: "deploys/x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(field(name), "name");
});
