//! Production rollouts: waves in order with bake time between them, and
//! automatic rollback of every touched target when an alarm fires.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::alarm_service_client::AlarmServiceClient;

use crate::support::{ControlPlane, backends, git_repo};

fn rollout(repo: &std::path::Path, log: &std::path::Path, bake: &str) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: shop}}
spec:
  type: application
  source: {{repository: "{repo}"}}
  environments:
    - {{name: prod, tier: production, account: "4", regions: [us-east-1, eu-west-1, ap-south-1]}}
  stages:
    - name: build
      actions:
        - {{name: compile, kind: build, run: "true"}}
    - name: prod
      environment: prod
      actions:
        - name: deploy
          kind: deploy
          run: 'echo "${{CONVEYOR_ROLLBACK:+rollback }}deploy $CONVEYOR_TARGET_REGION" >> {log}'
      deployment:
        waves:
          - {{name: one-box, targets: [{{account: "4", region: us-east-1}}]}}
          - {{name: europe, targets: [{{account: "4", region: eu-west-1}}]}}
          - {{name: asia, targets: [{{account: "4", region: ap-south-1}}]}}
        bakeTime: {bake}
        alarms: [{{name: prod-errors}}]
"#,
        repo = repo.display(),
        log = log.display()
    )
}

pub(crate) fn lines(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Asserts `done` was rolled back because of `alarm`, and the deploy log
/// reads `expected`.
pub(crate) fn assert_rolled_back(
    done: &pb::Execution,
    alarm: &str,
    log: &std::path::Path,
    expected: &[&str],
    why: &str,
) {
    assert_eq!(
        done.state,
        pb::ExecutionState::RolledBack as i32,
        "{done:#?}"
    );
    assert!(done.state_reason.contains(alarm), "{}", done.state_reason);
    assert_eq!(lines(log), expected, "{why}");
}

/// Waits until the deploy log holds `line`; fails the test after a minute.
pub(crate) async fn wait_for_line(log: &std::path::Path, line: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !lines(log).iter().any(|l| l == line) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{line:?} never logged: {:?}",
            lines(log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn fire_alarm(cp: &ControlPlane, reason: &str) {
    let channel = conveyor_api::client::channel(&format!("http://{}", cp.addr)).expect("channel");
    AlarmServiceClient::new(channel)
        .set_alarm_state(pb::SetAlarmStateRequest {
            name: "alarms/prod-errors".into(),
            state: pb::AlarmState::Alarm as i32,
            reason: reason.into(),
            ..Default::default()
        })
        .await
        .expect("set alarm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_deploy_in_order_with_bake_between_them() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&rollout(&repo, &log, "1s")).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(90)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::Succeeded as i32,
            "{done:#?}"
        );
        assert_eq!(
            lines(&log),
            vec!["deploy us-east-1", "deploy eu-west-1", "deploy ap-south-1"]
        );
        let prod = &done.stages[1];
        assert_eq!(prod.actions.len(), 3, "one run per target");
        let waves: Vec<i32> = prod.actions.iter().map(|a| a.wave).collect();
        assert_eq!(waves, vec![0, 1, 2]);
        // Each wave started at least the bake time after the previous one ended.
        let times: Vec<(i64, i64)> = prod
            .actions
            .iter()
            .map(|a| {
                (
                    a.start_time.expect("start").seconds,
                    a.end_time.expect("end").seconds,
                )
            })
            .collect();
        assert!(
            times[1].0 > times[0].1 && times[2].0 > times[1].1,
            "{times:?}"
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_during_bake_rolls_back_every_touched_target() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        // A first, healthy rollout gives the rollback a version to return to.
        cp.apply(&rollout(&repo, &log, "1s")).await;
        cp.start_worker();
        let good = cp.start_execution("shop", "").await;
        let good = cp.wait_done(&good.name, Duration::from_secs(90)).await;
        assert_eq!(good.state, pb::ExecutionState::Succeeded as i32);
        std::fs::remove_file(&log).expect("reset the log");
        cp.apply(&rollout(&repo, &log, "3s")).await;
        let started = cp.start_execution("shop", "").await;
        // Wait until the second wave deployed, then fire the alarm during its bake.
        wait_for_line(&log, "deploy eu-west-1").await;
        fire_alarm(&cp, "5xx rate 12%").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_rolled_back(
            &done,
            "prod-errors",
            &log,
            &[
                "deploy us-east-1",
                "deploy eu-west-1",
                "rollback deploy eu-west-1",
                "rollback deploy us-east-1",
            ],
            "newest wave first; the third wave never deployed",
        );
        assert_eq!(done.stages[1].state, pb::StageState::RolledBack as i32);
        // The execution carries the rollback record: cause, targets, the
        // execution restored.
        let rollback = done.rollback.clone().expect("rollback record");
        assert_eq!(rollback.state, pb::RollbackState::Succeeded as i32);
        assert_eq!(rollback.alarm, "alarms/prod-errors");
        assert_eq!(rollback.stage, "prod");
        assert_eq!(rollback.restored_execution, good.name);
        let targets: Vec<&str> = rollback.targets.iter().map(|t| t.region.as_str()).collect();
        assert_eq!(targets, vec!["eu-west-1", "us-east-1"]);
        assert!(rollback.end_time.is_some());
        assert!(good.rollback.is_none());
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_fails_for_good_rolls_the_rollout_back() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&rollout(&repo, &log, "1s")).await;
        cp.start_worker();
        let good = cp.start_execution("shop", "").await;
        let good = cp.wait_done(&good.name, Duration::from_secs(90)).await;
        assert_eq!(good.state, pb::ExecutionState::Succeeded as i32);
        std::fs::remove_file(&log).expect("reset the log");
        // The second release cannot deploy to ap-south-1 (the third wave).
        let broken = rollout(&repo, &log, "1s").replace(
            "run: 'echo",
            "run: 'test \"$CONVEYOR_TARGET_REGION/${CONVEYOR_ROLLBACK:-}\" != ap-south-1/ && echo",
        );
        cp.apply(&broken).await;
        let started = cp.start_execution("shop", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(90)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::RolledBack as i32,
            "{done:#?}"
        );
        assert!(
            done.state_reason.contains("action \"deploy\" failed"),
            "{}",
            done.state_reason
        );
        // Newest wave first; the failed target goes back too (it may be half deployed).
        assert_eq!(
            lines(&log),
            vec![
                "deploy us-east-1",
                "deploy eu-west-1",
                "rollback deploy ap-south-1",
                "rollback deploy eu-west-1",
                "rollback deploy us-east-1",
            ]
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_earlier_success_an_alarm_fails_the_rollout() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&rollout(&repo, &log, "30s")).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        wait_for_line(&log, "deploy us-east-1").await;
        fire_alarm(&cp, "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_eq!(done.state, pb::ExecutionState::Failed as i32, "{done:#?}");
        assert!(
            done.state_reason
                .contains("no earlier successful deployment"),
            "{}",
            done.state_reason
        );
        assert_eq!(
            lines(&log),
            vec!["deploy us-east-1"],
            "nothing was rolled back to an unknown version"
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

/// A health endpoint that answers 200 until told to fail, and always 503
/// on paths containing `sick` (when not empty).
async fn health_server(sick: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let healthy = std::sync::Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let flag = healthy.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let flag = flag.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let request_line = request.lines().next().unwrap_or_default();
                let is_sick = !sick.is_empty() && request_line.contains(sick);
                let status = if flag.load(Ordering::SeqCst) && !is_sick {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let response =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, healthy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_probe_rolls_the_rollout_back() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        let (port, healthy) = health_server("").await;
        let probed = |bake: &str| {
            rollout(&repo, &log, bake).replace(
                "alarms: [{name: prod-errors}]",
                &format!("alarms: [{{name: prod-health, probe: {{url: \"http://127.0.0.1:{port}/health\", interval: 1s, failureThreshold: 2}}}}]"),
            )
        };
        cp.apply(&probed("1s")).await;
        cp.start_worker();
        let good = cp.start_execution("shop", "").await;
        let good = cp.wait_done(&good.name, Duration::from_secs(90)).await;
        assert_eq!(
            good.state,
            pb::ExecutionState::Succeeded as i32,
            "healthy probes let it through: {good:#?}"
        );

        std::fs::remove_file(&log).expect("reset the log");
        cp.apply(&probed("20s")).await;
        let started = cp.start_execution("shop", "").await;
        wait_for_line(&log, "deploy us-east-1").await;
        healthy.store(false, std::sync::atomic::Ordering::SeqCst);
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_rolled_back(
            &done,
            "prod-health",
            &log,
            &["deploy us-east-1", "rollback deploy us-east-1"],
            "the touched targets went back",
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_per_target_checks_each_target_once_it_is_deployed() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        // Only the second wave's target is unhealthy.
        let (port, _) = health_server("/eu-west-1/").await;
        let probed = |bake: &str| {
            rollout(&repo, &log, bake).replace(
                "alarms: [{name: prod-errors}]",
                &format!("alarms: [{{name: prod-health, probe: {{url: \"http://127.0.0.1:{port}/{{target.region}}/health\", interval: 1s, failureThreshold: 2}}}}]"),
            )
        };
        // A first rollout whose waves never reach eu-west-1's probe failing:
        // bake 0 after the last wave, so it succeeds and becomes the last good.
        cp.apply(&probed("1s").replace(
            "          - {name: europe, targets: [{account: \"4\", region: eu-west-1}]}\n",
            "",
        ))
        .await;
        cp.start_worker();
        let good = cp.start_execution("shop", "").await;
        let good = cp.wait_done(&good.name, Duration::from_secs(90)).await;
        assert_eq!(
            good.state,
            pb::ExecutionState::Succeeded as i32,
            "targets not deployed are not probed: {good:#?}"
        );

        std::fs::remove_file(&log).expect("reset the log");
        cp.apply(&probed("20s")).await;
        let started = cp.start_execution("shop", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(90)).await;
        assert_rolled_back(
            &done,
            "prod-health",
            &log,
            &[
                "deploy us-east-1",
                "deploy eu-west-1",
                "rollback deploy eu-west-1",
                "rollback deploy us-east-1",
            ],
            "wave one passed its probe; wave two failed it and both went back",
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

/// One wave of four targets, deployed by a command that logs its start and
/// end around a short sleep.
fn wide_wave(repo: &std::path::Path, log: &std::path::Path, deployment: &str) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: shop}}
spec:
  type: application
  source: {{repository: "{repo}"}}
  environments:
    - {{name: prod, tier: production, account: "4", regions: [r1, r2, r3, r4]}}
  stages:
    - name: build
      actions:
        - {{name: compile, kind: build, run: "true"}}
    - name: prod
      environment: prod
      actions:
        - name: deploy
          kind: deploy
          run: 'echo "start $CONVEYOR_TARGET_REGION" >> {log}; sleep 0.4; echo "end $CONVEYOR_TARGET_REGION" >> {log}'
      deployment:
        waves:
          - name: all
            targets: [{{account: "4", region: r1}}, {{account: "4", region: r2}}, {{account: "4", region: r3}}, {{account: "4", region: r4}}]
{deployment}
        bakeTime: 1s
        alarms: [{{name: prod-errors}}]
"#,
        repo = repo.display(),
        log = log.display()
    )
}

/// The most deploys running at once, from a start/end log.
fn most_at_once(lines: &[String]) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for line in lines {
        if line.starts_with("start") {
            now += 1;
            most = most.max(now);
        } else {
            now = now.saturating_sub(1);
        }
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_limits_how_many_targets_of_a_wave_deploy_at_once() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let (unlimited, limited) = (dir.path().join("unlimited"), dir.path().join("limited"));
        // The worker runs two attempts at once: without a limit, two
        // targets deploy together; with maxBatchPercent 25, one.
        cp.apply(&wide_wave(&repo, &unlimited, "")).await;
        cp.start_worker();
        let first = cp.start_execution("shop", "").await;
        let first = cp.wait_done(&first.name, Duration::from_secs(60)).await;
        assert_eq!(
            first.state,
            pb::ExecutionState::Succeeded as i32,
            "{first:#?}"
        );
        assert_eq!(
            most_at_once(&lines(&unlimited)),
            2,
            "{:?}",
            lines(&unlimited)
        );

        cp.apply(&wide_wave(
            &repo,
            &limited,
            "        rolling: {maxBatchPercent: 25}",
        ))
        .await;
        let second = cp.start_execution("shop", "").await;
        let second = cp.wait_done(&second.name, Duration::from_secs(60)).await;
        assert_eq!(
            second.state,
            pb::ExecutionState::Succeeded as i32,
            "{second:#?}"
        );
        assert_eq!(lines(&limited).len(), 8, "every target deployed");
        assert_eq!(most_at_once(&lines(&limited)), 1, "{:?}", lines(&limited));
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_box_deploys_alone_and_bakes_before_the_rest_of_its_wave() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        let yaml = wide_wave(&repo, &log, "").replace(
            "            targets: [{account: \"4\", region: r1},",
            "            oneBox: {bakeTime: 1s}\n            targets: [{account: \"4\", region: r1},",
        );
        cp.apply(&yaml).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::Succeeded as i32,
            "{done:#?}"
        );
        let log = lines(&log);
        assert_eq!(
            log[..2],
            ["start r1", "end r1"],
            "the one-box went first, alone: {log:?}"
        );
        let prod = &done.stages[1];
        let r1 = prod
            .actions
            .iter()
            .find(|a| a.target.as_ref().is_some_and(|t| t.region == "r1"))
            .expect("r1");
        assert_eq!(r1.wave, 0);
        let micros = |t: Option<prost_types::Timestamp>| {
            let t = t.expect("a time");
            t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
        };
        let rest_start = prod
            .actions
            .iter()
            .filter(|a| a.wave == 1)
            .map(|a| micros(a.start_time))
            .min()
            .expect("the rest of the wave");
        assert!(
            rest_start - micros(r1.end_time) >= 1_000_000,
            "the one-box baked its second before the rest started"
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_rollback_an_alarm_stops_the_rollout_where_it_is() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        let yaml = |bake: &str| {
            rollout(&repo, &log, bake).replace(
                "        alarms: [{name: prod-errors}]",
                "        alarms: [{name: prod-errors}]\n        autoRollback: false",
            )
        };
        cp.apply(&yaml("1s")).await;
        cp.start_worker();
        let good = cp.start_execution("shop", "").await;
        let good = cp.wait_done(&good.name, Duration::from_secs(90)).await;
        assert_eq!(good.state, pb::ExecutionState::Succeeded as i32);
        std::fs::remove_file(&log).expect("reset the log");
        cp.apply(&yaml("20s")).await;
        let started = cp.start_execution("shop", "").await;
        wait_for_line(&log, "deploy us-east-1").await;
        fire_alarm(&cp, "errors").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_eq!(done.state, pb::ExecutionState::Failed as i32, "{done:#?}");
        assert!(
            done.state_reason.contains("automatic rollback is off"),
            "{}",
            done.state_reason
        );
        assert_eq!(
            lines(&log),
            vec!["deploy us-east-1"],
            "nothing was rolled back"
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bake_waits_for_its_minimum_data_points() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        let yaml = rollout(&repo, &log, "1s").replace(
            "        alarms: [{name: prod-errors}]",
            "        alarms: [{name: prod-errors}]\n        minDataPoints: {metric: requests, count: 5}",
        );
        cp.apply(&yaml).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        wait_for_line(&log, "deploy us-east-1").await;
        let channel =
            conveyor_api::client::channel(&format!("http://{}", cp.addr)).expect("channel");
        let mut alarms = AlarmServiceClient::new(channel);
        let record = |count: i64, pipeline: &str| pb::RecordDataPointsRequest {
            metric: "requests".into(),
            pipeline: pipeline.into(),
            count,
            observe_time: None,
        };
        let bad = alarms
            .record_data_points(record(0, ""))
            .await
            .expect_err("zero points");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        // The first wave baked its second, and waits for traffic.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let waiting = loop {
            let e = cp.wait_done(&started.name, Duration::ZERO).await;
            let reason = e.stages[1].state_reason.clone();
            if reason.contains("waiting for 5 data points") {
                break reason;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never waited: {e:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(waiting.contains("(0 so far)"), "{waiting}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(lines(&log), vec!["deploy us-east-1"], "wave 2 waits");
        // Points for another pipeline do not count; these for every pipeline do.
        alarms
            .record_data_points(record(100, "pipelines/other"))
            .await
            .expect("record");
        let recent = alarms
            .record_data_points(record(3, ""))
            .await
            .expect("record")
            .into_inner()
            .recent_count;
        assert_eq!(recent, 3);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            lines(&log),
            vec!["deploy us-east-1"],
            "3 of 5 is not enough"
        );
        alarms
            .record_data_points(record(2, "pipelines/shop"))
            .await
            .expect("record");
        wait_for_line(&log, "deploy eu-west-1").await;
        cp.stop().await;
        backend.cleanup().await;
    }
}
