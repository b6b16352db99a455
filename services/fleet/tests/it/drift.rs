//! The drift check runs the applied baseline's check command: the example
//! baseline (`examples/account-fleet/baseline`, each account a directory)
//! is applied, found in sync, then changed by hand and found drifted.

use std::path::Path;

use conveyor_fleet::domain::NewBaselineVersion;
use conveyor_fleet::model::{BaselineContent, BaselineFile, DriftState, Tier};

use crate::on_every_backend;
use crate::support::{active_account, ou};

/// Every file under `dir`, relative, with its executable bit.
fn bundle(dir: &Path, base: &Path, out: &mut Vec<BaselineFile>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            bundle(&path, base, out);
        } else {
            let content = std::fs::read(&path).unwrap();
            out.push(BaselineFile {
                path: path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                size: content.len() as u64,
                executable: std::fs::metadata(&path).unwrap().permissions().mode() & 0o111 != 0,
                content,
            });
        }
    }
}

fn sh(dir: &Path, command: &str, account: &str, region: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .env("CONVEYOR_ACCOUNT", account)
        .env("CONVEYOR_REGION", region)
        .status()
        .unwrap();
    assert!(status.success(), "{command}");
}

on_every_backend!(a_hand_edit_is_found_by_the_scheduled_check, |fleet| {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/account-fleet/baseline");
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    bundle(&example, &example, &mut files);
    let env = format!("CONVEYOR_FLEET_ROOT={}", root.path().display());
    let content = BaselineContent {
        files,
        apply_command: format!("{env} sh apply.sh"),
        check_command: format!("{env} sh check.sh"),
        timeout: std::time::Duration::from_secs(60),
    };
    let new = NewBaselineVersion {
        description: "guardrails".into(),
        content: content.clone(),
        author: "platform".into(),
        message: "v1".into(),
    };
    let (version, _) = fleet
        .create_baseline_version("guardrails", new, "")
        .await
        .unwrap();
    ou(&fleet, "root", "prod").await;
    fleet
        .assign_baseline("prod", Some(version.version.clone()), "", "")
        .await
        .unwrap();
    active_account(
        &fleet,
        "prod-eu-1",
        "prod",
        Tier::Production,
        &["eu-west-1", "eu-central-1"],
    )
    .await;
    active_account(
        &fleet,
        "prod-us-1",
        "prod",
        Tier::Production,
        &["us-east-1"],
    )
    .await;

    // What a rollout's apply does, on each target; then it is recorded.
    for (account, region) in [
        ("prod-eu-1", "eu-west-1"),
        ("prod-eu-1", "eu-central-1"),
        ("prod-us-1", "us-east-1"),
    ] {
        sh(&example, &content.apply_command, account, region);
    }
    for account in ["prod-eu-1", "prod-us-1"] {
        fleet
            .record_apply(account, version.version.clone(), "")
            .await
            .unwrap();
    }
    let summary = fleet.check_drift(work.path()).await.unwrap();
    assert_eq!(
        (summary.checked, summary.drifted, summary.errors),
        (2, 0, 0)
    );
    assert!(
        fleet
            .list_drift(None, None, &[], 10, "")
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Someone edits a guardrail by hand in one region.
    let edited = root
        .path()
        .join("prod-eu-1/eu-central-1/baseline/guardrails/password-policy.json");
    std::fs::write(&edited, "{\"minimumLength\": 4}\n").unwrap();
    let summary = fleet.check_drift(work.path()).await.unwrap();
    assert_eq!((summary.checked, summary.drifted), (2, 1));
    let drifted = fleet
        .list_drift(None, None, &[], 10, "")
        .await
        .unwrap()
        .items;
    assert_eq!(drifted.len(), 1);
    assert_eq!(drifted[0].account.id, "prod-eu-1");
    assert_eq!(drifted[0].drift, DriftState::CheckFailed);
    let detail = &drifted[0].account.check.as_ref().unwrap().detail;
    assert!(
        detail.starts_with("eu-central-1: check exited 1"),
        "{detail}"
    );
    assert!(detail.contains("password-policy.json"), "{detail}");

    // Re-applying repairs it, and the next check agrees.
    sh(
        &example,
        &content.apply_command,
        "prod-eu-1",
        "eu-central-1",
    );
    fleet.check_drift(work.path()).await.unwrap();
    assert!(
        fleet
            .list_drift(None, None, &[], 10, "")
            .await
            .unwrap()
            .items
            .is_empty()
    );
});
