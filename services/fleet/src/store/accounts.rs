//! Accounts. Regions and tags are stored as compact JSON text; the
//! region and tag filters match their exact JSON spelling with LIKE, which
//! is exact because names and tags never hold quotes or backslashes.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::{account, rollout};
use super::requests::{remember, replay};
use super::{
    Outcome, RequestKey, Store, StoreError, check_etag, exists_or, like_contains, like_prefix,
    new_etag, records,
};
use crate::model::{Account, AccountState, Applied, Check, Plan, RolloutState, Tier};
use crate::names::account_name;

/// Which accounts to list; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Accounts whose OU path starts with this one (an OU subtree).
    pub ou_path: Option<String>,
    pub tiers: Vec<Tier>,
    pub region: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub states: Vec<AccountState>,
    pub ids: Vec<String>,
}

/// One change to an account.
#[derive(Debug, Clone)]
pub enum AccountPatch {
    Describe {
        display_name: Option<String>,
        owner: Option<String>,
        regions: Option<Vec<String>>,
        tags: Option<BTreeMap<String, String>>,
    },
    Move {
        ou: String,
    },
    Suspend {
        reason: String,
    },
    Reactivate {
        reason: String,
    },
    Close {
        reason: String,
    },
    /// Vending moved on: PROVISIONING, ACTIVE or PROVISIONING_FAILED.
    Provisioning {
        state: AccountState,
        reason: String,
        execution: String,
    },
    Applied(Applied),
    Checked(Check),
}

async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Account, StoreError> {
    let m = account::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(account_name(id)))?;
    records::account(m)
}

impl Store {
    pub async fn account(&self, id: &str) -> Result<Account, StoreError> {
        find(&self.db, id).await
    }

    /// What the planner needs of every account `filter` matches, in no
    /// particular order: four short columns instead of whole rows (plans
    /// cover the whole fleet).
    pub async fn plan_candidates(
        &self,
        filter: &AccountFilter,
    ) -> Result<Vec<PlanRow>, StoreError> {
        let query = filtered(account::Entity::find(), filter)
            .select_only()
            .columns([
                account::Column::Id,
                account::Column::Tier,
                account::Column::Regions,
                account::Column::Ou,
            ]);
        let rows: Vec<(String, String, String, String)> = query.into_tuple().all(&self.db).await?;
        rows.into_iter()
            .map(|(id, tier, regions, ou)| {
                let tier = Tier::parse(&tier)
                    .ok_or_else(|| StoreError::Corrupt(format!("account {id:?}: bad tier")))?;
                let regions = records::regions(&id, &regions)?;
                Ok(PlanRow {
                    id,
                    tier,
                    regions,
                    ou,
                })
            })
            .collect()
    }

    /// Accounts ordered by id, after `after`, at most `limit` (all with `None`).
    pub async fn list_accounts(
        &self,
        filter: &AccountFilter,
        after: Option<&str>,
        limit: Option<u64>,
    ) -> Result<Vec<Account>, StoreError> {
        let mut query = filtered(account::Entity::find(), filter).order_by_asc(account::Column::Id);
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        if let Some(after) = after {
            query = query.filter(account::Column::Id.gt(after));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(records::account)
            .collect()
    }

    /// Stores a new account in its OU (which must exist).
    pub async fn insert_account(
        &self,
        account: Account,
        request: Option<&RequestKey>,
    ) -> Result<Outcome<Account>, StoreError> {
        let request = request.cloned();
        self.transaction(|txn| {
            let (mut account, request) = (account.clone(), request.clone());
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                let ou = super::ous::find(txn, &account.ou).await?;
                account.ou_path = ou.path;
                account.etag = new_etag();
                let name = account_name(&account.id);
                let inserted = account::ActiveModel::from(records::account_row(&account))
                    .insert(txn)
                    .await
                    .map_err(|e| exists_or(e, &name))?;
                remember(txn, request.as_ref(), &name).await?;
                Ok(Outcome::Done(records::account(inserted)?))
            })
        })
        .await
    }

    /// Applies one change to an account, checking its etag and state.
    pub async fn change_account(
        &self,
        id: &str,
        etag: Option<&str>,
        request: Option<&RequestKey>,
        patch: AccountPatch,
    ) -> Result<Outcome<Account>, StoreError> {
        let (id, etag) = (id.to_owned(), etag.map(str::to_owned));
        let request = request.cloned();
        self.transaction(|txn| {
            let (id, etag, request, patch) =
                (id.clone(), etag.clone(), request.clone(), patch.clone());
            Box::pin(async move {
                if let Some(done) = replay(txn, request.as_ref()).await? {
                    return Ok(Outcome::Replayed(done));
                }
                let name = account_name(&id);
                let current = find(txn, &id).await?;
                check_etag(&name, &current.etag, etag.as_deref())?;
                let mut changed = current.clone();
                apply(txn, &mut changed, patch).await?;
                let saved = save(txn, &current, changed).await?;
                remember(txn, request.as_ref(), &name).await?;
                Ok(Outcome::Done(saved))
            })
        })
        .await
    }
}

