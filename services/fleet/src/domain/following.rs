//! OUs that follow their baseline (`AssignBaselineRequest.auto_rollout`):
//! when the baseline assigned on such an OU has a newer version, the fleet
//! service rolls that version out to the accounts below the OU with the
//! OU's strategy, and then assigns it there. Publishing a baseline version
//! thereby starts the rollout pipeline by itself, its execution pinned to
//! the version's digest (`BASELINE_DIGEST`). Each tracker pass compares the
//! assigned and latest versions again, so a crash between the two steps, a
//! freeze window or an unreachable execution service only delays it.

use sha2::{Digest, Sha256};

use super::{Fleet, NewRollout};
use crate::error::Error;
use crate::model::{Ou, Principal, Selector};
use crate::names::{VersionRef, is_valid_id};

/// Who starts the rollouts of OUs that follow their baseline.
pub const FOLLOWER: &str = "conveyor-fleet";

impl Fleet {
    /// One pass over the OUs that follow their baseline; returns how many
    /// moved to a newer version.
    pub(super) async fn follow_baselines(&self) -> Result<usize, Error> {
        let mut moved = 0;
        for ou in self.store.ous().await? {
            if ou.auto_rollout.is_none() {
                continue;
            }
            let id = ou.id.clone();
            match self.follow(ou).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(ou = %id, error = %e, "the OU's newer baseline version waits")
                }
            }
        }
        Ok(moved)
    }

    /// Rolls the newest version of `ou`'s baseline out below it and assigns
    /// it, when it is newer than the one assigned.
    async fn follow(&self, ou: Ou) -> Result<bool, Error> {
        let (Some(current), Some(strategy)) = (ou.baseline.clone(), ou.auto_rollout.clone()) else {
            return Ok(false);
        };
        let latest = self.store.baseline(&current.baseline).await?.latest_version;
        if latest <= current.version {
            return Ok(false);
        }
        let version = VersionRef {
            baseline: current.baseline.clone(),
            version: latest,
        };
        let id = rollout_id(&ou.id, &version);
        let new = NewRollout {
            id: id.clone(),
            version: version.clone(),
            selector: Selector {
                ous: vec![ou.id.clone()],
                ..Selector::default()
            },
            strategy: strategy.clone(),
            pipeline: String::new(),
            plan_digest: String::new(),
            principal: Principal {
                id: FOLLOWER.to_owned(),
                groups: Vec::new(),
            },
        };
        match self.start_rollout(new, "").await {
            Ok(rollout) => {
                tracing::info!(ou = %ou.id, version = %version.name(), rollout = %rollout.id, "the OU follows its baseline: rollout started")
            }
            // Started by an earlier pass that could not assign the version.
            Err(Error::AlreadyExists(_)) => {}
            // Nothing below the OU to roll out to: the version is assigned
            // all the same, and new accounts are vended with it.
            Err(Error::FailedPrecondition {
                reason: "NO_TARGETS",
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        // A change of the OU since it was read (its etag) wins over this one.
        self.assign_baseline_with(&ou.id, Some(version), Some(strategy), &ou.etag, "")
            .await?;
        Ok(true)
    }
}

/// `auto-{ou}-{baseline}-{version}`, or a digest of the first three when
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
