//! Counting a SARIF report's results by severity, so the execution service
//! can judge them against the pipeline's gate thresholds.
//!
//! A result's severity is its own or its rule's `security-severity`
//! property when present, read like CVSS: 9 and up is critical, 7 high,
//! 4 medium, anything above 0 low. Without it the SARIF `level` decides:
//! error is high, warning medium, note low, none info, and an absent level
//! counts as warning (SARIF 2.1.0, section 3.27.10).

use std::collections::HashMap;

use conveyor_api::execution::v1::FindingCounts;
use serde_json::Value;

/// Adds the results of one SARIF document to `counts`.
pub fn count(document: &[u8], counts: &mut FindingCounts) -> Result<(), String> {
    let sarif: Value = serde_json::from_slice(document).map_err(|e| format!("not JSON: {e}"))?;
    let runs = sarif
        .get("runs")
        .and_then(Value::as_array)
        .ok_or("no \"runs\" array")?;
    for run in runs {
        let rule_severity: HashMap<&str, f64> = run
            .pointer("/tool/driver/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|rule| {
                Some((
                    rule.get("id")?.as_str()?,
                    security_severity(rule.get("properties"))?,
                ))
            })
            .collect();
        for result in run
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Suppressed results, and results that are not failures (pass,
            // review, informational...), are not findings.
            let suppressed = result
                .get("suppressions")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let kind = result.get("kind").and_then(Value::as_str).unwrap_or("fail");
            if suppressed || kind != "fail" {
                continue;
            }
            let score = security_severity(result.get("properties")).or_else(|| {
                result
                    .get("ruleId")
                    .and_then(Value::as_str)
                    .and_then(|id| rule_severity.get(id).copied())
            });
            let bucket = match score {
                Some(s) if s >= 9.0 => &mut counts.critical,
                Some(s) if s >= 7.0 => &mut counts.high,
                Some(s) if s >= 4.0 => &mut counts.medium,
                Some(s) if s > 0.0 => &mut counts.low,
                Some(_) => &mut counts.info,
                None => match result
                    .get("level")
                    .and_then(Value::as_str)
                    .unwrap_or("warning")
                {
                    "error" => &mut counts.high,
                    "warning" => &mut counts.medium,
                    "note" => &mut counts.low,
                    _ => &mut counts.info,
                },
            };
            *bucket += 1;
        }
    }
    Ok(())
}

fn security_severity(properties: Option<&Value>) -> Option<f64> {
    match properties?.get("security-severity")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_security_severity_then_level() {
        let doc = br#"{
          "version": "2.1.0",
          "runs": [{
            "tool": {"driver": {"name": "scan", "rules": [
              {"id": "sqli", "properties": {"security-severity": "9.8"}},
              {"id": "xss", "properties": {"security-severity": "7.1"}}
            ]}},
            "results": [
              {"ruleId": "sqli", "level": "error"},
              {"ruleId": "xss"},
              {"ruleId": "weak", "properties": {"security-severity": 4.5}},
              {"ruleId": "style", "level": "note"},
              {"ruleId": "todo", "level": "none"},
              {"ruleId": "other", "level": "error"},
              {"ruleId": "unspecified"},
              {"ruleId": "sqli", "suppressions": [{"kind": "inSource"}]},
              {"ruleId": "sqli", "kind": "pass"}
            ]
          }]
        }"#;
        let mut counts = FindingCounts::default();
        count(doc, &mut counts).expect("valid SARIF");
        assert_eq!(
            (
                counts.critical,
                counts.high,
                counts.medium,
                counts.low,
                counts.info
            ),
            (1, 2, 2, 1, 1)
        );
    }

    #[test]
    fn an_empty_run_has_no_findings() {
        let mut counts = FindingCounts::default();
        count(
            br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[]}]}"#,
            &mut counts,
        )
        .expect("valid");
        assert_eq!(counts, FindingCounts::default());
    }

    #[test]
    fn refuses_what_is_not_sarif() {
        let mut counts = FindingCounts::default();
        assert!(count(b"not json", &mut counts).is_err());
        assert!(count(b"{\"version\":\"2.1.0\"}", &mut counts).is_err());
    }
}
