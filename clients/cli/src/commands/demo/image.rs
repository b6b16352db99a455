//! The compute-image part of the demo: examples/compute-image as a git
//! repository and its pipeline applied as `demo-image`; the service's
//! pipeline takes the image from it (`spec.upstream`), so the image's
//! publish starts the service's execution, pinned to the image's digest,
//! and the service answers `GET /base` with the image it was built on.
//! With `--break`, a second image ships a package with a known critical
//! vulnerability: its scan fails the build, it is never published, and the
//! service is not rebuilt.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use serde_json::json;

use super::{Run, Session, application, http, repo, spec};
use crate::status::to_anyhow;

const EXAMPLE: &str = "compute-image";
/// The name the demo's image pipeline is stored under.
pub const PIPELINE: &str = "demo-image";

pub async fn run(s: &mut Session, break_release: bool) -> anyhow::Result<Vec<Run>> {
    let repo_dir = s.dir.join("image-repo");
    let message = "Demo Base 1";
    let first = repo::create(&repo_dir, EXAMPLE, message)?;
    println!(
        "  repository     {} (examples/compute-image, commit {})",
        repo_dir.display(),
        &first[..12]
    );
    s.apply_example(EXAMPLE, PIPELINE, &repo_dir).await?;
    application::prepare(
        s,
        json!([{"pipeline": PIPELINE, "artifacts": ["dist/rootfs.tar.gz"]}]),
    )
    .await?;
    println!(
        "                 pipelines/{} takes dist/rootfs.tar.gz from pipelines/{PIPELINE}: each image publish starts it",
        spec::PIPELINE
    );

    let mut runs = Vec::new();
    println!("\nimage 1: {message}");
    let image = s.release(PIPELINE, &first, message).await?;
    let published = image.state == pb::ExecutionState::Succeeded as i32;
    let digest = image
        .artifacts
        .first()
        .map(|a| a.digest.clone())
        .unwrap_or_default();
    let image_name = image.name.clone();
    runs.push(Run {
        execution: image,
        expected: pb::ExecutionState::Succeeded,
    });
    if !published {
        return Ok(runs);
    }
    println!("\nthe publish of {digest} started the service's pipeline:");
    let triggered = triggered_by(s, &image_name).await?;
    println!("  {}", triggered.name);
    let app = super::progress::follow(&mut s.client, &triggered.name).await?;
    let pinned: Vec<String> = app
        .upstream_artifacts
        .iter()
        .map(|a| format!("{} {} (from {})", a.name, a.digest, a.execution))
        .collect();
    println!("  pinned         {}", pinned.join(", "));
    for port in &s.ports.prod {
        let answer = http::get(*port, "/base").unwrap_or_else(|e| format!("no answer: {e}"));
        println!("  prod :{port} GET /base {}", answer.trim());
    }
    runs.push(Run {
        execution: app,
        expected: pb::ExecutionState::Succeeded,
    });

    if break_release {
        let message = "Downgrade openssl to 3.5.2 (affected by CVE-2026-31337)";
        repo::replace(
            &repo_dir,
            "rootfs/var/lib/demo/packages",
            "openssl 3.5.4",
            "openssl 3.5.2",
        )?;
        let second = repo::commit(&repo_dir, message)?;
        println!("\nimage 2: {message}");
        let refused = s.release(PIPELINE, &second, message).await?;
        // Give a trigger the time it would take, then show none fired.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let downstream = executions(s, spec::PIPELINE).await?.len();
        println!(
            "  not published: pipelines/{} still has {downstream} execution(s), built on {digest}",
            spec::PIPELINE
        );
        runs.push(Run {
            execution: refused,
            expected: pb::ExecutionState::Failed,
        });
    }
    Ok(runs)
}

async fn executions(s: &mut Session, pipeline: &str) -> anyhow::Result<Vec<pb::Execution>> {
    Ok(s.client
        .list_executions(pb::ListExecutionsRequest {
            parent: format!("pipelines/{pipeline}"),
            ..Default::default()
        })
        .await
        .map_err(to_anyhow)?
        .into_inner()
        .executions)
}

/// The service's execution that `upstream`'s publish started (waits up to
/// a minute for the trigger to fire).
async fn triggered_by(s: &mut Session, upstream: &str) -> anyhow::Result<pb::Execution> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = executions(s, spec::PIPELINE).await?.into_iter().find(|e| {
            e.trigger
                .as_ref()
                .is_some_and(|t| t.upstream_execution == upstream)
        });
        if let Some(e) = found {
            return Ok(e);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{upstream} published, but no execution of pipelines/{} started within a minute",
            spec::PIPELINE
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
