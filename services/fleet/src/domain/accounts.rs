//! Accounts: vending requests, reads with baseline status, descriptive
//! updates, moves and lifecycle transitions.

use std::collections::BTreeMap;

use super::{Fleet, Page, page_by_id, request_key, settle, text, token_id};
use crate::error::Error;
use crate::model::{Account, AccountState, AccountView, Applied, Check, Principal, Tier};
use crate::names::{self, VersionRef, account_id, check_id};
use crate::store::{AccountFilter, AccountPatch};

/// An account to vend.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub display_name: String,
    pub owner: String,
    pub ou: String,
    pub tier: Tier,
    pub regions: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub principal: Principal,
    /// `pipelines/{p}`; empty: the configured vending pipeline.
    pub vending_pipeline: String,
}

/// A lifecycle change an operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Suspend,
    Reactivate,
    Close,
}

/// Which accounts to list.
#[derive(Debug, Clone, Default)]
pub struct AccountQuery {
    /// An OU id: accounts in its subtree.
    pub ou: Option<String>,
    pub tiers: Vec<Tier>,
    pub region: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Empty means every state but CLOSED.
    pub states: Vec<AccountState>,
}

/// Checks regions (at least one, each valid, no repeats) and sorts them.
fn check_regions(field: &str, regions: &mut Vec<String>) -> Result<(), Error> {
    if regions.is_empty() {
        return Err(Error::invalid(field, "give at least one region"));
    }
    for (i, r) in regions.iter().enumerate() {
        if !names::is_valid_region(r) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("{r:?} must be 1 to 63 lowercase letters, digits or '-'"),
            ));
        }
    }
    regions.sort();
    let before = regions.len();
    regions.dedup();
    if regions.len() != before {
        return Err(Error::invalid(field, "a region is given twice"));
    }
    Ok(())
}

pub fn check_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<(), Error> {
    if tags.len() > 64 {
        return Err(Error::invalid(field, "at most 64 tags"));
    }
    for (k, v) in tags {
        if !names::is_valid_tag(k, v) {
            return Err(Error::invalid(
                format!("{field}[{k:?}]"),
                "keys (1 to 63) and values (up to 255) may hold letters, digits and -_.:/@",
            ));
        }
    }
    Ok(())
}

