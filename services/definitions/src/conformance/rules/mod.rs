//! The rule sets, one per pipeline type. Ids are stable: clients and the
//! metrics service refer to them.

use super::context::{Context, Scope, scope_name};
use super::{Outcome, Severity};
use crate::spec::{ActionKind, Gates, PipelineType, Tier};

mod account_fleet;
mod application;
mod checks;
mod compute_image;
mod dynamic_configuration;
mod machine_learning;

use account_fleet::account_fleet;
use application::application;
use checks::*;
use compute_image::compute_image;
use dynamic_configuration::dynamic_configuration;
use machine_learning::machine_learning;

use ActionKind as K;
use Severity::{Error as REQ, Warning as REC};

pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// Counts toward security-control automation (DPRA §4.2).
    pub security: bool,
    pub reference: &'static str,
    /// What the rule checks, shown when it passes.
    pub description: &'static str,
    pub check: Check,
}

/// Which declared output an action must have.
#[derive(Debug, Clone, Copy)]
pub enum Output {
    Junit,
    Sarif,
    Artifacts,
    Sbom,
    Metrics,
}

pub enum Check {
    /// An action of this kind in the scope.
    Action(Scope, ActionKind),
    /// An action of this kind in the scope that declares this output.
    ActionWithOutput(Scope, ActionKind, Output),
    /// An action of this kind in the scope that writes SARIF, and a threshold
    /// for it in `spec.gates`, so its findings can fail the run.
    Gated(Scope, ActionKind, fn(&Gates) -> bool, &'static str),
    /// A stage-level property.
    Custom(fn(&Context) -> Outcome),
}

impl Check {
    pub fn evaluate(&self, ctx: &Context) -> Outcome {
        match *self {
            Check::Action(scope, kind) => match ctx.actions(scope, kind).first() {
                Some((field, _)) => Outcome::pass(field.clone()),
                None => Outcome::fail(
                    ctx.scope_field(scope),
                    format!("add a {} action to {}", kind.as_str(), scope_name(scope)),
                ),
            },
            Check::ActionWithOutput(scope, kind, output) => {
                let actions = ctx.actions(scope, kind);
                if actions.is_empty() {
                    return Check::Action(scope, kind).evaluate(ctx);
                }
                let has = |a: &crate::spec::Action| match output {
                    Output::Junit => !a.outputs.junit.is_empty(),
                    Output::Sarif => !a.outputs.sarif.is_empty(),
                    Output::Artifacts => !a.outputs.artifacts.is_empty(),
                    Output::Sbom => a.outputs.sbom.is_some(),
                    Output::Metrics => a.outputs.metrics.is_some(),
                };
                match actions.iter().find(|(_, a)| has(a)) {
                    Some((field, _)) => Outcome::pass(field.clone()),
                    None => Outcome::fail(
                        format!("{}.outputs", actions[0].0),
                        format!(
                            "the {} action must declare {} outputs",
                            kind.as_str(),
                            output_name(output)
                        ),
                    ),
                }
            }
            Check::Gated(scope, kind, gate, gate_field) => {
                let outcome = Check::ActionWithOutput(scope, kind, Output::Sarif).evaluate(ctx);
                if !outcome.passed {
                    return outcome;
                }
                if gate(&ctx.doc.spec.gates) {
                    outcome
                } else {
                    Outcome::fail(
                        format!("spec.gates.{gate_field}"),
                        format!(
                            "set a {gate_field} threshold so {} findings fail the run",
                            kind.as_str()
                        ),
                    )
                }
            }
            Check::Custom(f) => f(ctx),
        }
    }
}

fn output_name(o: Output) -> &'static str {
    match o {
        Output::Junit => "junit",
        Output::Sarif => "sarif",
        Output::Artifacts => "artifacts",
        Output::Sbom => "sbom",
        Output::Metrics => "metrics",
    }
}

const fn rule(
    id: &'static str,
    severity: Severity,
    reference: &'static str,
    description: &'static str,
    check: Check,
) -> Rule {
    Rule {
        id,
        severity,
        security: false,
        reference,
        description,
        check,
    }
}

const fn security(
    id: &'static str,
    severity: Severity,
    reference: &'static str,
    description: &'static str,
    check: Check,
) -> Rule {
    Rule {
        id,
        severity,
        security: true,
        reference,
        description,
        check,
    }
}

/// The Builders' Library's one-box first, a warning wherever it applies.
const fn first_wave_small_rule() -> Rule {
    rule(
        "production.first-wave-small",
        REC,
        "Builders' Library: one-box first; checklist 32-33",
        "the first production wave is a single target or starts with a one-box step",
        Check::Custom(first_wave_small),
    )
}

const BUILD: Scope = Scope::Build;
const BETA: Scope = Scope::Tier(Tier::Beta);
const GAMMA: Scope = Scope::Tier(Tier::Gamma);
const PROD: Scope = Scope::Tier(Tier::Production);
const PRE_PROD: Scope = Scope::PreProduction;

pub fn rules_for(pipeline_type: PipelineType) -> Vec<Rule> {
    let mut rules = common_rules(pipeline_type);
    rules.extend(match pipeline_type {
        PipelineType::Application => application(),
        PipelineType::DynamicConfiguration => dynamic_configuration(),
        PipelineType::ComputeImage => compute_image(),
        PipelineType::AccountFleet => account_fleet(),
        PipelineType::MachineLearning => machine_learning(),
    });
    rules
}

fn common_rules(pipeline_type: PipelineType) -> Vec<Rule> {
    // The compute-image draft allows an optional approval in its test stages.
    let approvals = if pipeline_type == PipelineType::ComputeImage {
        REC
    } else {
        REQ
    };
    vec![
        rule(
            "pipeline.build-once",
            REQ,
            "DPRA consistency; checklist 13",
            "nothing is built or packaged after the build stage",
            Check::Custom(build_once),
        ),
        rule(
            "pipeline.approvals-before-production",
            approvals,
            "DPRA orchestration; checklist 7",
            "approvals sit only on production stages",
            Check::Custom(approvals_only_in_production),
        ),
        rule(
            "pipeline.environment-order",
            REQ,
            "DPRA orchestration; checklist 3",
            "one pipeline deploys to every environment in order: beta, gamma, production",
            Check::Custom(environment_order),
        ),
        security(
            "environments.separate-accounts",
            REQ,
            "DPRA §3.2 separate accounts; checklist 25",
            "each environment has its own account, distinct from the tooling account",
            Check::Custom(separate_accounts),
        ),
        rule(
            "environments.tooling-account",
            REC,
            "DPRA §3.2 separate accounts; checklist 25",
            "the tooling account the pipeline runs in is declared",
            Check::Custom(tooling_account),
        ),
    ]
}
