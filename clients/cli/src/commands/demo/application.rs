//! The application part of the demo: examples/application as a git
//! repository, its pipeline applied as `demo-shop`, prod's accounts vended
//! (embedded control plane), and one release, or two with `--break`: the
//! second requires a per-target file that only some targets have, fails its
//! health probe in prod wave 2 and is rolled back.

use conveyor_api::execution::v1 as pb;

use super::{Run, Session, fleet, repo, spec};

const EXAMPLE: &str = "application";

/// The first commit's message.
const FIRST: &str = "Initial version of the demo service";

/// Makes the repository, applies the pipeline (taking artifacts from
/// `upstream`, a list of `spec.upstream` entries) and, on the embedded
/// control plane, vends prod's accounts; returns the repository and its
/// first commit.
pub async fn prepare(
    s: &mut Session,
    upstream: serde_json::Value,
) -> anyhow::Result<(std::path::PathBuf, String)> {
    let repo_dir = s.dir.join("repo");
    let first = repo::create(&repo_dir, EXAMPLE, FIRST)?;
    println!(
        "  repository     {} (examples/application, commit {})",
        repo_dir.display(),
        &first[..12]
    );
    s.apply_example_with(EXAMPLE, spec::PIPELINE, &repo_dir, |doc| {
        if upstream.as_array().is_some_and(|u| !u.is_empty()) {
            doc["spec"]["upstream"] = upstream.clone();
        } else if let Some(list) = doc["spec"]["upstream"].as_array_mut() {
            // The example's configuration pipeline, as the demo names it.
            for u in list
                .iter_mut()
                .filter(|u| u["pipeline"] == "dynamic-configuration")
            {
                u["pipeline"] = super::configuration::PIPELINE.into();
            }
        }
    })
    .await?;
    if s.from_fleet {
        s.apply(
            &fleet::vending_spec(&repo_dir),
            "the demo's account vending",
        )
        .await?;
        let accounts = fleet::vend(&s.endpoint, &s.ports).await?;
        let listed: Vec<String> = accounts
            .iter()
            .zip(&s.ports.prod)
            .map(|(a, p)| format!("{a} :{p}"))
            .collect();
        println!(
            "  accounts       {} (OU {}, vended by pipelines/{}; prod's waves come from the fleet)",
            listed.join("  "),
            fleet::OU,
            fleet::VENDING_PIPELINE
        );
    }
    Ok((repo_dir, first))
}

/// Release 1 of the service, and with `break_release` release 2, which is
/// rolled back.
pub async fn run(s: &mut Session, break_release: bool) -> anyhow::Result<Vec<Run>> {
    let (repo_dir, first) = prepare(s, serde_json::Value::Null).await?;
    let message = FIRST;
    println!("\nrelease 1: {message}");
    let good = s.release(spec::PIPELINE, &first, message).await?;
    let mut runs = vec![Run {
        execution: good,
        expected: pb::ExecutionState::Succeeded,
    }];
    if break_release {
        let message =
            "Require per-target configuration (written for beta, gamma and the one-box only)";
        write_breaking_change(&repo_dir, &s.ports)?;
        let second = repo::commit(&repo_dir, message)?;
        println!("\nrelease 2: {message}");
        runs.push(Run {
            execution: s.release(spec::PIPELINE, &second, message).await?,
            expected: pb::ExecutionState::RolledBack,
        });
    }
    Ok(runs)
}

/// The change `--break` ships: the service now requires a configuration
/// file per target, and only beta, gamma and the first prod target got one.
fn write_breaking_change(repo: &std::path::Path, ports: &spec::Ports) -> anyhow::Result<()> {
    repo::write(
        repo,
        "release.conf",
        b"# Release settings, packaged with the service.\nrequire_target_config = true\n",
        false,
    )?;
    let mut configured = vec![format!("beta-{}", ports.beta)];
    configured.extend(ports.gamma.iter().map(|p| format!("gamma-{p}")));
    configured.push(format!("prod-{}", ports.prod[0]));
    for target in configured {
        repo::write(
            repo,
            &format!("targets/{target}.conf"),
            format!("# Settings of {target}.\n").as_bytes(),
            false,
        )?;
    }
    Ok(())
}
