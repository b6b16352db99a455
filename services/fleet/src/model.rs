//! The fleet's domain types, shared by the store, the planner and the API.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::VersionRef;

/// An account's tier, from the DPRA's account model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Sandbox,
    Development,
    Beta,
    Gamma,
    Production,
    Tooling,
}

impl Tier {
    pub const ALL: [Tier; 6] = [
        Tier::Sandbox,
        Tier::Development,
        Tier::Beta,
        Tier::Gamma,
        Tier::Production,
        Tier::Tooling,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Sandbox => "sandbox",
            Tier::Development => "development",
            Tier::Beta => "beta",
            Tier::Gamma => "gamma",
            Tier::Production => "production",
            Tier::Tooling => "tooling",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Where the tier's targets go in a plan: production last, so every
    /// other tier has taken the change first.
    pub fn plan_rank(self) -> u8 {
        match self {
            Tier::Sandbox => 0,
            Tier::Development => 1,
            Tier::Beta => 2,
            Tier::Gamma => 3,
            Tier::Tooling => 4,
            Tier::Production => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountState {
    Requested,
    Provisioning,
    Active,
    Suspended,
    Closed,
    ProvisioningFailed,
}

impl AccountState {
    pub const ALL: [AccountState; 6] = [
        AccountState::Requested,
        AccountState::Provisioning,
        AccountState::Active,
        AccountState::Suspended,
        AccountState::Closed,
        AccountState::ProvisioningFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Requested => "requested",
            AccountState::Provisioning => "provisioning",
            AccountState::Active => "active",
            AccountState::Suspended => "suspended",
            AccountState::Closed => "closed",
            AccountState::ProvisioningFailed => "provisioning_failed",
        }
    }

    pub fn parse(s: &str) -> Option<AccountState> {
        AccountState::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How an account's applied baseline compares with its desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriftState {
    InSync,
    NotApplied,
    VersionMismatch,
    CheckFailed,
}

/// The last successful apply of a baseline on an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub version: VersionRef,
    pub time: DateTime<Utc>,
    /// The execution that applied it; empty when recorded otherwise.
    pub execution: String,
}

/// The last run of the applied baseline's check command on an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub time: DateTime<Utc>,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub display_name: String,
    pub owner: String,
    pub ou: String,
    /// The materialized path of the account's OU, e.g. `/root/eng/prod/`.
    pub ou_path: String,
    pub tier: Tier,
    pub regions: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub state: AccountState,
    pub state_reason: String,
    pub vending_execution: String,
    /// The pipeline that vends the account; empty: the configured one.
    pub vending_pipeline: String,
    pub applied: Option<Applied>,
    pub check: Option<Check>,
    pub etag: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// An account's desired baseline and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub version: VersionRef,
    /// The OU the version is assigned on.
    pub from: String,
}

impl Account {
    /// How the applied baseline compares with `desired`.
    pub fn drift(&self, desired: Option<&Desired>) -> DriftState {
        match (desired, &self.applied) {
            (None, None) => DriftState::InSync,
            (None, Some(_)) => DriftState::VersionMismatch,
            (Some(_), None) => DriftState::NotApplied,
            (Some(d), Some(a)) if d.version != a.version => DriftState::VersionMismatch,
            (Some(_), Some(_)) => match &self.check {
                Some(c) if !c.passed => DriftState::CheckFailed,
                _ => DriftState::InSync,
            },
        }
    }
}

/// An account with its baseline status, as reads return it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    pub account: Account,
    pub desired: Option<Desired>,
    pub drift: DriftState,
}

/// A node of the OU tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Ou {
    pub id: String,
    pub display_name: String,
    /// None only for the root.
    pub parent: Option<String>,
    /// `/root/.../{id}/`: every ancestor's id, then this one's.
    pub path: String,
    pub baseline: Option<VersionRef>,
    pub etag: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Set when the OU follows its baseline: each newer version is rolled
    /// out with this strategy, then assigned here.
    pub auto_rollout: Option<Strategy>,
}

impl Ou {
    /// Ancestor ids from the root down to the parent.
    pub fn ancestors(&self) -> Vec<String> {
        let mut ids = path_ids(&self.path);
        ids.pop();
        ids
    }
}

