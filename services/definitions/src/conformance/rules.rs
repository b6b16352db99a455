//! The rule sets, one per pipeline type. Ids are stable: clients and the
//! metrics service refer to them.

use std::collections::{BTreeSet, HashMap};

use super::context::{Context, Scope, scope_name};
use super::{Outcome, Severity};
use crate::spec::{ActionKind, Gates, PipelineType, Tier};

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

fn application() -> Vec<Rule> {
    vec![
        rule(
            "build.build-code",
            REQ,
            "DPRA application/build: build code (REQ)",
            "the build stage builds the code",
            Check::Action(BUILD, K::Build),
        ),
        rule(
            "build.unit-tests",
            REQ,
            "DPRA application/build: unit tests (REQ)",
            "the build stage runs unit tests and publishes JUnit results",
            Check::ActionWithOutput(BUILD, K::UnitTest, Output::Junit),
        ),
        rule(
            "build.code-quality",
            REQ,
            "DPRA application/build: code quality (REQ)",
            "the build stage runs code-quality analysis",
            Check::Action(BUILD, K::CodeQuality),
        ),
        security(
            "build.secrets-detection",
            REQ,
            "DPRA application/build: secrets detection (REQ)",
            "the build stage scans for secrets; any finding fails the run",
            Check::ActionWithOutput(BUILD, K::SecretsDetection, Output::Sarif),
        ),
        security(
            "build.sast",
            REQ,
            "DPRA application/build: SAST (REQ); checklist 18",
            "SAST writes SARIF and gates the run by severity",
            Check::Gated(BUILD, K::Sast, |g| g.sast.is_gating(), "sast"),
        ),
        security(
            "build.sca",
            REQ,
            "DPRA application/build: SCA (REQ); checklist 19",
            "SCA writes SARIF and gates the run by severity",
            Check::Gated(BUILD, K::Sca, |g| g.sca.is_gating(), "sca"),
        ),
        security(
            "build.sbom",
            REQ,
            "DPRA application/build: SBOM (REQ); checklist 16",
            "the build stage produces an SBOM",
            Check::ActionWithOutput(BUILD, K::Sbom, Output::Sbom),
        ),
        rule(
            "build.package",
            REQ,
            "DPRA application/build: package and store artifact (REQ)",
            "the build stage packages the artifact once",
            Check::ActionWithOutput(BUILD, K::Package, Output::Artifacts),
        ),
        rule(
            "beta.launch-environment",
            REC,
            "DPRA application/beta: launch environment (REC)",
            "beta launches its environment from a compute image through IaC",
            Check::Action(BETA, K::LaunchEnvironment),
        ),
        rule(
            "beta.database-deploy",
            REC,
            "DPRA application/beta: database deploy (REC); checklist 29",
            "beta applies database changes incrementally",
            Check::Action(BETA, K::DatabaseDeploy),
        ),
        rule(
            "beta.deploy",
            REC,
            "DPRA application/beta: deploy software (REC)",
            "beta deploys the stored artifact",
            Check::Action(BETA, K::Deploy),
        ),
        rule(
            "beta.integration-tests",
            REQ,
            "DPRA application/beta: integration tests (REQ)",
            "beta runs integration tests",
            Check::Action(BETA, K::IntegrationTest),
        ),
        rule(
            "beta.acceptance-tests",
            REQ,
            "DPRA application/beta: acceptance tests (REQ)",
            "beta runs acceptance tests",
            Check::Action(BETA, K::AcceptanceTest),
        ),
        rule(
            "gamma.launch-environment",
            REQ,
            "DPRA application/gamma: launch environment (REQ)",
            "gamma launches its environment from a compute image through IaC",
            Check::Action(GAMMA, K::LaunchEnvironment),
        ),
        rule(
            "gamma.database-deploy",
            REC,
            "DPRA application/gamma: database deploy (REC); checklist 29",
            "gamma applies database changes incrementally",
            Check::Action(GAMMA, K::DatabaseDeploy),
        ),
        rule(
            "gamma.deploy",
            REQ,
            "DPRA application/gamma: deploy software (REQ)",
            "gamma deploys the stored artifact",
            Check::Action(GAMMA, K::Deploy),
        ),
        rule(
            "gamma.monitoring",
            REQ,
            "DPRA application/gamma: monitoring and logging (REQ)",
            "gamma watches alarms and fails when one fires",
            Check::Custom(|c| alarms_watched(c, Tier::Gamma)),
        ),
        rule(
            "gamma.synthetic-tests",
            REQ,
            "DPRA application/gamma: synthetic tests (REQ)",
            "gamma runs synthetic traffic",
            Check::Action(GAMMA, K::SyntheticTest),
        ),
        rule(
            "gamma.production-regions",
            REQ,
            "DPRA application/gamma: same regions as prod; checklist 28",
            "gamma spans exactly the production regions",
            Check::Custom(gamma_matches_production_regions),
        ),
        rule(
            "gamma.performance-tests",
            REC,
            "DPRA application/gamma: performance tests (REC)",
            "gamma runs performance tests",
            Check::Action(GAMMA, K::PerformanceTest),
        ),
        rule(
            "gamma.resilience-tests",
            REC,
            "DPRA application/gamma: resilience tests (REC)",
            "gamma runs resilience tests",
            Check::Action(GAMMA, K::ResilienceTest),
        ),
        security(
            "gamma.dast",
            REC,
            "DPRA application/gamma: DAST (REC); checklist 23",
            "gamma runs DAST",
            Check::Action(GAMMA, K::Dast),
        ),
        rule(
            "production.approval",
            REQ,
            "DPRA application/prod: manual approval (REQ); checklist 8",
            "production requires a human approval",
            Check::Custom(production_approval),
        ),
        rule(
            "production.progressive",
            REQ,
            "DPRA application/prod: progressive deployment (REQ); checklist 31",
            "production deploys in waves",
            Check::Custom(production_waves),
        ),
        rule(
            "production.bake-time",
            REQ,
            "DPRA application/prod: bake time (REQ); checklist 36",
            "production waves bake before the next starts",
            Check::Custom(production_bake),
        ),
        rule(
            "production.alarm-rollback",
            REQ,
            "DPRA application/prod: auto-rollback on alarms; checklist 38-39",
            "production watches alarms and rolls back automatically",
            Check::Custom(production_rollback),
        ),
        rule(
            "production.first-wave-small",
            REC,
            "Builders' Library: one-box first; checklist 32-33",
            "the first production wave is a single target or starts with a one-box step",
            Check::Custom(first_wave_small),
        ),
        rule(
            "production.database-deploy",
            REC,
            "DPRA application/prod: database deploy (REC); checklist 29",
            "production applies database changes incrementally",
            Check::Action(PROD, K::DatabaseDeploy),
        ),
        rule(
            "production.synthetic-tests",
            REC,
            "DPRA application/prod: synthetic tests (REC)",
            "production runs synthetic traffic",
            Check::Action(PROD, K::SyntheticTest),
        ),
    ]
}

