//! The compute-image pipeline's rules (DPRA draft: unmarked, see the module docs).

use super::*;

pub(super) fn compute_image() -> Vec<Rule> {
    vec![
        rule(
            "build.build-image",
            REQ,
            "Conveyor: the image is built once, in the build stage (DPRA consistency; the draft bakes it in its test stages)",
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
            REQ,
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
            REQ,
            "DPRA compute-image (draft): build environment in test; its integration tests test the launched environment",
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
