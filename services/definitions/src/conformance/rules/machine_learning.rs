//! The machine-learning pipeline's rules (Conveyor's own; the DPRA has none).

use super::*;

pub(super) fn machine_learning() -> Vec<Rule> {
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
            "Conveyor ML: SCA of the model code's dependencies (DPRA: REQ for applications, REC for dynamic configuration)",
            "SCA writes SARIF and gates the run by severity",
            Check::Gated(BUILD, K::Sca, |g| g.sca.is_gating(), "sca"),
        ),
        rule(
            "build.evaluate",
            REQ,
            "Conveyor ML: a model-quality gate against the deployed model",
            "the model is evaluated against the currently deployed one before any deployment",
            Check::Custom(model_quality_gate),
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
            REQ,
            "DPRA beta: integration tests (applied to model serving)",
            "a test stage integration-tests the served model",
            Check::Action(PRE_PROD, K::IntegrationTest),
        ),
        rule(
            "production.deploy",
            REQ,
            "Conveyor ML: production serves the registered model (DPRA: deploy the stored artifact)",
            "production deploys the registered model version",
            Check::Action(PROD, K::Deploy),
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

/// An evaluate action that reports metrics, and a model-quality gate that
/// judges them against the model in production.
fn model_quality_gate(ctx: &Context) -> Outcome {
    let outcome = Check::ActionWithOutput(BUILD, K::Evaluate, Output::Metrics).evaluate(ctx);
    if !outcome.passed || ctx.doc.spec.gates.model_quality.is_some() {
        return outcome;
    }
    Outcome::fail(
        "spec.gates.modelQuality",
        "set spec.gates.modelQuality so a model worse than the deployed one fails the run",
    )
}