fn dynamic_configuration() -> Vec<Rule> {
    vec![
        rule(
            "build.build-code",
            REQ,
            "DPRA dynamic-configuration/build: build code (REQ)",
            "the build stage builds the configuration's infrastructure code",
            Check::Action(BUILD, K::Build),
        ),
        rule(
            "build.unit-tests",
            REQ,
            "DPRA dynamic-configuration/build: unit tests (REQ)",
            "the build stage tests the infrastructure code and publishes JUnit results",
            Check::ActionWithOutput(BUILD, K::UnitTest, Output::Junit),
        ),
        rule(
            "build.schema-validation",
            REQ,
            "DPRA dynamic-configuration RI: schema validation; checklist 47",
            "operational configuration is validated against its schema before any deployment",
            Check::Action(BUILD, K::SchemaValidation),
        ),
        rule(
            "build.code-quality",
            REQ,
            "DPRA dynamic-configuration/build: code quality (REQ)",
            "the build stage runs code-quality analysis",
            Check::Action(BUILD, K::CodeQuality),
        ),
        security(
            "build.secrets-detection",
            REQ,
            "DPRA dynamic-configuration/build: secrets detection (REQ)",
            "the build stage scans for secrets; any finding fails the run",
            Check::ActionWithOutput(BUILD, K::SecretsDetection, Output::Sarif),
        ),
        security(
            "build.sast",
            REQ,
            "DPRA dynamic-configuration/build: SAST (REQ)",
            "SAST writes SARIF and gates the run by severity",
            Check::Gated(BUILD, K::Sast, |g| g.sast.is_gating(), "sast"),
        ),
        security(
            "build.sca",
            REC,
            "DPRA dynamic-configuration/build: SCA (REC)",
            "SCA writes SARIF and gates the run by severity",
            Check::Gated(BUILD, K::Sca, |g| g.sca.is_gating(), "sca"),
        ),
        security(
            "build.sbom",
            REC,
            "DPRA dynamic-configuration/build: SBOM (REC)",
            "the build stage produces an SBOM",
            Check::ActionWithOutput(BUILD, K::Sbom, Output::Sbom),
        ),
        rule(
            "build.package",
            REQ,
            "DPRA dynamic-configuration: one immutable configuration version; checklist 46",
            "the build stage packages one configuration version",
            Check::ActionWithOutput(BUILD, K::Package, Output::Artifacts),
        ),
        rule(
            "beta.deploy-config",
            REQ,
            "DPRA dynamic-configuration/beta: deploy flags and configuration (REQ)",
            "beta deploys the configuration version",
            Check::Action(BETA, K::DeployConfig),
        ),
        rule(
            "beta.integration-tests",
            REQ,
            "DPRA dynamic-configuration/beta: integration tests (REQ)",
            "beta runs integration tests",
            Check::Action(BETA, K::IntegrationTest),
        ),
        rule(
            "beta.acceptance-tests",
            REC,
            "DPRA dynamic-configuration/beta: acceptance tests (REC)",
            "beta runs acceptance tests",
            Check::Action(BETA, K::AcceptanceTest),
        ),
        rule(
            "gamma.deploy-config",
            REQ,
            "DPRA dynamic-configuration/gamma: deploy flags and configuration (REQ)",
            "gamma deploys the configuration version",
            Check::Action(GAMMA, K::DeployConfig),
        ),
        rule(
            "gamma.integration-tests",
            REQ,
            "DPRA dynamic-configuration/gamma: integration tests (REQ)",
            "gamma runs integration tests",
            Check::Action(GAMMA, K::IntegrationTest),
        ),
        rule(
            "gamma.acceptance-tests",
            REQ,
            "DPRA dynamic-configuration/gamma: acceptance tests (REQ)",
            "gamma runs acceptance tests",
            Check::Action(GAMMA, K::AcceptanceTest),
        ),
        rule(
            "gamma.monitoring",
            REQ,
            "DPRA dynamic-configuration/gamma: monitoring and logging (REQ)",
            "gamma watches alarms and fails when one fires",
            Check::Custom(|c| alarms_watched(c, Tier::Gamma)),
        ),
        rule(
            "gamma.synthetic-tests",
            REQ,
            "DPRA dynamic-configuration/gamma: synthetic tests (REQ)",
            "gamma runs synthetic traffic",
            Check::Action(GAMMA, K::SyntheticTest),
        ),
        rule(
            "gamma.performance-tests",
            REC,
            "DPRA dynamic-configuration/gamma: performance tests (REC)",
            "gamma runs performance tests",
            Check::Action(GAMMA, K::PerformanceTest),
        ),
        rule(
            "gamma.resilience-tests",
            REC,
            "DPRA dynamic-configuration/gamma: resilience tests (REC)",
            "gamma runs resilience tests",
            Check::Action(GAMMA, K::ResilienceTest),
        ),
        security(
            "gamma.dast",
            REC,
            "DPRA dynamic-configuration/gamma: DAST (REC)",
            "gamma runs DAST",
            Check::Action(GAMMA, K::Dast),
        ),
        rule(
            "production.approval",
            REC,
            "DPRA dynamic-configuration/prod: manual approval (REC)",
            "production requires a human approval",
            Check::Custom(production_approval),
        ),
        rule(
            "production.progressive",
            REQ,
            "DPRA dynamic-configuration/prod: progressive deployment (REQ); checklist 48",
            "production deploys in waves",
            Check::Custom(production_waves),
        ),
        rule(
            "production.bake-time",
            REQ,
            "DPRA dynamic-configuration/prod: bake time (REQ)",
            "production waves bake before the next starts",
            Check::Custom(production_bake),
        ),
        rule(
            "production.alarm-rollback",
            REQ,
            "DPRA dynamic-configuration/prod: monitoring and auto-rollback (REQ)",
            "production watches alarms and rolls back automatically",
            Check::Custom(production_rollback),
        ),
        rule(
            "production.acceptance-tests",
            REQ,
            "DPRA dynamic-configuration/prod: acceptance tests (REQ)",
            "production runs acceptance tests",
            Check::Action(PROD, K::AcceptanceTest),
        ),
        rule(
            "production.synthetic-tests",
            REQ,
            "DPRA dynamic-configuration/prod: synthetic tests (REQ, listed twice)",
            "production runs synthetic traffic",
            Check::Action(PROD, K::SyntheticTest),
        ),
    ]
}

