//! The wave planner: a pure function from candidate accounts and a strategy
//! to explained waves. Same inputs, same plan.
//!
//! Targets go out tier by tier (sandbox, development, beta, gamma, tooling,
//! production), accounts by id, regions by name. Inside a tier the first
//! wave is a one-account canary (unless skipped), then waves grow by the
//! growth factor (or reach the cumulative percentages), and three caps can
//! end a wave early: the share of production accounts, the wave size, and,
//! with one region at a time, a second region of an account already in it.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::model::{Strategy, Target, Tier, Wave};

/// An account the plan covers, with the regions it deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub account: String,
    pub tier: Tier,
    pub regions: Vec<String>,
}

/// The waves and the plan-level notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Waves {
    pub waves: Vec<Wave>,
    pub notes: Vec<String>,
}

/// What goes out together: one account (all its regions), or one region
/// of one account when regions go one at a time.
struct Unit<'a> {
    account: &'a str,
    targets: Vec<Target>,
}

pub fn plan(mut candidates: Vec<Candidate>, strategy: &Strategy) -> Waves {
    for c in &mut candidates {
        c.regions.sort();
        c.regions.dedup();
    }
    candidates.retain(|c| !c.regions.is_empty());
    candidates.sort_unstable_by(|a, b| {
        (a.tier.plan_rank(), &a.account).cmp(&(b.tier.plan_rank(), &b.account))
    });
    let production = candidates
        .iter()
        .filter(|c| c.tier == Tier::Production)
        .count();
    let production_cap = production_cap(production, strategy.max_production_percent);

    let mut out = Waves {
        waves: Vec::new(),
        notes: Vec::new(),
    };
    if production_cap < production {
        out.notes.push(format!(
            "at most {production_cap} of the {production} production accounts per wave ({}%)",
            strategy.max_production_percent
        ));
    }
    let mut rest = candidates.as_slice();
    while let Some(first) = rest.first() {
        let tier = first.tier;
        let n = rest.iter().take_while(|c| c.tier == tier).count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        let cap = (tier == Tier::Production).then_some(production_cap);
        plan_tier(tier, group, strategy, cap, &mut out);
    }
    out
}

/// At most this many production accounts in one wave.
fn production_cap(production: usize, percent: f64) -> usize {
    if percent >= 100.0 {
        return production;
    }
    ((production as f64 * percent / 100.0).floor() as usize).max(1)
}

fn units(group: &[Candidate], one_region_at_a_time: bool) -> Vec<Unit<'_>> {
    if !one_region_at_a_time {
        return group
            .iter()
            .map(|c| Unit {
                account: c.account.as_str(),
                targets: targets(c, &c.regions),
            })
            .collect();
    }
    // Round r holds every account's r-th region, so each account's regions
    // go out in successive waves.
    let rounds = group.iter().map(|c| c.regions.len()).max().unwrap_or(0);
    (0..rounds)
        .flat_map(|r| {
            group.iter().filter_map(move |c| {
                c.regions.get(r).map(|region| Unit {
                    account: c.account.as_str(),
                    targets: targets(c, std::slice::from_ref(region)),
                })
            })
        })
        .collect()
}

fn targets(c: &Candidate, regions: &[String]) -> Vec<Target> {
    regions
        .iter()
        .map(|r| Target {
            account: c.account.clone(),
            region: r.clone(),
        })
        .collect()
}

/// What ended a wave before it reached its size.
#[derive(Clone, Copy)]
enum Stop {
    ProductionCap(usize),
    MaxWaveSize(u32),
    SameAccount,
}

impl Stop {
    fn describe(self) -> String {
        match self {
            Stop::ProductionCap(cap) => format!("capped at {cap} production accounts"),
            Stop::MaxWaveSize(max) => format!("capped at {max} targets per wave"),
            Stop::SameAccount => {
                "ended before a second region of an account already in the wave".to_owned()
            }
        }
    }
}

