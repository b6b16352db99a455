//! A new execution: its stages and action runs from the pinned spec
//! (one run per target in a rollout), with their gates and start guards.

use chrono::{DateTime, Utc};

use super::*;
use conveyor_definitions::spec::{
    ActionKind, Document, Gates, Thresholds, parse_hhmm, parse_utc_offset, parse_zone,
};

/// What a new execution needs to know about its pipeline's other executions,
/// blockers and alarms before it starts its first stage.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    pub occupied: std::collections::HashMap<i32, String>,
    pub blockers: Vec<Blocker>,
    pub firing: std::collections::HashSet<String>,
    pub last_good: Option<crate::model::LastGood>,
}

/// The stages and actions of a new execution, with the first stage started.
///
/// `build_only` runs only the stages before the first environment stage
/// (commits off the trunk are checked, never deployed); a redeploy skips
/// them (it deploys an earlier execution's artifacts).
pub fn plan(
    doc: &Document,
    execution: Execution,
    context: PlanContext,
    now: DateTime<Utc>,
) -> Snapshot {
    let first_env = doc
        .spec
        .stages
        .iter()
        .position(|s| s.environment.is_some())
        .unwrap_or(doc.spec.stages.len());
    let mut stages = Vec::new();
    let mut actions = Vec::new();
    let redeploy = !execution.redeploy_of.is_empty();
    for (i, stage) in doc.spec.stages.iter().enumerate() {
        let skipped = (execution.build_only && i >= first_env) || (redeploy && i < first_env);
        stages.push(StageRun {
            execution_id: execution.id.clone(),
            index: i as i32,
            name: stage.name.clone(),
            environment: stage.environment.clone().unwrap_or_default(),
            tier: stage
                .environment
                .as_ref()
                .and_then(|env| doc.spec.environments.iter().find(|e| &e.name == env))
                .map(|e| e.tier.as_str().to_owned())
                .unwrap_or_default(),
            state: if skipped {
                StageState::Skipped
            } else {
                StageState::Pending
            },
            state_reason: if skipped && redeploy {
                format!(
                    "redeploys the artifacts of execution {}",
                    execution.redeploy_of
                )
            } else if skipped {
                format!(
                    "branch {:?} is not the trunk; only build stages run",
                    execution.branch
                )
            } else {
                String::new()
            },
            start_time: None,
            end_time: None,
            approval: stage.approval.as_ref().map(|a| ApprovalPolicy {
                groups: a.groups.clone(),
                principals: a.principals.clone(),
                allow_author: a.allow_author,
                min_approvals: a.min_approvals,
                timeout_secs: a.timeout.map(|t| t.get().as_secs()),
            }),
            approvals: Vec::new(),
            guards: stage.deployment.as_ref().map(guards),
            waves: stage
                .deployment
                .iter()
                .flat_map(waves)
                .map(|(plan, _)| plan)
                .collect(),
            current_wave: 0,
            bake_until: None,
            approval_deadline: None,
            dirty: true,
        });
        // A rollout runs the stage's actions once per target, wave by wave;
        // other stages run them once. A fleet rollout's targets are known
        // only when the stage is entered: its runs here are templates (wave
        // -1, skipped), copied per target then (see `fleet::materialize`).
        let placements: Vec<(i32, Option<(String, String)>)> = match &stage.deployment {
            Some(d) if d.from_fleet.is_some() => vec![(fleet::TEMPLATE_WAVE, None)],
            Some(d) if !d.waves.is_empty() => waves(d)
                .into_iter()
                .enumerate()
                .flat_map(|(w, (_, targets))| {
                    targets
                        .into_iter()
                        .map(move |t| (w as i32, Some((t.account, t.region))))
                })
                .collect(),
            _ => vec![(0, None)],
        };
        for (wave, target) in placements {
            for action in &stage.actions {
                let mut env = action.env.clone();
                for (key, value) in &execution.parameters {
                    env.insert(format!("CONVEYOR_PARAM_{key}"), value.clone());
                }
                if let Some((account, region)) = &target {
                    env.insert("CONVEYOR_TARGET_ACCOUNT".to_owned(), account.clone());
                    env.insert("CONVEYOR_TARGET_REGION".to_owned(), region.clone());
                }
                actions.push(ActionRun {
                    id: uuid::Uuid::now_v7().simple().to_string(),
                    execution_id: execution.id.clone(),
                    stage_index: i as i32,
                    name: action.name.clone(),
                    kind: action.kind.as_str().to_owned(),
                    command: action.run.clone(),
                    needs: action.needs.clone(),
                    env,
                    pool: action.pool.clone(),
                    timeout_secs: action.timeout.get().as_secs() as i64,
                    state: if skipped || wave == fleet::TEMPLATE_WAVE {
                        ActionState::Skipped
                    } else {
                        ActionState::Pending
                    },
                    attempt: 0,
                    failures: 0,
                    lost_leases: 0,
                    retries: action.retries as i32,
                    worker: String::new(),
                    lease_expire_time: None,
                    exit_code: None,
                    failure_reason: String::new(),
                    queue_time: None,
                    start_time: None,
                    end_time: None,
                    sarif: action.outputs.sarif.clone(),
                    validate: action.validate.clone(),
                    gate: gate_for(action.kind, &doc.spec.gates),
                    findings: Findings::default(),
                    metrics: Metrics {
                        output: action.outputs.metrics.clone(),
                        ..Metrics::default()
                    },
                    wave,
                    target: target.clone(),
                    rollback: false,
                    outputs: outputs(&action.outputs),
                    dirty: true,
                });
            }
        }
    }
    let mut snapshot = Snapshot {
        execution,
        stages,
        actions,
        transitions: vec![Transition::ExecutionStarted],
        occupied: context.occupied,
        blockers: context.blockers,
        firing: context.firing,
        last_good: context.last_good,
        data_points: None,
    };
    advance(&mut snapshot, now);
    snapshot
}

