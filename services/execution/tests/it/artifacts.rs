//! Build once, deploy by digest: the build stage's outputs are stored and
//! signed, later stages download exactly those bytes, and tampered bytes or
//! signatures are refused before any deploy runs; a redeploy deploys an
//! earlier execution's bytes again without building.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use sea_orm::ConnectionTrait;
use sha2::{Digest, Sha256};
use tonic_types::StatusExt;

use crate::support::{Backend, ControlPlane, backends, git_repo, on_every_backend, ops};

/// Build packages `dist/app.txt` (and an SBOM); beta deploys it from the
/// artifacts directory into `deployed`.
fn build_once(repo: &std::path::Path, deployed: &std::path::Path) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: shop}}
spec:
  type: application
  source: {{repository: "{repo}", trunk: main}}
  environments:
    - {{name: beta, tier: beta, account: "2", regions: [us-east-1]}}
  stages:
    - name: build
      actions:
        - name: package
          kind: package
          run: 'mkdir -p dist && echo "app built from $CONVEYOR_COMMIT" > dist/app.txt && echo "{{\"spdxVersion\":\"SPDX-2.3\"}}" > sbom.json'
          outputs: {{artifacts: [dist/app.txt], sbom: sbom.json}}
    - name: beta
      environment: beta
      actions:
        - name: deploy
          kind: deploy
          run: 'cp "$CONVEYOR_ARTIFACTS_DIR/dist/app.txt" "{deployed}"'
"#,
        repo = repo.display(),
        deployed = deployed.display(),
    )
}

async fn block_beta(cp: &mut ControlPlane) -> pb::Blocker {
    cp.executions
        .block_promotion(pb::BlockPromotionRequest {
            parent: "pipelines/shop".into(),
            stage: "beta".into(),
            reason: "hold the artifact between build and deploy".into(),
            principal: ops(),
            request_id: String::new(),
        })
        .await
        .expect("block")
        .into_inner()
}

async fn unblock(cp: &mut ControlPlane, blocker: pb::Blocker) {
    cp.executions
        .unblock_promotion(pb::UnblockPromotionRequest {
            name: blocker.name,
            reason: "go".into(),
            principal: ops(),
            ..Default::default()
        })
        .await
        .expect("unblock");
}

/// Runs the build and stops at the blocker before beta; returns the
/// held execution's name.
async fn build_and_hold(cp: &mut ControlPlane, dir: &std::path::Path) -> (String, pb::Blocker) {
    let repo = git_repo(dir);
    cp.apply(&build_once(&repo, &dir.join("deployed"))).await;
    let blocker = block_beta(cp).await;
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let held = cp.wait_for(&started.name, pb::ExecutionState::Held).await;
    assert_eq!(
        held.state,
        pb::ExecutionState::Held as i32,
        "never held: {held:#?}"
    );
    (started.name, blocker)
}

fn artifacts_dir(cp: &ControlPlane) -> std::path::PathBuf {
    cp.work_dir.path().join("artifacts/sha256")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_build_output_is_stored_signed_and_deployed_by_digest() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let deployed = dir.path().join("deployed");
        cp.apply(&build_once(&repo, &deployed)).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::Succeeded as i32,
            "{done:#?}"
        );
        let commit = done.commit.as_ref().expect("commit").sha.clone();
        let content = format!("app built from {commit}\n");
        assert_eq!(
            std::fs::read_to_string(&deployed).expect("deployed"),
            content,
            "beta deployed the bytes the build stored"
        );
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(content.as_bytes())));
        let names: Vec<(&str, &str)> = done
            .artifacts
            .iter()
            .map(|a| (a.name.as_str(), a.digest.as_str()))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.contains(&("dist/app.txt", digest.as_str())),
            "{names:?}"
        );
        assert!(names.iter().any(|(n, _)| *n == "sbom.json"), "{names:?}");
        let package = &done.stages[0].actions[0];
        assert_eq!(package.artifacts.len(), 2, "the action that stored them");
        assert!(
            artifacts_dir(&cp)
                .join(digest.trim_start_matches("sha256:"))
                .is_file(),
            "stored under its digest"
        );
        // The deploy's log says what it verified.
        let deploy = &done.stages[1].actions[0];
        let chunks = crate::logs::read_logs(
            &mut cp,
            pb::StreamLogsRequest {
                name: done.name.clone(),
                action_run: deploy.name.clone(),
                ..Default::default()
            },
        )
        .await;
        let log = crate::logs::text(&chunks, &deploy.name);
        assert!(
            log.contains(&format!(
                "artifact dist/app.txt {digest} ({} bytes): digest verified, signature verified",
                content.len()
            )),
            "{log}"
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_bytes_are_refused_before_the_deploy_runs() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let (name, blocker) = build_and_hold(&mut cp, dir.path()).await;
        let mut tampered = 0;
        for entry in std::fs::read_dir(artifacts_dir(&cp)).expect("stored artifacts") {
            std::fs::write(entry.expect("entry").path(), "evil\n").expect("tamper");
            tampered += 1;
        }
        assert_eq!(tampered, 2, "the package and its SBOM");
        unblock(&mut cp, blocker).await;
        let done = cp.wait_done(&name, Duration::from_secs(60)).await;
        assert_eq!(done.state, pb::ExecutionState::Failed as i32, "{done:#?}");
        let deploy = &done.stages[1].actions[0];
        assert!(
            deploy.failure_reason.contains("refused"),
            "{}",
            deploy.failure_reason
        );
        assert!(
            !dir.path().join("deployed").exists(),
            "the deploy command never ran"
        );
        cp.stop().await;
        backend.cleanup().await;
    }
}