fn plan_tier(
    tier: Tier,
    group: &[Candidate],
    strategy: &Strategy,
    production_cap: Option<usize>,
    out: &mut Waves,
) {
    let mut units = units(group, strategy.one_region_at_a_time);
    let total = units.len();
    let unit_word = if strategy.one_region_at_a_time {
        "targets"
    } else {
        "accounts"
    };
    let mut next = 0;
    if !strategy.skip_canary {
        let explanation = format!(
            "canary: one {} account ({}) before the rest of the tier",
            tier.as_str(),
            units[0].account
        );
        out.waves.push(wave(
            format!("canary-{tier}", tier = tier.as_str()),
            &mut units[..1],
            tier,
            strategy,
            explanation,
        ));
        next = 1;
    }
    let mut size = 1.0_f64;
    let mut number = 0;
    while next < total {
        number += 1;
        let (goal, why) = if strategy.wave_percentages.is_empty() {
            size *= strategy.growth_factor;
            let goal = (size.ceil() as usize).max(1);
            (
                goal,
                format!("growth x{}: {goal} {unit_word}", strategy.growth_factor),
            )
        } else {
            match strategy.wave_percentages.get(number - 1) {
                Some(&p) => {
                    let done = ((total as f64 * p / 100.0).ceil() as usize).min(total);
                    let goal = done.saturating_sub(next).max(1);
                    (
                        goal,
                        format!(
                            "{p}% of the {} {unit_word} done after this wave",
                            tier.as_str()
                        ),
                    )
                }
                None => (
                    total - next,
                    format!("the remaining {} {unit_word}", tier.as_str()),
                ),
            }
        };
        // A wave is the next run of units: units[first..next].
        let first = next;
        let mut accounts: HashSet<&str> = HashSet::new();
        let mut target_count = 0usize;
        let mut stop = None;
        while next < total && next - first < goal {
            let unit = &units[next];
            let new_account = !accounts.contains(unit.account);
            if let Some(cap) = production_cap
                && new_account
                && accounts.len() >= cap
            {
                stop = Some(Stop::ProductionCap(cap));
                break;
            }
            if strategy.max_wave_size > 0
                && next > first
                && target_count + unit.targets.len() > strategy.max_wave_size as usize
            {
                stop = Some(Stop::MaxWaveSize(strategy.max_wave_size));
                break;
            }
            if strategy.one_region_at_a_time && !new_account {
                stop = Some(Stop::SameAccount);
                break;
            }
            accounts.insert(unit.account);
            target_count += unit.targets.len();
            next += 1;
        }
        let mut explanation = why;
        if let Some(stop) = stop {
            explanation = format!("{explanation}; {}", stop.describe());
        }
        if strategy.max_wave_size > 0 && target_count > strategy.max_wave_size as usize {
            explanation = format!(
                "{explanation}; account {} has more regions than {} targets per wave and goes out whole",
                units[first].account, strategy.max_wave_size
            );
        }
        out.waves.push(wave(
            format!("{}-{number}", tier.as_str()),
            &mut units[first..next],
            tier,
            strategy,
            explanation,
        ));
    }
}