impl Fleet {
    /// Stores a vending request: the account starts REQUESTED.
    pub async fn create_account(
        &self,
        mut new: NewAccount,
        request_id: &str,
    ) -> Result<AccountView, Error> {
        check_id("account_id", &new.id)?;
        if new.id.len() < 3 {
            return Err(Error::invalid(
                "account_id",
                "must have at least 3 characters",
            ));
        }
        text("account.display_name", &new.display_name, 256)?;
        text("account.owner", &new.owner, 256)?;
        check_regions("account.regions", &mut new.regions)?;
        check_tags("account.tags", &new.tags)?;
        names::check_pipeline("vending_pipeline", &new.vending_pipeline)?;
        let key = request_key(request_id, "CreateAccount", &new)?;
        let now = self.now();
        let account = Account {
            id: new.id.clone(),
            display_name: if new.display_name.is_empty() {
                new.id.clone()
            } else {
                new.display_name
            },
            owner: new.owner,
            ou: new.ou.clone(),
            ou_path: String::new(),
            tier: new.tier,
            regions: new.regions,
            tags: new.tags,
            state: AccountState::Requested,
            state_reason: format!(
                "requested by {}",
                if new.principal.id.is_empty() {
                    "an unnamed caller"
                } else {
                    &new.principal.id
                }
            ),
            vending_execution: String::new(),
            vending_pipeline: new.vending_pipeline.clone(),
            applied: None,
            check: None,
            etag: String::new(),
            create_time: now,
            update_time: now,
        };
        let outcome = self
            .store
            .insert_account(account, key.as_ref())
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) if name == names::ou_name(&new.ou) => Error::invalid(
                    "account.organizational_unit",
                    format!("{name} does not exist"),
                ),
                e => e,
            })?;
        let account = settle(outcome, |name| async move {
            self.account_by_name(&name).await.map(|v| v.account)
        })
        .await?;
        tracing::info!(account = %account.id, ou = %account.ou, tier = account.tier.as_str(), "account requested");
        if account.vending_execution.is_empty() {
            // Best effort: the tracker starts it when this fails.
            if let Err(e) = self.vend(&account).await {
                tracing::warn!(account = %account.id, error = %e, "vending not started; will retry");
            }
        }
        self.account(&account.id).await
    }

    async fn account_by_name(&self, name: &str) -> Result<AccountView, Error> {
        let id = account_id("name", name)?;
        self.account(id).await
    }

    pub async fn account(&self, id: &str) -> Result<AccountView, Error> {
        let account = self.store.account(id).await?;
        self.view(account).await
    }

    pub async fn list_accounts(
        &self,
        q: AccountQuery,
        size: u64,
        token: &str,
    ) -> Result<Page<AccountView>, Error> {
        let after = token_id(token)?;
        let tree = self.tree().await?;
        let ou_path = match &q.ou {
            Some(ou) => Some(
                tree.get(ou)
                    .ok_or_else(|| {
                        Error::invalid(
                            "organizational_unit",
                            format!("{} does not exist", names::ou_name(ou)),
                        )
                    })?
                    .path
                    .clone(),
            ),
            None => None,
        };
        let states = if q.states.is_empty() {
            AccountState::ALL
                .into_iter()
                .filter(|s| *s != AccountState::Closed)
                .collect()
        } else {
            q.states
        };
        let filter = AccountFilter {
            ou_path,
            tiers: q.tiers,
            region: q.region,
            tags: q.tags,
            states,
            ids: Vec::new(),
        };
        let accounts = self
            .store
            .list_accounts(&filter, after, Some(size + 1))
            .await?;
        let page = page_by_id(accounts, size, |a| a.id.clone());
        Ok(Page {
            items: page.items.into_iter().map(|a| tree.view(a)).collect(),
            next_page_token: page.next_page_token,
        })
    }

    /// Changes the descriptive fields given.
    pub async fn update_account(
        &self,
        id: &str,
        etag: &str,
        patch: AccountPatch,
        request_id: &str,
    ) -> Result<AccountView, Error> {
        let patch = match patch {
            AccountPatch::Describe {
                display_name,
                owner,
                mut regions,
                tags,
            } => {
                if let Some(d) = &display_name {
                    text("account.display_name", d, 256)?;
                }
                if let Some(o) = &owner {
                    text("account.owner", o, 256)?;
                }
                if let Some(r) = &mut regions {
                    check_regions("account.regions", r)?;
                }
                if let Some(t) = &tags {
                    check_tags("account.tags", t)?;
                }
                AccountPatch::Describe {
                    display_name,
                    owner,
                    regions,
                    tags,
                }
            }
            _ => {
                return Err(Error::invalid(
                    "update_mask",
                    "only descriptive fields can be updated",
                ));
            }
        };
        self.change(id, etag, request_id, "UpdateAccount", patch)
            .await
    }

    pub async fn move_account(
        &self,
        id: &str,
        destination: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<AccountView, Error> {
        let patch = AccountPatch::Move {
            ou: destination.to_owned(),
        };
        self.change(id, etag, request_id, "MoveAccount", patch)
            .await
            .map_err(|e| match e {
                Error::NotFound(name) if name == names::ou_name(destination) => {
                    Error::invalid("destination", format!("{name} does not exist"))
                }
                e => e,
            })
    }

    /// Suspends, reactivates or closes an account; `reason` and `by` go in
    /// its state_reason.
    pub async fn transition_account(
        &self,
        to: Lifecycle,
        id: &str,
        reason: &str,
        by: &Principal,
        etag: &str,
        request_id: &str,
    ) -> Result<AccountView, Error> {
        text("reason", reason, 1024)?;
        let (method, patch) = match to {
            Lifecycle::Suspend => (
                "SuspendAccount",
                AccountPatch::Suspend {
                    reason: reason_by(reason, by, "suspended"),
                },
            ),
            Lifecycle::Reactivate => (
                "ReactivateAccount",
                AccountPatch::Reactivate {
                    reason: reason_by(reason, by, "reactivated"),
                },
            ),
            Lifecycle::Close => (
                "CloseAccount",
                AccountPatch::Close {
                    reason: reason_by(reason, by, "closed"),
                },
            ),
        };
        let before = self.store.account(id).await?;
        let after = self.change(id, etag, request_id, method, patch).await?;
        // Closing an account still being vended stops its vending.
        let vending = matches!(
            before.state,
            AccountState::Requested | AccountState::Provisioning
        );
        if to == Lifecycle::Close && vending && !before.vending_execution.is_empty() {
            let why = format!("account {} was closed", before.id);
            if let Err(status) = self
                .executions
                .cancel(&before.vending_execution, &why)
                .await
            {
                tracing::warn!(account = %before.id, execution = %before.vending_execution, error = %status.message(), "cannot cancel the vending execution");
            }
        }
        Ok(after)
    }

    /// Records a vending step: PROVISIONING with its execution, then
    /// ACTIVE or PROVISIONING_FAILED.
    pub async fn record_provisioning(
        &self,
        id: &str,
        state: AccountState,
        reason: &str,
        execution: &str,
    ) -> Result<AccountView, Error> {
        let patch = AccountPatch::Provisioning {
            state,
            reason: reason.to_owned(),
            execution: execution.to_owned(),
        };
        self.change(id, "", "", "", patch).await
    }

    /// Records a successful apply of `version` on an account.
    pub async fn record_apply(
        &self,
        id: &str,
        version: VersionRef,
        execution: &str,
    ) -> Result<AccountView, Error> {
        let patch = AccountPatch::Applied(Applied {
            version,
            time: self.now(),
            execution: execution.to_owned(),
        });
        self.change(id, "", "", "", patch).await
    }

    /// Records the outcome of the applied baseline's check command.
    pub async fn record_check(
        &self,
        id: &str,
        passed: bool,
        detail: &str,
    ) -> Result<AccountView, Error> {
        let detail: String = detail.chars().take(4096).collect();
        let patch = AccountPatch::Checked(Check {
            time: self.now(),
            passed,
            detail,
        });
        self.change(id, "", "", "", patch).await
    }

    async fn change(
        &self,
        id: &str,
        etag: &str,
        request_id: &str,
        method: &str,
        patch: AccountPatch,
    ) -> Result<AccountView, Error> {
        let key = request_key(request_id, method, (id, &patch))?;
        let etag = (!etag.is_empty()).then_some(etag);
        let outcome = self
            .store
            .change_account(id, etag, key.as_ref(), patch)
            .await?;
        let account = settle(outcome, |name| async move {
            self.account_by_name(&name).await.map(|v| v.account)
        })
        .await?;
        self.view(account).await
    }
}

fn reason_by(reason: &str, by: &Principal, what: &str) -> String {
    match (reason.is_empty(), by.id.is_empty()) {
        (true, true) => what.to_owned(),
        (true, false) => format!("{what} by {}", by.id),
        (false, true) => reason.to_owned(),
        (false, false) => format!("{reason} ({what} by {})", by.id),
    }
}
