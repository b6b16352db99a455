//! The fleet's rules, free of gRPC and SQL: what may change and how, how
//! desired baselines are inherited down the OU tree, which accounts a
//! selector picks, and which freezes hold them.

mod accounts;
mod baselines;
mod drift;
mod following;
mod freezes;
mod ous;
mod planning;
mod rollouts;
mod tracker;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use accounts::{AccountQuery, Lifecycle, NewAccount, check_tags};
pub use baselines::NewBaselineVersion;
pub use drift::DriftSummary;
pub use following::FOLLOWER;
pub use freezes::{Grant, NewFreeze};
pub use planning::Planned;
pub use rollouts::{DIGEST_PARAMETER, NewRollout, ROLLOUT_PARAMETER, VERSION_PARAMETER};
pub use tracker::ACCOUNT_PARAMETER;

use crate::error::Error;
use crate::executions::ExecutionService;
use crate::model::{Account, AccountView, Desired, Ou};
use crate::names::VersionRef;
use crate::store::{Outcome, RequestKey, Store};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;
const MAX_REQUEST_ID_BYTES: usize = 128;

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

#[derive(Clone)]
pub struct Fleet {
    store: Store,
    clock: fn() -> DateTime<Utc>,
    /// Runs vending and rollout executions.
    executions: Arc<dyn ExecutionService>,
    /// The account-fleet pipeline that provisions new accounts.
    pub vending_pipeline: String,
    /// The account-fleet pipeline that applies baseline rollouts.
    pub rollout_pipeline: String,
    /// Variables drift checks get from the service's environment, beyond
    /// PATH, HOME, LANG and TMPDIR.
    pub drift_env: Vec<String>,
    /// Where events go (the `conveyor.events.v1` stream); none: not published.
    pub events: Option<Arc<dyn conveyor_platform::queue::Queue>>,
}

impl Fleet {
    pub fn new(store: Store, executions: Arc<dyn ExecutionService>) -> Self {
        Fleet {
            store,
            clock: Utc::now,
            executions,
            vending_pipeline: "pipelines/account-vending".to_owned(),
            rollout_pipeline: "pipelines/account-fleet".to_owned(),
            drift_env: Vec::new(),
            events: None,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The whole OU tree with every OU's effective baseline.
    async fn tree(&self) -> Result<Tree, Error> {
        Ok(Tree::new(self.store.ous().await?))
    }

    async fn view(&self, account: Account) -> Result<AccountView, Error> {
        let tree = self.tree().await?;
        Ok(tree.view(account))
    }
}

/// The OU tree in memory: small next to the accounts in it.
pub(crate) struct Tree {
    ous: HashMap<String, Ou>,
}

impl Tree {
    pub(crate) fn new(ous: Vec<Ou>) -> Tree {
        Tree {
            ous: ous.into_iter().map(|o| (o.id.clone(), o)).collect(),
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Ou> {
        self.ous.get(id)
    }

    /// The nearest baseline assignment on `path` (an OU's path), deepest first.
    pub(crate) fn desired_on(&self, path: &str) -> Option<Desired> {
        crate::model::path_ids(path)
            .iter()
            .rev()
            .filter_map(|id| self.ous.get(id))
            .find_map(|ou| {
                ou.baseline.clone().map(|version| Desired {
                    version,
                    from: ou.id.clone(),
                })
            })
    }

    pub(crate) fn effective(&self, ou: &Ou) -> Option<VersionRef> {
        self.desired_on(&ou.path).map(|d| d.version)
    }

    pub(crate) fn view(&self, account: Account) -> AccountView {
        let desired = self.desired_on(&account.ou_path);
        AccountView {
            drift: account.drift(desired.as_ref()),
            desired,
            account,
        }
    }
}

/// The idempotency key of a request, or `None` without a request id.
fn request_key(
    request_id: &str,
    method: &str,
    args: impl std::fmt::Debug,
) -> Result<Option<RequestKey>, Error> {
    if request_id.is_empty() {
        return Ok(None);
    }
    if request_id.len() > MAX_REQUEST_ID_BYTES {
        return Err(Error::invalid(
            "request_id",
            format!("at most {MAX_REQUEST_ID_BYTES} bytes"),
        ));
    }
    Ok(Some(RequestKey {
        id: request_id.to_owned(),
        fingerprint: format!("{method}:{args:?}"),
    }))
}

/// The page size to read: 0 means the default, larger values are clamped.
pub fn page_size(requested: i32) -> Result<u64, Error> {
    match requested {
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// Splits `size + 1` rows read into a page and the next token (the last id).
fn page_by_id<T>(mut items: Vec<T>, size: u64, id: impl Fn(&T) -> String) -> Page<T> {
    let next_page_token = if items.len() as u64 > size {
        items.truncate(size as usize);
        items.last().map(&id).unwrap_or_default()
    } else {
        String::new()
    };
    Page {
        items,
        next_page_token,
    }
}

/// A page token that is an id: the last id of the previous page.
fn token_id(token: &str) -> Result<Option<&str>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    if crate::names::is_valid_id(token) {
        Ok(Some(token))
    } else {
        Err(Error::invalid(
            "page_token",
            "not a token this list returned",
        ))
    }
}

/// The result of a write, or the resource a replayed request wrote, read again.
async fn settle<T, F, Fut>(outcome: Outcome<T>, read: F) -> Result<T, Error>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    match outcome {
        Outcome::Done(value) => Ok(value),
        Outcome::Replayed(name) => read(name).await,
    }
}

/// Checks a free-text field's length.
fn text(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.len() > max {
        return Err(Error::invalid(field, format!("at most {max} bytes")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}
