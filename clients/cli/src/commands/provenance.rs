//! `conveyor run provenance EXECUTION`: what a deployment is traceable to,
//! from artifact digests to rollbacks, across the upstream pipelines whose
//! artifacts it pinned.

use conveyor_api::common::v1 as common;
use conveyor_api::execution::v1 as pb;
use serde_json::{Value, json};

use super::run::{stage_state, state_name};
use crate::output;

fn artifact_json(a: &common::ArtifactRef) -> Value {
    json!({
        "name": a.name,
        "digest": a.digest,
        "sizeBytes": a.size_bytes,
        "commit": a.commit_sha,
        "execution": a.execution,
    })
}

fn target(t: &common::Target) -> String {
    format!("{}/{}", t.account, t.region)
}

fn decision(a: &pb::Approval) -> &'static str {
    if a.decision == pb::ApprovalDecision::Reject as i32 {
        "rejected"
    } else {
        "approved"
    }
}

fn gate_kind(kind: i32) -> String {
    pb::GateKind::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("GATE_KIND_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn counts(f: Option<pb::FindingCounts>) -> Value {
    let f = f.unwrap_or_default();
    json!({"critical": f.critical, "high": f.high, "medium": f.medium, "low": f.low, "info": f.info})
}

/// Every action run of a stage, stage-level and per target.
fn runs(s: &pb::StageRun) -> impl Iterator<Item = &pb::ActionRun> {
    s.actions
        .iter()
        .chain(s.waves.iter().flat_map(|w| w.actions.iter()))
}

pub fn to_json(p: &pb::Provenance) -> Value {
    let e = p.execution.clone().unwrap_or_default();
    let trigger = e.trigger.clone().unwrap_or_default();
    json!({
        "name": p.name,
        "execution": e.name,
        "state": state_name(e.state),
        "stateReason": e.state_reason,
        "revision": e.revision,
        "specSha256": e.spec_sha256,
        "trigger": {
            "kind": pb::TriggerKind::try_from(trigger.kind).map(|k| k.as_str_name()).unwrap_or_default(),
            "principal": trigger.principal.map(|p| p.id).unwrap_or_default(),
            "upstreamExecution": trigger.upstream_execution,
            "redeployedExecution": trigger.redeployed_execution,
        },
        "commits": e.commits.iter().map(|c| json!({
            "sha": c.sha, "author": c.author, "message": c.message,
            "landTime": output::rfc3339(&c.land_time),
        })).collect::<Vec<_>>(),
        "artifacts": e.artifacts.iter().map(artifact_json).collect::<Vec<_>>(),
        "upstreamArtifacts": e.upstream_artifacts.iter().map(artifact_json).collect::<Vec<_>>(),
        "stages": e.stages.iter().map(|s| json!({
            "stage": s.stage,
            "environment": s.environment,
            "state": stage_state(s.state),
            "approvals": s.approval.iter().flat_map(|g| g.approvals.iter()).map(|a| json!({
                "principal": a.principal.clone().map(|p| p.id).unwrap_or_default(),
                "decision": decision(a),
                "comment": a.comment,
                "time": output::rfc3339(&a.decide_time),
            })).collect::<Vec<_>>(),
            "gates": runs(s).filter_map(|a| a.gate.as_ref().map(|g| json!({
                "action": a.action,
                "kind": gate_kind(g.kind),
                "passed": g.passed,
                "findings": counts(g.findings),
                "thresholds": counts(g.thresholds),
            }))).collect::<Vec<_>>(),
            "waves": s.waves.iter().map(|w| json!({
                "name": w.name,
                "state": pb::WaveState::try_from(w.state).map(|s| s.as_str_name()).unwrap_or_default(),
                "targets": w.targets.iter().map(target).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "rollback": e.rollback.as_ref().map(|r| json!({
            "stage": r.stage,
            "alarm": r.alarm,
            "reason": r.reason,
            "restoredExecution": r.restored_execution,
            "targets": r.targets.iter().map(target).collect::<Vec<_>>(),
        })),
        "upstream": p.upstream.iter().map(to_json).collect::<Vec<_>>(),
    })
}

/// The provenance as indented text, upstream executions nested below.
pub fn print(p: &pb::Provenance, depth: usize) {
    let pad = "  ".repeat(depth);
    let e = p.execution.clone().unwrap_or_default();
    println!("{pad}{}  {}", e.name, state_name(e.state));
    let line = |label: &str, text: String| println!("{pad}  {label:<10} {text}");
    line(
        "revision",
        format!("{} (spec sha256 {})", e.revision, short(&e.spec_sha256)),
    );
    if let Some(t) = &e.trigger
        && !t.upstream_execution.is_empty()
    {
        line("trigger", format!("published by {}", t.upstream_execution));
    }
    if let Some(t) = &e.trigger
        && !t.redeployed_execution.is_empty()
    {
        line("trigger", format!("redeploy of {}", t.redeployed_execution));
    }
    for c in &e.commits {
        line(
            "commit",
            format!(
                "{} {} ({}, landed {})",
                short(&c.sha),
                c.message.lines().next().unwrap_or_default(),
                c.author,
                output::time(&c.land_time)
            ),
        );
    }
    for a in &e.artifacts {
        line(
            "artifact",
            format!("{} {} ({} bytes)", a.name, a.digest, a.size_bytes),
        );
    }
    for a in &e.upstream_artifacts {
        line(
            "upstream",
            format!("{} {} from {}", a.name, a.digest, a.execution),
        );
    }
    for s in &e.stages {
        line("stage", format!("{} {}", s.stage, stage_state(s.state)));
        for a in s.approval.iter().flat_map(|g| g.approvals.iter()) {
            let who = a.principal.clone().map(|p| p.id).unwrap_or_default();
            line(
                "  approval",
                format!(
                    "{} by {who} at {}: {}",
                    decision(a),
                    output::time(&a.decide_time),
                    a.comment
                ),
            );
        }
        for a in runs(s) {
            let Some(g) = &a.gate else { continue };
            let f = g.findings.unwrap_or_default();
            line(
                "  gate",
                format!(
                    "{} ({}) {}: {} critical, {} high, {} medium, {} low",
                    a.action,
                    gate_kind(g.kind),
                    if g.passed { "passed" } else { "failed" },
                    f.critical,
                    f.high,
                    f.medium,
                    f.low
                ),
            );
        }
        for w in &s.waves {
            let targets: Vec<String> = w.targets.iter().map(target).collect();
            let state = pb::WaveState::try_from(w.state)
                .map(|s| s.as_str_name().trim_start_matches("WAVE_STATE_").to_owned())
                .unwrap_or_default();
            line(
                "  wave",
                format!("{} {state}: {}", w.name, targets.join(" ")),
            );
        }
    }
    if let Some(r) = &e.rollback {
        let targets: Vec<String> = r.targets.iter().map(target).collect();
        line(
            "rollback",
            format!(
                "{} in {} to {}: {}",
                r.reason,
                r.stage,
                r.restored_execution,
                targets.join(" ")
            ),
        );
    }
    for u in &p.upstream {
        println!("{pad}  upstream execution:");
        print(u, depth + 2);
    }
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}
