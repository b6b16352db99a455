//! Conformance rules fail where the DPRA says they should.

use conveyor_definitions::conformance::{self, Report, Severity};
use conveyor_definitions::spec::{self, Format, PipelineType};
use conveyor_definitions::templates;

fn report_for(yaml: &str) -> Report {
    let valid = spec::load(yaml.as_bytes(), Format::Yaml).unwrap_or_else(|e| panic!("{e:?}"));
    conformance::check(&valid.document, &valid.locations)
}

fn application() -> String {
    templates::render(PipelineType::Application, "shop", "retail", Format::Yaml).expect("template")
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn failed(report: &Report) -> Vec<(String, String)> {
    report
        .failures()
        .map(|r| (r.rule_id.clone(), r.field.clone()))
        .collect()
}

#[test]
fn missing_secrets_detection_is_a_required_failure() {
    let yaml = application().replace("kind: secrets-detection", "kind: custom");
    let report = report_for(&yaml);
    assert_eq!(
        failed(&report),
        pairs(&[("build.secrets-detection", "spec.stages[0].actions")])
    );
    assert!(!report.conforms());
    assert!(report.security_control_automation_percent < 100.0);
}

#[test]
fn sast_without_threshold_is_not_gating() {
    let yaml = application().replace(
        "sast: {critical: 0, high: 0}",
        "sast: {critical: null, high: null}",
    );
    let report = report_for(&yaml);
    assert_eq!(failed(&report), pairs(&[("build.sast", "spec.gates.sast")]));
}

#[test]
fn rebuilding_after_build_stage_fails() {
    let yaml = application().replacen("kind: deploy\n", "kind: build\n", 1);
    let report = report_for(&yaml);
    let ids: Vec<_> = failed(&report).into_iter().map(|(id, _)| id).collect();
    assert!(ids.iter().any(|id| id == "pipeline.build-once"), "{ids:?}");
    let r = report
        .rules
        .iter()
        .find(|r| r.rule_id == "pipeline.build-once")
        .expect("rule");
    assert_eq!(r.field, "spec.stages[1].actions[2].kind");
    assert!(r.line > 0, "located in the YAML: {r:?}");
}

#[test]
fn approval_outside_production_fails() {
    let yaml = application().replace(
        "    - name: beta\n      environment: beta\n",
        "    - name: beta\n      environment: beta\n      approval: {groups: [qa]}\n",
    );
    let report = report_for(&yaml);
    assert_eq!(
        failed(&report),
        pairs(&[(
            "pipeline.approvals-before-production",
            "spec.stages[1].approval"
        )])
    );
}

#[test]
fn production_without_approval_fails() {
    let yaml = application().replace(
        "      approval:\n        groups: [release-managers]\n        allowAuthor: false\n",
        "",
    );
    assert_eq!(
        failed(&report_for(&yaml)),
        pairs(&[("production.approval", "spec.stages[3]")])
    );
}

#[test]
fn gamma_must_span_production_regions() {
    let yaml = application().replace(
        "account: \"400000000000\"\n      regions: [us-east-1, eu-west-1]",
        "account: \"400000000000\"\n      regions: [us-east-1, eu-west-1, ap-south-1]",
    );
    let report = report_for(&yaml);
    assert_eq!(
        failed(&report),
        pairs(&[("gamma.production-regions", "spec.environments[1].regions")])
    );
}

#[test]
fn one_wave_to_every_production_target_is_not_progressive() {
    let one_wave = application().replace(
        "              - {account: \"400000000000\", region: us-east-1}\n            bakeTime: 1h\n          - name: rest\n            targets:\n",
        "              - {account: \"400000000000\", region: us-east-1}\n",
    );
    assert_ne!(one_wave, application(), "the template has two prod waves");
    let report = report_for(&one_wave);
    assert_eq!(
        failed(&report),
        pairs(&[
            (
                "production.progressive",
                "spec.stages[3].deployment.waves[0]"
            ),
            (
                "production.first-wave-small",
                "spec.stages[3].deployment.waves[0]"
            ),
        ])
    );
    // A one-box step first, or rolling batches, make the one wave progressive.
    let one_box = one_wave.replace(
        "          - name: one-box\n            targets:\n",
        "          - name: one-box\n            oneBox: {bakeTime: 30m}\n            targets:\n",
    );
    assert!(failed(&report_for(&one_box)).is_empty());
}

#[test]
fn a_waived_rule_is_not_a_failure_but_still_counts_against_the_score() {
    let no_alarms = application().replace(
        "        alarms:\n          - name: prod-errors\n          - name: prod-latency\n",
        "",
    );
    let failing = report_for(&no_alarms);
    assert_eq!(failing.required_failures, 1);
    let waived = report_for(&format!(
        "{no_alarms}  conformance:\n    waivers:\n      - {{rule: production.alarm-rollback, reason: a canary service with no users}}\n      - {{rule: build.sast, reason: passes anyway}}\n"
    ));
    assert_eq!(waived.required_failures, 0, "{:?}", waived.rules);
    assert!(waived.conforms());
    assert_eq!(
        waived.waived, 1,
        "a waiver of a passing rule changes nothing"
    );
    assert_eq!(waived.score, failing.score);
    let rule = waived
        .rules
        .iter()
        .find(|r| r.rule_id == "production.alarm-rollback")
        .expect("rule");
    assert!(!rule.passed);
    assert_eq!(rule.waiver, "a canary service with no users");
    assert!(waived.failures().next().is_none());
    let sast = waived
        .rules
        .iter()
        .find(|r| r.rule_id == "build.sast")
        .expect("rule");
    assert!(sast.passed && sast.waiver.is_empty());
}

#[test]
fn shared_accounts_fail() {
    let yaml = application().replace(
        "toolingAccount: \"100000000000\"",
        "toolingAccount: \"200000000000\"",
    );
    let ids: Vec<_> = failed(&report_for(&yaml))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec!["environments.separate-accounts"]);
}

