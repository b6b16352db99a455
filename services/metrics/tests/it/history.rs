//! Metric definitions on a hand-built history with known answers: a
//! multi-commit deployment, a failed run whose commit rides with the next
//! deployment, a superseded and a cancelled run, a rollback, and an alarm
//! after a deployment completed.

use chrono::{DateTime, Duration, TimeZone, Utc};
use conveyor_api::common::v1 as common;
use conveyor_api::execution::v1::ExecutionState as S;
use conveyor_api::metrics::v1 as pb;
use conveyor_api::time::timestamp;

use crate::events::{PIPELINE, PROJECT, Script};
use crate::on_every_backend;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn mins(m: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: m * 60,
        nanos: 0,
    })
}

/// A full run through build, beta and prod, starting at `start` minutes
/// after `t0`.
pub fn deploy_from(
    t0: DateTime<Utc>,
    s: &mut Script,
    run: &str,
    start: i64,
    build: i64,
    prod: i64,
) {
    let at = |m: i64| t0 + Duration::minutes(m);
    s.stage_ok(run, "build", at(start), build);
    s.stage_ok(run, "beta", at(start + build), 10);
    s.stage_ok(run, "prod", at(start + build + 10), prod);
    s.finish(run, at(start + build + 10 + prod), S::Succeeded);
}

fn deploy(s: &mut Script, run: &str, start: i64, build: i64, prod: i64) {
    deploy_from(t0(), s, run, start, build, prod);
}

pub fn known_history() -> Script {
    known_history_from(t0())
}

/// The history, its first run starting at `t0`.
pub fn known_history_from(t0: DateTime<Utc>) -> Script {
    let at = |m: i64| t0 + Duration::minutes(m);
    let deploy = |s: &mut Script, run: &str, start: i64, build: i64, prod: i64| {
        deploy_from(t0, s, run, start, build, prod)
    };
    let mut s = Script::new(PIPELINE);
    // a: two commits, deployed at +60.
    s.start("a", at(0), &[("c1", at(-20)), ("c2", at(-10))]);
    deploy(&mut s, "a", 0, 5, 45);
    // b: fails in beta after a failed SAST gate.
    s.start("b", at(100), &[("c3", at(100))]);
    s.gate("b", at(103), false);
    s.stage_ok("b", "build", at(100), 5);
    s.stage_failed("b", "beta", at(105), 10);
    s.finish("b", at(115), S::Failed);
    // c: a slow build (12 min, over its 10-min budget); carries c3 too.
    s.start("c", at(200), &[("c4", at(200))]);
    deploy(&mut s, "c", 200, 12, 30);
    // d: superseded by e, which carries its commit.
    s.start("d", at(300), &[("c5", at(300))]);
    s.finish("d", at(305), S::Superseded);
    s.start("e", at(310), &[("c6", at(310))]);
    deploy(&mut s, "e", 310, 5, 30);
    // An alarm 45 minutes after e completed: e is a change failure.
    s.alarm(at(400));
    // f: cancelled; counts for nothing.
    s.start("f", at(500), &[("c7", at(500))]);
    s.finish("f", at(505), S::Cancelled);
    // g: rolled back by an alarm at +640, restored to e at +660.
    s.start("g", at(600), &[("c8", at(600))]);
    s.stage_ok("g", "build", at(600), 5);
    s.stage_ok("g", "beta", at(605), 10);
    s.rolled_back("g", at(615), at(640), at(660), "e");
    s.finish("g", at(660), S::RolledBack);
    // h: deploys at +745, restoring e's failure; carries c7 and c8 too.
    s.start("h", at(700), &[("c9", at(700))]);
    deploy(&mut s, "h", 700, 5, 30);
    s
}

fn window() -> pb::TimeWindow {
    pb::TimeWindow {
        start_time: Some(timestamp(t0() - Duration::days(1))),
        end_time: Some(timestamp(t0() + Duration::days(2))),
    }
}

fn pipeline_scope() -> Option<pb::MetricsScope> {
    Some(pb::MetricsScope {
        pipeline: PIPELINE.into(),
        ..Default::default()
    })
}

