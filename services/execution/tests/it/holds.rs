//! What holds a production stage before it starts: manual blockers, alarms
//! already firing, and deployment time windows.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::alarm_service_client::AlarmServiceClient;
use tonic::Code;

use crate::support::{git_repo, on_every_backend, ops};

fn prod_pipeline(
    repo: &std::path::Path,
    marker: &std::path::Path,
    deployment_extra: &str,
) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: shop}}
spec:
  type: application
  source: {{repository: "{repo}"}}
  environments:
    - {{name: prod, tier: production, account: "4", regions: [us-east-1]}}
  stages:
    - name: build
      actions:
        - {{name: compile, kind: build, run: "true"}}
    - name: prod
      environment: prod
      actions:
        - {{name: deploy, kind: deploy, run: "touch {marker}"}}
      deployment:
        waves: [{{name: all, targets: [{{account: "4", region: us-east-1}}]}}]
        bakeTime: 1s
        alarms: [{{name: prod-errors}}]
{deployment_extra}
"#,
        repo = repo.display(),
        marker = marker.display()
    )
}

on_every_backend!(a_blocker_holds_promotion_until_lifted, |cp, dir| {
    let repo = git_repo(dir.path());
    let marker = dir.path().join("deployed");
    cp.apply(&prod_pipeline(&repo, &marker, "")).await;
    let blocker = cp
        .executions
        .block_promotion(pb::BlockPromotionRequest {
            parent: "pipelines/shop".into(),
            stage: String::new(),
            reason: "code freeze".into(),
            principal: ops(),
            request_id: String::new(),
        })
        .await
        .expect("block")
        .into_inner();
    assert!(blocker.active);
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let held = cp.wait_for(&started.name, pb::ExecutionState::Held).await;
    assert_eq!(held.state, pb::ExecutionState::Held as i32, "{held:#?}");
    assert_eq!(
        held.stages[0].state,
        pb::StageState::Succeeded as i32,
        "the build still runs"
    );
    assert_eq!(held.stages[1].state, pb::StageState::Held as i32);
    assert!(
        held.stages[1]
            .state_reason
            .contains("promotion blocked by ops: code freeze"),
        "{}",
        held.stages[1].state_reason
    );
    assert!(!marker.exists());

    let lifted = cp
        .executions
        .unblock_promotion(pb::UnblockPromotionRequest {
            name: blocker.name.clone(),
            reason: "freeze over".into(),
            principal: ops(),
            ..Default::default()
        })
        .await
        .expect("unblock")
        .into_inner();
    assert_eq!(lifted.blockers.len(), 1);
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    assert!(marker.exists());

    let audit = cp
        .executions
        .list_blockers(pb::ListBlockersRequest {
            parent: "pipelines/shop".into(),
            include_lifted: true,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(audit.blockers.len(), 1);
    let b = &audit.blockers[0];
    assert!(!b.active);
    assert_eq!(b.lifted_by.as_ref().expect("lifted by").id, "ops");
    assert_eq!(b.lift_reason, "freeze over");
    let again = cp
        .executions
        .unblock_promotion(pb::UnblockPromotionRequest {
            name: blocker.name,
            principal: ops(),
            ..Default::default()
        })
        .await
        .expect_err("nothing left to lift");
    assert_eq!(again.code(), Code::NotFound);
});

async fn set_alarm(
    client: &mut AlarmServiceClient<tonic::transport::Channel>,
    state: pb::AlarmState,
    observed: prost_types::Timestamp,
) -> pb::Alarm {
    client
        .set_alarm_state(pb::SetAlarmStateRequest {
            name: "alarms/prod-errors".into(),
            state: state as i32,
            reason: "error rate 7%".into(),
            observe_time: Some(observed),
            ..Default::default()
        })
        .await
        .expect("set alarm")
        .into_inner()
}

fn at(offset_secs: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + offset_secs,
        nanos: 0,
    }
}

on_every_backend!(a_firing_alarm_blocks_the_start_of_production, |cp, dir| {
    let repo = git_repo(dir.path());
    let marker = dir.path().join("deployed");
    cp.apply(&prod_pipeline(&repo, &marker, "")).await;
    let channel = conveyor_api::client::channel(&format!("http://{}", cp.addr)).expect("channel");
    let mut alarms = AlarmServiceClient::new(channel);
    set_alarm(&mut alarms, pb::AlarmState::Alarm, at(0)).await;
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let held = cp.wait_for(&started.name, pb::ExecutionState::Held).await;
    assert!(
        held.stages[1]
            .state_reason
            .contains("alarm \"prod-errors\" is in ALARM"),
        "{held:#?}"
    );

    // A late observation (older than the stored one) changes nothing.
    let stale = set_alarm(&mut alarms, pb::AlarmState::Ok, at(-3600)).await;
    assert_eq!(stale.state, pb::AlarmState::Alarm as i32);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists());

    let cleared = set_alarm(&mut alarms, pb::AlarmState::Ok, at(1)).await;
    assert_eq!(cleared.state, pb::AlarmState::Ok as i32);
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    assert!(marker.exists());
});

on_every_backend!(production_waits_for_its_time_window, |cp, dir| {
    use chrono::Timelike;
    let repo = git_repo(dir.path());
    let marker = dir.path().join("deployed");
    // A one-hour window two hours from now (UTC): closed now.
    let hour = (chrono::Utc::now().hour() + 2) % 24;
    let window = format!(
        "        timeWindows: [{{start: \"{hour:02}:00\", end: \"{:02}:00\", timezone: UTC}}]",
        (hour + 1) % 24
    );
    cp.apply(&prod_pipeline(&repo, &marker, &window)).await;
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let held = cp.wait_for(&started.name, pb::ExecutionState::Held).await;
    assert!(
        held.stages[1]
            .state_reason
            .contains("outside the stage's deployment windows"),
        "{held:#?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists());
});