#[test]
fn production_without_alarms_fails_and_recommendations_warn() {
    let yaml = application()
        .replace(
            "        alarms:\n          - name: prod-errors\n          - name: prod-latency\n",
            "",
        )
        .replace("kind: dast", "kind: custom");
    let report = report_for(&yaml);
    let by_id = |id: &str| report.rules.iter().find(|r| r.rule_id == id).expect("rule");
    assert!(!by_id("production.alarm-rollback").passed);
    assert_eq!(by_id("production.alarm-rollback").severity, Severity::Error);
    assert!(!by_id("gamma.dast").passed);
    assert_eq!(by_id("gamma.dast").severity, Severity::Warning);
    assert_eq!(report.required_failures, 1);
    assert_eq!(report.recommended_failures, 1);
    assert!(
        report.score < 100.0 && report.score > 80.0,
        "{}",
        report.score
    );
}

#[test]
fn stages_out_of_order_fail() {
    // Swap the tiers of the beta and gamma environments.
    let yaml = application()
        .replace("tier: beta", "tier: TIER")
        .replace("tier: gamma", "tier: beta")
        .replace("tier: TIER", "tier: gamma");
    let ids: Vec<_> = failed(&report_for(&yaml))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(
        ids.iter().any(|id| id == "pipeline.environment-order"),
        "{ids:?}"
    );
}

#[test]
fn dynamic_configuration_requires_schema_validation() {
    let yaml = templates::render(
        PipelineType::DynamicConfiguration,
        "flags",
        "retail",
        Format::Yaml,
    )
    .expect("template")
    .replace("kind: schema-validation", "kind: custom");
    assert_eq!(
        failed(&report_for(&yaml)),
        pairs(&[
            ("build.schema-validation", "spec.stages[0].actions"),
            ("build.schema-checks", "spec.stages[0].actions"),
        ])
    );
}

#[test]
fn a_configuration_pipeline_never_deploys_the_application() {
    let template = templates::render(
        PipelineType::DynamicConfiguration,
        "flags",
        "retail",
        Format::Yaml,
    )
    .expect("template");
    let report = report_for(&template);
    assert!(failed(&report).is_empty(), "{:?}", failed(&report));
    // A prod stage that also redeploys the service.
    let yaml = template.replace(
        "        - {name: deploy-config, kind: deploy-config, run: ./ci/deploy-config.sh}\n        - {name: acceptance-tests,",
        "        - {name: deploy-config, kind: deploy-config, run: ./ci/deploy-config.sh}\n        - {name: redeploy, kind: deploy, run: ./ci/deploy-app.sh}\n        - {name: acceptance-tests,",
    );
    assert_ne!(yaml, template);
    let failures = failed(&report_for(&yaml));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "pipeline.config-without-redeploy");
    assert!(
        failures[0].1.ends_with("].kind") && failures[0].1.starts_with("spec.stages["),
        "{failures:?}"
    );
}

#[test]
fn every_rule_of_every_type_has_a_unique_id() {
    for t in PipelineType::ALL {
        let rules = conformance::rules_for(t);
        let mut ids: Vec<_> = rules.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "{t} has duplicate rule ids");
    }
}
