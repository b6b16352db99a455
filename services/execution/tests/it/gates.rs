//! Approvals before production, and security gates from SARIF reports.

use std::time::Duration;

use conveyor_api::common::v1::Principal;
use conveyor_api::execution::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{ControlPlane, backends, git_repo, on_every_backend};

fn approved_pipeline(repo: &std::path::Path, marker: &std::path::Path) -> String {
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
      approval: {{groups: [release], principals: [ann]}}
      actions:
        - {{name: deploy, kind: deploy, run: "touch {marker}"}}
      deployment:
        waves: [{{name: all, targets: [{{account: "4", region: us-east-1}}]}}]
        bakeTime: 1s
"#,
        repo = repo.display(),
        marker = marker.display()
    )
}

fn who(id: &str, groups: &[&str]) -> Option<Principal> {
    Some(Principal {
        id: id.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    })
}

async fn approve(
    cp: &mut ControlPlane,
    name: &str,
    stage: &str,
    principal: Option<Principal>,
) -> Result<pb::Execution, tonic::Status> {
    cp.executions
        .approve_stage(pb::ApproveStageRequest {
            name: name.into(),
            stage: stage.into(),
            principal,
            comment: "looks good".into(),
            request_id: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

on_every_backend!(production_waits_for_an_authorised_approver, |cp, dir| {
    let repo = git_repo(dir.path());
    let marker = dir.path().join("deployed");
    cp.apply(&approved_pipeline(&repo, &marker)).await;
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let waiting = cp
        .wait_for(&started.name, pb::ExecutionState::WaitingApproval)
        .await;
    assert_eq!(
        waiting.state,
        pb::ExecutionState::WaitingApproval as i32,
        "{waiting:#?}"
    );
    assert!(!marker.exists(), "nothing deploys before the approval");

    let stranger = approve(&mut cp, &started.name, "prod", who("bob", &["dev"]))
        .await
        .expect_err("not an approver");
    assert_eq!(stranger.code(), Code::PermissionDenied);
    assert_eq!(
        stranger.get_details_error_info().expect("info").reason,
        "NOT_AN_APPROVER"
    );
    // The commit's author ("dev", set by the test harness) is in the group but may not approve.
    let author = approve(&mut cp, &started.name, "prod", who("dev", &["release"]))
        .await
        .expect_err("author");
    assert_eq!(
        author.get_details_error_info().expect("info").reason,
        "AUTHOR_MAY_NOT_APPROVE"
    );
    let wrong_stage = approve(&mut cp, &started.name, "build", who("ann", &[]))
        .await
        .expect_err("not waiting");
    assert_eq!(wrong_stage.code(), Code::FailedPrecondition);
    let anonymous = approve(&mut cp, &started.name, "prod", None)
        .await
        .expect_err("who?");
    assert_eq!(
        anonymous
            .get_details_bad_request()
            .expect("br")
            .field_violations[0]
            .field,
        "principal.id"
    );

    approve(&mut cp, &started.name, "prod", who("ann", &[]))
        .await
        .expect("ann approves");
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{done:#?}"
    );
    assert!(marker.exists(), "the approval resumed the same execution");
    let gate = done.stages[1].approval.clone().expect("approval gate");
    assert_eq!(gate.state, pb::ApprovalState::Approved as i32);
    assert_eq!(gate.approvals.len(), 1);
    assert_eq!(
        gate.approvals[0].principal.as_ref().expect("principal").id,
        "ann"
    );
    assert_eq!(
        gate.approvals[0].decision,
        pb::ApprovalDecision::Approve as i32
    );
    assert!(gate.approvals[0].decide_time.is_some());
    let listed = cp
        .executions
        .list_executions(pb::ListExecutionsRequest {
            parent: "pipelines/shop".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.executions.len(), 1, "no new execution, no rebuild");
});

on_every_backend!(a_rejection_stops_the_execution, |cp, dir| {
    let repo = git_repo(dir.path());
    let marker = dir.path().join("deployed");
    cp.apply(&approved_pipeline(&repo, &marker)).await;
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    cp.wait_for(&started.name, pb::ExecutionState::WaitingApproval)
        .await;
    let rejected = cp
        .executions
        .reject_stage(pb::RejectStageRequest {
            name: started.name.clone(),
            stage: "prod".into(),
            principal: who("carol", &["release"]),
            comment: "not during the sale".into(),
            request_id: String::new(),
        })
        .await
        .expect("reject")
        .into_inner();
    assert_eq!(rejected.state, pb::ExecutionState::Failed as i32);
    assert_eq!(rejected.failed_stage, "prod");
    assert!(
        rejected
            .state_reason
            .contains("rejected by carol: not during the sale"),
        "{}",
        rejected.state_reason
    );
    assert_eq!(
        rejected.stages[1].approval.as_ref().expect("gate").state,
        pb::ApprovalState::Rejected as i32
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists());
});

/// A pipeline whose scanners "find" what the SARIF files written here say.
fn gated_pipeline(
    repo: &std::path::Path,
    dir: &std::path::Path,
    secrets: usize,
    high: usize,
    medium: usize,
) -> String {
    let results = |n: usize, level: &str| vec![format!(r#"{{"ruleId":"r","level":"{level}"}}"#); n];
    let sarif = |results: Vec<String>| {
        format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"t"}}}},"results":[{}]}}]}}"#,
            results.join(",")
        )
    };
    let secrets_file = dir.join(format!("secrets-{secrets}.sarif"));
    let sast_file = dir.join(format!("sast-{high}-{medium}.sarif"));
    std::fs::write(&secrets_file, sarif(results(secrets, "error"))).expect("write");
    let mut sast = results(high, "error");
    sast.extend(results(medium, "warning"));
    std::fs::write(&sast_file, sarif(sast)).expect("write");
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: scanned}}
spec:
  type: application
  source: {{repository: "{repo}"}}
  stages:
    - name: build
      actions:
        - name: secrets
          kind: secrets-detection
          run: "mkdir -p reports && cp {secrets} reports/secrets.sarif"
          outputs: {{sarif: [reports/secrets.sarif]}}
        - name: sast
          kind: sast
          run: "mkdir -p reports && cp {sast} reports/sast.sarif"
          outputs: {{sarif: [reports/sast.sarif]}}
  gates:
    sast: {{critical: 0, high: 0}}
