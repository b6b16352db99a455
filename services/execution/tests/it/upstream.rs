//! Artifacts flowing between pipelines: an image pipeline's publish starts
//! the application pipeline that takes it, pinned by digest; a manual start
//! pins the newest publish or a chosen one; triggers that are off, from
//! build-only runs, or that would go round in a cycle start nothing; an
//! optional upstream is pinned only once it has published.

use std::path::Path;
use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{ControlPlane, git_repo, on_every_backend};

/// A one-stage pipeline that publishes `image/rootfs.tar`, different bytes
/// on every execution.
fn image(name: &str, repo: &Path, upstream: &str) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: {name}}}
spec:
  type: compute-image
  source: {{repository: "{repo}", trunk: main}}
  executionMode: parallel
  stages:
    - name: build
      actions:
        - name: bake
          kind: package
          run: 'mkdir -p image && echo "rootfs of $CONVEYOR_EXECUTION_ID" > image/rootfs.tar'
          outputs: {{artifacts: [image/rootfs.tar]}}
        - name: scan
          kind: secrets-detection
          run: 'mkdir -p reports && echo "{{\"version\":\"2.1.0\",\"runs\":[{{\"tool\":{{\"driver\":{{\"name\":\"scan\"}}}},\"results\":[]}}]}}" > reports/secrets.sarif'
          outputs: {{sarif: [reports/secrets.sarif]}}
{upstream}"#,
        repo = repo.display()
    )
}

/// An application built on `base-image`'s rootfs: the build copies the
/// upstream artifact into its own package, beta deploys the package.
fn application(repo: &Path, deployed: &Path, upstream: &str) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: shop}}
spec:
  type: application
  source: {{repository: "{repo}", trunk: main}}
  executionMode: parallel
  environments:
    - {{name: beta, tier: beta, account: "2", regions: [us-east-1]}}
  upstream:
{upstream}
  stages:
    - name: build
      actions:
        - name: package
          kind: package
          run: 'mkdir -p dist && cp "$CONVEYOR_ARTIFACTS_DIR/upstream/base-image/image/rootfs.tar" dist/app.txt && echo "app" >> dist/app.txt'
          outputs: {{artifacts: [dist/app.txt]}}
    - name: beta
      environment: beta
      actions:
        - name: deploy
          kind: deploy
          run: 'cat "$CONVEYOR_ARTIFACTS_DIR/dist/app.txt" "$CONVEYOR_ARTIFACTS_DIR/upstream/base-image/image/rootfs.tar" > "{deployed}"'
"#,
        repo = repo.display(),
        deployed = deployed.display(),
    )
}