fn compute_image() -> Vec<Rule> {
    vec![
        rule(
            "build.build-image",
            REQ,
            "DPRA compute-image (draft): build environment from IaC",
            "the build stage builds the image",
            Check::Action(BUILD, K::Build),
        ),
        security(
            "build.secrets-detection",
            REQ,
            "DPRA compute-image (draft): secrets detection fails the build",
            "the build stage scans for secrets; any finding fails the run",
            Check::ActionWithOutput(BUILD, K::SecretsDetection, Output::Sarif),
        ),
        security(
            "build.policy-as-code",
            REQ,
            "DPRA compute-image (draft): policy as code; checklist 22",
            "policy-as-code checks write SARIF and gate the run",
            Check::Gated(
                BUILD,
                K::PolicyAsCode,
                |g| g.policy_as_code.as_ref().is_some_and(|t| t.is_gating()),
                "policyAsCode",
            ),
        ),
        security(
            "build.vulnerability-scan",
            REQ,
            "DPRA compute-image (draft): vulnerability assessment",
            "the image is scanned for vulnerabilities and the findings gate the run",
            Check::Gated(
                BUILD,
                K::VulnerabilityScan,
                |g| g.vulnerability_scan.as_ref().is_some_and(|t| t.is_gating()),
                "vulnerabilityScan",
            ),
        ),
        rule(
            "build.iac-unit-tests",
            REC,
            "DPRA compute-image (draft): IaC unit tests",
            "the build stage unit-tests the image's infrastructure code",
            Check::Action(BUILD, K::IacUnitTest),
        ),
        rule(
            "build.package",
            REQ,
            "DPRA compute-image (draft): package and store artifact",
            "the build stage packages the image once",
            Check::ActionWithOutput(BUILD, K::Package, Output::Artifacts),
        ),
        rule(
            "test.launch-environment",
            REC,
            "DPRA compute-image (draft): build environment in test",
            "a test stage launches an environment from the image",
            Check::Action(PRE_PROD, K::LaunchEnvironment),
        ),
        rule(
            "test.integration-tests",
            REQ,
            "DPRA compute-image (draft): integration tests",
            "a test stage integration-tests the launched environment",
            Check::Action(PRE_PROD, K::IntegrationTest),
        ),
        rule(
            "production.publish",
            REQ,
            "DPRA compute-image (draft): publish the image to a registry",
            "production publishes the image by digest",
            Check::Action(PROD, K::Publish),
        ),
    ]
}

