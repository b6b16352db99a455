//! Human tables and JSON output. The table renderer is a few lines of
//! padding, not worth a dependency.

use conveyor_api::common::v1::PipelineType;
use conveyor_api::definitions::v1 as pb;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub fn type_name(t: i32) -> &'static str {
    match PipelineType::try_from(t) {
        Ok(PipelineType::Application) => "application",
        Ok(PipelineType::ComputeImage) => "compute-image",
        Ok(PipelineType::AccountFleet) => "account-fleet",
        Ok(PipelineType::MachineLearning) => "machine-learning",
        Ok(PipelineType::DynamicConfiguration) => "dynamic-configuration",
        _ => "unknown",
    }
}

pub fn time(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub fn rfc3339(t: &Option<prost_types::Timestamp>) -> Value {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

pub fn report_json(r: &pb::ConformanceReport) -> Value {
    json!({
        "score": r.score,
        "securityControlAutomationPercent": r.security_control_automation_percent,
        "requiredFailures": r.required_failures,
        "recommendedFailures": r.recommended_failures,
        "waived": r.waived,
        "rules": r.rules.iter().map(|rule| json!({
            "ruleId": rule.rule_id,
            "severity": if rule.severity == pb::RuleSeverity::Error as i32 { "error" } else { "warning" },
            "passed": rule.passed,
            "message": rule.message,
            "field": rule.field,
            "reference": rule.reference,
            "securityControl": rule.security_control,
            "line": rule.line,
            "column": rule.column,
            "waiver": rule.waiver,
        })).collect::<Vec<_>>(),
    })
}

pub fn revision_json(r: &pb::PipelineRevision) -> Value {
    let mut v = json!({
        "name": r.name,
        "revision": r.revision,
        "specSha256": r.spec_sha256,
        "author": r.author,
        "message": r.message,
        "createTime": rfc3339(&r.create_time),
        "nonConformanceAccepted": r.non_conformance_accepted,
    });
    if let Some(source) = &r.source {
        v["source"] = json!(String::from_utf8_lossy(&source.content));
    }
    if !r.canonical_spec.is_empty() {
        v["canonicalSpec"] = serde_json::from_str(&r.canonical_spec).unwrap_or(Value::Null);
    }
    if let Some(report) = &r.conformance {
        v["conformance"] = report_json(report);
    }
    v
}

pub fn pipeline_json(p: &pb::Pipeline) -> Value {
    json!({
        "name": p.name,
        "project": p.project,
        "type": type_name(p.r#type),
        "labels": p.labels,
        "etag": p.etag,
        "createTime": rfc3339(&p.create_time),
        "updateTime": rfc3339(&p.update_time),
        "revision": p.revision.as_ref().map(revision_json),
    })
}
