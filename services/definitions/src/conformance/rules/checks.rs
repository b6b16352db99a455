//! The stage-level checks that are more than "has an action of this kind".

use std::collections::{BTreeSet, HashMap};

use super::*;

pub(super) fn build_once(ctx: &Context) -> Outcome {
    let first_env = ctx.first_environment_stage();
    for (i, stage) in ctx.doc.spec.stages.iter().enumerate().skip(first_env) {
        for (j, action) in stage.actions.iter().enumerate() {
            if action.kind.builds() {
                return Outcome::fail(
                    format!("spec.stages[{i}].actions[{j}].kind"),
                    format!(
                        "{} action {:?} in stage {:?} would rebuild after the build stage; deploy the stored artifact instead",
                        action.kind.as_str(),
                        action.name,
                        stage.name
                    ),
                );
            }
            if !action.outputs.artifacts.is_empty() {
                return Outcome::fail(
                    format!("spec.stages[{i}].actions[{j}].outputs.artifacts"),
                    format!(
                        "action {:?} declares artifacts after the build stage; only the build stage produces artifacts",
                        action.name
                    ),
                );
            }
        }
    }
    Outcome::pass("spec.stages")
}

pub(super) fn approvals_only_in_production(ctx: &Context) -> Outcome {
    for (i, stage) in ctx.doc.spec.stages.iter().enumerate() {
        if stage.approval.is_some() && ctx.tier(stage) != Some(Tier::Production) {
            return Outcome::fail(
                format!("spec.stages[{i}].approval"),
                format!(
                    "stage {:?} is not a production stage; approvals belong only before production",
                    stage.name
                ),
            );
        }
    }
    Outcome::pass("spec.stages")
}

pub(super) fn tier_rank(t: Tier) -> u8 {
    match t {
        Tier::Sandbox | Tier::Development => 0,
        Tier::Beta => 1,
        Tier::Gamma => 2,
        Tier::Production => 3,
    }
}

pub(super) fn environment_order(ctx: &Context) -> Outcome {
    let first_env = ctx.first_environment_stage();
    let mut highest = 0;
    for (i, stage) in ctx.doc.spec.stages.iter().enumerate() {
        match ctx.tier(stage) {
            None if i > first_env => {
                return Outcome::fail(
                    format!("spec.stages[{i}].environment"),
                    format!(
                        "stage {:?} comes after an environment stage but names no environment",
                        stage.name
                    ),
                );
            }
            None => {}
            Some(t) => {
                let rank = tier_rank(t);
                if rank < highest {
                    return Outcome::fail(
                        format!("spec.stages[{i}].environment"),
                        format!(
                            "stage {:?} deploys to {} after a later tier; order stages beta, gamma, production",
                            stage.name,
                            t.as_str()
                        ),
                    );
                }
                highest = rank;
            }
        }
    }
    Outcome::pass("spec.stages")
}

pub(super) fn separate_accounts(ctx: &Context) -> Outcome {
    let spec = &ctx.doc.spec;
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for (i, env) in spec.environments.iter().enumerate() {
        if spec.tooling_account.as_deref() == Some(env.account.as_str()) {
            return Outcome::fail(
                format!("spec.environments[{i}].account"),
                format!(
                    "environment {:?} uses the tooling account; deploy targets must be separate accounts",
                    env.name
                ),
            );
        }
        if let Some(other) = owners.insert(&env.account, &env.name) {
            return Outcome::fail(
                format!("spec.environments[{i}].account"),
                format!(
                    "environments {other:?} and {:?} share account {:?}; use one account per environment",
                    env.name, env.account
                ),
            );
        }
    }
    Outcome::pass("spec.environments")
}

pub(super) fn tooling_account(ctx: &Context) -> Outcome {
    if ctx.doc.spec.tooling_account.is_some() {
        Outcome::pass("spec.toolingAccount")
    } else {
        Outcome::fail(
            "spec",
            "declare spec.toolingAccount, the account the pipeline runs in",
        )
    }
}

pub(super) fn alarms_watched(ctx: &Context, tier: Tier) -> Outcome {
    let stages = ctx.stages(Scope::Tier(tier));
    let Some(&(first, _)) = stages.first() else {
        return Outcome::fail("spec.stages", format!("add a {} stage", tier.as_str()));
    };
    for (i, stage) in &stages {
        let has_alarms = stage
            .deployment
            .as_ref()
            .is_some_and(|d| !d.alarms.is_empty());
        let has_monitor = stage.actions.iter().any(|a| a.kind == K::Monitor);
        if has_alarms || has_monitor {
            return Outcome::pass(format!("spec.stages[{i}]"));
        }
    }
    Outcome::fail(
        format!("spec.stages[{first}]"),
        format!(
            "give the {} stage deployment.alarms or a monitor action",
            tier.as_str()
        ),
    )
}

pub(super) fn gamma_matches_production_regions(ctx: &Context) -> Outcome {
    let regions = |tier| -> BTreeSet<&str> {
        ctx.stages(Scope::Tier(tier))
            .iter()
            .filter_map(|(_, s)| ctx.environment(s))
            .flat_map(|e| e.regions.iter().map(String::as_str))
            .collect()
    };
    let (gamma, prod) = (regions(Tier::Gamma), regions(Tier::Production));
    if gamma.is_empty() || prod.is_empty() {
        return Outcome::fail(
            "spec.environments",
            "declare gamma and production environments",
        );
    }
    if gamma == prod {
        return Outcome::pass("spec.environments");
    }
    let field = ctx
        .stages(Scope::Tier(Tier::Gamma))
        .first()
        .and_then(|(_, s)| s.environment.as_deref())
        .and_then(|name| {
            ctx.doc
                .spec
                .environments
                .iter()
                .position(|e| e.name == name)
        })
        .map_or("spec.environments".to_owned(), |i| {
            format!("spec.environments[{i}].regions")
        });
    Outcome::fail(
        field,
        format!(
            "gamma regions {:?} differ from production regions {:?}",
            gamma.into_iter().collect::<Vec<_>>(),
            prod.into_iter().collect::<Vec<_>>()
        ),
    )
}