fn account_fleet() -> Vec<Rule> {
    vec![
        security(
            "build.policy-as-code",
            REQ,
            "DPRA account-fleet (draft): policy as code; checklist 22",
            "policy-as-code checks write SARIF and gate the run",
            Check::Gated(
                BUILD,
                K::PolicyAsCode,
                |g| g.policy_as_code.as_ref().is_some_and(|t| t.is_gating()),
                "policyAsCode",
            ),
        ),
        security(
            "build.secrets-detection",
            REQ,
            "DPRA account-fleet (draft): secrets detection fails the build",
            "the build stage scans for secrets; any finding fails the run",
            Check::ActionWithOutput(BUILD, K::SecretsDetection, Output::Sarif),
        ),
        rule(
            "build.iac-unit-tests",
            REC,
            "DPRA account-fleet (draft): IaC unit tests",
            "the build stage unit-tests the baseline's infrastructure code",
            Check::Action(BUILD, K::IacUnitTest),
        ),
        rule(
            "build.package",
            REQ,
            "DPRA consistency: the baseline is packaged once",
            "the build stage packages the baseline once",
            Check::ActionWithOutput(BUILD, K::Package, Output::Artifacts),
        ),
        rule(
            "beta.provision",
            REQ,
            "DPRA account-fleet (draft): provision resources in a test account",
            "beta provisions the baseline in a test account",
            Check::Action(BETA, K::Provision),
        ),
        rule(
            "beta.integration-tests",
            REQ,
            "DPRA account-fleet (draft): integration tests",
            "beta integration-tests the provisioned resources",
            Check::Action(BETA, K::IntegrationTest),
        ),
        rule(
            "production.progressive",
            REQ,
            "Conveyor: fleet rollouts move in waves (DPRA §5 waves)",
            "production rolls out in waves",
            Check::Custom(production_waves),
        ),
        rule(
            "production.bake-time",
            REQ,
            "Conveyor: fleet waves bake (DPRA §5 bake time)",
            "production waves bake before the next starts",
            Check::Custom(production_bake),
        ),
        rule(
            "production.alarm-rollback",
            REQ,
            "Conveyor: fleet waves revert on alarm (DPRA §5 rollback)",
            "production watches alarms and rolls back automatically",
            Check::Custom(production_rollback),
        ),
    ]
}

