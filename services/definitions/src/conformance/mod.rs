//! DPRA conformance: each pipeline type has a rule set derived from the
//! reference architecture (`docs/conformance.md` lists every rule). A rule
//! marked REQ in the DPRA fails as an error, a REC one as a warning. The two
//! draft types (compute image, account fleet) have no markers in the DPRA:
//! Conveyor treats the actions their pages list as the pipeline's backbone
//! (errors) and leaves the ones the pages mark optional (approvals) to
//! warnings; the machine-learning rules are Conveyor's own.

mod context;
mod rules;

use serde::{Deserialize, Serialize};

use crate::spec::{Document, Locations};

pub use context::Context;
pub use rules::{Check, Rule, rules_for};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A DPRA required practice.
    Error,
    /// A DPRA recommended practice.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleResult {
    pub rule_id: String,
    pub severity: Severity,
    pub passed: bool,
    pub message: String,
    pub field: String,
    pub line: u32,
    pub column: u32,
    pub reference: String,
    pub security_control: bool,
    /// Why the rule is waived (`spec.conformance.waivers`), when it failed
    /// and is; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub waiver: String,
}

impl RuleResult {
    /// Failed, and not waived.
    pub fn counts_as_failure(&self) -> bool {
        !self.passed && self.waiver.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub rules: Vec<RuleResult>,
    /// Passed weight over total weight, 0 to 100; errors weigh 3, warnings 1.
    pub score: f64,
    /// Passed required (error) security controls over all of them, 0 to 100.
    pub security_control_automation_percent: f64,
    /// Failed rules of severity error that are not waived.
    pub required_failures: u32,
    /// Failed rules of severity warning that are not waived.
    pub recommended_failures: u32,
    /// Failed rules the spec waives; they still lower the score.
    #[serde(default)]
    pub waived: u32,
}

impl Report {
    /// True when no required rule failed.
    pub fn conforms(&self) -> bool {
        self.required_failures == 0
    }

    /// Failed rules that are not waived.
    pub fn failures(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.counts_as_failure())
    }
}

/// Checks a structurally valid document against its type's rule set.
pub fn check(document: &Document, locations: &Locations) -> Report {
    let ctx = Context::new(document);
    let rules = rules_for(document.spec.pipeline_type);
    let results: Vec<RuleResult> = rules
        .iter()
        .map(|rule| {
            let outcome = rule.check.evaluate(&ctx);
            let located = locations.locate(crate::spec::SpecError::new(outcome.field.clone(), ""));
            RuleResult {
                rule_id: rule.id.to_owned(),
                severity: rule.severity,
                passed: outcome.passed,
                message: if outcome.passed {
                    rule.description.to_owned()
                } else {
                    outcome.message
                },
                field: outcome.field,
                line: located.line,
                column: located.column,
                reference: rule.reference.to_owned(),
                security_control: rule.security,
                waiver: if outcome.passed {
                    String::new()
                } else {
                    document
                        .spec
                        .conformance
                        .waivers
                        .iter()
                        .find(|w| w.rule == rule.id)
                        .map(|w| w.reason.clone())
                        .unwrap_or_default()
                },
            }
        })
        .collect();
    summarize(results)
}

fn summarize(rules: Vec<RuleResult>) -> Report {
    let weight = |r: &RuleResult| match r.severity {
        Severity::Error => 3.0,
        Severity::Warning => 1.0,
    };
    let total: f64 = rules.iter().map(weight).sum();
    let passed: f64 = rules.iter().filter(|r| r.passed).map(weight).sum();
    // DPRA §4.2: required security controls that are present and gating.
    let security: Vec<&RuleResult> = rules
        .iter()
        .filter(|r| r.security_control && r.severity == Severity::Error)
        .collect();
    let security_passed = security.iter().filter(|r| r.passed).count();
    let count = |severity| {
        rules
            .iter()
            .filter(|r| r.counts_as_failure() && r.severity == severity)
            .count() as u32
    };
    Report {
        score: percent(passed, total),
        security_control_automation_percent: percent(security_passed as f64, security.len() as f64),
        required_failures: count(Severity::Error),
        recommended_failures: count(Severity::Warning),
        waived: rules.iter().filter(|r| !r.waiver.is_empty()).count() as u32,
        rules,
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        100.0
    } else {
        (part / whole * 1000.0).round() / 10.0
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub passed: bool,
    pub message: String,
    pub field: String,
}

impl Outcome {
    pub fn pass(field: impl Into<String>) -> Self {
        Outcome {
            passed: true,
            message: String::new(),
            field: field.into(),
        }
    }

    pub fn fail(field: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome {
            passed: false,
            message: message.into(),
            field: field.into(),
        }
    }
}
