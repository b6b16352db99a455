//! Protobuf messages to domain types (validated, with the field path in
//! errors) and back.

use std::collections::BTreeMap;

use conveyor_api::common::v1 as common;
use conveyor_api::fleet::v1 as pb;
use conveyor_api::time::{duration, from_duration, from_timestamp, timestamp};

use crate::domain::Planned;
use crate::error::Error;
use crate::model::{
    AccountState, AccountView, Baseline, BaselineContent, BaselineFile, BaselineVersion,
    DriftState, FreezeWindow, OuView, Override, Principal, Rollout, RolloutState, Selector,
    Strategy, Target, Tier, Wave,
};
use crate::names::{self, VersionRef};

pub fn tier(value: i32, field: &str) -> Result<Tier, Error> {
    match common::Tier::try_from(value) {
        Ok(common::Tier::Sandbox) => Ok(Tier::Sandbox),
        Ok(common::Tier::Development) => Ok(Tier::Development),
        Ok(common::Tier::Beta) => Ok(Tier::Beta),
        Ok(common::Tier::Gamma) => Ok(Tier::Gamma),
        Ok(common::Tier::Production) => Ok(Tier::Production),
        Ok(common::Tier::Tooling) => Ok(Tier::Tooling),
        Ok(common::Tier::Unspecified) => Err(Error::invalid(field, "give a tier")),
        Err(_) => Err(Error::invalid(field, format!("unknown tier {value}"))),
    }
}

pub fn tiers(values: &[i32], field: &str) -> Result<Vec<Tier>, Error> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| tier(*v, &format!("{field}[{i}]")))
        .collect()
}

pub fn tier_to_pb(t: Tier) -> common::Tier {
    match t {
        Tier::Sandbox => common::Tier::Sandbox,
        Tier::Development => common::Tier::Development,
        Tier::Beta => common::Tier::Beta,
        Tier::Gamma => common::Tier::Gamma,
        Tier::Production => common::Tier::Production,
        Tier::Tooling => common::Tier::Tooling,
    }
}

pub fn account_state(value: i32, field: &str) -> Result<AccountState, Error> {
    use pb::AccountState as P;
    match P::try_from(value) {
        Ok(P::Requested) => Ok(AccountState::Requested),
        Ok(P::Provisioning) => Ok(AccountState::Provisioning),
        Ok(P::Active) => Ok(AccountState::Active),
        Ok(P::Suspended) => Ok(AccountState::Suspended),
        Ok(P::Closed) => Ok(AccountState::Closed),
        Ok(P::ProvisioningFailed) => Ok(AccountState::ProvisioningFailed),
        Ok(P::Unspecified) | Err(_) => Err(Error::invalid(
            field,
            format!("unknown account state {value}"),
        )),
    }
}

fn account_state_to_pb(s: AccountState) -> pb::AccountState {
    use pb::AccountState as P;
    match s {
        AccountState::Requested => P::Requested,
        AccountState::Provisioning => P::Provisioning,
        AccountState::Active => P::Active,
        AccountState::Suspended => P::Suspended,
        AccountState::Closed => P::Closed,
        AccountState::ProvisioningFailed => P::ProvisioningFailed,
    }
}

pub fn drift_state(value: i32, field: &str) -> Result<DriftState, Error> {
    use pb::DriftState as P;
    match P::try_from(value) {
        Ok(P::InSync) => Ok(DriftState::InSync),
        Ok(P::NotApplied) => Ok(DriftState::NotApplied),
        Ok(P::VersionMismatch) => Ok(DriftState::VersionMismatch),
        Ok(P::CheckFailed) => Ok(DriftState::CheckFailed),
        Ok(P::Unspecified) | Err(_) => Err(Error::invalid(
            field,
            format!("unknown drift state {value}"),
        )),
    }
}

fn drift_to_pb(d: DriftState) -> pb::DriftState {
    use pb::DriftState as P;
    match d {
        DriftState::InSync => P::InSync,
        DriftState::NotApplied => P::NotApplied,
        DriftState::VersionMismatch => P::VersionMismatch,
        DriftState::CheckFailed => P::CheckFailed,
    }
}

pub fn principal(p: Option<common::Principal>) -> Principal {
    let p = p.unwrap_or_default();
    Principal {
        id: p.id,
        groups: p.groups,
    }
}

fn principal_to_pb(p: Principal) -> common::Principal {
    common::Principal {
        id: p.id,
        groups: p.groups,
    }
}

