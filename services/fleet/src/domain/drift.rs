//! The scheduled drift check: for every ACTIVE account with an applied
//! baseline, the version's check command runs once per region in the
//! unpacked bundle (in the fleet service's environment, with
//! CONVEYOR_ACCOUNT, CONVEYOR_REGION and CONVEYOR_BASELINE_VERSION set);
//! a non-zero exit marks the account CHECK_FAILED with the output's tail.
//! The command does not inherit the service's environment (its database
//! URL, its credentials): only PATH, HOME, LANG, TMPDIR and the variables
//! named in `drift_check_env` are passed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Fleet;
use crate::error::Error;
use crate::model::{Account, AccountState, BaselineVersion};
use crate::names::VersionRef;
use crate::store::AccountFilter;

/// What one pass found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriftSummary {
    pub checked: usize,
    pub drifted: usize,
    /// Accounts whose check could not run (the bundle, a spawn failure).
    pub errors: usize,
}

/// Output kept from a failed check.
const DETAIL_BYTES: usize = 2048;

impl Fleet {
    /// Runs every applied baseline's check command; bundles are unpacked
    /// under `work_dir`, one directory per version digest.
    pub async fn check_drift(&self, work_dir: &Path) -> Result<DriftSummary, Error> {
        const CHUNK: u64 = 500;
        let filter = AccountFilter {
            states: vec![AccountState::Active],
            ..AccountFilter::default()
        };
        let mut bundles: HashMap<VersionRef, (BaselineVersion, PathBuf)> = HashMap::new();
        let mut summary = DriftSummary::default();
        let mut after: Option<String> = None;
        loop {
            let chunk = self
                .store
                .list_accounts(&filter, after.as_deref(), Some(CHUNK))
                .await?;
            after = chunk.last().map(|a| a.id.clone());
            let done = (chunk.len() as u64) < CHUNK;
            for account in chunk {
                let Some(applied) = account.applied.clone() else {
                    continue;
                };
                if !bundles.contains_key(&applied.version) {
                    match self.unpack(&applied.version, work_dir).await {
                        Ok(found) => {
                            bundles.insert(applied.version.clone(), found);
                        }
                        Err(e) => {
                            tracing::warn!(account = %account.id, version = %applied.version.name(), error = %e, "cannot unpack the baseline for its check");
                            summary.errors += 1;
                            continue;
                        }
                    }
                }
                let Some((version, dir)) = bundles.get(&applied.version) else {
                    continue;
                };
                match check_account(&account, version, dir, &self.drift_env).await {
                    Ok(failure) => {
                        summary.checked += 1;
                        summary.drifted += usize::from(failure.is_some());
                        let detail = failure.clone().unwrap_or_default();
                        self.record_check(&account.id, failure.is_none(), &detail)
                            .await?;
                        if let Some(why) = failure {
                            tracing::warn!(account = %account.id, detail = %why, "baseline drift found");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(account = %account.id, error = %e, "baseline check did not run");
                        summary.errors += 1;
                    }
                }
            }
            if done {
                break;
            }
        }
        for (_, dir) in bundles.values() {
            if let Err(e) = tokio::fs::remove_dir_all(dir).await {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot remove an unpacked bundle");
            }
        }
        tracing::info!(
            checked = summary.checked,
            drifted = summary.drifted,
            errors = summary.errors,
            "drift check done"
        );
        Ok(summary)
    }

    /// Runs `check_drift` every `interval` until the task is dropped.
    ///
    /// With several replicas on Postgres one of them checks: the one that
    /// holds a session advisory lock on a connection of its own (another
    /// takes over when its session ends).
    pub fn spawn_drift_checker(
        &self,
        interval: Duration,
        work_dir: PathBuf,
        database_url: String,
    ) -> tokio::task::JoinHandle<()> {
        let fleet = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // not at start-up
            let mut leader =
                conveyor_platform::database::Leader::new(database_url, LEADER_KEY, "drift checks");
            loop {
                tick.tick().await;
                if !leader.holds().await {
                    tracing::debug!("another replica runs the drift checks");
                    continue;
                }
                if let Err(e) = fleet.check_drift(&work_dir).await {
                    tracing::warn!(error = %e, "drift check failed");
                }
            }
        })
    }

    /// The version's files written under `work_dir/<digest hex>/`.
    async fn unpack(
        &self,
        v: &VersionRef,
        work_dir: &Path,
    ) -> Result<(BaselineVersion, PathBuf), Error> {
        let version = self.store.baseline_version(v, true).await?;
        let dir = work_dir.join(version.digest.trim_start_matches("sha256:"));
        let files = version.content.files.clone();
        let target = dir.clone();
        tokio::task::spawn_blocking(move || write_files(&target, &files))
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?
            .map_err(|e| Error::Internal(Box::new(e)))?;
        Ok((version, dir))
    }
}

fn write_files(dir: &Path, files: &[crate::model::BaselineFile]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    for f in files {
        // Paths were checked when the version was created: relative, no '..'.
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.content)?;
        let mode = if f.executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// `None` when every region's check passed, else the first failure.
async fn check_account(
    account: &Account,
    version: &BaselineVersion,
    dir: &Path,
    pass_env: &[String],
) -> std::io::Result<Option<String>> {
    for region in &account.regions {
        let mut command = tokio::process::Command::new("sh");
        command.env_clear();
        let always = ["PATH", "HOME", "LANG", "TMPDIR"];
        for name in always
            .iter()
            .copied()
            .chain(pass_env.iter().map(String::as_str))
        {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .arg("-c")
            .arg(&version.content.check_command)
            .current_dir(dir)
            .env("CONVEYOR_ACCOUNT", &account.id)
            .env("CONVEYOR_REGION", region)
            .env("CONVEYOR_BASELINE_VERSION", version.version.name())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(version.content.timeout, command.output()).await {
            Ok(output) => output?,
            Err(_) => {
                return Ok(Some(format!(
                    "{region}: the check ran past {}s",
                    version.content.timeout.as_secs()
                )));
            }
        };
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            let tail: String = {
                let start = text.len().saturating_sub(DETAIL_BYTES);
                let start = (start..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(text.len());
                text[start..].trim().to_owned()
            };
            return Ok(Some(format!(
                "{region}: check exited {}: {tail}",
                output.status.code().unwrap_or(-1)
            )));
        }
    }
    Ok(None)
}

/// The advisory-lock key of the drift checker ("conveyor-fleet-drift").
const LEADER_KEY: i64 = 0x636f_6e76_6472_6674;
