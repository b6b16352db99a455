//! The account-fleet part of the demo: examples/account-fleet as a git
//! repository and its two pipelines applied (`account-vending` provisions
//! an account, `account-fleet` rolls a baseline out). Three production
//! accounts are vended with baseline version 1, assigned to an OU that
//! follows the baseline; publishing version 2 then starts its rollout by
//! itself, through the fleet in waves the fleet service plans, after an
//! approval.
//! An account is a directory per region under the fleet root
//! (`<root>/<account>/<region>/`, as the example's scripts have it).
//!
//! With `--break`, version 3 narrows the allowed regions to the US. The
//! demo plays the monitor a real fleet has (AWS Config, say): it finds an
//! account running in a region its own guardrail denies, sets the
//! `guardrail-violations` alarm through the AlarmService, and the rollout
//! reverts every account it touched to version 2.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use conveyor_api::common::v1 as common;
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::alarm_service_client::AlarmServiceClient;
use conveyor_api::fleet::v1 as fleet;
use conveyor_api::fleet::v1::fleet_service_client::FleetServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use super::{AUTHOR, Run, Session, progress, repo};
use crate::status::to_anyhow;

const EXAMPLE: &str = "account-fleet";
/// The rollout pipeline, as the example and the fleet service name it.
pub const PIPELINE: &str = "account-fleet";
const VENDING_PIPELINE: &str = "account-vending";
const OU: &str = "fleet-demo";
const BASELINE: &str = "guardrails";
/// Bake time after each wave of the demo's rollouts.
const BAKE_SECS: i64 = 2;
/// The alarm the example's fleet stage watches that the demo's monitor sets.
const ALARM: &str = "guardrail-violations";
const POLICY: &str = "baseline/guardrails/password-policy.json";
const REGIONS: &str = "baseline/guardrails/allowed-regions.json";

/// The demo's production accounts and their regions.
const ACCOUNTS: [(&str, &[&str]); 3] = [
    ("prod-eu-1", &["eu-west-1", "eu-central-1"]),
    ("prod-us-1", &["us-east-1"]),
    ("prod-us-2", &["us-west-2"]),
];

fn targets() -> impl Iterator<Item = (&'static str, &'static str)> {
    ACCOUNTS
        .iter()
        .flat_map(|(account, regions)| regions.iter().map(move |r| (*account, *r)))
}

struct Fleet {
    client: FleetServiceClient<Channel>,
    alarms: AlarmServiceClient<Channel>,
    /// Where the accounts' directories are.
    root: PathBuf,
    repo: PathBuf,
}

