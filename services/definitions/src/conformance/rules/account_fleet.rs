//! The account-fleet pipeline's rules (DPRA draft: unmarked, see the module docs).

use super::*;

pub(super) fn account_fleet() -> Vec<Rule> {
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
            REQ,
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
