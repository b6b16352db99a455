//! `conveyor fleet rollout ...`: explainable wave plans and baseline rollouts.

use clap::{Args, Subcommand};
use conveyor_api::common::v1::Tier;
use conveyor_api::fleet::v1 as pb;
use prost_types::Duration as PbDuration;
use serde_json::{Value, json};

use super::{
    Client, Context, duration_text, me, ou_name, parse_duration, parse_tag, parse_tier, resource,
    short_version, version_name,
};
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum RolloutCommand {
    /// Plan a rollout without starting it: the waves, and why.
    Plan(PlanArgs),
    /// Plan and start a baseline rollout.
    Start(StartArgs),
    /// Show a rollout and its progress, or list rollouts newest first.
    Status(StatusArgs),
}

/// Which accounts (and regions) a rollout targets; only active accounts are selected.
#[derive(Args)]
pub struct SelectorArgs {
    /// Accounts in this OU's subtree (repeatable).
    #[arg(long = "ou", value_name = "OU")]
    ous: Vec<String>,
    /// Accounts of this tier (repeatable); without --baseline, plans application targets.
    #[arg(long = "tier", value_name = "TIER", value_parser = parse_tier)]
    tiers: Vec<Tier>,
    /// Only this region of each account (repeatable).
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,
    /// Accounts carrying this KEY=VALUE tag (repeatable; all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// This account (repeatable).
    #[arg(long = "account", value_name = "ACCOUNT")]
    accounts: Vec<String>,
}

/// How targets are grouped into waves; unset flags take the server's defaults.
#[derive(Args)]
pub(super) struct StrategyArgs {
    /// After the canaries, each wave is this many times the previous one [default: 2].
    #[arg(long, conflicts_with = "percent")]
    growth: Option<f64>,
    /// Instead of --growth: cumulative percent done after each wave, e.g. 1,10,50,100.
    #[arg(long, value_delimiter = ',')]
    percent: Vec<f64>,
    /// The largest share of production accounts in one wave, in percent [default: 33].
    #[arg(long)]
    max_production_percent: Option<f64>,
    /// Never two regions of one account in the same wave.
    #[arg(long)]
    one_region_at_a_time: bool,
    /// No single-account canary wave at the start of each tier.
    #[arg(long)]
    skip_canary: bool,
    /// The most targets in one wave [default: no limit].
    #[arg(long)]
    max_wave_size: Option<i32>,
    /// Bake time after each wave, e.g. 30m [default: the pipeline's].
    #[arg(long, value_parser = parse_duration)]
    bake: Option<PbDuration>,
}

#[derive(Args)]
pub struct PlanArgs {
    /// The baseline version to roll out, NAME@VERSION; candidates are the
    /// accounts that should run this baseline.
    #[arg(long)]
    baseline: Option<String>,
    #[command(flatten)]
    selector: SelectorArgs,
    #[command(flatten)]
    strategy: StrategyArgs,
}

#[derive(Args)]
pub struct StartArgs {
    /// The baseline version to roll out, NAME@VERSION.
    #[arg(long)]
    baseline: String,
    #[command(flatten)]
    selector: SelectorArgs,
    #[command(flatten)]
    strategy: StrategyArgs,
    /// The digest of the reviewed plan; the start is refused if the plan changed since.
    #[arg(long)]
    plan_digest: Option<String>,
    /// The rollout's id [default: generated].
    #[arg(long)]
    id: Option<String>,
}

#[derive(Args)]
pub struct StatusArgs {
    /// `r1` or `rollouts/r1` [default: list every rollout].
    name: Option<String>,
}

impl SelectorArgs {
    fn into_pb(self) -> pb::TargetSelector {
        pb::TargetSelector {
            organizational_units: self.ous.iter().map(|o| ou_name(o)).collect(),
            tiers: self.tiers.iter().map(|t| *t as i32).collect(),
            regions: self.regions,
            tags: self.tags.into_iter().collect(),
            accounts: self
                .accounts
                .iter()
                .map(|a| resource("accounts", a))
                .collect(),
        }
    }
}