/// A wave of `units`, whose targets move into it.
fn wave(
    name: String,
    units: &mut [Unit<'_>],
    tier: Tier,
    strategy: &Strategy,
    explanation: String,
) -> Wave {
    let production_accounts = if tier == Tier::Production {
        units
            .iter()
            .map(|u| u.account)
            .collect::<HashSet<_>>()
            .len() as u32
    } else {
        0
    };
    let mut targets = Vec::with_capacity(units.iter().map(|u| u.targets.len()).sum());
    for u in units.iter_mut() {
        targets.append(&mut u.targets);
    }
    Wave {
        name,
        production_accounts,
        targets,
        explanation,
        bake_time: strategy.bake_time,
    }
}

/// sha256 of the canonical plan: what it applies and which targets go in
/// which wave, in order. Explanations are left out: they are for humans.
pub fn digest(baseline_version: Option<&str>, waves: &[Wave]) -> String {
    let mut h = Sha256::new();
    h.update(baseline_version.unwrap_or_default().as_bytes());
    h.update(b"\n");
    for w in waves {
        h.update(format!(
            "wave {} bake {:?}\n",
            w.name,
            w.bake_time.map(|d| d.as_millis())
        ));
        for t in &w.targets {
            h.update(t.account.as_bytes());
            h.update(b"/");
            h.update(t.region.as_bytes());
            h.update(b"\n");
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn fleet(tier: Tier, prefix: &str, n: usize, regions: &[&str]) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                account: format!("{prefix}-{i:03}"),
                tier,
                regions: regions.iter().map(|r| (*r).to_owned()).collect(),
            })
            .collect()
    }

    fn sizes(w: &Waves) -> Vec<(String, usize)> {
        w.waves
            .iter()
            .map(|w| (w.name.clone(), w.targets.len()))
            .collect()
    }

    fn named(list: &[(&str, usize)]) -> Vec<(String, usize)> {
        list.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    #[test]
    fn canary_per_tier_then_growth_with_the_production_cap() {
        let mut candidates = fleet(Tier::Production, "prod", 12, &["eu-west-1"]);
        candidates.extend(fleet(Tier::Gamma, "gamma", 3, &["eu-west-1"]));
        let plan = plan(candidates, &Strategy::default());
        // gamma first; production capped at floor(12 * 33%) = 3 accounts.
        assert_eq!(
            sizes(&plan),
            named(&[
                ("canary-gamma", 1),
                ("gamma-1", 2),
                ("canary-production", 1),
                ("production-1", 2),
                ("production-2", 3),
                ("production-3", 3),
                ("production-4", 3),
            ])
        );
        assert_eq!(plan.waves[2].targets[0].account, "prod-000");
        assert!(
            plan.waves[4]
                .explanation
                .contains("capped at 3 production accounts")
        );
        assert_eq!(plan.waves[4].production_accounts, 3);
        assert_eq!(plan.waves[0].production_accounts, 0);
        assert!(plan.notes[0].contains("at most 3 of the 12"));
        let covered: usize = plan.waves.iter().map(|w| w.targets.len()).sum();
        assert_eq!(covered, 15);
    }

    #[test]
    fn the_same_inputs_give_the_same_plan_whatever_their_order() {
        let a = fleet(Tier::Production, "p", 30, &["us-east-1", "eu-west-1"]);
        let mut b = a.clone();
        b.reverse();
        b[0].regions.reverse();
        let (pa, pb) = (plan(a, &Strategy::default()), plan(b, &Strategy::default()));
        assert_eq!(pa, pb);
        assert_eq!(digest(None, &pa.waves), digest(None, &pb.waves));
        assert_ne!(
            digest(Some("baselines/b/versions/1"), &pa.waves),
            digest(None, &pa.waves)
        );
    }

    #[test]
    fn one_region_at_a_time_never_puts_two_regions_of_an_account_in_a_wave() {
        let strategy = Strategy {
            one_region_at_a_time: true,
            max_production_percent: 100.0,
            growth_factor: 3.0,
            ..Strategy::default()
        };
        let plan = plan(fleet(Tier::Production, "p", 4, &["a", "b", "c"]), &strategy);
        let mut seen = BTreeSet::new();
        for w in &plan.waves {
            let accounts: BTreeSet<_> = w.targets.iter().map(|t| &t.account).collect();
            assert_eq!(
                accounts.len(),
                w.targets.len(),
                "{}: {:?}",
                w.name,
                w.targets
            );
            for t in &w.targets {
                assert!(seen.insert(t.clone()), "{t:?} twice");
            }
        }
        assert_eq!(seen.len(), 12);
        // the canary is one region of one account
        assert_eq!(
            plan.waves[0].targets,
            vec![Target {
                account: "p-000".into(),
                region: "a".into()
            }]
        );
    }

    #[test]
    fn percentages_are_cumulative_and_caps_add_waves() {
        let strategy = Strategy {
            wave_percentages: vec![10.0, 50.0, 100.0],
            max_production_percent: 100.0,
            max_wave_size: 30,
            ..Strategy::default()
        };
        let plan = plan(fleet(Tier::Production, "p", 100, &["r"]), &strategy);
        assert_eq!(
            sizes(&plan),
            named(&[
                ("canary-production", 1),
                ("production-1", 9),
                ("production-2", 30),
                ("production-3", 30),
                ("production-4", 30),
            ])
        );
        assert!(plan.waves[2].explanation.contains("capped at 30 targets"));
    }

    #[test]
    fn skip_canary_and_growth_of_one() {
        let strategy = Strategy {
            skip_canary: true,
            growth_factor: 1.0,
            ..Strategy::default()
        };
        let plan = plan(fleet(Tier::Beta, "b", 3, &["r"]), &strategy);
        assert_eq!(
            sizes(&plan),
            named(&[("beta-1", 1), ("beta-2", 1), ("beta-3", 1)])
        );
    }

    #[test]
    fn accounts_without_selected_regions_are_left_out() {
        let mut c = fleet(Tier::Beta, "b", 2, &["r"]);
        c[0].regions.clear();
        let plan = plan(c, &Strategy::default());
        assert_eq!(sizes(&plan), named(&[("canary-beta", 1)]));
        assert_eq!(plan.waves[0].targets[0].account, "b-001");
    }
}
