//! The dynamic-configuration part of the demo: examples/dynamic-configuration
//! as a git repository, its pipeline applied as `demo-config` against the
//! same targets as the service, then configuration releases delivered to the
//! running service: the first version, then the new-checkout flag turned on.
//! With `--break`, a third version puts prod in maintenance by mistake; its
//! health probe fails in the first prod wave and the rollback puts the
//! previous version back. The service's processes never restart: the demo
//! prints their pids before and after; an emergency redeploy of the first
//! version turns the new checkout off again. Then the service's own next release
//! records the configuration version it ran with (the example application
//! takes the configuration as an optional upstream that does not trigger):
//! the newest published one, never a rolled-back one.

use conveyor_api::execution::v1 as pb;

use super::{Run, Session, http, repo, spec};

const EXAMPLE: &str = "dynamic-configuration";
/// The name the demo's configuration pipeline is stored under.
pub const PIPELINE: &str = "demo-config";

pub async fn run(s: &mut Session, break_release: bool) -> anyhow::Result<Vec<Run>> {
    let repo_dir = s.dir.join("config-repo");
    let message = "Initial flags and settings";
    let first = repo::create(&repo_dir, EXAMPLE, message)?;
    println!(
        "\n  repository     {} (examples/dynamic-configuration, commit {})",
        repo_dir.display(),
        &first[..12]
    );
    s.apply_example(EXAMPLE, PIPELINE, &repo_dir).await?;
    let before = pids(s);
    println!("  prod pids      {}", describe_pids(&before));

    let mut runs = Vec::new();
    println!("\nconfiguration 1: {message}");
    runs.push(succeeded(s.release(PIPELINE, &first, message).await?));
    let mut published = runs[0].execution.name.clone();
    show(s, "/config");

    let message = "Turn on the new checkout";
    repo::replace(
        &repo_dir,
        "config/flags.json",
        "\"new-checkout\": false",
        "\"new-checkout\": true",
    )?;
    let second = repo::commit(&repo_dir, message)?;
    println!("\nconfiguration 2: {message}");
    runs.push(succeeded(s.release(PIPELINE, &second, message).await?));
    if runs[1].execution.state == pb::ExecutionState::Succeeded as i32 {
        published = runs[1].execution.name.clone();
    }
    show(s, "/config");
    show(s, "/checkout");

    if break_release {
        let message = "Put prod in maintenance (by mistake)";
        repo::replace(
            &repo_dir,
            "config/settings/prod.json",
            "\"maintenance\": false",
            "\"maintenance\": true",
        )?;
        let third = repo::commit(&repo_dir, message)?;
        println!("\nconfiguration 3: {message}");
        runs.push(Run {
            execution: s.release(PIPELINE, &third, message).await?,
            expected: pb::ExecutionState::RolledBack,
        });
        show(s, "/config");
    }

    // An emergency: the new checkout must go off now. Configuration 1 is
    // redeployed as it was built (no new commit, no build), through beta,
    // gamma and prod again.
    println!("\nemergency: the new checkout off again, by redeploying configuration 1");
    let first_run = runs[0].execution.name.clone();
    let redeployed = s
        .redeploy(
            PIPELINE,
            &first_run,
            "The new checkout off: back to configuration 1",
        )
        .await?;
    if redeployed.state == pb::ExecutionState::Succeeded as i32 {
        published = redeployed.name.clone();
    }
    runs.push(succeeded(redeployed));
    show(s, "/config");
    show(s, "/checkout");
    let after = pids(s);
    let same = !before.is_empty() && before == after;
    println!(
        "  prod pids      {} ({})",
        describe_pids(&after),
        if same {
            "the same processes: no redeploy"
        } else {
            "CHANGED"
        }
    );
    if !same {
        anyhow::bail!("the service restarted while its configuration changed");
    }

    let message = "Document the checkout flag";
    let app_repo = s.dir.join("repo");
    repo::write(
        &app_repo,
        "docs/checkout.md",
        b"# Checkout\n\nThe new checkout flow is behind the `new-checkout` flag.\n",
        false,
    )?;
    let commit = repo::commit(&app_repo, message)?;
    println!("\nrelease 2 of the service: {message}");
    let release = s.release(spec::PIPELINE, &commit, message).await?;
    for pin in &release.upstream_artifacts {
        println!(
            "  ran with       {} {} from {}{}",
            pin.name,
            pin.digest,
            pin.execution,
            if pin.execution == published {
                " (the newest published configuration)"
            } else {
                ""
            }
        );
    }
    if release.upstream_artifacts.is_empty() {
        println!("  ran with       no configuration pinned");
    }
    runs.push(succeeded(release));
    Ok(runs)
}

fn succeeded(execution: pb::Execution) -> Run {
    Run {
        execution,
        expected: pb::ExecutionState::Succeeded,
    }
}

/// The pid of each prod copy of the service (its deploy wrote them).
fn pids(s: &Session) -> Vec<(u16, String)> {
    s.ports
        .prod
        .iter()
        .filter_map(|port| {
            let file = s.state_dir.join(format!("instances/prod-{port}/pid"));
            let pid = std::fs::read_to_string(file).ok()?;
            Some((*port, pid.trim().to_owned()))
        })
        .collect()
}

fn describe_pids(pids: &[(u16, String)]) -> String {
    pids.iter()
        .map(|(port, pid)| format!(":{port} pid {pid}"))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Prints what each prod copy answers on `path` (its first line).
fn show(s: &Session, path: &str) {
    for port in &s.ports.prod {
        let answer = http::get(*port, path).unwrap_or_else(|e| format!("no answer: {e}"));
        let first = answer.lines().next().unwrap_or_default();
        println!("  prod :{port} GET {path:<9} {first}");
    }
}