"#,
        repo = repo.display(),
        secrets = secrets_file.display(),
        sast = sast_file.display()
    )
}

on_every_backend!(sarif_findings_gate_the_run, |cp, dir| {
    let repo = git_repo(dir.path());
    cp.start_worker();

    // Medium findings with no medium threshold, no secrets: the run passes.
    cp.apply(&gated_pipeline(&repo, dir.path(), 0, 0, 3)).await;
    let clean = cp.start_execution("scanned", "").await;
    let clean = cp.wait_done(&clean.name, Duration::from_secs(60)).await;
    assert_eq!(
        clean.state,
        pb::ExecutionState::Succeeded as i32,
        "{clean:#?}"
    );

    // One secret: any finding fails at once.
    cp.apply(&gated_pipeline(&repo, dir.path(), 1, 0, 0)).await;
    let leaked = cp.start_execution("scanned", "").await;
    let leaked = cp.wait_done(&leaked.name, Duration::from_secs(60)).await;
    assert_eq!(leaked.state, pb::ExecutionState::Failed as i32);
    let secrets = leaked.stages[0]
        .actions
        .iter()
        .find(|a| a.action == "secrets")
        .expect("secrets");
    assert_eq!(secrets.state, pb::ActionState::Failed as i32);
    assert!(
        secrets.failure_reason.contains("secrets detection found 1"),
        "{}",
        secrets.failure_reason
    );

    // Two high SAST findings against a threshold of 0.
    cp.apply(&gated_pipeline(&repo, dir.path(), 0, 2, 0)).await;
    let risky = cp.start_execution("scanned", "").await;
    let risky = cp.wait_done(&risky.name, Duration::from_secs(60)).await;
    assert_eq!(risky.state, pb::ExecutionState::Failed as i32);
    let sast = risky.stages[0]
        .actions
        .iter()
        .find(|a| a.action == "sast")
        .expect("sast");
    assert!(
        sast.failure_reason.contains("2 high (at most 0)"),
        "{}",
        sast.failure_reason
    );
    assert_eq!(sast.attempt, 1, "a gate failure is not retried");
});

