//! Follows the executions the fleet started: vending executions make
//! accounts ACTIVE (or PROVISIONING_FAILED), rollout executions record
//! which accounts applied the baseline and which were reverted; and OUs
//! that follow their baseline get its newer versions rolled out. Requests
//! whose execution could not be started are started again here; request
//! ids make every start idempotent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use conveyor_api::execution::v1 as pb;

use super::Fleet;
use super::rollouts::{DIGEST_PARAMETER, VERSION_PARAMETER};
use crate::error::Error;
use crate::model::{Account, AccountState, Rollout, RolloutState};
use crate::names::VersionRef;
use crate::store::AccountFilter;

/// The execution parameters a vending execution carries.
pub const ACCOUNT_PARAMETER: &str = "ACCOUNT";

impl Fleet {
    /// One pass over what the fleet waits for; returns how many changed.
    pub async fn track(&self) -> Result<usize, Error> {
        let mut changed = 0;
        let waiting = AccountFilter {
            states: vec![AccountState::Requested, AccountState::Provisioning],
            ..AccountFilter::default()
        };
        // One account or rollout that cannot be followed now does not stop the others.
        for account in self.store.list_accounts(&waiting, None, Some(500)).await? {
            let id = account.id.clone();
            match self.follow_vending(account).await {
                Ok(moved) => changed += usize::from(moved),
                Err(e) => tracing::warn!(account = %id, error = %e, "cannot follow vending"),
            }
        }
        for rollout in self.store.open_rollouts().await? {
            let id = rollout.id.clone();
            match self.follow_rollout(rollout).await {
                Ok(moved) => changed += usize::from(moved),
                Err(e) => tracing::warn!(rollout = %id, error = %e, "cannot follow rollout"),
            }
        }
        changed += self.follow_baselines().await?;
        Ok(changed)
    }

