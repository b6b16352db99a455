//! Rollout plans, application targets and drift: which ACTIVE accounts a
//! selector picks, how the planner groups them, and which freezes hold them.

use std::collections::{BTreeSet, HashMap};

use super::{Fleet, Page, Tree, token_id};
use crate::error::Error;
use crate::model::{AccountState, AccountView, DriftState, FreezeWindow, Plan, Selector, Strategy};
use crate::names::{self, VersionRef};
use crate::plan::{self, Candidate};
use crate::store::{AccountFilter, PlanRow};

/// A plan and the freezes that hold it now.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub active_freezes: Vec<FreezeWindow>,
}

/// Checks a strategy's values; `field` is where it sits in the request.
pub fn check_strategy(field: &str, s: &Strategy) -> Result<(), Error> {
    if !(s.growth_factor.is_finite() && (1.0..=100.0).contains(&s.growth_factor)) {
        return Err(Error::invalid(
            format!("{field}.growth_factor"),
            "must be between 1 and 100",
        ));
    }
    if !s.wave_percentages.is_empty() {
        let f = format!("{field}.wave_percentages");
        let mut last = 0.0;
        for (i, p) in s.wave_percentages.iter().enumerate() {
            if !(p.is_finite() && *p > last && *p <= 100.0) {
                return Err(Error::invalid(
                    format!("{f}[{i}]"),
                    "each must be above the one before, above 0 and at most 100",
                ));
            }
            last = *p;
        }
        if last != 100.0 {
            return Err(Error::invalid(f, "must end at 100"));
        }
    }
    if !(s.max_production_percent.is_finite()
        && s.max_production_percent > 0.0
        && s.max_production_percent <= 100.0)
    {
        return Err(Error::invalid(
            format!("{field}.max_production_percent"),
            "must be above 0 and at most 100",
        ));
    }
    Ok(())
}

impl Fleet {
    /// Plans a rollout of `baseline_version` (candidates: accounts whose
    /// desired baseline is that baseline), or of application targets.
    pub async fn plan_rollout(
        &self,
        baseline_version: Option<VersionRef>,
        selector: Selector,
        strategy: Strategy,
    ) -> Result<Planned, Error> {
        if let Some(v) = &baseline_version {
            self.store
                .baseline_version(v, false)
                .await
                .map_err(|e| match Error::from(e) {
                    Error::NotFound(name) => {
                        Error::invalid("baseline_version", format!("{name} does not exist"))
                    }
                    e => e,
                })?;
        }
        self.planned(baseline_version.as_ref(), selector, strategy, "", "")
            .await
    }

    /// The waves of an environment's selector, with the freezes that hold
    /// them for `pipeline`.
    pub async fn resolve_targets(
        &self,
        selector: Selector,
        strategy: Strategy,
        pipeline: &str,
    ) -> Result<Planned, Error> {
        names::check_pipeline("pipeline", pipeline)?;
        if selector == Selector::default() {
            return Err(Error::invalid(
                "selector",
                "select accounts by OU, tier, tag or account",
            ));
        }
        self.planned(None, selector, strategy, pipeline, "").await
    }

    pub(super) async fn planned(
        &self,
        baseline: Option<&VersionRef>,
        selector: Selector,
        strategy: Strategy,
        pipeline: &str,
        rollout: &str,
    ) -> Result<Planned, Error> {
        check_strategy("strategy", &strategy)?;
        let started = std::time::Instant::now();
        let tree = self.tree().await?;
        let (accounts, mut notes) = self.select(&tree, &selector, baseline).await?;
        let selected = started.elapsed();
        let mut ous_used: BTreeSet<String> = BTreeSet::new();
        let mut candidates = Vec::with_capacity(accounts.len());
        let mut without_region = 0;
        for a in accounts {
            let regions = if selector.regions.is_empty() {
                a.regions
            } else {
                selected_regions(&a.regions, &selector)
            };
            if regions.is_empty() {
                without_region += 1;
                continue;
            }
            if !ous_used.contains(&a.ou) {
                ous_used.insert(a.ou);
            }
            candidates.push(Candidate {
                account: a.id,
                tier: a.tier,
                regions,
            });
        }
        if without_region > 0 {
            notes.push(format!(
                "{without_region} account(s) left out: none of the selected regions enabled"
            ));
        }
        let account_count = candidates.len() as u32;
        let waves = plan::plan(candidates, &strategy);
        notes.extend(waves.notes);
        let waves = waves.waves;
        let target_count = waves.iter().map(|w| w.targets.len()).sum::<usize>() as u32;
        let version_name = baseline.map(VersionRef::name);
        let digest = plan::digest(version_name.as_deref(), &waves);
        // Every OU on the way to the planned accounts' OUs: where freezes apply.
        let ous: BTreeSet<String> = ous_used
            .iter()
            .filter_map(|ou| tree.get(ou))
            .flat_map(|ou| crate::model::path_ids(&ou.path))
            .collect();
        let active_freezes = self.holding_freezes(&ous, pipeline, rollout).await?;
        tracing::debug!(
            accounts = account_count,
            waves = waves.len(),
            select_ms = selected.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "rollout planned"
        );
        Ok(Planned {
            plan: Plan {
                baseline_version: version_name,
                selector,
                strategy,
                account_count,
                target_count,
                waves,
                explanation: notes,
                digest,
            },
            active_freezes,
        })
    }

