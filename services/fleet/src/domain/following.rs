//! OUs that follow their baseline (`AssignBaselineRequest.auto_rollout`):
//! when the baseline assigned on such an OU has a newer version, the fleet
//! service rolls that version out, with the OU's strategy, to the ACTIVE
//! accounts whose desired baseline comes from this OU (not those of a
//! nearer assignment below it), and assigns the version on the OU once the
//! rollout has succeeded. Publishing a baseline version thereby starts the
//! rollout pipeline by itself, its execution pinned to the version's digest
//! (`BASELINE_DIGEST`). A rollout that is reverted, fails or is cancelled
//! leaves the OU on its version; the next newer version is tried afresh.
//!
//! Each tracker pass looks again (level-triggered): one rollout per OU at
//! a time, a freeze window or an unreachable execution service only delay
//! it, and a crash between the rollout's end and the assignment is caught
//! up by the next pass.

use sha2::{Digest, Sha256};

use super::{Fleet, NewRollout};
use crate::error::Error;
use crate::model::{AccountState, Ou, Principal, Rollout, RolloutState, Selector};
use crate::names::{VersionRef, is_valid_id};
use crate::store::{AccountFilter, StoreError};

/// Who starts the rollouts of OUs that follow their baseline.
pub const FOLLOWER: &str = "conveyor-fleet";

impl Fleet {
    /// One pass over the OUs that follow their baseline; returns how many
    /// moved to a newer version.
    pub(super) async fn follow_baselines(&self) -> Result<usize, Error> {
        let mut moved = 0;
        let following: Vec<Ou> = self
            .store
            .ous()
            .await?
            .into_iter()
            .filter(|ou| ou.auto_rollout.is_some())
            .collect();
        if following.is_empty() {
            return Ok(0);
        }
        let open = self.store.open_rollouts().await?;
        for ou in following {
            let id = ou.id.clone();
            match self.follow(ou, &open).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(ou = %id, error = %e, "the OU's newer baseline version waits")
                }
            }
        }
        Ok(moved)
    }

    /// Moves `ou` one step towards its baseline's newest version; true when
    /// the version was assigned.
    async fn follow(&self, ou: Ou, open: &[Rollout]) -> Result<bool, Error> {
        let (Some(current), Some(strategy)) = (ou.baseline.clone(), ou.auto_rollout.clone()) else {
            return Ok(false);
        };
        // One rollout of this OU at a time: a newer version waits for it.
        if open
            .iter()
            .any(|r| is_following_rollout(r, &ou.id, &current.baseline))
        {
            return Ok(false);
        }
        let latest = self.store.baseline(&current.baseline).await?.latest_version;
        if latest <= current.version {
            return Ok(false);
        }
        let version = VersionRef {
            baseline: current.baseline.clone(),
            version: latest,
        };
        let id = rollout_id(&ou.id, &version);
        match self.store.rollout(&id).await {
            Ok(r) if is_following_rollout(&r, &ou.id, &current.baseline) => {
                return match r.state {
                    RolloutState::Succeeded => self.assign_followed(&ou, version).await,
                    // Reverted, failed or cancelled: the OU stays where it is.
                    _ => Ok(false),
                };
            }
            Ok(r) => {
                return Err(Error::precondition(
                    "ROLLOUT_ID_TAKEN",
                    crate::names::rollout_name(&id),
                    format!(
                        "rollout {} is not this OU's rollout of {}; delete or rename it",
                        r.id,
                        version.name()
                    ),
                ));
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let accounts = self.followers(&ou).await?;
        if accounts.is_empty() {
            // Nothing to roll out to: new accounts are vended with it, once
            // no freeze window holds the OU.
            let path: std::collections::BTreeSet<String> =
                crate::model::path_ids(&ou.path).into_iter().collect();
            let rollout = crate::names::rollout_name(&id);
            if !self
                .holding_freezes(&path, &self.rollout_pipeline, &rollout)
                .await?
                .is_empty()
            {
                return Ok(false);
            }
            return self.assign_followed(&ou, version).await;
        }
        let new = NewRollout {
            id: id.clone(),
            version: version.clone(),
            selector: Selector {
                ous: vec![ou.id.clone()],
                accounts,
                ..Selector::default()
            },
            strategy,
            pipeline: String::new(),
            plan_digest: String::new(),
            principal: Principal {
                id: FOLLOWER.to_owned(),
                groups: Vec::new(),
            },
        };
        match self.start_rollout(new, "").await {
            Ok(rollout) => {
                tracing::info!(ou = %ou.id, version = %version.name(), rollout = %rollout.id, "the OU follows its baseline: rollout started");
                Ok(false)
            }
            // Its accounts were suspended or moved since they were read, or
            // a freeze window holds them: the next pass looks again.
            Err(Error::FailedPrecondition {
                reason: "NO_TARGETS" | "FROZEN",
                ..
            }) => Ok(false),
            // The rest (the database, say): the next pass tries again.
            Err(e) => Err(e),
        }
    }

    /// The ACTIVE accounts whose desired baseline comes from `ou` itself.
    async fn followers(&self, ou: &Ou) -> Result<Vec<String>, Error> {
        let tree = self.tree().await?;
        let filter = AccountFilter {
            ou_path: Some(ou.path.clone()),
            states: vec![AccountState::Active],
            ..AccountFilter::default()
        };
        Ok(self
            .store
            .list_accounts(&filter, None, None)
            .await?
            .into_iter()
            .filter(|a| tree.desired_on(&a.ou_path).is_some_and(|d| d.from == ou.id))
            .map(|a| a.id)
            .collect())
    }

    /// Assigns `version` on `ou`, still following, with the etag read: a
    /// change of the OU since (an assignment by hand) wins.
    async fn assign_followed(&self, ou: &Ou, version: VersionRef) -> Result<bool, Error> {
        self.assign_baseline_with(
            &ou.id,
            Some(version.clone()),
            ou.auto_rollout.clone(),
            &ou.etag,
            "",
        )
        .await?;
        tracing::info!(ou = %ou.id, version = %version.name(), "the OU follows its baseline: version assigned");
        Ok(true)
    }
}

/// Whether `r` is a rollout the follower started for `ou` and `baseline`.
fn is_following_rollout(r: &Rollout, ou: &str, baseline: &str) -> bool {
    r.created_by.id == FOLLOWER
        && r.baseline_version.baseline == baseline
        && r.plan.selector.ous.iter().any(|o| o == ou)
}

/// `auto-{ou}-{baseline}-{version}`, or a digest of the first two when
/// that is longer than an id may be.
fn rollout_id(ou: &str, version: &VersionRef) -> String {
    let id = format!("auto-{ou}-{}-{}", version.baseline, version.version);
    if is_valid_id(&id) {
        return id;
    }
    let digest = Sha256::digest(format!("{ou}/{}", version.baseline));
    format!("auto-{}-{}", &hex::encode(digest)[..16], version.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_ids_are_valid_ids() {
        let v = |baseline: &str| VersionRef {
            baseline: baseline.to_owned(),
            version: 12,
        };
        assert_eq!(
            rollout_id("prod", &v("guardrails")),
            "auto-prod-guardrails-12"
        );
        let long = "b".repeat(60);
        let id = rollout_id("prod", &v(&long));
        assert!(is_valid_id(&id), "{id}");
        assert!(id.starts_with("auto-") && id.ends_with("-12"), "{id}");
        assert_ne!(id, rollout_id("dev", &v(&long)));
    }
}