on_every_backend!(
    cancelling_while_waiting_for_approval_ends_the_stage,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let marker = dir.path().join("deployed");
        cp.apply(&approved_pipeline(&repo, &marker)).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        cp.wait_for(&started.name, pb::ExecutionState::WaitingApproval)
            .await;
        let cancelled = cp
            .executions
            .cancel_execution(pb::CancelExecutionRequest {
                name: started.name.clone(),
                principal: who("ann", &[]),
                ..Default::default()
            })
            .await
            .expect("cancel")
            .into_inner();
        assert_eq!(cancelled.state, pb::ExecutionState::Cancelled as i32);
        assert_eq!(cancelled.stages[1].state, pb::StageState::Cancelled as i32);
        let late = approve(&mut cp, &started.name, "prod", who("ann", &[]))
            .await
            .expect_err("too late");
        assert_eq!(late.code(), Code::FailedPrecondition);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_wait_ends_at_its_timeout() {
    use sea_orm::ConnectionTrait;
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let marker = dir.path().join("deployed");
        let yaml = approved_pipeline(&repo, &marker)
            .replace("principals: [ann]}", "principals: [ann], timeout: 1h}");
        cp.apply(&yaml).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        let waiting = cp
            .wait_for(&started.name, pb::ExecutionState::WaitingApproval)
            .await;
        assert_eq!(
            waiting.state,
            pb::ExecutionState::WaitingApproval as i32,
            "{waiting:#?}"
        );
        // Reconcile passes (every second here) leave a wait with an hour to go alone.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let still = cp.wait_done(&started.name, Duration::ZERO).await;
        assert_eq!(still.state, pb::ExecutionState::WaitingApproval as i32);
        // An hour passes: the deadline moves into the past.
        let store = conveyor_execution::store::Store::connect(&backend.url_for("execution"), 1)
            .await
            .expect("execution store");
        store
            .connection()
            .execute_unprepared(
                "UPDATE stage_runs SET approval_deadline = '2000-01-01 00:00:00+00:00' \
                 WHERE approval_deadline IS NOT NULL",
            )
            .await
            .expect("move the deadline");
        let done = cp.wait_done(&started.name, Duration::from_secs(30)).await;
        assert_eq!(done.state, pb::ExecutionState::Failed as i32, "{done:#?}");
        assert!(
            done.state_reason.contains("no approval within 3600s"),
            "{}",
            done.state_reason
        );
        assert!(!marker.exists(), "prod never deployed");
        cp.stop().await;
        backend.cleanup().await;
    }
}

/// A build whose configuration must match its schema: `settings.json` is
/// written by the command, from `$SETTINGS`.
fn schema_checked(repo: &std::path::Path, settings: &str) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: config}}
spec:
  type: dynamic-configuration
  source: {{repository: "{repo}"}}
  stages:
    - name: build
      actions:
        - name: schema
          kind: schema-validation
          run: |
            echo '{{"type": "object", "properties": {{"maxConnections": {{"type": "integer", "minimum": 1}}}}, "required": ["maxConnections"]}}' > schema.json
            echo '{settings}' > settings.json
          validate:
            - {{schema: schema.json, files: [settings.json]}}
"#,
        repo = repo.display()
    )
}