async fn tamper_signatures(backend: &Backend, signature: &str) {
    let store = conveyor_execution::store::Store::connect(&backend.url_for("execution"), 1)
        .await
        .expect("execution store");
    store
        .connection()
        .execute_unprepared(&format!("UPDATE artifacts SET signature = '{signature}'"))
        .await
        .expect("tamper");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_missing_signatures_are_refused() {
    for (case, signature) in [("forged", "00".repeat(64)), ("unsigned", String::new())] {
        for backend in backends().await {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut cp = ControlPlane::start(&backend, 30).await;
            let (name, blocker) = build_and_hold(&mut cp, dir.path()).await;
            tamper_signatures(&backend, &signature).await;
            unblock(&mut cp, blocker).await;
            let done = cp.wait_done(&name, Duration::from_secs(60)).await;
            assert_eq!(
                done.state,
                pb::ExecutionState::Failed as i32,
                "{case}: {done:#?}"
            );
            let reason = &done.stages[1].actions[0].failure_reason;
            assert!(reason.contains("refused"), "{case}: {reason}");
            assert!(!dir.path().join("deployed").exists(), "{case}");
            cp.stop().await;
            backend.cleanup().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_redeploys_the_last_good_artifact() {
    use crate::waves::{fire_alarm, lines, wait_for_line};
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        let yaml = |bake: &str| {
            format!(
                r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: shop}}
spec:
  type: application
  source: {{repository: "{repo}"}}
  environments:
    - {{name: prod, tier: production, account: "4", regions: [us-east-1, eu-west-1]}}
  stages:
    - name: build
      actions:
        - name: package
          kind: package
          run: 'mkdir -p dist && echo "built by $CONVEYOR_EXECUTION_ID" > dist/app.txt'
          outputs: {{artifacts: [dist/app.txt]}}
    - name: prod
      environment: prod
      actions:
        - name: deploy
          kind: deploy
          run: 'echo "$CONVEYOR_TARGET_REGION $(cat "$CONVEYOR_ARTIFACTS_DIR/dist/app.txt")" >> {log}'
      deployment:
        waves:
          - {{name: one-box, targets: [{{account: "4", region: us-east-1}}]}}
          - {{name: rest, targets: [{{account: "4", region: eu-west-1}}]}}
        bakeTime: {bake}
        alarms: [{{name: prod-errors}}]
"#,
                repo = repo.display(),
                log = log.display()
            )
        };
        cp.apply(&yaml("1s")).await;
        cp.start_worker();
        let good = cp.start_execution("shop", "").await;
        let good = cp.wait_done(&good.name, Duration::from_secs(90)).await;
        assert_eq!(
            good.state,
            pb::ExecutionState::Succeeded as i32,
            "{good:#?}"
        );
        let good_id = good.name.rsplit('/').next().expect("id").to_owned();
        std::fs::remove_file(&log).expect("reset the log");

        cp.apply(&yaml("30s")).await;
        let mut events = cp
            .queue
            .reader(
                conveyor_platform::queue::EVENTS_STREAM,
                "artifacts-test",
                "t",
            )
            .await
            .expect("reader");
        let bad = cp.start_execution("shop", "").await;
        let bad_id = bad.name.rsplit('/').next().expect("id").to_owned();
        wait_for_line(&log, &format!("us-east-1 built by {bad_id}")).await;
        fire_alarm(&cp, "errors after the new build").await;
        let done = cp.wait_done(&bad.name, Duration::from_secs(60)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::RolledBack as i32,
            "{done:#?}"
        );
        assert_eq!(
            lines(&log),
            vec![
                format!("us-east-1 built by {bad_id}"),
                format!("us-east-1 built by {good_id}"),
            ],
            "the rollback deployed the artifact the last good execution built"
        );
        // Events name the artifacts: deployed, failed and restored.
        let (mut rollback, mut finished, mut prod_started) = (None, None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while finished.is_none() && tokio::time::Instant::now() < deadline {
            for d in events
                .next(Duration::from_millis(500), 100)
                .await
                .expect("events")
            {
                use conveyor_api::events::v1::event::Payload;
                use prost::Message;
                let event = conveyor_api::events::v1::Event::decode(d.payload.as_slice())
                    .expect("an Event");
                match event.payload {
                    Some(Payload::RollbackStarted(r)) => rollback = Some(r),
                    Some(Payload::StageStarted(st))
                        if st.stage.as_ref().is_some_and(|s| s.stage == "prod") =>
                    {
                        prod_started = Some(st)
                    }
                    Some(Payload::ExecutionFinished(f))
                        if f.context.as_ref().is_some_and(|c| c.execution == bad.name) =>
                    {
                        finished = Some(f)
                    }
                    _ => {}
                }
            }
        }
        let rollback = rollback.expect("execution.rollback.started");
        let failed = rollback.failed_artifact.expect("failed artifact");
        let restored = rollback.restored_artifact.expect("restored artifact");
        assert_eq!(failed.name, "dist/app.txt");
        assert!(failed.execution.ends_with(&bad_id), "{failed:?}");
        assert!(restored.execution.ends_with(&good_id), "{restored:?}");
        assert_ne!(failed.digest, restored.digest);
        let deployed = prod_started.expect("prod stage started").artifacts;
        assert_eq!(
            deployed,
            vec![failed.clone()],
            "prod deploys the build's package"
        );
        assert_eq!(finished.expect("finished").artifacts, vec![failed]);
        cp.stop().await;
        backend.cleanup().await;
    }
}

fn upload(
    metadata: pb::ArtifactUpload,
    bytes: &[u8],
) -> impl futures::Stream<Item = pb::UploadArtifactRequest> + Send + 'static {
    use pb::upload_artifact_request::Part;
    let messages = vec![
        pb::UploadArtifactRequest {
            part: Some(Part::Metadata(metadata)),
        },
        pb::UploadArtifactRequest {
            part: Some(Part::Chunk(bytes.to_vec())),
        },
    ];
    futures::stream::iter(messages)
}

fn bad_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_against_the_declaration_the_digest_and_the_attempt() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        cp.apply(&build_once(&repo, &dir.path().join("deployed")))
            .await;
        cp.start_execution("shop", "").await;
        let task = cp
            .workers
            .claim_task(pb::ClaimTaskRequest {
                worker: "hand".into(),
                pool: "default".into(),
                wait: Some(prost_types::Duration {
                    seconds: 10,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await
            .expect("claim")
            .into_inner()
            .task
            .expect("the package action");
        let bytes = b"app\n";
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let metadata = pb::ArtifactUpload {
            action_run: task.action_run.clone(),
            attempt: task.attempt,
            worker: "hand".into(),
            name: "dist/app.txt".into(),
            digest: digest.clone(),
            size_bytes: bytes.len() as i64,
            ..Default::default()
        };

        let undeclared = pb::ArtifactUpload {
            name: "dist/other.txt".into(),
            ..metadata.clone()
        };
        let err = cp
            .workers
            .upload_artifact(upload(undeclared, bytes))
            .await
            .expect_err("undeclared");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert_eq!(bad_field(&err), "metadata.name");

        let malformed = pb::ArtifactUpload {
            digest: "md5:abc".into(),
            ..metadata.clone()
        };
        let err = cp
            .workers
            .upload_artifact(upload(malformed, bytes))
            .await
            .expect_err("malformed digest");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(bad_field(&err), "metadata.digest");

        let err = cp
            .workers
            .upload_artifact(upload(metadata.clone(), b"not the declared bytes"))
            .await
            .expect_err("wrong bytes");
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "more than declared"
        );
        let err = cp
            .workers
            .upload_artifact(upload(metadata.clone(), b"ap\n\n"))
            .await
            .expect_err("wrong bytes");
        assert_eq!(err.code(), tonic::Code::DataLoss, "{err:?}");

        let stale = pb::ArtifactUpload {
            attempt: task.attempt + 1,
            ..metadata.clone()
        };
        let err = cp
            .workers
            .upload_artifact(upload(stale, bytes))
            .await
            .expect_err("stale");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);

        let stored = cp
            .workers
            .upload_artifact(upload(metadata, bytes))
            .await
            .expect("upload")
            .into_inner();
        assert_eq!(stored.r#ref.expect("ref").digest, digest);
        let signature = stored.signature.expect("signed");
        assert_eq!(signature.algorithm, "ed25519");
        assert!(signature.key_id.starts_with("ed25519:"));
        assert_eq!(signature.value.len(), 64);
        assert_eq!(stored.kind, pb::ArtifactKind::Package as i32);
        let nothing_stored_twice = std::fs::read_dir(artifacts_dir(&cp))
            .expect("stored")
            .count();
        assert_eq!(nothing_stored_twice, 1, "refused uploads left nothing");
        cp.stop().await;
        backend.cleanup().await;
    }
}

on_every_backend!(
    a_redeploy_deploys_an_earlier_artifact_without_building,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let deployed = dir.path().join("deployed");
        cp.apply(&format!(
            r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: flags}}
spec:
  type: dynamic-configuration
  source: {{repository: "{repo}"}}
  environments:
    - {{name: beta, tier: beta, account: "2", regions: [us-east-1]}}
  stages:
    - name: build
      actions:
        - name: package
          kind: package
          run: 'mkdir -p dist && echo "built by $CONVEYOR_EXECUTION_ID" > dist/config.txt'
          outputs: {{artifacts: [dist/config.txt]}}
    - name: beta
      environment: beta
      actions:
        - name: deploy
          kind: deploy-config
          run: 'cp "$CONVEYOR_ARTIFACTS_DIR/dist/config.txt" "{deployed}"'
"#,
            repo = repo.display(),
            deployed = deployed.display(),
        ))
        .await;
        cp.start_worker();
        let mut done = Vec::new();
        for _ in 0..2 {
            let started = cp.start_execution("flags", "").await;
            let e = cp
                .wait_for(&started.name, pb::ExecutionState::Succeeded)
                .await;
            assert_eq!(e.state, pb::ExecutionState::Succeeded as i32, "{e:#?}");
            done.push(e);
        }
        let first_id = done[0].name.rsplit('/').next().expect("id").to_owned();
        let second_id = done[1].name.rsplit('/').next().expect("id").to_owned();
        let read = || std::fs::read_to_string(&deployed).expect("deployed");
        assert_eq!(read(), format!("built by {second_id}\n"));

        // Version 1 again: no build, the same digest, deployed to beta.
        let redeploy = |name: &str| pb::StartExecutionRequest {
            parent: "pipelines/flags".into(),
            commit: Some(pb::Commit {
                author: "oncall".into(),
                ..Default::default()
            }),
            redeploy: name.into(),
            ..Default::default()
        };
        let started = cp
            .executions
            .start_execution(redeploy(&done[0].name))
            .await
            .expect("redeploy")
            .into_inner();
        let e = cp
            .wait_for(&started.name, pb::ExecutionState::Succeeded)
            .await;
        assert_eq!(e.state, pb::ExecutionState::Succeeded as i32, "{e:#?}");
        assert_eq!(read(), format!("built by {first_id}\n"));
        let trigger = e.trigger.clone().expect("trigger");
        assert_eq!(trigger.kind, pb::TriggerKind::Redeploy as i32);
        assert_eq!(trigger.redeployed_execution, done[0].name);
        assert_eq!(
            e.commits.last().expect("commit").sha,
            done[0].commits.last().expect("commit").sha
        );
        let build = &e.stages[0];
        assert_eq!(build.state, pb::StageState::Skipped as i32);
        assert!(
            build.state_reason.contains(&first_id),
            "{}",
            build.state_reason
        );
        assert!(
            build
                .actions
                .iter()
                .all(|a| a.state == pb::ActionState::Skipped as i32)
        );
        assert_eq!(e.artifacts.len(), 1);
        assert_eq!(e.artifacts[0].digest, done[0].artifacts[0].digest);

        // Only a successful execution of the same pipeline.
        for bad in [
            "pipelines/other/executions/0123abcd".to_owned(),
            "pipelines/flags/executions/0123abcd".to_owned(),
            "flags".to_owned(),
        ] {
            let refused = cp
                .executions
                .start_execution(redeploy(&bad))
                .await
                .expect_err("refused");
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{bad}");
            let field = refused
                .get_details_bad_request()
                .expect("bad request")
                .field_violations[0]
                .field
                .clone();
            assert_eq!(field, "redeploy");
        }
    }
);