/// The ids along a materialized path, root first.
pub fn path_ids(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An OU with what reads add to it.
#[derive(Debug, Clone, PartialEq)]
pub struct OuView {
    pub ou: Ou,
    pub effective: Option<VersionRef>,
    pub child_count: u32,
    pub account_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub id: String,
    pub description: String,
    pub latest_version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineFile {
    pub path: String,
    /// Empty in the BASIC view.
    #[serde(skip)]
    pub content: Vec<u8>,
    pub size: u64,
    pub executable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineContent {
    /// Sorted by path.
    pub files: Vec<BaselineFile>,
    pub apply_command: String,
    pub check_command: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineVersion {
    pub version: VersionRef,
    pub content: BaselineContent,
    /// `sha256:<hex>` of the canonical tar of the files.
    pub digest: String,
    pub size_bytes: u64,
    pub author: String,
    pub message: String,
    pub create_time: DateTime<Utc>,
}

/// Who did something, as the caller authenticated them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Chooses ACTIVE accounts and their regions. Every non-empty field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selector {
    pub ous: Vec<String>,
    pub tiers: Vec<Tier>,
    pub regions: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub accounts: Vec<String>,
}

/// How targets are grouped into waves, every default filled in. Fields
/// missing from a stored one (written before they existed) take their
/// defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Strategy {
    pub skip_canary: bool,
    /// Used when `wave_percentages` is empty.
    pub growth_factor: f64,
    pub wave_percentages: Vec<f64>,
    pub max_production_percent: f64,
    pub one_region_at_a_time: bool,
    /// 0: no limit.
    pub max_wave_size: u32,
    pub bake_time: Option<Duration>,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            skip_canary: false,
            growth_factor: 2.0,
            wave_percentages: Vec::new(),
            max_production_percent: 33.0,
            one_region_at_a_time: false,
            max_wave_size: 0,
            bake_time: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    pub account: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    pub name: String,
    pub targets: Vec<Target>,
    pub explanation: String,
    pub production_accounts: u32,
    pub bake_time: Option<Duration>,
}

/// An explained, deterministic wave plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub baseline_version: Option<String>,
    pub selector: Selector,
    pub strategy: Strategy,
    pub waves: Vec<Wave>,
    pub account_count: u32,
    pub target_count: u32,
    pub explanation: Vec<String>,
    /// sha256 of the canonical wave list and baseline version.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub principal: Principal,
    pub reason: String,
    pub pipeline: String,
    pub rollout: String,
    pub create_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
}

impl Override {
    /// Whether this override lets `pipeline` or `rollout` through at `now`.
    pub fn allows(&self, pipeline: &str, rollout: &str, now: DateTime<Utc>) -> bool {
        let scope = match (self.pipeline.is_empty(), self.rollout.is_empty()) {
            (true, true) => true,
            _ => {
                (!self.pipeline.is_empty() && self.pipeline == pipeline)
                    || (!self.rollout.is_empty() && self.rollout == rollout)
            }
        };
        scope && now < self.expire_time
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FreezeWindow {
    pub ou: String,
    pub id: String,
    pub reason: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub created_by: Principal,
    pub overrides: Vec<Override>,
    pub etag: String,
    pub create_time: DateTime<Utc>,
}

impl FreezeWindow {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.start_time <= now && now < self.end_time
    }

    /// Whether the window holds `pipeline`/`rollout` at `now`.
    pub fn holds(&self, pipeline: &str, rollout: &str, now: DateTime<Utc>) -> bool {
        self.is_active(now)
            && !self
                .overrides
                .iter()
                .any(|o| o.allows(pipeline, rollout, now))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RolloutState {
    Pending,
    Held,
    Running,
    Succeeded,
    Reverted,
    Failed,
    Cancelled,
}

impl RolloutState {
    pub const ALL: [RolloutState; 7] = [
        RolloutState::Pending,
        RolloutState::Held,
        RolloutState::Running,
        RolloutState::Succeeded,
        RolloutState::Reverted,
        RolloutState::Failed,
        RolloutState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Pending => "pending",
            RolloutState::Held => "held",
            RolloutState::Running => "running",
            RolloutState::Succeeded => "succeeded",
            RolloutState::Reverted => "reverted",
            RolloutState::Failed => "failed",
            RolloutState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RolloutState> {
        RolloutState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            RolloutState::Succeeded
                | RolloutState::Reverted
                | RolloutState::Failed
                | RolloutState::Cancelled
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub id: String,
    pub baseline_version: VersionRef,
    pub plan: Plan,
    pub state: RolloutState,
    pub state_reason: String,
    pub pipeline: String,
    pub execution: String,
    pub current_wave: u32,
    pub reverted_accounts: Vec<String>,
    pub created_by: Principal,
    pub create_time: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}