on_every_backend!(an_invalid_configuration_fails_the_build, |cp, dir| {
    let repo = git_repo(dir.path());
    cp.start_worker();
    cp.apply(&schema_checked(&repo, r#"{"maxConnections": 8}"#))
        .await;
    let valid = cp.start_execution("config", "").await;
    let valid = cp.wait_done(&valid.name, Duration::from_secs(60)).await;
    assert_eq!(
        valid.state,
        pb::ExecutionState::Succeeded as i32,
        "{}",
        valid.state_reason
    );
    cp.apply(&schema_checked(&repo, r#"{"maxConnections": 0}"#))
        .await;
    let invalid = cp.start_execution("config", "").await;
    let invalid = cp.wait_done(&invalid.name, Duration::from_secs(60)).await;
    assert_eq!(invalid.state, pb::ExecutionState::Failed as i32);
    let reason = &invalid.stages[0].actions[0].failure_reason;
    assert!(
        reason.starts_with(
            "schema validation failed (1 problem):\nsettings.json: at /maxConnections:"
        ),
        "{reason}"
    );
});

/// A build whose evaluate action reports `{"r2": $CONVEYOR_PARAM_R2}`.
fn evaluated(repo: &std::path::Path) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: model}}
spec:
  type: machine-learning
  source: {{repository: "{repo}"}}
  stages:
    - name: build
      actions:
        - name: evaluate
          kind: evaluate
          run: 'echo "{{\"r2\": $CONVEYOR_PARAM_R2, \"rows\": 40}}" > metrics.json'
          outputs: {{metrics: metrics.json}}
  gates:
    modelQuality: {{metric: r2, maxRegression: 0.02, worstAllowed: 0.9}}
"#,
        repo = repo.display()
    )
}

async fn evaluate(cp: &mut ControlPlane, r2: &str) -> pb::Execution {
    let started = cp
        .executions
        .start_execution(pb::StartExecutionRequest {
            parent: "pipelines/model".into(),
            commit: Some(pb::Commit::default()),
            parameters: [("R2".to_owned(), r2.to_owned())].into(),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner();
    cp.wait_done(&started.name, Duration::from_secs(60)).await
}

on_every_backend!(a_worse_model_fails_the_quality_gate, |cp, dir| {
    let repo = git_repo(dir.path());
    cp.start_worker();
    cp.apply(&evaluated(&repo)).await;
    let quality = |e: &pb::Execution| {
        let action = &e.stages[0].actions[0];
        let gate = action.gate.clone().expect("gate");
        assert_eq!(gate.kind, pb::GateKind::ModelQuality as i32);
        (
            action.metrics.clone(),
            gate.model_quality.expect("result"),
            gate.passed,
        )
    };
    // The first model has no baseline; it only has to beat the floor. A
    // failed run is never the production model.
    let floor = evaluate(&mut cp, "0.89").await;
    assert_eq!(floor.state, pb::ExecutionState::Failed as i32);
    assert!(
        floor.stages[0].actions[0]
            .failure_reason
            .contains("r2 0.89 is worse than the worst allowed, 0.9"),
        "{}",
        floor.stages[0].actions[0].failure_reason
    );
    let first = evaluate(&mut cp, "0.95").await;
    assert_eq!(
        first.state,
        pb::ExecutionState::Succeeded as i32,
        "{}",
        first.state_reason
    );
    let (metrics, result, passed) = quality(&first);
    assert_eq!((metrics["r2"], metrics["rows"]), (0.95, 40.0));
    assert_eq!(
        (result.value, result.baseline, passed),
        (Some(0.95), None, true)
    );
    // Within the allowed regression of the production model: passes.
    let second = evaluate(&mut cp, "0.94").await;
    assert_eq!(
        second.state,
        pb::ExecutionState::Succeeded as i32,
        "{}",
        second.state_reason
    );
    let (_, result, _) = quality(&second);
    assert_eq!(result.baseline, Some(0.95));
    assert_eq!(
        result.baseline_execution,
        first.name.rsplit('/').next().unwrap_or_default()
    );
    // Worse than the production model (now 0.94) by more than 0.02: fails, not retried.
    let worse = evaluate(&mut cp, "0.91").await;
    assert_eq!(worse.state, pb::ExecutionState::Failed as i32);
    let reason = &worse.stages[0].actions[0].failure_reason;
    assert!(
        reason.starts_with("model quality: r2 0.91 is worse than the production model's 0.94"),
        "{reason}"
    );
    let (_, result, passed) = quality(&worse);
    assert_eq!(
        (result.value, result.baseline, passed),
        (Some(0.91), Some(0.94), false)
    );
    assert_eq!(worse.stages[0].actions[0].attempt, 1);
    let better = evaluate(&mut cp, "0.97").await;
    assert_eq!(better.state, pb::ExecutionState::Succeeded as i32);
    assert_eq!(quality(&better).1.baseline, Some(0.94));
});