pub async fn run(
    s: &mut Session,
    break_release: bool,
    fleet_endpoint: &str,
    root: &Path,
) -> anyhow::Result<Vec<Run>> {
    let repo_dir = s.dir.join("fleet-repo");
    let first = repo::create(&repo_dir, EXAMPLE, "Account baseline")?;
    println!(
        "  repository     {} (examples/account-fleet, commit {})",
        repo_dir.display(),
        &first[..12]
    );
    println!("  accounts       directories under {}", root.display());
    for (file, name) in [
        ("pipeline.yaml", PIPELINE),
        ("vending.yaml", VENDING_PIPELINE),
    ] {
        apply(s, file, name, &repo_dir).await?;
    }
    let mut f = Fleet {
        client: FleetServiceClient::new(conveyor_api::client::channel(fleet_endpoint)?),
        alarms: AlarmServiceClient::new(conveyor_api::client::channel(&s.endpoint)?),
        root: root.to_owned(),
        repo: repo_dir,
    };

    println!(
        "\nbaseline 1 on OU {OU}, then {} accounts vended into it",
        ACCOUNTS.len()
    );
    super::fleet::create_ou(&mut f.client, OU, "Demo fleet").await?;
    let v1 = f.version("Account baseline 1").await?;
    f.follow(&v1).await?;
    f.vend().await?;
    f.set_alarm(pb::AlarmState::Ok, "no account breaks its guardrails")
        .await?;

    let mut runs = Vec::new();
    println!("\nbaseline 2: passwords of 16+ characters");
    repo::replace(
        &f.repo,
        POLICY,
        "\"MinimumPasswordLength\": 14",
        "\"MinimumPasswordLength\": 16",
    )?;
    repo::commit(&f.repo, "Passwords of 16+ characters")?;
    let v2 = f.version("Passwords of 16+ characters").await?;
    let rollout = f.auto_rollout(version_number(&v2)?).await?;
    let execution = f.execution_of(&rollout).await?;
    let done = progress::follow(&mut s.client, &execution).await?;
    let ok = done.state == pb::ExecutionState::Succeeded as i32;
    runs.push(Run {
        execution: done,
        expected: pb::ExecutionState::Succeeded,
    });
    f.print_rollout(&rollout).await?;
    for (account, region) in targets() {
        println!(
            "  {account}/{region:<13} MinimumPasswordLength {}",
            f.read(account, region, POLICY)?["MinimumPasswordLength"]
        );
    }
    if ok {
        f.wait_assigned(&v2).await?;
    }
    f.print_drift().await?;
    if !ok || !break_release {
        return Ok(runs);
    }

    println!("\nbaseline 3 (--break): workloads only in the US, by mistake");
    repo::replace(
        &f.repo,
        REGIONS,
        "[\"us-east-1\", \"us-west-2\", \"eu-west-1\", \"eu-central-1\"]",
        "[\"us-east-1\", \"us-west-2\"]",
    )?;
    repo::commit(&f.repo, "Workloads only in the US")?;
    let v3 = f.version("Workloads only in the US").await?;
    let rollout = f.auto_rollout(version_number(&v3)?).await?;
    let execution = f.execution_of(&rollout).await?;
    let monitor = tokio::spawn(monitor(
        AlarmServiceClient::new(conveyor_api::client::channel(&s.endpoint)?),
        root.to_owned(),
    ));
    let done = progress::follow(&mut s.client, &execution).await;
    // Stopped before the alarm is cleared, so a late set cannot follow it.
    monitor.abort();
    if let Ok(Err(e)) = monitor.await {
        println!("  monitor        failed: {e:#}");
    }
    f.set_alarm(pb::AlarmState::Ok, "no account breaks its guardrails")
        .await?;
    runs.push(Run {
        execution: done?,
        expected: pb::ExecutionState::RolledBack,
    });
    f.print_rollout(&rollout).await?;
    println!("  organizationalUnits/{OU} stays on {v2}: a reverted version is not assigned");
    f.print_drift().await?;
    for (account, region) in targets() {
        let allowed = allowed_regions(&f.read(account, region, REGIONS)?);
        println!(
            "  {account}/{region:<13} allowed regions {} ({})",
            allowed.join(" "),
            if allowed.iter().any(|r| r == region) {
                "its own region is allowed"
            } else {
                "its own region is DENIED"
            }
        );
    }
    Ok(runs)
}

/// Applies the example's `file`, pointed at the demo's repository.
async fn apply(s: &Session, file: &str, name: &str, repo_dir: &Path) -> anyhow::Result<()> {
    let valid = conveyor_definitions::spec::load(
        repo::file(EXAMPLE, file)?,
        conveyor_definitions::spec::Format::Yaml,
    )
    .map_err(|errors| anyhow::anyhow!("the example's {file} is invalid: {errors:?}"))?;
    let mut doc: serde_json::Value = serde_json::from_str(&valid.canonical)?;
    anyhow::ensure!(
        doc["metadata"]["name"] == name,
        "{file} is not pipeline {name}"
    );
    doc["spec"]["source"]["repository"] = repo_dir.display().to_string().into();
    let pipeline = s
        .apply(&doc, &format!("the demo's {EXAMPLE} pipelines"))
        .await?;
    Session::print_conformance(&pipeline);
    Ok(())
}

