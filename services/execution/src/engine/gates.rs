//! Judging an action's findings against its gate.

use super::*;

/// Why findings fail a gate, if they do.
pub fn gate_violation(gate: &Gate, f: &Findings) -> Option<String> {
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
    }
}