    /// Freeze windows active now on any of `ous` that hold `pipeline`/`rollout`.
    pub(super) async fn holding_freezes(
        &self,
        ous: &BTreeSet<String>,
        pipeline: &str,
        rollout: &str,
    ) -> Result<Vec<FreezeWindow>, Error> {
        if ous.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let ids: Vec<String> = ous.iter().cloned().collect();
        Ok(self
            .store
            .freezes(Some(&ids), Some(now))
            .await?
            .into_iter()
            .filter(|w| w.holds(pipeline, rollout, now))
            .collect())
    }

    /// The ACTIVE accounts a selector picks (regions not yet narrowed),
    /// with notes on what was left out.
    async fn select(
        &self,
        tree: &Tree,
        s: &Selector,
        baseline: Option<&VersionRef>,
    ) -> Result<(Vec<PlanRow>, Vec<String>), Error> {
        let mut paths = Vec::new();
        for (i, ou) in s.ous.iter().enumerate() {
            let found = tree.get(ou).ok_or_else(|| {
                Error::invalid(
                    format!("selector.organizational_units[{i}]"),
                    format!("{} does not exist", names::ou_name(ou)),
                )
            })?;
            paths.push(found.path.clone());
        }
        if !s.accounts.is_empty() {
            let filter = AccountFilter {
                ids: s.accounts.clone(),
                ..AccountFilter::default()
            };
            let known: BTreeSet<String> = self
                .store
                .plan_candidates(&filter)
                .await?
                .into_iter()
                .map(|a| a.id)
                .collect();
            if let Some((i, missing)) = s
                .accounts
                .iter()
                .enumerate()
                .find(|(_, a)| !known.contains(*a))
            {
                return Err(Error::invalid(
                    format!("selector.accounts[{i}]"),
                    format!("{} does not exist", names::account_name(missing)),
                ));
            }
        }
        // One path prefix goes to the database; several are matched here.
        let filter = AccountFilter {
            ou_path: (paths.len() == 1).then(|| paths[0].clone()),
            tiers: s.tiers.clone(),
            region: None,
            tags: s.tags.clone(),
            states: vec![AccountState::Active],
            ids: s.accounts.clone(),
        };
        let mut accounts = self.store.plan_candidates(&filter).await?;
        // Accounts share few OUs: decide once per OU.
        let path = |ou: &str| tree.get(ou).map(|o| o.path.as_str()).unwrap_or_default();
        if paths.len() > 1 {
            let mut inside: HashMap<String, bool> = HashMap::new();
            for a in &accounts {
                if !inside.contains_key(&a.ou) {
                    let yes = paths.iter().any(|p| path(&a.ou).starts_with(p.as_str()));
                    inside.insert(a.ou.clone(), yes);
                }
            }
            accounts.retain(|a| inside.get(&a.ou).copied().unwrap_or(false));
        }
        let mut notes = vec![format!(
            "{} ACTIVE account(s) match the selector",
            accounts.len()
        )];
        if let Some(v) = baseline {
            let mut wanted: HashMap<String, bool> = HashMap::new();
            for a in &accounts {
                if !wanted.contains_key(&a.ou) {
                    let yes = tree
                        .desired_on(path(&a.ou))
                        .is_some_and(|d| d.version.baseline == v.baseline);
                    wanted.insert(a.ou.clone(), yes);
                }
            }
            let before = accounts.len();
            accounts.retain(|a| wanted.get(&a.ou).copied().unwrap_or(false));
            let left_out = before - accounts.len();
            if left_out > 0 {
                notes.push(format!(
                    "{left_out} account(s) left out: their desired baseline is not {}",
                    names::baseline_name(&v.baseline)
                ));
            }
        }
        Ok((accounts, notes))
    }

    /// ACTIVE accounts whose baseline is not in sync, by id.
    pub async fn list_drift(
        &self,
        ou: Option<&str>,
        baseline: Option<&str>,
        states: &[DriftState],
        size: u64,
        token: &str,
    ) -> Result<Page<AccountView>, Error> {
        const CHUNK: u64 = 1000;
        let tree = self.tree().await?;
        let ou_path = match ou {
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
        let filter = AccountFilter {
            ou_path,
            states: vec![AccountState::Active],
            ..AccountFilter::default()
        };
        let wanted = |d: DriftState| {
            if states.is_empty() {
                d != DriftState::InSync
            } else {
                states.contains(&d)
            }
        };
        let mut after = token_id(token)?.map(str::to_owned);
        let mut found = Vec::new();
        loop {
            let chunk = self
                .store
                .list_accounts(&filter, after.as_deref(), Some(CHUNK))
                .await?;
            let done = (chunk.len() as u64) < CHUNK;
            after = chunk.last().map(|a| a.id.clone());
            for account in chunk {
                let view = tree.view(account);
                let of_baseline = baseline.is_none_or(|b| {
                    view.desired
                        .as_ref()
                        .is_some_and(|d| d.version.baseline == b)
                });
                if of_baseline && wanted(view.drift) {
                    found.push(view);
                }
            }
            if done || found.len() as u64 > size {
                break;
            }
        }
        Ok(super::page_by_id(found, size, |v| v.account.id.clone()))
    }
}

/// The account's regions the selector keeps (all without a region filter).
fn selected_regions(regions: &[String], s: &Selector) -> Vec<String> {
    regions
        .iter()
        .filter(|r| s.regions.is_empty() || s.regions.contains(r))
        .cloned()
        .collect()
}