    /// Runs `track` every `interval` until the task is dropped.
    pub fn spawn_tracker(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let fleet = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = fleet.track().await {
                    tracing::warn!(error = %e, "fleet tracker pass failed");
                }
            }
        })
    }

    /// Starts the vending execution of a REQUESTED account.
    pub(super) async fn vend(&self, account: &Account) -> Result<bool, Error> {
        let desired = self.tree().await?.desired_on(&account.ou_path);
        let mut parameters = BTreeMap::from([
            (ACCOUNT_PARAMETER.to_owned(), account.id.clone()),
            ("ACCOUNT_OU".to_owned(), account.ou.clone()),
            ("ACCOUNT_TIER".to_owned(), account.tier.as_str().to_owned()),
            ("ACCOUNT_REGIONS".to_owned(), account.regions.join(",")),
        ]);
        if let Some(d) = &desired {
            let version = self.store.baseline_version(&d.version, false).await?;
            parameters.insert(VERSION_PARAMETER.to_owned(), d.version.name());
            parameters.insert(DIGEST_PARAMETER.to_owned(), version.digest);
        }
        let pipeline = if account.vending_pipeline.is_empty() {
            self.vending_pipeline.as_str()
        } else {
            account.vending_pipeline.as_str()
        };
        let started = self
            .executions
            .start(
                pipeline,
                parameters,
                &format!("fleet-vend-{}", account.id),
                &Default::default(),
            )
            .await;
        match started {
            Ok(execution) => {
                tracing::info!(account = %account.id, %execution, "vending started");
                let reason = format!("provisioning by {execution}");
                self.record_provisioning(
                    &account.id,
                    AccountState::Provisioning,
                    &reason,
                    &execution,
                )
                .await?;
                Ok(true)
            }
            Err(status) => {
                let reason = format!("waiting to start {pipeline}: {}", status.message());
                if reason != account.state_reason {
                    tracing::warn!(account = %account.id, reason = %reason, "vending not started; will retry");
                    self.record_provisioning(&account.id, AccountState::Requested, &reason, "")
                        .await?;
                }
                Ok(false)
            }
        }
    }

    async fn follow_vending(&self, account: Account) -> Result<bool, Error> {
        if account.vending_execution.is_empty() {
            return self.vend(&account).await;
        }
        if account.state != AccountState::Provisioning {
            return Ok(false);
        }
        let Some(e) = self.execution(&account.vending_execution).await else {
            return Ok(false);
        };
        if !e.has_ended() {
            return Ok(false);
        }
        if e.state == pb::ExecutionState::Succeeded as i32 {
            // What the execution applied, not what is desired now; recorded
            // before the account turns ACTIVE, so an ACTIVE account shows it.
            let applied = e
                .parameters
                .get(VERSION_PARAMETER)
                .and_then(|v| VersionRef::from_stored(v));
            if let Some(version) = applied {
                self.record_apply(&account.id, version, &e.name).await?;
            }
            self.record_provisioning(&account.id, AccountState::Active, "provisioned", "")
                .await?;
            tracing::info!(account = %account.id, "account provisioned");
        } else {
            let reason = format!(
                "vending execution {} ended {}: {}",
                e.name,
                state_name(e.state),
                e.state_reason
            );
            self.record_provisioning(&account.id, AccountState::ProvisioningFailed, &reason, "")
                .await?;
            tracing::warn!(account = %account.id, %reason, "account vending failed");
        }
        Ok(true)
    }

    async fn follow_rollout(&self, r: Rollout) -> Result<bool, Error> {
        if r.execution.is_empty() {
            let launched = self.launch(r).await;
            return Ok(!launched.execution.is_empty());
        }
        let Some(e) = self.execution(&r.execution).await else {
            return Ok(false);
        };
        let progress = Progress::of(&e);
        if !e.has_ended() {
            let (state, reason) = if e.state == pb::ExecutionState::Held as i32 {
                let held = e
                    .stages
                    .iter()
                    .find(|s| s.state == pb::StageState::Held as i32);
                (
                    RolloutState::Held,
                    held.map(|s| s.state_reason.clone()).unwrap_or_default(),
                )
            } else {
                (RolloutState::Running, "applying waves".to_owned())
            };
            if (state, reason.as_str(), progress.current_wave)
                == (r.state, r.state_reason.as_str(), r.current_wave)
            {
                return Ok(false);
            }
            let wave = progress.current_wave;
            self.store
                .update_rollout(&r.id, move |r| {
                    r.state = state;
                    r.state_reason = reason.clone();
                    r.current_wave = wave;
                })
                .await?;
            return Ok(true);
        }
        for account in &progress.applied {
            self.record_apply(account, r.baseline_version.clone(), &e.name)
                .await?;
        }
        let state = match pb::ExecutionState::try_from(e.state) {
            Ok(pb::ExecutionState::Succeeded) => RolloutState::Succeeded,
            Ok(pb::ExecutionState::RolledBack) => RolloutState::Reverted,
            Ok(pb::ExecutionState::Cancelled | pb::ExecutionState::Superseded) => {
                RolloutState::Cancelled
            }
            _ => RolloutState::Failed,
        };
        let reason = if state == RolloutState::Succeeded {
            format!(
                "{} account(s) applied {}",
                progress.applied.len(),
                r.baseline_version.name()
            )
        } else {
            e.state_reason.clone()
        };
        let reverted: Vec<String> = progress.reverted.iter().cloned().collect();
        let wave = progress.current_wave;
        tracing::info!(rollout = %r.id, state = state.as_str(), applied = progress.applied.len(), reverted = reverted.len(), "rollout ended");
        self.store
            .update_rollout(&r.id, move |r| {
                r.state = state;
                r.state_reason = reason.clone();
                r.reverted_accounts = reverted.clone();
                r.current_wave = wave;
            })
            .await?;
        Ok(true)
    }

    /// An execution, or `None` (logged) when it cannot be read now.
    async fn execution(&self, name: &str) -> Option<pb::Execution> {
        match self.executions.get(name).await {
            Ok(e) => Some(e),
            Err(status) => {
                tracing::warn!(execution = %name, error = %status.message(), "cannot read execution");
                None
            }
        }
    }
}

fn state_name(state: i32) -> String {
    pb::ExecutionState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("EXECUTION_STATE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| state.to_string())
}

/// What a rollout execution did to its targets.
struct Progress {
    /// Accounts whose every run succeeded, none rolled back.
    applied: BTreeSet<String>,
    /// Accounts put back on their previous version.
    reverted: BTreeSet<String>,
    /// 1-based wave deploying or baking (the last one once done).
    current_wave: u32,
}

impl Progress {
    fn of(e: &pb::Execution) -> Progress {
        let runs: Vec<&pb::ActionRun> = e
            .stages
            .iter()
            .flat_map(|s| &s.actions)
            .filter(|a| a.wave >= 0 && a.target.is_some())
            .collect();
        let account = |a: &pb::ActionRun| {
            a.target
                .as_ref()
                .map(|t| t.account.clone())
                .unwrap_or_default()
        };
        let reverted: BTreeSet<String> = runs
            .iter()
            .filter(|a| a.rollback && a.state == pb::ActionState::Succeeded as i32)
            .map(|a| account(a))
            .collect();
        // Not applied: a run that did not succeed, or any rollback at all
        // (one that failed leaves the account in an unknown state).
        let failed: BTreeSet<String> = runs
            .iter()
            .filter(|a| a.rollback || a.state != pb::ActionState::Succeeded as i32)
            .map(|a| account(a))
            .collect();
        let applied = runs
            .iter()
            .filter(|a| !a.rollback)
            .map(|a| account(a))
            .filter(|a| !failed.contains(a))
            .collect();
        let current_wave = runs
            .iter()
            .filter(|a| a.start_time.is_some())
            .map(|a| a.wave as u32 + 1)
            .max()
            .unwrap_or(0);
        Progress {
            applied,
            reverted,
            current_wave,
        }
    }
}
