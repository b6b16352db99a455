//! What the metrics need of a stretch of history, in a form that adds up:
//! a [`Tally`] per UTC day is what the daily rollups store, and a window's
//! metrics are computed from the tallies of its days (and of its partial
//! first and last day, made from the raw records at query time).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::sketch::Sketch;
use super::{BudgetedStage, History, SecurityError, Window, buckets};
use conveyor_api::metrics::v1 as pb;

/// A count and a sum of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mean {
    pub count: i64,
    pub sum_ms: i64,
}

impl Mean {
    pub fn of(values: impl IntoIterator<Item = Duration>) -> Mean {
        values.into_iter().fold(Mean::default(), |m, v| Mean {
            count: m.count + 1,
            sum_ms: m.sum_ms + v.num_milliseconds(),
        })
    }

    pub fn get(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::milliseconds(self.sum_ms / self.count))
    }

    fn merge(&mut self, other: &Mean) {
        self.count += other.count;
        self.sum_ms += other.sum_ms;
    }
}

/// The additive summary of the history of one day (or any stretch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tally {
    /// Production deployments completed (succeeded or rolled back).
    pub completed: i64,
    pub succeeded: i64,
    /// Completed production deployments that were change failures.
    pub change_failures: i64,
    /// Commits carried by the succeeded deployments, and the most by one.
    pub batch_commits: i64,
    pub batch_max: i64,
    /// Commit lead times, credited when their deployment completed.
    pub lead: Sketch,
    pub first_wave_lead: Mean,
    /// Change failures detected: time to restore of those restored.
    pub recoveries: Sketch,
    pub unrecovered: i64,
    /// Mainline streaks that ended.
    pub green: Mean,
    pub red: Mean,
    /// Budgeted stage runs that ended, and those over budget.
    pub budget_runs: i64,
    pub budget_violations: i64,
}

impl Tally {
    /// The tally of `history`; a failure counts as recovered when it was
    /// restored by `cut` (the end of the window asked about).
    pub fn of(history: &History, cut: DateTime<Utc>) -> Tally {
        let succeeded: Vec<i64> = history
            .deployments
            .iter()
            .filter(|d| d.succeeded)
            .map(|d| d.commits)
            .collect();
        let (recovered, unrecovered): (Vec<_>, Vec<_>) = history
            .failures
            .iter()
            .partition(|f| f.restore_time.is_some_and(|r| r <= cut));
        let streaks = |green: bool| {
            Mean::of(
                history
                    .streaks
                    .iter()
                    .filter(|s| s.green == green)
                    .map(|s| s.end_time - s.start_time),
            )
        };
        Tally {
            completed: history.deployments.len() as i64,
            succeeded: succeeded.len() as i64,
            change_failures: history
                .deployments
                .iter()
                .filter(|d| d.change_failure)
                .count() as i64,
            batch_commits: succeeded.iter().sum(),
            batch_max: succeeded.iter().copied().max().unwrap_or(0),
            lead: Sketch::of(history.lead_times.iter().map(|l| l.lead)),
            first_wave_lead: Mean::of(history.lead_times.iter().filter_map(|l| l.first_wave_lead)),
            recoveries: Sketch::of(
                recovered
                    .iter()
                    .filter_map(|f| f.restore_time.map(|r| r - f.detect_time)),
            ),
            unrecovered: unrecovered.len() as i64,
            green: streaks(true),
            red: streaks(false),
            budget_runs: history.budgets.len() as i64,
            budget_violations: history
                .budgets
                .iter()
                .filter(|b| b.duration > b.budget)
                .count() as i64,
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.completed += other.completed;
        self.succeeded += other.succeeded;
        self.change_failures += other.change_failures;
        self.batch_commits += other.batch_commits;
        self.batch_max = self.batch_max.max(other.batch_max);
        self.lead.merge(&other.lead);
        self.first_wave_lead.merge(&other.first_wave_lead);
        self.recoveries.merge(&other.recoveries);
        self.unrecovered += other.unrecovered;
        self.green.merge(&other.green);
        self.red.merge(&other.red);
        self.budget_runs += other.budget_runs;
        self.budget_violations += other.budget_violations;
    }

    pub fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

/// A tally per UTC day of a raw history of `range`; failures restored by
/// `cut` count as recovered.
pub fn daily(range: Window, history: &History, cut: DateTime<Utc>) -> Vec<(Window, Tally)> {
    buckets(range, pb::SeriesGranularity::Daily)
        .into_iter()
        .map(|day| (day, Tally::of(&history.within(day), cut)))
        .collect()
}

/// The most recent budget violations a metrics answer lists.
pub const RECENT_VIOLATIONS: usize = 100;

/// Everything a window's metrics are computed from.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Tallies of the window's days in time order, each with the part of
    /// the window it covers (a whole UTC day, or the window's partial
    /// first or last day).
    pub days: Vec<(Window, Tally)>,
    /// Security errors resolved in the window or open at its end.
    pub security_errors: Vec<SecurityError>,
    /// The window's most recent budget violations, newest first.
    pub violations: Vec<BudgetedStage>,
}

impl Summary {
    /// The summary of a raw history of `window`, a tally per day.
    pub fn from_history(window: Window, history: &History) -> Summary {
        let days = daily(window, history, window.end);
        let mut violations: Vec<BudgetedStage> = history
            .budgets
            .iter()
            .filter(|b| b.duration > b.budget)
            .cloned()
            .collect();
        violations.sort_by_key(|b| std::cmp::Reverse(b.end_time));
        violations.truncate(RECENT_VIOLATIONS);
        Summary {
            days,
            security_errors: history.security_errors.clone(),
            violations,
        }
    }

    /// The tally of the days that start in `bucket`, and when each of
    /// those with a succeeded deployment starts (for the frequency band).
    pub fn within(&self, bucket: Window) -> (Tally, Vec<DateTime<Utc>>) {
        let mut total = Tally::default();
        let mut deploy_days = Vec::new();
        for (day, tally) in self.days.iter().filter(|(d, _)| bucket.contains(d.start)) {
            total.merge(tally);
            if tally.succeeded > 0 {
                deploy_days.push(day.start);
            }
        }
        (total, deploy_days)
    }
}