pub(super) fn production_stage_or_fail<'a>(
    ctx: &Context<'a>,
) -> Result<Vec<(usize, &'a crate::spec::Stage)>, Outcome> {
    let prod = ctx.production();
    if prod.is_empty() {
        Err(Outcome::fail("spec.stages", "add a production stage"))
    } else {
        Ok(prod)
    }
}

pub(super) fn production_approval(ctx: &Context) -> Outcome {
    let prod = match production_stage_or_fail(ctx) {
        Ok(p) => p,
        Err(o) => return o,
    };
    match prod.iter().find(|(_, s)| s.approval.is_none()) {
        Some((i, s)) => Outcome::fail(
            format!("spec.stages[{i}]"),
            format!("give production stage {:?} an approval", s.name),
        ),
        None => Outcome::pass(format!("spec.stages[{}].approval", prod[0].0)),
    }
}

pub(super) fn production_waves(ctx: &Context) -> Outcome {
    let prod = match production_stage_or_fail(ctx) {
        Ok(p) => p,
        Err(o) => return o,
    };
    for (i, stage) in &prod {
        let Some(d) = &stage.deployment else {
            return Outcome::fail(
                format!("spec.stages[{i}]"),
                format!(
                    "give production stage {:?} a deployment with waves or fromFleet",
                    stage.name
                ),
            );
        };
        // One wave of several targets deploys everywhere at once, unless a
        // one-box step or rolling batches go first.
        let batched = d
            .rolling
            .as_ref()
            .is_some_and(|r| r.max_batch_percent < 100);
        if let [w] = d.waves.as_slice()
            && d.from_fleet.is_none()
            && w.targets.len() > 1
            && w.one_box.is_none()
            && !batched
        {
            return Outcome::fail(
                format!("spec.stages[{i}].deployment.waves[0]"),
                format!(
                    "wave {:?} deploys all {} production targets at once; split it into waves, or give it a oneBox or rolling batches",
                    w.name,
                    w.targets.len()
                ),
            );
        }
    }
    Outcome::pass(format!("spec.stages[{}].deployment", prod[0].0))
}

pub(super) fn production_bake(ctx: &Context) -> Outcome {
    let prod = match production_stage_or_fail(ctx) {
        Ok(p) => p,
        Err(o) => return o,
    };
    for (i, stage) in &prod {
        let Some(d) = &stage.deployment else {
            return Outcome::fail(
                format!("spec.stages[{i}]"),
                "production has no deployment to bake",
            );
        };
        if d.waves.is_empty() && d.bake_time.get().is_zero() {
            return Outcome::fail(
                format!("spec.stages[{i}].deployment.bakeTime"),
                "set a bake time above zero",
            );
        }
        for (j, w) in d.waves.iter().enumerate() {
            if w.bake_time.unwrap_or(d.bake_time).get().is_zero() {
                return Outcome::fail(
                    format!("spec.stages[{i}].deployment.waves[{j}].bakeTime"),
                    format!("wave {:?} skips its bake", w.name),
                );
            }
            if let Some(one_box) = &w.one_box
                && one_box.bake_time.get().is_zero()
            {
                return Outcome::fail(
                    format!("spec.stages[{i}].deployment.waves[{j}].oneBox.bakeTime"),
                    format!("the one-box step of wave {:?} skips its bake", w.name),
                );
            }
        }
    }
    Outcome::pass(format!("spec.stages[{}].deployment.bakeTime", prod[0].0))
}

pub(super) fn production_rollback(ctx: &Context) -> Outcome {
    let prod = match production_stage_or_fail(ctx) {
        Ok(p) => p,
        Err(o) => return o,
    };
    for (i, stage) in &prod {
        let Some(d) = &stage.deployment else {
            return Outcome::fail(
                format!("spec.stages[{i}]"),
                "production has no deployment to watch",
            );
        };
        if d.alarms.is_empty() {
            return Outcome::fail(
                format!("spec.stages[{i}].deployment.alarms"),
                "bind at least one alarm to the production deployment",
            );
        }
        if !d.auto_rollback {
            return Outcome::fail(
                format!("spec.stages[{i}].deployment.autoRollback"),
                "roll back automatically when an alarm fires",
            );
        }
    }
    Outcome::pass(format!("spec.stages[{}].deployment.alarms", prod[0].0))
}

pub(super) fn first_wave_small(ctx: &Context) -> Outcome {
    let prod = match production_stage_or_fail(ctx) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let (i, stage) = prod[0];
    let Some(d) = &stage.deployment else {
        return Outcome::fail(format!("spec.stages[{i}]"), "production has no deployment");
    };
    if d.from_fleet.is_some() {
        // The fleet service plans a one-target canary wave first.
        return Outcome::pass(format!("spec.stages[{i}].deployment.fromFleet"));
    }
    match d.waves.first() {
        Some(w) if w.targets.len() == 1 || w.one_box.is_some() => {
            Outcome::pass(format!("spec.stages[{i}].deployment.waves[0]"))
        }
        Some(w) => Outcome::fail(
            format!("spec.stages[{i}].deployment.waves[0]"),
            format!(
                "wave {:?} has {} targets; start with one target or a oneBox step",
                w.name,
                w.targets.len()
            ),
        ),
        None => Outcome::fail(format!("spec.stages[{i}].deployment.waves"), "no waves"),
    }
}