/// The files an action stores as artifacts (SARIF reports are listed
/// separately: the gates read them).
fn outputs(o: &conveyor_definitions::spec::Outputs) -> Vec<Output> {
    let declared = |paths: &[String], kind| {
        paths
            .iter()
            .map(move |path| Output {
                path: path.clone(),
                kind,
            })
            .collect::<Vec<_>>()
    };
    let mut outputs = declared(&o.artifacts, ArtifactKind::Package);
    outputs.extend(declared(o.sbom.as_slice(), ArtifactKind::Sbom));
    outputs.extend(declared(&o.junit, ArtifactKind::TestReport));
    outputs
}

/// A deployment's waves in order, with their targets. A wave with
/// `oneBox` becomes two: its first target alone, baked for the one-box bake
/// time, then the rest of its targets.
fn waves(
    d: &conveyor_definitions::spec::Deployment,
) -> Vec<(WavePlan, Vec<conveyor_definitions::spec::TargetRef>)> {
    let mut out = Vec::new();
    for w in &d.waves {
        let bake_secs = w.bake_time.unwrap_or(d.bake_time).get().as_secs();
        match &w.one_box {
            Some(one_box) if !w.targets.is_empty() => {
                let one_box_bake = one_box.bake_time.get().as_secs();
                if w.targets.len() == 1 {
                    let plan = WavePlan {
                        name: w.name.clone(),
                        bake_secs: bake_secs.max(one_box_bake),
                    };
                    out.push((plan, w.targets.clone()));
                    continue;
                }
                let first = WavePlan {
                    name: format!("{}/one-box", w.name),
                    bake_secs: one_box_bake,
                };
                out.push((first, w.targets[..1].to_vec()));
                let rest = WavePlan {
                    name: w.name.clone(),
                    bake_secs,
                };
                out.push((rest, w.targets[1..].to_vec()));
            }
            _ => out.push((
                WavePlan {
                    name: w.name.clone(),
                    bake_secs,
                },
                w.targets.clone(),
            )),
        }
    }
    out
}

