//! Rows to domain types and back. A row that does not convert is corrupt.

use std::collections::BTreeMap;

use super::StoreError;
use super::entities::{account, baseline, baseline_version, freeze_window, ou, rollout};
use crate::model::{
    Account, AccountState, Applied, Baseline, BaselineContent, BaselineFile, BaselineVersion,
    Check, FreezeWindow, Ou, Override, Plan, Principal, Rollout, RolloutState, Tier,
};
use crate::names::VersionRef;

fn corrupt(what: &str, id: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {id:?}: {detail}"))
}

pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data (strings, maps, numbers) cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    id: &str,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, id, e))
}

fn version(what: &str, id: &str, name: Option<&str>) -> Result<Option<VersionRef>, StoreError> {
    name.map(|n| {
        VersionRef::from_stored(n).ok_or_else(|| corrupt(what, id, format!("bad version {n:?}")))
    })
    .transpose()
}

pub fn ou(m: ou::Model) -> Result<Ou, StoreError> {
    let baseline = version("organizational unit", &m.id, m.baseline_version.as_deref())?;
    let auto_rollout = m
        .auto_rollout
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| {
            corrupt(
                "organizational unit",
                &m.id,
                format!("bad auto_rollout: {e}"),
            )
        })?;
    Ok(Ou {
        id: m.id,
        display_name: m.display_name,
        parent: m.parent,
        path: m.path,
        baseline,
        etag: m.etag,
        create_time: m.create_time,
        update_time: m.update_time,
        auto_rollout,
    })
}

pub fn account(m: account::Model) -> Result<Account, StoreError> {
    let id = m.id.clone();
    let tier = Tier::parse(&m.tier).ok_or_else(|| corrupt("account", &id, "bad tier"))?;
    let state =
        AccountState::parse(&m.state).ok_or_else(|| corrupt("account", &id, "bad state"))?;
    let regions = regions(&id, &m.regions)?;
    let tags: BTreeMap<String, String> = from_json("account", &id, &m.tags)?;
    let applied = match (
        version("account", &id, m.applied_version.as_deref())?,
        m.apply_time,
    ) {
        (Some(version), Some(time)) => Some(Applied {
            version,
            time,
            execution: m.apply_execution,
        }),
        _ => None,
    };
    let check = match (m.check_time, m.check_passed) {
        (Some(time), Some(passed)) => Some(Check {
            time,
            passed,
            detail: m.check_detail,
        }),
        _ => None,
    };
    Ok(Account {
        id: m.id,
        display_name: m.display_name,
        owner: m.owner,
        ou: m.ou,
        ou_path: m.ou_path,
        tier,
        regions,
        tags,
        state,
        state_reason: m.state_reason,
        vending_execution: m.vending_execution,
        vending_pipeline: m.vending_pipeline,
        applied,
        check,
        etag: m.etag,
        create_time: m.create_time,
        update_time: m.update_time,
    })
}

pub fn account_row(a: &Account) -> account::Model {
    account::Model {
        id: a.id.clone(),
        display_name: a.display_name.clone(),
        owner: a.owner.clone(),
        ou: a.ou.clone(),
        ou_path: a.ou_path.clone(),
        tier: a.tier.as_str().to_owned(),
        regions: to_json(&a.regions),
        tags: to_json(&a.tags),
        state: a.state.as_str().to_owned(),
        state_reason: a.state_reason.clone(),
        vending_execution: a.vending_execution.clone(),
        vending_pipeline: a.vending_pipeline.clone(),
        applied_version: a.applied.as_ref().map(|x| x.version.name()),
        apply_time: a.applied.as_ref().map(|x| x.time),
        apply_execution: a
            .applied
            .as_ref()
            .map(|x| x.execution.clone())
            .unwrap_or_default(),
        check_time: a.check.as_ref().map(|c| c.time),
        check_passed: a.check.as_ref().map(|c| c.passed),
        check_detail: a
            .check
            .as_ref()
            .map(|c| c.detail.clone())
            .unwrap_or_default(),
        etag: a.etag.clone(),
        create_time: a.create_time,
        update_time: a.update_time,
    }
}

pub fn baseline(m: baseline::Model) -> Baseline {
    Baseline {
        id: m.id,
        description: m.description,
        latest_version: m.latest_version,
        create_time: m.create_time,
        update_time: m.update_time,
    }
}