/// `query` narrowed to the accounts `filter` matches.
fn filtered(
    mut query: sea_orm::Select<account::Entity>,
    filter: &AccountFilter,
) -> sea_orm::Select<account::Entity> {
    if let Some(path) = &filter.ou_path {
        query = query.filter(Expr::col(account::Column::OuPath).like(like_prefix(path)));
    }
    if !filter.tiers.is_empty() {
        query = query.filter(account::Column::Tier.is_in(filter.tiers.iter().map(|t| t.as_str())));
    }
    if !filter.states.is_empty() {
        query =
            query.filter(account::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
    }
    if !filter.ids.is_empty() {
        query = query.filter(account::Column::Id.is_in(filter.ids.iter().cloned()));
    }
    if let Some(region) = &filter.region {
        let quoted = records::to_json(region);
        query = query.filter(Expr::col(account::Column::Regions).like(like_contains(&quoted)));
    }
    for (key, value) in &filter.tags {
        let pair = format!("{}:{}", records::to_json(key), records::to_json(value));
        query = query.filter(Expr::col(account::Column::Tags).like(like_contains(&pair)));
    }
    query
}

/// An account as the planner sees it.
#[derive(Debug, Clone)]
pub struct PlanRow {
    pub id: String,
    pub tier: Tier,
    pub regions: Vec<String>,
    /// The account's OU.
    pub ou: String,
}

fn refuse(account: &Account, what: &str) -> StoreError {
    let name = account_name(&account.id);
    StoreError::precondition(
        "ACCOUNT_STATE",
        &name,
        format!("cannot {what} {name}: it is {}", account.state.as_str()),
    )
}

async fn apply(
    txn: &DatabaseTransaction,
    a: &mut Account,
    patch: AccountPatch,
) -> Result<(), StoreError> {
    use AccountState as S;
    match patch {
        AccountPatch::Describe {
            display_name,
            owner,
            regions,
            tags,
        } => {
            // A failed vending leaves the account to be closed, nothing else.
            if matches!(a.state, S::Closed | S::ProvisioningFailed) {
                return Err(refuse(a, "update"));
            }
            if let Some(v) = display_name {
                a.display_name = v;
            }
            if let Some(v) = owner {
                a.owner = v;
            }
            if let Some(v) = regions {
                a.regions = v;
            }
            if let Some(v) = tags {
                a.tags = v;
            }
        }
        AccountPatch::Move { ou } => {
            if matches!(a.state, S::Closed | S::ProvisioningFailed) {
                return Err(refuse(a, "move"));
            }
            let dest = super::ous::find(txn, &ou).await?;
            a.ou = dest.id;
            a.ou_path = dest.path;
        }
        AccountPatch::Suspend { reason } => {
            if a.state != S::Active {
                return Err(refuse(a, "suspend"));
            }
            a.state = S::Suspended;
            a.state_reason = reason;
        }
        AccountPatch::Reactivate { reason } => {
            if a.state != S::Suspended {
                return Err(refuse(a, "reactivate"));
            }
            a.state = S::Active;
            a.state_reason = reason;
        }
        AccountPatch::Close { reason } => {
            if a.state == S::Closed {
                return Err(refuse(a, "close"));
            }
            if let Some(r) = rollout_targeting(txn, &a.id).await? {
                let name = account_name(&a.id);
                return Err(StoreError::precondition(
                    "ROLLOUT_IN_PROGRESS",
                    &name,
                    format!("cannot close {name}: rollout {r} targets it and has not ended"),
                ));
            }
            a.state = S::Closed;
            a.state_reason = reason;
        }
        AccountPatch::Provisioning {
            state,
            reason,
            execution,
        } => {
            if !matches!(a.state, S::Requested | S::Provisioning) {
                return Err(refuse(a, "provision"));
            }
            a.state = state;
            a.state_reason = reason;
            if !execution.is_empty() {
                a.vending_execution = execution;
            }
        }
        AccountPatch::Applied(applied) => {
            a.applied = Some(applied);
            // The check ran against what was there before.
            a.check = None;
        }
        AccountPatch::Checked(check) => a.check = Some(check),
    }
    Ok(())
}

/// A rollout that has not ended and whose plan targets `account`.
async fn rollout_targeting(
    txn: &DatabaseTransaction,
    account: &str,
) -> Result<Option<String>, StoreError> {
    let open = rollout::Entity::find()
        .filter(
            rollout::Column::State.is_not_in(
                RolloutState::ALL
                    .into_iter()
                    .filter(|s| s.is_final())
                    .map(|s| s.as_str()),
            ),
        )
        .all(txn)
        .await?;
    for r in open {
        let plan: Plan = serde_json::from_str(&r.plan)
            .map_err(|e| StoreError::Corrupt(format!("rollout {:?}: {e}", r.id)))?;
        if plan
            .waves
            .iter()
            .any(|w| w.targets.iter().any(|t| t.account == account))
        {
            return Ok(Some(crate::names::rollout_name(&r.id)));
        }
    }
    Ok(None)
}

async fn save(
    txn: &DatabaseTransaction,
    current: &Account,
    mut changed: Account,
) -> Result<Account, StoreError> {
    changed.etag = new_etag();
    changed.update_time = Utc::now();
    let row = records::account_row(&changed);
    let updated = account::Entity::update_many()
        .set(account::ActiveModel::from(row).reset_all())
        .filter(account::Column::Id.eq(current.id.as_str()))
        .filter(account::Column::Etag.eq(current.etag.as_str()))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Conflict(account_name(&current.id)));
    }
    Ok(changed)
}