fn machine_learning() -> Vec<Rule> {
    vec![
        rule(
            "build.train",
            REQ,
            "Conveyor ML: train in the build stage (the DPRA has no ML content)",
            "the build stage trains the model once",
            Check::Action(BUILD, K::Train),
        ),
        rule(
            "build.data-validation",
            REQ,
            "Conveyor ML: validate training data",
            "the build stage validates the training data",
            Check::Action(BUILD, K::DataValidation),
        ),
        rule(
            "build.unit-tests",
            REQ,
            "DPRA build: unit tests (applied to ML code)",
            "the build stage runs unit tests and publishes JUnit results",
            Check::ActionWithOutput(BUILD, K::UnitTest, Output::Junit),
        ),
        security(
            "build.secrets-detection",
            REQ,
            "DPRA build: secrets detection (applied to ML code)",
            "the build stage scans for secrets; any finding fails the run",
            Check::ActionWithOutput(BUILD, K::SecretsDetection, Output::Sarif),
        ),
        security(
            "build.sca",
            REC,
            "DPRA build: SCA (applied to ML dependencies)",
            "SCA writes SARIF and gates the run by severity",
            Check::Gated(BUILD, K::Sca, |g| g.sca.is_gating(), "sca"),
        ),
        rule(
            "build.evaluate",
            REQ,
            "Conveyor ML: a model-quality gate against the deployed model",
            "the model is evaluated against the currently deployed one before any deployment",
            Check::Action(BUILD, K::Evaluate),
        ),
        rule(
            "build.package",
            REQ,
            "DPRA consistency: register the model version once",
            "the build stage registers the model version as an artifact",
            Check::ActionWithOutput(BUILD, K::Package, Output::Artifacts),
        ),
        rule(
            "test.integration-tests",
            REC,
            "DPRA beta: integration tests (applied to model serving)",
            "a test stage integration-tests the served model",
            Check::Action(PRE_PROD, K::IntegrationTest),
        ),
        rule(
            "production.approval",
            REC,
            "DPRA prod: manual approval",
            "production requires a human approval",
            Check::Custom(production_approval),
        ),
        rule(
            "production.progressive",
            REQ,
            "DPRA prod: progressive deployment",
            "production deploys in waves",
            Check::Custom(production_waves),
        ),
        rule(
            "production.bake-time",
            REQ,
            "DPRA prod: bake time",
            "production waves bake before the next starts",
            Check::Custom(production_bake),
        ),
        rule(
            "production.alarm-rollback",
            REQ,
            "DPRA prod: auto-rollback on alarms",
            "production watches alarms and rolls back automatically",
            Check::Custom(production_rollback),
        ),
    ]
}

fn build_once(ctx: &Context) -> Outcome {
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

fn approvals_only_in_production(ctx: &Context) -> Outcome {
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

fn tier_rank(t: Tier) -> u8 {
    match t {
        Tier::Sandbox | Tier::Development => 0,
        Tier::Beta => 1,
        Tier::Gamma => 2,
        Tier::Production => 3,
    }
}

fn environment_order(ctx: &Context) -> Outcome {
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

fn separate_accounts(ctx: &Context) -> Outcome {
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

fn tooling_account(ctx: &Context) -> Outcome {
    if ctx.doc.spec.tooling_account.is_some() {
        Outcome::pass("spec.toolingAccount")
    } else {
        Outcome::fail(
            "spec",
            "declare spec.toolingAccount, the account the pipeline runs in",
        )
    }
}

fn alarms_watched(ctx: &Context, tier: Tier) -> Outcome {
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

fn gamma_matches_production_regions(ctx: &Context) -> Outcome {
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

fn production_stage_or_fail<'a>(
    ctx: &Context<'a>,
) -> Result<Vec<(usize, &'a crate::spec::Stage)>, Outcome> {
    let prod = ctx.production();
    if prod.is_empty() {
        Err(Outcome::fail("spec.stages", "add a production stage"))
    } else {
        Ok(prod)
    }
}

fn production_approval(ctx: &Context) -> Outcome {
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

fn production_waves(ctx: &Context) -> Outcome {
    let prod = match production_stage_or_fail(ctx) {
        Ok(p) => p,
        Err(o) => return o,
    };
    for (i, stage) in &prod {
        if stage.deployment.is_none() {
            return Outcome::fail(
                format!("spec.stages[{i}]"),
                format!(
                    "give production stage {:?} a deployment with waves or fromFleet",
                    stage.name
                ),
            );
        }
    }
    Outcome::pass(format!("spec.stages[{}].deployment", prod[0].0))
}

fn production_bake(ctx: &Context) -> Outcome {
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

fn production_rollback(ctx: &Context) -> Outcome {
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

fn first_wave_small(ctx: &Context) -> Outcome {
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