/// A version; with `full`, the files' contents come from the bundle.
pub fn baseline_version(
    m: baseline_version::Model,
    full: bool,
) -> Result<BaselineVersion, StoreError> {
    let id = format!("{}/{}", m.baseline, m.version);
    let files: Vec<BaselineFile> = if full {
        crate::bundle::unpack(&m.bundle).map_err(|e| corrupt("baseline version", &id, e))?
    } else {
        from_json("baseline version", &id, &m.manifest)?
    };
    Ok(BaselineVersion {
        version: VersionRef {
            baseline: m.baseline,
            version: m.version,
        },
        content: BaselineContent {
            files,
            apply_command: m.apply_command,
            check_command: m.check_command,
            timeout: std::time::Duration::from_secs(m.timeout_secs.max(0) as u64),
        },
        digest: m.digest,
        size_bytes: m.size_bytes.max(0) as u64,
        author: m.author,
        message: m.message,
        create_time: m.create_time,
    })
}

pub fn freeze_window(m: freeze_window::Model) -> Result<FreezeWindow, StoreError> {
    let created_by: Principal = from_json("freeze window", &m.id, &m.created_by)?;
    let overrides: Vec<Override> = from_json("freeze window", &m.id, &m.overrides)?;
    Ok(FreezeWindow {
        ou: m.ou,
        id: m.id,
        reason: m.reason,
        start_time: m.start_time,
        end_time: m.end_time,
        created_by,
        overrides,
        etag: m.etag,
        create_time: m.create_time,
    })
}

pub fn freeze_window_row(w: &FreezeWindow) -> freeze_window::Model {
    freeze_window::Model {
        id: w.id.clone(),
        ou: w.ou.clone(),
        reason: w.reason.clone(),
        start_time: w.start_time,
        end_time: w.end_time,
        created_by: to_json(&w.created_by),
        overrides: to_json(&w.overrides),
        etag: w.etag.clone(),
        create_time: w.create_time,
    }
}

pub fn rollout(m: rollout::Model) -> Result<Rollout, StoreError> {
    let plan: Plan = from_json("rollout", &m.id, &m.plan)?;
    let reverted_accounts: Vec<String> = from_json("rollout", &m.id, &m.reverted_accounts)?;
    let created_by: Principal = from_json("rollout", &m.id, &m.created_by)?;
    let state =
        RolloutState::parse(&m.state).ok_or_else(|| corrupt("rollout", &m.id, "bad state"))?;
    let baseline_version = VersionRef::from_stored(&m.baseline_version)
        .ok_or_else(|| corrupt("rollout", &m.id, "bad baseline version"))?;
    Ok(Rollout {
        id: m.id,
        baseline_version,
        plan,
        state,
        state_reason: m.state_reason,
        pipeline: m.pipeline,
        execution: m.execution,
        current_wave: m.current_wave.max(0) as u32,
        reverted_accounts,
        created_by,
        create_time: m.create_time,
        start_time: m.start_time,
        end_time: m.end_time,
    })
}

/// The row of a rollout; `seq` is the store's to set.
pub fn rollout_row(r: &Rollout) -> rollout::Model {
    rollout::Model {
        seq: 0,
        id: r.id.clone(),
        baseline: r.baseline_version.baseline.clone(),
        baseline_version: r.baseline_version.name(),
        plan: to_json(&r.plan),
        state: r.state.as_str().to_owned(),
        state_reason: r.state_reason.clone(),
        pipeline: r.pipeline.clone(),
        execution: r.execution.clone(),
        current_wave: r.current_wave as i32,
        reverted_accounts: to_json(&r.reverted_accounts),
        created_by: to_json(&r.created_by),
        create_time: r.create_time,
        start_time: r.start_time,
        end_time: r.end_time,
    }
}

/// An account's stored regions. They are written as a compact JSON array
/// of names that need no escaping (`["eu-west-1","us-east-1"]`), which is
/// read here without a JSON parser; anything else goes through serde_json.
pub fn regions(id: &str, stored: &str) -> Result<Vec<String>, StoreError> {
    let simple = stored
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .filter(|inner| !inner.contains(['\\', ' ']));
    if let Some(inner) = simple {
        if inner.is_empty() {
            return Ok(Vec::new());
        }
        let names: Option<Vec<String>> = inner
            .split(',')
            .map(|quoted| {
                quoted
                    .strip_prefix('"')
                    .and_then(|q| q.strip_suffix('"'))
                    .filter(|name| !name.contains('"'))
                    .map(str::to_owned)
            })
            .collect();
        if let Some(names) = names {
            return Ok(names);
        }
    }
    from_json("account", id, stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_read_fast_and_still_exactly() {
        for stored in [
            r#"[]"#,
            r#"["eu-west-1"]"#,
            r#"["eu-west-1","us-east-1"]"#,
            r#"[ "a" , "b" ]"#,
            r#"["a\"b"]"#,
        ] {
            let slow: Vec<String> = serde_json::from_str(stored).unwrap();
            assert_eq!(regions("x", stored).unwrap(), slow, "{stored}");
        }
        assert!(regions("x", "not json").is_err());
    }
}
