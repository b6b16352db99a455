//! `examples/account-fleet` on `conveyor dev`, driven by the CLI: accounts
//! vended by the example's vending pipeline get their OU's baseline, and a
//! new baseline version rolls out through the example's pipeline, which
//! fetches the version from the fleet service and runs its apply command on
//! every target (each account × region a directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Dev, run, stderr, stdout};

const EXAMPLE_REPO: &str = "https://git.example.com/examples/account-fleet.git";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/account-fleet")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "dist" || name == "reports" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// The example as a local git repository.
fn repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    copy_dir(&example(), &repo);
    for args in [
        vec!["init", "--quiet", "--initial-branch=main"],
        vec!["add", "--all"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "--quiet",
            "-m",
            "example",
        ],
    ] {
        assert!(
            Command::new("git")
                .args(&args)
                .current_dir(&repo)
                .status()
                .unwrap()
                .success()
        );
    }
    repo
}

fn ok(dev: &Dev, args: &[&str]) -> String {
    let o = run(dev.cli().args(args));
    assert!(
        o.status.success(),
        "conveyor {}: {}{}",
        args.join(" "),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn json(dev: &Dev, args: &[&str]) -> Value {
    let out = ok(dev, &[&["-o", "json"], args].concat());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Polls `args` (JSON) until `done` holds; fails after three minutes.
fn wait(dev: &Dev, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = json(dev, args);
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "conveyor {} never got there: {v:#}",
            args.join(" ")
        );
        #[allow(clippy::disallowed_methods)] // a synchronous test, no runtime to block
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn policy(root: &Path, account: &str, region: &str) -> String {
    let file = root
        .join(account)
        .join(region)
        .join("baseline/guardrails/password-policy.json");
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn vending_and_a_baseline_rollout_through_the_example_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fleet");
    let dev = Dev::start_with(&[("CONVEYOR_FLEET_ROOT", root.as_path())]);
    let repo = repo(dir.path());
    for file in ["pipeline.yaml", "vending.yaml"] {
        let spec = std::fs::read_to_string(repo.join(file)).unwrap();
        let local = dir.path().join(file);
        std::fs::write(
            &local,
            spec.replace(EXAMPLE_REPO, &repo.display().to_string()),
        )
        .unwrap();
        // Both conform: vending.yaml waives what an account factory cannot meet.
        ok(&dev, &["pipeline", "apply", "-f", local.to_str().unwrap()]);
    }

    // Version 1 on the prod OU, then two accounts vended into it.
    let baseline = repo.join("baseline");
    ok(&dev, &["fleet", "ou", "create", "prod"]);
    ok(
        &dev,
        &[
            "fleet",
            "baseline",
            "create",
            "guardrails",
            "--dir",
            baseline.to_str().unwrap(),
            "--apply",
            "sh apply.sh",
            "--check",
            "sh check.sh",
        ],
    );
    ok(
        &dev,
        &[
            "fleet",
            "baseline",
            "assign",
            "guardrails@1",
            "--ou",
            "prod",
        ],
    );
    ok(
        &dev,
        &[
            "fleet",
            "account",
            "create",
            "prod-eu-1",
            "--ou",
            "prod",
            "--tier",
            "production",
            "--region",
            "eu-west-1",
            "--region",
            "eu-central-1",
        ],
    );
    ok(
        &dev,
        &[
            "fleet",
            "account",
            "create",
            "prod-us-1",
            "--ou",
            "prod",
            "--tier",
            "production",
            "--region",
            "us-east-1",
        ],
    );
    for account in ["prod-eu-1", "prod-us-1"] {
        let a = wait(&dev, &["fleet", "account", "get", account], |a| {
            a["state"] != "requested" && a["state"] != "provisioning"
        });
        assert_eq!(a["state"], "active", "{a:#}");
    }
    let v1 = policy(&root, "prod-eu-1", "eu-central-1");

    // Version 2 changes the password policy and rolls out through the pipeline.
    let v2_dir = dir.path().join("v2");
    copy_dir(&baseline, &v2_dir);
    let changed = v2_dir.join("guardrails/password-policy.json");
    let text =
        std::fs::read_to_string(&changed)
            .unwrap()
            .replacen('{', "{\n  \"rotationDays\": 90,", 1);
    std::fs::write(&changed, &text).unwrap();
    ok(
        &dev,
        &[
            "fleet",
            "baseline",
            "create",
            "guardrails",
            "--dir",
            v2_dir.to_str().unwrap(),
            "--apply",
            "sh apply.sh",
            "--check",
            "sh check.sh",
        ],
    );
    ok(
        &dev,
        &[
            "fleet",
            "baseline",
            "assign",
            "guardrails@2",
            "--ou",
            "prod",
        ],
    );
    let drift = json(&dev, &["fleet", "drift"]);
    assert_eq!(drift.as_array().map(Vec::len), Some(2), "{drift:#}");
    ok(
        &dev,
        &[
            "fleet",
            "rollout",
            "start",
            "--baseline",
            "guardrails@2",
            "--id",
            "guardrails-2",
            "--bake",
            "1s",
        ],
    );

    // The pipeline's fleet stage asks for an approval from cloud-platform.
    let rollout = wait(&dev, &["fleet", "rollout", "status", "guardrails-2"], |r| {
        !r["execution"].as_str().unwrap_or_default().is_empty()
    });
    let execution = rollout["execution"].as_str().unwrap().to_owned();
    let waiting = wait(&dev, &["run", "get", &execution], |e| {
        e["state"] != "running" && e["state"] != "queued"
    });
    assert_eq!(waiting["state"], "waiting_approval", "{waiting:#}");
    ok(
        &dev,
        &[
            "run",
            "approve",
            &execution,
            "--stage",
            "fleet",
            "--principal",
            "carol",
            "--group",
            "cloud-platform",
        ],
    );
    let ended = wait(&dev, &["fleet", "rollout", "status", "guardrails-2"], |r| {
        ["succeeded", "reverted", "failed", "cancelled"]
            .contains(&r["state"].as_str().unwrap_or_default())
    });
    assert_eq!(ended["state"], "succeeded", "{ended:#}");

    // Every target runs version 2, applied by the version's own command.
    for (account, region) in [
        ("prod-eu-1", "eu-west-1"),
        ("prod-eu-1", "eu-central-1"),
        ("prod-us-1", "us-east-1"),
    ] {
        let now = policy(&root, account, region);
        assert_ne!(now, v1, "{account}/{region} still runs version 1");
        assert!(now.contains("rotationDays"), "{account}/{region}: {now}");
    }
    let drift = json(&dev, &["fleet", "drift"]);
    assert_eq!(drift.as_array().map(Vec::len), Some(0), "{drift:#}");
    // And the version's check command agrees on every target.
    for (account, region) in [
        ("prod-eu-1", "eu-west-1"),
        ("prod-eu-1", "eu-central-1"),
        ("prod-us-1", "us-east-1"),
    ] {
        let check = Command::new("sh")
            .arg("check.sh")
            .current_dir(&v2_dir)
            .env("CONVEYOR_FLEET_ROOT", &root)
            .env("CONVEYOR_ACCOUNT", account)
            .env("CONVEYOR_REGION", region)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{account}/{region}: {}{}",
            stdout(&check),
            stderr(&check)
        );
    }
}
