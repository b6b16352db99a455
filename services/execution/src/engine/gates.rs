//! Judging an action's findings, or its metrics, against its gate.

use super::*;

/// Why findings (or metrics) fail a gate, if they do.
pub fn gate_violation(gate: &Gate, f: &Findings, m: &Metrics) -> Option<String> {
    match gate {
        Gate::AnyFinding if f.total() > 0 => Some(format!(
            "secrets detection found {} secret(s); any finding fails the run",
            f.total()
        )),
        Gate::AnyFinding => None,
        Gate::Thresholds {
            critical,
            high,
            medium,
            low,
        } => {
            let over: Vec<String> = [
                ("critical", f.critical, critical),
                ("high", f.high, high),
                ("medium", f.medium, medium),
                ("low", f.low, low),
            ]
            .into_iter()
            .filter_map(|(name, found, limit)| {
                limit
                    .filter(|limit| found > *limit)
                    .map(|limit| format!("{found} {name} (at most {limit})"))
            })
            .collect();
            (!over.is_empty())
                .then(|| format!("findings over the gate's thresholds: {}", over.join(", ")))
        }
        Gate::ModelQuality {
            metric,
            higher_is_better,
            max_regression,
            worst_allowed,
        } => {
            let Some(&value) = m.values.get(metric) else {
                let reported: Vec<&str> = m.values.keys().map(String::as_str).collect();
                return Some(format!(
                    "model quality: the evaluation reported no {metric:?} (it reported: {})",
                    if reported.is_empty() {
                        "nothing".to_owned()
                    } else {
                        reported.join(", ")
                    }
                ));
            };
            // How much worse `value` is than `than`: positive is worse.
            let worse = |than: f64| {
                if *higher_is_better {
                    than - value
                } else {
                    value - than
                }
            };
            if let Some(baseline) = &m.baseline {
                let regression = worse(baseline.value);
                // A tolerance for the float arithmetic of the comparison itself.
                if regression > max_regression + 1e-9 {
                    return Some(format!(
                        "model quality: {metric} {value} is worse than the production model's {} (execution {}) by {:.4}; at most {max_regression} allowed",
                        baseline.value, baseline.execution_id, regression
                    ));
                }
            }
            worst_allowed
                .filter(|worst| worse(*worst) > 0.0)
                .map(|worst| {
                    format!(
                        "model quality: {metric} {value} is worse than the worst allowed, {worst}"
                    )
                })
        }
    }
}