pub fn tags(map: std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

/// An OU name in `field`, where empty means the root when `root_if_empty`.
pub fn ou(field: &str, name: &str, root_if_empty: bool) -> Result<String, Error> {
    if root_if_empty {
        names::ou_id_or_root(field, name).map(str::to_owned)
    } else if name.is_empty() {
        Err(Error::invalid(
            field,
            "give an organizationalUnits/{ou} name",
        ))
    } else {
        names::ou_id(field, name).map(str::to_owned)
    }
}

pub fn account(v: AccountView) -> pb::Account {
    let a = v.account;
    pb::Account {
        name: names::account_name(&a.id),
        display_name: a.display_name,
        owner: a.owner,
        organizational_unit: names::ou_name(&a.ou),
        tier: tier_to_pb(a.tier) as i32,
        regions: a.regions,
        tags: a.tags.into_iter().collect(),
        state: account_state_to_pb(a.state) as i32,
        state_reason: a.state_reason,
        vending_execution: a.vending_execution,
        baseline: Some(pb::AccountBaseline {
            desired_version: v
                .desired
                .as_ref()
                .map(|d| d.version.name())
                .unwrap_or_default(),
            desired_from: v
                .desired
                .as_ref()
                .map(|d| names::ou_name(&d.from))
                .unwrap_or_default(),
            applied_version: a
                .applied
                .as_ref()
                .map(|x| x.version.name())
                .unwrap_or_default(),
            apply_time: a.applied.as_ref().map(|x| timestamp(x.time)),
            apply_execution: a
                .applied
                .as_ref()
                .map(|x| x.execution.clone())
                .unwrap_or_default(),
            drift: drift_to_pb(v.drift) as i32,
            check_time: a.check.as_ref().map(|c| timestamp(c.time)),
            check_detail: a
                .check
                .as_ref()
                .filter(|c| !c.passed)
                .map(|c| c.detail.clone())
                .unwrap_or_default(),
        }),
        etag: a.etag,
        create_time: Some(timestamp(a.create_time)),
        update_time: Some(timestamp(a.update_time)),
    }
}

pub fn organizational_unit(v: OuView) -> pb::OrganizationalUnit {
    let ancestors =
        v.ou.ancestors()
            .iter()
            .map(|id| names::ou_name(id))
            .collect();
    pb::OrganizationalUnit {
        name: names::ou_name(&v.ou.id),
        display_name: v.ou.display_name,
        parent: v
            .ou
            .parent
            .as_deref()
            .map(names::ou_name)
            .unwrap_or_default(),
        ancestors,
        baseline_version: v
            .ou
            .baseline
            .as_ref()
            .map(VersionRef::name)
            .unwrap_or_default(),
        effective_baseline_version: v
            .effective
            .as_ref()
            .map(VersionRef::name)
            .unwrap_or_default(),
        child_count: v.child_count as i32,
        account_count: v.account_count as i32,
        etag: v.ou.etag,
        create_time: Some(timestamp(v.ou.create_time)),
        update_time: Some(timestamp(v.ou.update_time)),
        auto_rollout: v.ou.auto_rollout.map(strategy_to_pb),
    }
}

pub fn baseline(b: Baseline) -> pb::Baseline {
    pb::Baseline {
        name: names::baseline_name(&b.id),
        description: b.description,
        latest_version: b.latest_version,
        create_time: Some(timestamp(b.create_time)),
        update_time: Some(timestamp(b.update_time)),
    }
}

pub fn content(c: Option<pb::BaselineContent>) -> Result<BaselineContent, Error> {
    let c = c.ok_or_else(|| Error::invalid("content", "give the files and commands"))?;
    let timeout = match &c.timeout {
        None => std::time::Duration::ZERO,
        Some(d) => from_duration(d)
            .ok_or_else(|| Error::invalid("content.timeout", "must not be negative"))?,
    };
    Ok(BaselineContent {
        files: c
            .files
            .into_iter()
            .map(|f| BaselineFile {
                path: f.path,
                size: f.content.len() as u64,
                content: f.content,
                executable: f.executable,
            })
            .collect(),
        apply_command: c.apply_command,
        check_command: c.check_command,
        timeout,
    })
}

pub fn baseline_version(v: BaselineVersion) -> pb::BaselineVersion {
    let name = v.version.name();
    pb::BaselineVersion {
        artifact: Some(common::ArtifactRef {
            digest: v.digest,
            name: format!("{name}.tar"),
            size_bytes: v.size_bytes as i64,
            commit_sha: String::new(),
            execution: String::new(),
        }),
        name,
        version: v.version.version,
        content: Some(pb::BaselineContent {
            files: v
                .content
                .files
                .into_iter()
                .map(|f| pb::BaselineFile {
                    path: f.path,
                    content: f.content,
                    executable: f.executable,
                })
                .collect(),
            apply_command: v.content.apply_command,
            check_command: v.content.check_command,
            timeout: Some(duration(v.content.timeout)),
        }),
        author: v.author,
        message: v.message,
        create_time: Some(timestamp(v.create_time)),
    }
}

/// Whether a version read returns file contents.
pub fn full_view(view: i32, default_full: bool) -> Result<bool, Error> {
    match pb::BaselineVersionView::try_from(view) {
        Ok(pb::BaselineVersionView::Unspecified) => Ok(default_full),
        Ok(pb::BaselineVersionView::Basic) => Ok(false),
        Ok(pb::BaselineVersionView::Full) => Ok(true),
        Err(_) => Err(Error::invalid("view", format!("unknown view {view}"))),
    }
}

/// A selector in `field`; names become ids.
pub fn selector(s: Option<pb::TargetSelector>, field: &str) -> Result<Selector, Error> {
    let s = s.unwrap_or_default();
    let ous = s
        .organizational_units
        .iter()
        .enumerate()
        .map(|(i, n)| {
            names::ou_id(&format!("{field}.organizational_units[{i}]"), n).map(str::to_owned)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let accounts = s
        .accounts
        .iter()
        .enumerate()
        .map(|(i, n)| names::account_id(&format!("{field}.accounts[{i}]"), n).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, r) in s.regions.iter().enumerate() {
        if !names::is_valid_region(r) {
            return Err(Error::invalid(
                format!("{field}.regions[{i}]"),
                format!("{r:?} is not a region name"),
            ));
        }
    }
    let tags = tags(s.tags);
    crate::domain::check_tags(&format!("{field}.tags"), &tags)?;
    Ok(Selector {
        ous,
        tiers: tiers(&s.tiers, &format!("{field}.tiers"))?,
        regions: s.regions,
        tags,
        accounts,
    })
}

fn selector_to_pb(s: Selector) -> pb::TargetSelector {
    pb::TargetSelector {
        organizational_units: s.ous.iter().map(|o| names::ou_name(o)).collect(),
        tiers: s.tiers.into_iter().map(|t| tier_to_pb(t) as i32).collect(),
        regions: s.regions,
        tags: s.tags.into_iter().collect(),
        accounts: s.accounts.iter().map(|a| names::account_name(a)).collect(),
    }
}

/// A strategy with every default filled in (range checks are the domain's).
pub fn strategy(s: Option<pb::RolloutStrategy>, field: &str) -> Result<Strategy, Error> {
    let s = s.unwrap_or_default();
    let defaults = Strategy::default();
    if s.growth_factor != 0.0 && !s.wave_percentages.is_empty() {
        return Err(Error::invalid(
            format!("{field}.wave_percentages"),
            "give growth_factor or wave_percentages, not both",
        ));
    }
    if s.max_wave_size < 0 {
        return Err(Error::invalid(
            format!("{field}.max_wave_size"),
            "must not be negative",
        ));
    }
    let bake_time =
        match &s.bake_time {
            None => None,
            Some(d) => Some(from_duration(d).ok_or_else(|| {
                Error::invalid(format!("{field}.bake_time"), "must not be negative")
            })?),
        };
    Ok(Strategy {
        skip_canary: s.skip_canary,
        growth_factor: if s.growth_factor == 0.0 {
            defaults.growth_factor
        } else {
            s.growth_factor
        },
        wave_percentages: s.wave_percentages,
        max_production_percent: if s.max_production_percent == 0.0 {
            defaults.max_production_percent
        } else {
            s.max_production_percent
        },
        one_region_at_a_time: s.one_region_at_a_time,
        max_wave_size: s.max_wave_size as u32,
        bake_time: bake_time.filter(|d| !d.is_zero()),
    })
}

fn strategy_to_pb(s: Strategy) -> pb::RolloutStrategy {
    pb::RolloutStrategy {
        skip_canary: s.skip_canary,
        growth_factor: if s.wave_percentages.is_empty() {
            s.growth_factor
        } else {
            0.0
        },
        wave_percentages: s.wave_percentages,
        max_production_percent: s.max_production_percent,
        one_region_at_a_time: s.one_region_at_a_time,
        max_wave_size: s.max_wave_size as i32,
        bake_time: s.bake_time.map(duration),
    }
}

fn target_to_pb(t: Target) -> common::Target {
    common::Target {
        account: t.account,
        region: t.region,
    }
}

pub fn waves(waves: Vec<Wave>) -> Vec<pb::Wave> {
    waves
        .into_iter()
        .enumerate()
        .map(|(i, w)| pb::Wave {
            number: i as i32 + 1,
            name: w.name,
            targets: w.targets.into_iter().map(target_to_pb).collect(),
            explanation: w.explanation,
            production_accounts: w.production_accounts as i32,
            bake_time: w.bake_time.map(duration),
        })
        .collect()
}

pub fn plan(p: Planned) -> pb::RolloutPlan {
    let plan = p.plan;
    pb::RolloutPlan {
        baseline_version: plan.baseline_version.unwrap_or_default(),
        selector: Some(selector_to_pb(plan.selector)),
        strategy: Some(strategy_to_pb(plan.strategy)),
        waves: waves(plan.waves),
        account_count: plan.account_count as i32,
        target_count: plan.target_count as i32,
        explanation: plan.explanation,
        active_freezes: p.active_freezes.into_iter().map(freeze_window).collect(),
        plan_digest: plan.digest,
    }
}

fn override_to_pb(o: Override) -> pb::FreezeOverride {
    pb::FreezeOverride {
        principal: Some(principal_to_pb(o.principal)),
        reason: o.reason,
        pipeline: o.pipeline,
        rollout: o.rollout,
        create_time: Some(timestamp(o.create_time)),
        expire_time: Some(timestamp(o.expire_time)),
    }
}

pub fn freeze_window(w: FreezeWindow) -> pb::FreezeWindow {
    pb::FreezeWindow {
        name: names::freeze_window_name(&w.ou, &w.id),
        reason: w.reason,
        start_time: Some(timestamp(w.start_time)),
        end_time: Some(timestamp(w.end_time)),
        created_by: Some(principal_to_pb(w.created_by)),
        overrides: w.overrides.into_iter().map(override_to_pb).collect(),
        etag: w.etag,
        create_time: Some(timestamp(w.create_time)),
    }
}

/// A required timestamp in `field`.
pub fn time(
    t: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    let t = t.ok_or_else(|| Error::invalid(field, "required"))?;
    from_timestamp(t).ok_or_else(|| Error::invalid(field, "not a valid time"))
}

pub fn rollout_state(value: i32, field: &str) -> Result<RolloutState, Error> {
    use pb::RolloutState as P;
    match P::try_from(value) {
        Ok(P::Pending) => Ok(RolloutState::Pending),
        Ok(P::Held) => Ok(RolloutState::Held),
        Ok(P::Running) => Ok(RolloutState::Running),
        Ok(P::Succeeded) => Ok(RolloutState::Succeeded),
        Ok(P::Reverted) => Ok(RolloutState::Reverted),
        Ok(P::Failed) => Ok(RolloutState::Failed),
        Ok(P::Cancelled) => Ok(RolloutState::Cancelled),
        Ok(P::Unspecified) | Err(_) => Err(Error::invalid(
            field,
            format!("unknown rollout state {value}"),
        )),
    }
}

fn rollout_state_to_pb(s: RolloutState) -> pb::RolloutState {
    use pb::RolloutState as P;
    match s {
        RolloutState::Pending => P::Pending,
        RolloutState::Held => P::Held,
        RolloutState::Running => P::Running,
        RolloutState::Succeeded => P::Succeeded,
        RolloutState::Reverted => P::Reverted,
        RolloutState::Failed => P::Failed,
        RolloutState::Cancelled => P::Cancelled,
    }
}

pub fn rollout(r: Rollout) -> pb::Rollout {
    pb::Rollout {
        name: names::rollout_name(&r.id),
        baseline_version: r.baseline_version.name(),
        plan: Some(plan(Planned {
            plan: r.plan,
            active_freezes: Vec::new(),
        })),
        state: rollout_state_to_pb(r.state) as i32,
        state_reason: r.state_reason,
        pipeline: r.pipeline,
        execution: r.execution,
        current_wave: r.current_wave as i32,
        reverted_accounts: r
            .reverted_accounts
            .iter()
            .map(|a| names::account_name(a))
            .collect(),
        created_by: Some(principal_to_pb(r.created_by)),
        create_time: Some(timestamp(r.create_time)),
        start_time: r.start_time.map(timestamp),
        end_time: r.end_time.map(timestamp),
    }
}