/// A deployment's start conditions: its alarms and its time windows.
pub(super) fn guards(d: &conveyor_definitions::spec::Deployment) -> Guards {
    use conveyor_definitions::spec::Weekday;
    let windows = d
        .time_windows
        .iter()
        .map(|w| Window {
            days: w
                .days
                .iter()
                .map(|d| match d {
                    Weekday::Mon => 0,
                    Weekday::Tue => 1,
                    Weekday::Wed => 2,
                    Weekday::Thu => 3,
                    Weekday::Fri => 4,
                    Weekday::Sat => 5,
                    Weekday::Sun => 6,
                })
                .collect(),
            start_minute: parse_hhmm(&w.start).unwrap_or(0),
            end_minute: if w.end == "24:00" {
                1440
            } else {
                parse_hhmm(&w.end).unwrap_or(1440)
            },
            offset_minutes: parse_utc_offset(&w.timezone).unwrap_or(0),
            zone: parse_zone(&w.timezone).map(|z| z.name().to_owned()),
            exclude_dates: w.exclude_dates.clone(),
        })
        .collect();
    // One-box alarms are watched with the deployment's own, from the first deploy.
    let alarms: Vec<&conveyor_definitions::spec::Alarm> = d
        .alarms
        .iter()
        .chain(
            d.waves
                .iter()
                .filter_map(|w| w.one_box.as_ref())
                .flat_map(|o| &o.alarms),
        )
        .collect();
    Guards {
        alarms: alarms.iter().map(|a| a.name.clone()).collect(),
        windows,
        auto_rollback: d.auto_rollback,
        max_batch_percent: d.rolling.as_ref().map_or(100, |r| r.max_batch_percent),
        min_healthy_percent: d.rolling.as_ref().map_or(0, |r| r.min_healthy_percent),
        min_data_points: d.min_data_points.as_ref().map(|m| MinDataPoints {
            metric: m.metric.clone(),
            count: m.count,
        }),
        fleet: d.from_fleet.as_ref().map(|f| FleetTargets {
            tier: f.tier.map(|t| t.as_str().to_owned()).unwrap_or_default(),
            organizational_unit: f.organizational_unit.clone().unwrap_or_default(),
            regions: f.regions.clone(),
            tags: f.tags.clone(),
            growth_factor: f.growth_factor,
            bake_secs: d.bake_time.get().as_secs(),
            waiting: None,
            plan_digest: None,
        }),
        probes: alarms
            .iter()
            .filter_map(|a| {
                let p = a.probe.as_ref()?;
                Some(Probe {
                    alarm: a.name.clone(),
                    url: p.url.clone(),
                    interval_secs: p.interval.get().as_secs().max(1),
                    failure_threshold: p.failure_threshold,
                })
            })
            .collect(),
    }
}

/// The gate an action's findings are judged by (DPRA: secrets detection
/// fails on any finding; scanners against the pipeline's thresholds).
pub(super) fn gate_for(kind: ActionKind, gates: &Gates) -> Option<Gate> {
    let thresholds = |t: &Thresholds| Gate::Thresholds {
        critical: t.critical,
        high: t.high,
        medium: t.medium,
        low: t.low,
    };
    match kind {
        ActionKind::SecretsDetection => Some(Gate::AnyFinding),
        ActionKind::Sast => Some(thresholds(&gates.sast)),
        ActionKind::Sca => Some(thresholds(&gates.sca)),
        ActionKind::CodeQuality => gates.code_quality.as_ref().map(thresholds),
        ActionKind::Dast => gates.dast.as_ref().map(thresholds),
        ActionKind::VulnerabilityScan => gates.vulnerability_scan.as_ref().map(thresholds),
        ActionKind::PolicyAsCode => gates.policy_as_code.as_ref().map(thresholds),
        ActionKind::Evaluate => gates.model_quality.as_ref().map(|q| Gate::ModelQuality {
            metric: q.metric.clone(),
            higher_is_better: q.higher_is_better,
            max_regression: q.max_regression,
            worst_allowed: q.worst_allowed,
        }),
        _ => None,
    }
}