impl Fleet {
    /// Uploads the repository's `baseline/` as the next version; returns
    /// its name.
    async fn version(&mut self, message: &str) -> anyhow::Result<String> {
        let dir = self.repo.join("baseline");
        let mut files = Vec::new();
        crate::commands::fleet::baselines::read_dir(&dir, &dir, &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let version = self
            .client
            .create_baseline_version(fleet::CreateBaselineVersionRequest {
                parent: format!("baselines/{BASELINE}"),
                description: "The example account baseline".to_owned(),
                content: Some(fleet::BaselineContent {
                    files,
                    apply_command: "sh apply.sh".to_owned(),
                    check_command: "sh check.sh".to_owned(),
                    timeout: None,
                }),
                author: AUTHOR.to_owned(),
                message: message.to_owned(),
                request_id: String::new(),
            })
            .await
            .map_err(to_anyhow)?
            .into_inner();
        println!(
            "  {}  {}",
            version.name,
            version.artifact.map(|a| a.digest).unwrap_or_default()
        );
        Ok(version.name)
    }

    /// Waits until the fleet service assigned `version` on the OU (once its
    /// rollout succeeded).
    async fn wait_assigned(&mut self, version: &str) -> anyhow::Result<()> {
        for _ in 0..600 {
            let ou = self
                .client
                .get_organizational_unit(fleet::GetOrganizationalUnitRequest {
                    name: format!("organizationalUnits/{OU}"),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            if ou.baseline_version == version {
                println!(
                    "  organizationalUnits/{OU} now on {version}, assigned by the fleet service"
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the fleet service did not assign {version} in a minute")
    }

    /// Assigns `version` to the OU, which then follows the baseline: the
    /// fleet service rolls each newer version out below it by itself, with
    /// `BAKE_SECS` of bake after each wave (the pipeline's 30 minutes are
    /// for real fleets).
    async fn follow(&mut self, version: &str) -> anyhow::Result<()> {
        self.client
            .assign_baseline(fleet::AssignBaselineRequest {
                organizational_unit: format!("organizationalUnits/{OU}"),
                baseline_version: version.to_owned(),
                auto_rollout: Some(fleet::RolloutStrategy {
                    bake_time: Some(prost_types::Duration {
                        seconds: BAKE_SECS,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map_err(to_anyhow)?;
        println!(
            "  assigned to organizationalUnits/{OU}, which follows the baseline: each newer version rolls out by itself"
        );
        Ok(())
    }

    /// Creates the accounts (each vended by `account-vending` with the OU's
    /// baseline) and waits until they are ACTIVE.
    async fn vend(&mut self) -> anyhow::Result<()> {
        let mut ids = Vec::new();
        for (id, regions) in ACCOUNTS {
            let created = self
                .client
                .create_account(fleet::CreateAccountRequest {
                    account_id: id.to_owned(),
                    account: Some(fleet::Account {
                        display_name: format!("demo account {id}"),
                        owner: "demo-team".to_owned(),
                        organizational_unit: format!("organizationalUnits/{OU}"),
                        tier: common::Tier::Production as i32,
                        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
                        ..Default::default()
                    }),
                    vending_pipeline: format!("pipelines/{VENDING_PIPELINE}"),
                    principal: Some(common::Principal {
                        id: AUTHOR.to_owned(),
                        groups: Vec::new(),
                    }),
                    request_id: format!("demo-vend-{id}"),
                })
                .await;
            if let Err(status) = created
                && status.code() != Code::AlreadyExists
            {
                return Err(to_anyhow(status));
            }
            ids.push(id.to_owned());
        }
        super::fleet::wait_active(&mut self.client, &ids).await?;
        for (account, region) in targets() {
            println!(
                "  {account}/{region:<13} active, MinimumPasswordLength {}",
                self.read(account, region, POLICY)?["MinimumPasswordLength"]
            );
        }
        Ok(())
    }

    async fn print_drift(&mut self) -> anyhow::Result<()> {
        let drifted = self
            .client
            .list_drift(fleet::ListDriftRequest {
                organizational_unit: format!("organizationalUnits/{OU}"),
                page_size: 100,
                ..Default::default()
            })
            .await
            .map_err(to_anyhow)?
            .into_inner()
            .accounts;
        if drifted.is_empty() {
            println!("  drift          none: every account runs its desired version");
        }
        for a in drifted {
            let b = a.baseline.unwrap_or_default();
            println!(
                "  drift          {}: desired {}, applied {}",
                a.name, b.desired_version, b.applied_version
            );
        }
        Ok(())
    }

    /// The rollout the fleet service started by itself for version
    /// `version` of the baseline on the OU, once it has.
    async fn auto_rollout(&mut self, version: i64) -> anyhow::Result<String> {
        let name = format!("rollouts/auto-{OU}-{BASELINE}-{version}");
        for _ in 0..600 {
            match self
                .client
                .get_rollout(fleet::GetRolloutRequest { name: name.clone() })
                .await
            {
                Ok(r) => {
                    let r = r.into_inner();
                    let plan = r.plan.unwrap_or_default();
                    let sizes: Vec<String> = plan
                        .waves
                        .iter()
                        .map(|w| w.targets.len().to_string())
                        .collect();
                    println!(
                        "  {name} started by the fleet service for {}: {} waves ({} targets)",
                        r.baseline_version,
                        plan.waves.len(),
                        sizes.join(", ")
                    );
                    return Ok(name);
                }
                Err(status) if status.code() == Code::NotFound => {}
                Err(status) => return Err(to_anyhow(status)),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the fleet service started no {name} in a minute")
    }

    /// The execution applying `rollout`, once the fleet service started it.
    async fn execution_of(&mut self, rollout: &str) -> anyhow::Result<String> {
        for _ in 0..600 {
            let r = self.get_rollout(rollout).await?;
            if !r.execution.is_empty() {
                println!("  {}", r.execution);
                return Ok(r.execution);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{rollout} has no execution after a minute")
    }

    async fn get_rollout(&mut self, rollout: &str) -> anyhow::Result<fleet::Rollout> {
        Ok(self
            .client
            .get_rollout(fleet::GetRolloutRequest {
                name: rollout.to_owned(),
            })
            .await
            .map_err(to_anyhow)?
            .into_inner())
    }

    /// Prints the rollout once the fleet service has followed its execution
    /// to the end (or after a minute).
    async fn print_rollout(&mut self, rollout: &str) -> anyhow::Result<()> {
        let mut r = self.get_rollout(rollout).await?;
        for _ in 0..600 {
            let state = fleet::RolloutState::try_from(r.state).unwrap_or_default();
            if !matches!(
                state,
                fleet::RolloutState::Pending
                    | fleet::RolloutState::Held
                    | fleet::RolloutState::Running
            ) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            r = self.get_rollout(rollout).await?;
        }
        let state = fleet::RolloutState::try_from(r.state)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("ROLLOUT_STATE_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        println!("  {rollout} {state}: {}", r.state_reason);
        if !r.reverted_accounts.is_empty() {
            println!("  reverted       {}", r.reverted_accounts.join(" "));
        }
        Ok(())
    }

    async fn set_alarm(&mut self, state: pb::AlarmState, reason: &str) -> anyhow::Result<()> {
        set_alarm(&mut self.alarms, state, reason).await
    }

    /// The JSON file `path` of the baseline on a target.
    fn read(&self, account: &str, region: &str, path: &str) -> anyhow::Result<serde_json::Value> {
        read(&self.root, account, region, path)
    }
}

fn read(root: &Path, account: &str, region: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let file = root.join(account).join(region).join(path);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

/// N of `baselines/B/versions/N`.
fn version_number(name: &str) -> anyhow::Result<i64> {
    name.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("{name:?} is not a baseline version name"))
}

fn allowed_regions(guardrail: &serde_json::Value) -> Vec<String> {
    guardrail["regions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect()
}

async fn set_alarm(
    alarms: &mut AlarmServiceClient<Channel>,
    state: pb::AlarmState,
    reason: &str,
) -> anyhow::Result<()> {
    alarms
        .set_alarm_state(pb::SetAlarmStateRequest {
            name: format!("alarms/{ALARM}"),
            state: state as i32,
            reason: reason.to_owned(),
            scope: Some(pb::AlarmScope {
                pipeline: format!("pipelines/{PIPELINE}"),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map_err(to_anyhow)?;
    Ok(())
}

/// The demo's guardrail monitor: sets the alarm as soon as a target's own
/// allowed-regions guardrail denies the region it runs in.
async fn monitor(mut alarms: AlarmServiceClient<Channel>, root: PathBuf) -> anyhow::Result<()> {
    loop {
        let denied = targets().find(|(account, region)| {
            read(&root, account, region, REGIONS)
                .is_ok_and(|g| !allowed_regions(&g).iter().any(|r| r == region))
        });
        if let Some((account, region)) = denied {
            let reason = format!("{account}/{region} runs in a region its guardrail denies");
            set_alarm(&mut alarms, pb::AlarmState::Alarm, &reason).await?;
            println!("  monitor        {ALARM} in ALARM: {reason}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
