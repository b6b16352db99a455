//! The dynamic-configuration pipeline's rules (DPRA dynamic configuration).

use super::*;

pub(super) fn dynamic_configuration() -> Vec<Rule> {
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
            "build.schema-checks",
            REC,
            "Conveyor: the worker checks the files against their schema itself; checklist 47",
            "the schema-validation action declares `validate`, so every violation is named with its file",
            Check::Custom(declared_schema_checks),
        ),
        rule(
            "build.code-quality",
            REQ,
            "DPRA dynamic-configuration/build: code quality (REQ); checklist 20",
            "the build stage runs code-quality analysis and records its findings as SARIF",
            Check::ActionWithOutput(BUILD, K::CodeQuality, Output::Sarif),
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
            "gamma.production-regions",
            REC,
            "DPRA application/gamma: same regions as prod, applied to configuration (§5.1); checklist 28",
            "gamma spans exactly the production regions",
            Check::Custom(gamma_matches_production_regions),
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
            "pipeline.config-without-redeploy",
            REQ,
            "DPRA dynamic-configuration: configuration changes without redeploying the application; checklist 49",
            "configuration reaches environments through deploy-config actions, never an application deploy",
            Check::Custom(no_application_deploy),
        ),
        first_wave_small_rule(),
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

/// A schema-validation action in build whose `validate` lists schema
/// checks the worker runs itself.
fn declared_schema_checks(ctx: &Context) -> Outcome {
    let actions = ctx.actions(BUILD, K::SchemaValidation);
    match actions.iter().find(|(_, a)| !a.validate.is_empty()) {
        Some((field, _)) => Outcome::pass(format!("{field}.validate")),
        None => Outcome::fail(
            actions
                .first()
                .map(|(field, _)| format!("{field}.validate"))
                .unwrap_or_else(|| ctx.scope_field(BUILD)),
            "list the schema and the files it checks in the action's validate",
        ),
    }
}

/// No stage deploys the application: a configuration version must be
/// deliverable (and rolled back) on its own.
fn no_application_deploy(ctx: &Context) -> Outcome {
    for (i, stage) in ctx.doc.spec.stages.iter().enumerate() {
        if let Some(j) = stage.actions.iter().position(|a| a.kind == K::Deploy) {
            return Outcome::fail(
                format!("spec.stages[{i}].actions[{j}].kind"),
                "deliver configuration with deploy-config; deploying the application belongs to its own pipeline",
            );
        }
    }
    Outcome::pass("spec.stages")
}