on_every_backend!(dora_metrics_have_the_known_values, |server| {
    let script = known_history();
    server.publish(&script.events).await;
    server.settle().await;
    let m = server
        .client
        .get_dora_metrics(pb::GetDoraMetricsRequest {
            scope: pipeline_scope(),
            window: Some(window()),
            granularity: pb::SeriesGranularity::Daily as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let f = m.deployment_frequency.unwrap();
    assert_eq!(f.deployments, 4, "a, c, e and h completed");
    assert_eq!(
        f.band,
        pb::DeploymentFrequencyBand::Weekly as i32,
        "a deployment in the window's only week"
    );
    let l = m.lead_time_for_changes.unwrap();
    // c1 80, c2 70, c3 152, c4 52, c5 55, c6 45, c7 245, c8 145, c9 45:
    // c7's cancelled run was first seen before h, so h carries it.
    assert_eq!(l.commits, 9);
    assert_eq!(l.median, mins(70));
    assert_eq!(l.p90, mins(245));
    let c = m.change_failure_rate.unwrap();
    assert_eq!(
        (c.failed_deployments, c.deployments),
        (2, 5),
        "e and g of 5"
    );
    assert!((c.rate - 0.4).abs() < 1e-9);
    let r = m.failed_deployment_recovery_time.unwrap();
    assert_eq!((r.recoveries, r.unrecovered), (2, 0));
    assert_eq!(r.median, mins(20), "g restored 20 min after its alarm");
    assert_eq!(
        r.mean.map(|d| d.seconds),
        Some((20 + 345) * 60 / 2),
        "e restored by h 345 min after its alarm"
    );
    assert_eq!(m.series.len(), 3);
    assert_eq!(m.series[1].deployments, 4);
    assert!(m.data_time.is_some());
});

on_every_backend!(dpra_metrics_have_the_known_values, |server| {
    server.publish(&known_history().events).await;
    // Two pipelines of the project: the metric is their mean.
    let mut shop = Script::new(PIPELINE);
    shop.revision(at(0), 80.0);
    let mut cart = Script::new("pipelines/cart");
    cart.revision(at(0), 40.0);
    server.publish(&shop.events).await;
    server.publish(&cart.events).await;
    server.settle().await;
    let m = server
        .client
        .get_dpra_metrics(pb::GetDpraMetricsRequest {
            scope: Some(pb::MetricsScope {
                project: PROJECT.into(),
                ..Default::default()
            }),
            window: Some(window()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // (80 + 70 + 152 + 52 + 55 + 45 + 245 + 145 + 45) / 9 = 98.78 min
    assert_eq!(m.lead_time_commits, 9);
    assert_eq!(m.lead_time_mean.map(|d| d.seconds), Some(889 * 60 / 9));
    assert_eq!(m.deployments, 4);
    let b = m.batch_size.unwrap();
    assert_eq!((b.mean, b.max, b.deployments), (2.25, 3, 4));
    let main = m.mainline.unwrap();
    // green 0..100, red 100..200, green 200..600, red 600..700; the green
    // streak from 700 is still open.
    assert_eq!((main.green_streaks, main.red_streaks), (2, 2));
    assert_eq!(main.mtbf, mins(250));
    assert_eq!(main.mttr, mins(100));
    let sec = m.security_errors.unwrap();
    assert_eq!((sec.resolved, sec.open), (1, 0));
    assert_eq!(sec.mean_time_to_resolve, mins(252 - 103));
    let budgets = m.stage_budgets.unwrap();
    assert_eq!((budgets.stage_runs, budgets.violations), (11, 1));
    assert_eq!(budgets.recent_violations[0].stage, "build");
    assert_eq!(
        budgets.recent_violations[0].execution,
        format!("{PIPELINE}/executions/c")
    );
    assert_eq!(m.security_control_automation_percent, 60.0);
});

on_every_backend!(deployment_records_and_health_follow_the_history, |server| {
    server.publish(&known_history().events).await;
    server.settle().await;
    let page = server
        .client
        .list_deployments(pb::ListDeploymentsRequest {
            scope: pipeline_scope(),
            tiers: vec![common::Tier::Production as i32],
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = page.deployments.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "deployments/h-prod",
            "deployments/g-prod",
            "deployments/e-prod"
        ]
    );
    let rest = server
        .client
        .list_deployments(pb::ListDeploymentsRequest {
            scope: pipeline_scope(),
            tiers: vec![common::Tier::Production as i32],
            page_size: 3,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = rest.deployments.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["deployments/c-prod", "deployments/a-prod"]);
    assert!(rest.next_page_token.is_empty());

    let e = server
        .client
        .get_deployment(pb::GetDeploymentRequest {
            name: "deployments/e-prod".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.outcome, pb::RunOutcome::Succeeded as i32);
    assert!(e.change_failure);
    assert_eq!(e.failure_alarm, "alarms/latency");
    assert_eq!(e.failure_detect_time, Some(timestamp(at(400))));
    assert_eq!(e.restore_time, Some(timestamp(at(745))));
    assert_eq!(e.restored_by, "deployments/h-prod");
    let shas: Vec<&str> = e.commits.iter().map(|c| c.sha.as_str()).collect();
    assert_eq!(
        shas,
        ["c5", "c6"],
        "the superseded run's commit rides with e"
    );
    assert_eq!(e.commits[0].lead_time, mins(55));
    assert_eq!(e.artifact.unwrap().digest, "sha256:e");
    assert_eq!(e.targets.len(), 1);

    let g = server
        .client
        .get_deployment(pb::GetDeploymentRequest {
            name: "deployments/g-prod".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.outcome, pb::RunOutcome::RolledBack as i32);
    assert_eq!(g.restored_by, "deployments/e-prod");
    assert_eq!(g.restore_time, Some(timestamp(at(660))));
    assert!(
        g.commits.is_empty(),
        "a rolled-back deployment delivers nothing"
    );

    let health = server
        .client
        .get_pipeline_health(pb::GetPipelineHealthRequest {
            name: format!("{PIPELINE}/health"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.state, pb::MainlineHealthState::Green as i32);
    assert_eq!(health.since, Some(timestamp(at(700))));
    assert_eq!(health.last_execution, format!("{PIPELINE}/executions/h"));
    let all = server
        .client
        .list_pipeline_health(pb::ListPipelineHealthRequest {
            states: vec![pb::MainlineHealthState::Red as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(all.pipelines.is_empty(), "no pipeline is red");
});

on_every_backend!(a_red_mainline_names_the_failed_stage, |server| {
    let mut s = Script::new("pipelines/cart");
    s.start("x", at(0), &[("d1", at(0))]);
    s.stage_ok("x", "build", at(0), 5);
    s.stage_failed("x", "beta", at(5), 3);
    s.finish("x", at(8), S::Failed);
    server.publish(&s.events).await;
    server.settle().await;
    let health = server
        .client
        .get_pipeline_health(pb::GetPipelineHealthRequest {
            name: "pipelines/cart/health".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.state, pb::MainlineHealthState::Red as i32);
    assert_eq!(health.failed_stage, "beta");
    assert_eq!(health.failure_reason, "beta tests failed");
    assert_eq!(health.last_outcome, pb::RunOutcome::Failed as i32);
    let missing = server
        .client
        .get_pipeline_health(pb::GetPipelineHealthRequest {
            name: "pipelines/nope/health".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
});

on_every_backend!(
    an_alarm_during_a_newer_deployment_is_not_the_older_ones,
    |server| {
        let mut s = Script::new("pipelines/web");
        s.start("one", at(0), &[("w1", at(0))]);
        deploy(&mut s, "one", 0, 5, 20);
        // two starts production at +60; its probe alarm fires at +70 and
        // rolls it back: the failure is two's, not one's.
        s.start("two", at(40), &[("w2", at(40))]);
        s.stage_ok("two", "build", at(40), 5);
        s.stage_ok("two", "beta", at(45), 10);
        s.stage_started("two", "prod", at(60));
        s.alarm(at(70));
        s.rolled_back("two", at(60), at(70), at(75), "one");
        s.finish("two", at(75), S::RolledBack);
        server.publish(&s.events).await;
        server.settle().await;
        let one = server
            .client
            .get_deployment(pb::GetDeploymentRequest {
                name: "deployments/one-prod".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!one.change_failure, "{one:?}");
        let c = server
            .client
            .get_dora_metrics(pb::GetDoraMetricsRequest {
                scope: Some(pb::MetricsScope {
                    pipeline: "pipelines/web".into(),
                    ..Default::default()
                }),
                window: Some(window()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .change_failure_rate
            .unwrap();
        assert_eq!((c.failed_deployments, c.deployments), (1, 2));
    }
);