impl StrategyArgs {
    pub(super) fn into_pb(self) -> pb::RolloutStrategy {
        pb::RolloutStrategy {
            skip_canary: self.skip_canary,
            growth_factor: self.growth.unwrap_or_default(),
            wave_percentages: self.percent,
            max_production_percent: self.max_production_percent.unwrap_or_default(),
            one_region_at_a_time: self.one_region_at_a_time,
            max_wave_size: self.max_wave_size.unwrap_or_default(),
            bake_time: self.bake,
        }
    }
}

pub async fn run(ctx: &Context, mut client: Client, command: RolloutCommand) -> anyhow::Result<()> {
    match command {
        RolloutCommand::Plan(args) => {
            let plan = client
                .plan_rollout(pb::PlanRolloutRequest {
                    baseline_version: args
                        .baseline
                        .as_deref()
                        .map(version_name)
                        .transpose()?
                        .unwrap_or_default(),
                    selector: Some(args.selector.into_pb()),
                    strategy: Some(args.strategy.into_pb()),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match ctx.output {
                OutputFormat::Json => output::print_json(&plan_json(&plan)),
                OutputFormat::Table => print_plan(&plan),
            }
        }
        RolloutCommand::Start(args) => {
            let rollout = client
                .start_rollout(pb::StartRolloutRequest {
                    rollout_id: args.id.unwrap_or_default(),
                    baseline_version: version_name(&args.baseline)?,
                    selector: Some(args.selector.into_pb()),
                    strategy: Some(args.strategy.into_pb()),
                    plan_digest: args.plan_digest.unwrap_or_default(),
                    principal: me(),
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            show(ctx, &rollout);
        }
        RolloutCommand::Status(StatusArgs { name: Some(name) }) => {
            let rollout = client
                .get_rollout(pb::GetRolloutRequest {
                    name: resource("rollouts", &name),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            show(ctx, &rollout);
        }
        RolloutCommand::Status(StatusArgs { name: None }) => {
            let page = client
                .list_rollouts(pb::ListRolloutsRequest::default())
                .await
                .map_err(to_anyhow)?
                .into_inner();
            print_rollouts(ctx, &page.rollouts);
        }
    }
    Ok(())
}

fn state_label(s: i32) -> String {
    pb::RolloutState::try_from(s).map_or_else(
        |_| s.to_string(),
        |s| super::label("ROLLOUT_STATE_", s.as_str_name()),
    )
}

fn wave_json(w: &pb::Wave) -> Value {
    json!({
        "number": w.number,
        "name": w.name,
        "targets": w.targets.iter().map(|t| json!({"account": t.account, "region": t.region})).collect::<Vec<_>>(),
        "explanation": w.explanation,
        "productionAccounts": w.production_accounts,
        "bakeTime": duration_text(&w.bake_time),
    })
}

fn plan_json(p: &pb::RolloutPlan) -> Value {
    let selector = p.selector.clone().unwrap_or_default();
    let strategy = p.strategy.clone().unwrap_or_default();
    json!({
        "baselineVersion": p.baseline_version,
        "selector": {
            "organizationalUnits": selector.organizational_units,
            "tiers": selector.tiers.iter().map(|t| super::tier_label(*t)).collect::<Vec<_>>(),
            "regions": selector.regions,
            "tags": selector.tags,
            "accounts": selector.accounts,
        },
        "strategy": strategy_json(&strategy),
        "waves": p.waves.iter().map(wave_json).collect::<Vec<_>>(),
        "accountCount": p.account_count,
        "targetCount": p.target_count,
        "explanation": p.explanation,
        "activeFreezes": p.active_freezes.iter().map(super::freezes::freeze_json).collect::<Vec<_>>(),
        "planDigest": p.plan_digest,
    })
}

pub(super) fn strategy_json(strategy: &pb::RolloutStrategy) -> Value {
    json!({
        "skipCanary": strategy.skip_canary,
        "growthFactor": strategy.growth_factor,
        "wavePercentages": strategy.wave_percentages,
        "maxProductionPercent": strategy.max_production_percent,
        "oneRegionAtATime": strategy.one_region_at_a_time,
        "maxWaveSize": strategy.max_wave_size,
        "bakeTime": duration_text(&strategy.bake_time),
    })
}

fn print_plan(p: &pb::RolloutPlan) {
    let rows: Vec<Vec<String>> = p
        .waves
        .iter()
        .map(|w| {
            vec![
                w.number.to_string(),
                w.name.clone(),
                w.targets.len().to_string(),
                w.production_accounts.to_string(),
                duration_text(&w.bake_time),
                w.explanation.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "WAVE",
            "NAME",
            "TARGETS",
            "PRODUCTION",
            "BAKE",
            "EXPLANATION",
        ],
        &rows,
    );
    println!(
        "\n{} account(s), {} target(s) in {} wave(s)",
        p.account_count,
        p.target_count,
        p.waves.len()
    );
    if !p.explanation.is_empty() {
        println!("notes:");
        for note in &p.explanation {
            println!("  {note}");
        }
    }
    if !p.active_freezes.is_empty() {
        println!("active freezes:");
        for f in &p.active_freezes {
            println!(
                "  {} until {}: {}",
                f.name,
                output::time(&f.end_time),
                f.reason
            );
        }
    }
    println!("plan digest: {}", p.plan_digest);
}

fn rollout_json(r: &pb::Rollout) -> Value {
    json!({
        "name": r.name,
        "baselineVersion": r.baseline_version,
        "plan": r.plan.as_ref().map(plan_json),
        "state": state_label(r.state),
        "stateReason": r.state_reason,
        "pipeline": r.pipeline,
        "execution": r.execution,
        "currentWave": r.current_wave,
        "revertedAccounts": r.reverted_accounts,
        "createdBy": r.created_by.as_ref().map(|p| p.id.clone()),
        "createTime": output::rfc3339(&r.create_time),
        "startTime": output::rfc3339(&r.start_time),
        "endTime": output::rfc3339(&r.end_time),
    })
}

fn progress(r: &pb::Rollout) -> String {
    let waves = r.plan.as_ref().map_or(0, |p| p.waves.len());
    format!("{}/{waves}", r.current_wave)
}

fn show(ctx: &Context, r: &pb::Rollout) {
    if ctx.output == OutputFormat::Json {
        return output::print_json(&rollout_json(r));
    }
    let rows = vec![
        vec!["name".into(), r.name.clone()],
        vec!["baseline".into(), r.baseline_version.clone()],
        vec!["state".into(), state_label(r.state)],
        vec!["state reason".into(), r.state_reason.clone()],
        vec!["wave".into(), progress(r)],
        vec!["pipeline".into(), r.pipeline.clone()],
        vec!["execution".into(), r.execution.clone()],
        vec!["reverted accounts".into(), r.reverted_accounts.join(",")],
        vec![
            "created by".into(),
            r.created_by
                .as_ref()
                .map(|p| p.id.clone())
                .unwrap_or_default(),
        ],
        vec!["created".into(), output::time(&r.create_time)],
        vec!["started".into(), output::time(&r.start_time)],
        vec!["ended".into(), output::time(&r.end_time)],
    ];
    output::table(&["FIELD", "VALUE"], &rows);
    if let Some(plan) = &r.plan {
        println!();
        print_plan(plan);
    }
}

fn print_rollouts(ctx: &Context, rollouts: &[pb::Rollout]) {
    if ctx.output == OutputFormat::Json {
        return output::print_json(&json!(
            rollouts.iter().map(rollout_json).collect::<Vec<_>>()
        ));
    }
    let rows: Vec<Vec<String>> = rollouts
        .iter()
        .map(|r| {
            vec![
                super::id(&r.name).to_owned(),
                short_version(&r.baseline_version),
                state_label(r.state),
                progress(r),
                r.execution.clone(),
                output::time(&r.create_time),
            ]
        })
        .collect();
    output::table(
        &["NAME", "BASELINE", "STATE", "WAVE", "EXECUTION", "CREATED"],
        &rows,
    );
}