async fn executions_of(cp: &mut ControlPlane, pipeline: &str) -> Vec<pb::Execution> {
    cp.executions
        .list_executions(pb::ListExecutionsRequest {
            parent: format!("pipelines/{pipeline}"),
            view: pb::ExecutionView::Full as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .executions
}

/// Waits until `pipeline` has `count` executions (or 30 s pass); newest first.
async fn wait_for_count(cp: &mut ControlPlane, pipeline: &str, count: usize) -> Vec<pb::Execution> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = executions_of(cp, pipeline).await;
        if found.len() >= count || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(cp: &mut ControlPlane, pipeline: &str) -> pb::Execution {
    let started = cp.start_execution(pipeline, "").await;
    let done = cp
        .wait_for(&started.name, pb::ExecutionState::Succeeded)
        .await;
    assert_eq!(
        done.state,
        pb::ExecutionState::Succeeded as i32,
        "{}",
        done.state_reason
    );
    done
}

async fn start_pinned(
    cp: &mut ControlPlane,
    upstream_execution: &str,
) -> Result<pb::Execution, tonic::Status> {
    cp.executions
        .start_execution(pb::StartExecutionRequest {
            parent: "pipelines/shop".into(),
            commit: Some(pb::Commit {
                author: "dev".into(),
                ..Default::default()
            }),
            trigger: Some(pb::Trigger {
                upstream_execution: upstream_execution.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

on_every_backend!(
    an_image_publish_starts_the_application_pinned_to_its_digest,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let deployed = dir.path().join("deployed");
        cp.apply(&image("base-image", &repo, "")).await;
        cp.apply(&application(
            &repo,
            &deployed,
            "    - {pipeline: base-image, artifacts: [image/rootfs.tar]}",
        ))
        .await;
        cp.start_worker();

        // Nothing published yet: the application cannot start.
        let refused = cp
            .executions
            .start_execution(pb::StartExecutionRequest {
                parent: "pipelines/shop".into(),
                commit: Some(pb::Commit::default()),
                ..Default::default()
            })
            .await
            .expect_err("no upstream publish yet");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(reason(&refused), "UPSTREAM_NOT_PUBLISHED");
        assert!(
            refused.message().contains("base-image"),
            "{}",
            refused.message()
        );

        // A publish starts the application, pinned to the published digest.
        let first = publish(&mut cp, "base-image").await;
        let rootfs = first.artifacts[0].clone();
        assert_eq!(rootfs.name, "image/rootfs.tar");
        let triggered = wait_for_count(&mut cp, "shop", 1).await;
        assert_eq!(triggered.len(), 1, "one execution per publish");
        let app = cp
            .wait_for(&triggered[0].name, pb::ExecutionState::Succeeded)
            .await;
        assert_eq!(
            app.state,
            pb::ExecutionState::Succeeded as i32,
            "{}",
            app.state_reason
        );
        let trigger = app.trigger.clone().expect("trigger");
        assert_eq!(trigger.kind, pb::TriggerKind::UpstreamArtifact as i32);
        assert_eq!(trigger.upstream_execution, first.name);
        assert_eq!(
            trigger.upstream_artifact.expect("artifact").digest,
            rootfs.digest
        );
        assert_eq!(app.upstream_artifacts.len(), 1);
        assert_eq!(app.upstream_artifacts[0].digest, rootfs.digest);
        assert_eq!(app.upstream_artifacts[0].execution, first.name);
        // Both the build and beta got the pinned bytes.
        let first_id = first.name.rsplit('/').next().expect("id");
        let content = std::fs::read_to_string(&deployed).expect("deployed");
        assert_eq!(
            content,
            format!("rootfs of {first_id}\napp\nrootfs of {first_id}\n")
        );

        // Its provenance goes back through the image execution it pinned.
        let provenance = cp
            .executions
            .get_provenance(pb::GetProvenanceRequest {
                name: format!("{}/provenance", app.name),
            })
            .await
            .expect("provenance")
            .into_inner();
        assert_eq!(provenance.name, format!("{}/provenance", app.name));
        let own = provenance.execution.expect("execution");
        assert_eq!(own.artifacts[0].name, "dist/app.txt");
        assert_eq!(own.upstream_artifacts[0].digest, rootfs.digest);
        assert_eq!(provenance.upstream.len(), 1);
        let image = provenance.upstream[0].execution.clone().expect("upstream");
        assert_eq!(image.name, first.name);
        assert_eq!(image.artifacts[0].digest, rootfs.digest);
        let gate = image.stages[0]
            .actions
            .iter()
            .find_map(|a| a.gate.clone())
            .expect("the scan's gate result");
        assert_eq!(gate.kind, pb::GateKind::SecretsDetection as i32);
        assert!(gate.passed);
        let bad = cp
            .executions
            .get_provenance(pb::GetProvenanceRequest {
                name: app.name.clone(),
            })
            .await
            .expect_err("not a provenance name");
        assert_eq!(bad.code(), Code::InvalidArgument);

        // The next publish starts the next one, with the new digest.
        let second = publish(&mut cp, "base-image").await;
        let triggered = wait_for_count(&mut cp, "shop", 2).await;
        assert_eq!(triggered.len(), 2);
        assert_eq!(
            triggered[0].upstream_artifacts[0].digest,
            second.artifacts[0].digest
        );
        assert_ne!(second.artifacts[0].digest, rootfs.digest);
        cp.wait_for(&triggered[0].name, pb::ExecutionState::Succeeded)
            .await;

        // A manual start pins the newest publish, or the execution named.
        let manual = cp.start_execution("shop", "").await;
        assert_eq!(
            manual.upstream_artifacts[0].digest,
            second.artifacts[0].digest
        );
        assert_eq!(
            manual.trigger.expect("trigger").kind,
            pb::TriggerKind::Api as i32
        );
        let pinned = start_pinned(&mut cp, &first.name)
            .await
            .expect("pinned start");
        assert_eq!(pinned.upstream_artifacts[0].digest, rootfs.digest);
        let not_upstream = start_pinned(&mut cp, "pipelines/shop/executions/0123abcd")
            .await
            .expect_err("shop is not upstream of itself");
        assert_eq!(not_upstream.code(), Code::InvalidArgument);
        let field = not_upstream
            .get_details_bad_request()
            .expect("bad request")
            .field_violations[0]
            .field
            .clone();
        assert_eq!(field, "trigger.upstream_execution");

        // A build-only run publishes nothing and triggers nothing.
        let branch = cp.start_execution("base-image", "feature/x").await;
        cp.wait_for(&branch.name, pb::ExecutionState::Succeeded)
            .await;
        let refused = start_pinned(&mut cp, &branch.name)
            .await
            .expect_err("a build-only run is not a publish");
        assert_eq!(reason(&refused), "UPSTREAM_NOT_PUBLISHED");
        for e in [&manual.name, &pinned.name] {
            cp.wait_done(e, Duration::from_secs(60)).await;
        }
        assert_eq!(executions_of(&mut cp, "shop").await.len(), 4);
    }
);

on_every_backend!(
    triggers_that_are_off_or_go_round_start_nothing,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let from = |pipelines: &[(&str, bool)]| {
            let list: Vec<String> = pipelines
                .iter()
                .map(|(p, trigger)| format!("    - {{pipeline: {p}, trigger: {trigger}}}"))
                .collect();
            format!("  upstream:\n{}\n", list.join("\n"))
        };
        cp.apply(&image("a", &repo, "")).await;
        // b is off, c is on; b is decided before c (name order).
        cp.apply(&image("b", &repo, &from(&[("a", false)]))).await;
        cp.apply(&image("c", &repo, &from(&[("a", true)]))).await;
        cp.start_worker();
        publish(&mut cp, "a").await;
        let c = wait_for_count(&mut cp, "c", 1).await;
        assert_eq!(c.len(), 1, "c is triggered");
        assert!(executions_of(&mut cp, "b").await.is_empty(), "b is not");
        cp.wait_for(&c[0].name, pb::ExecutionState::Succeeded).await;

        // a now takes c's artifacts too: c's publish would start a, which
        // started c. Not triggered; d, downstream of c, shows the pass ran.
        cp.apply(&image("a", &repo, &from(&[("c", true)]))).await;
        cp.apply(&image("d", &repo, &from(&[("c", true)]))).await;
        let c2 = cp.start_execution("c", "").await;
        cp.wait_for(&c2.name, pb::ExecutionState::Succeeded).await;
        let d = wait_for_count(&mut cp, "d", 1).await;
        assert_eq!(d.len(), 1, "d is triggered by c's publish");
        // c2 was started by hand, pinned to a's publish: a is upstream of c2,
        // so c2's publish must not start a again.
        assert_eq!(
            executions_of(&mut cp, "a").await.len(),
            1,
            "no trigger cycle"
        );
        cp.wait_for(&d[0].name, pb::ExecutionState::Succeeded).await;
    }
);

on_every_backend!(
    an_optional_upstream_is_pinned_once_it_has_published,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let from = |trigger: bool| {
            format!("  upstream:\n    - {{pipeline: config, trigger: {trigger}, optional: true}}\n")
        };
        cp.apply(&image("config", &repo, "")).await;
        // app records the configuration it ran with; watch is triggered by it.
        cp.apply(&image("app", &repo, &from(false))).await;
        cp.apply(&image("watch", &repo, &from(true))).await;
        cp.start_worker();

        // Before the configuration's first publish: nothing to pin.
        let before = publish(&mut cp, "app").await;
        assert!(before.upstream_artifacts.is_empty(), "{before:?}");

        // The publish triggers watch, not app; app's next run pins it.
        let config = publish(&mut cp, "config").await;
        let watch = wait_for_count(&mut cp, "watch", 1).await;
        assert_eq!(watch.len(), 1, "watch is triggered");
        cp.wait_for(&watch[0].name, pb::ExecutionState::Succeeded)
            .await;
        assert_eq!(executions_of(&mut cp, "app").await.len(), 1, "app is not");
        let after = publish(&mut cp, "app").await;
        assert_eq!(after.upstream_artifacts.len(), 1);
        assert_eq!(
            after.upstream_artifacts[0].digest,
            config.artifacts[0].digest
        );
        let provenance = cp
            .executions
            .get_provenance(pb::GetProvenanceRequest {
                name: format!("{}/provenance", after.name),
            })
            .await
            .expect("provenance")
            .into_inner();
        assert_eq!(
            provenance.upstream[0]
                .execution
                .clone()
                .expect("config")
                .name,
            config.name
        );
    }
);
