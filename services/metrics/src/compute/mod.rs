//! The metric definitions, as pure functions over records; the API docs in
//! `proto/conveyor/metrics/v1/metrics.proto` state the same definitions.
//! Percentiles are nearest-rank, exact up to [`sketch::EXACT_LIMIT`]
//! values and within 1 % beyond (see [`sketch`]).
//!
//! Metrics are computed from a [`Summary`]: per-day [`Tally`]s, which add
//! up, so daily rollups and raw records of partial days combine.

pub mod sketch;
pub mod tally;

pub use tally::{Mean, Summary, Tally};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use conveyor_api::metrics::v1 as pb;
use conveyor_api::time::timestamp;

/// A production deployment that completed (succeeded or rolled back).
#[derive(Debug, Clone, PartialEq)]
pub struct ProdDeployment {
    pub end_time: DateTime<Utc>,
    pub succeeded: bool,
    pub change_failure: bool,
    pub commits: i64,
}

/// A change failure: when it was detected and when service came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub detect_time: DateTime<Utc>,
    pub restore_time: Option<DateTime<Utc>>,
}

/// One commit's lead time, credited when its deployment completed.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadTime {
    pub deploy_end_time: DateTime<Utc>,
    pub lead: Duration,
    pub first_wave_lead: Option<Duration>,
}

/// A mainline streak that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Streak {
    pub green: bool,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// A stage run with a DPRA duration budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetedStage {
    pub execution: String,
    pub stage: String,
    pub tier: i32,
    pub end_time: DateTime<Utc>,
    pub duration: Duration,
    pub budget: Duration,
}

/// A security error, open or resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityError {
    pub open_time: DateTime<Utc>,
    pub resolve_time: Option<DateTime<Utc>>,
}

/// Everything the DORA and DPRA metrics of one scope and window need.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Completed production deployments ending in the window.
    pub deployments: Vec<ProdDeployment>,
    /// Lead times of commits credited in the window.
    pub lead_times: Vec<LeadTime>,
    /// Change failures detected in the window.
    pub failures: Vec<Failure>,
    /// Streaks that ended in the window.
    pub streaks: Vec<Streak>,
    /// Budgeted stage runs that ended in the window.
    pub budgets: Vec<BudgetedStage>,
    /// Security errors resolved in the window or open at its end.
    pub security_errors: Vec<SecurityError>,
}

/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub fn days(&self) -> f64 {
        (self.end - self.start).num_milliseconds() as f64 / 86_400_000.0
    }

    pub fn to_pb(self) -> pb::TimeWindow {
        pb::TimeWindow {
            start_time: Some(timestamp(self.start)),
            end_time: Some(timestamp(self.end)),
        }
    }
}

/// The nearest-rank percentile `p` (0..=100) of sorted values.
pub fn percentile(sorted: &[Duration], p: u32) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p as f64 / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

pub fn pb_duration(d: Duration) -> prost_types::Duration {
    let d = d.max(Duration::zero());
    prost_types::Duration {
        seconds: d.num_seconds(),
        nanos: d.subsec_nanos(),
    }
}

/// The buckets of a series: `[start, next start)` clipped to the window,
/// aligned to UTC midnight (Monday for weeks).
pub fn buckets(window: Window, granularity: pb::SeriesGranularity) -> Vec<Window> {
    let step = match granularity {
        pb::SeriesGranularity::Unspecified => return Vec::new(),
        pb::SeriesGranularity::Daily => Duration::days(1),
        pb::SeriesGranularity::Weekly => Duration::weeks(1),
    };
    let day = window.start.date_naive();
    let first = match granularity {
        pb::SeriesGranularity::Weekly => {
            day - Duration::days(day.weekday().num_days_from_monday() as i64)
        }
        _ => day,
    };
    let mut start = Utc.from_utc_datetime(&first.and_time(chrono::NaiveTime::MIN));
    let mut out = Vec::new();
    while start < window.end {
        let end = start + step;
        out.push(Window {
            start: start.max(window.start),
            end: end.min(window.end),
        });
        start = end;
    }
    out
}

/// DORA's deployment-frequency band: a deployment on more than half the
/// window's days is DAILY; else in more than half its weeks WEEKLY; else
/// in more than half its months (or at all, under two months) MONTHLY.
pub fn band(window: Window, deployment_times: &[DateTime<Utc>]) -> pb::DeploymentFrequencyBand {
    if deployment_times.is_empty() {
        return pb::DeploymentFrequencyBand::Unspecified;
    }
    let share = |key: &dyn Fn(DateTime<Utc>) -> (i32, u32), periods: f64| {
        let distinct: std::collections::HashSet<(i32, u32)> =
            deployment_times.iter().map(|t| key(*t)).collect();
        distinct.len() as f64 / periods.max(1.0)
    };
    let days = window.days().ceil();
    if share(&|t| (t.year(), t.ordinal()), days) > 0.5 {
        return pb::DeploymentFrequencyBand::Daily;
    }
    let weeks = (window.days() / 7.0).ceil();
    if share(&|t| (t.iso_week().year(), t.iso_week().week()), weeks) > 0.5 {
        return pb::DeploymentFrequencyBand::Weekly;
    }
    let months = months_spanned(window);
    if window.days() < 60.0 || share(&|t| (t.year(), t.month()), months as f64) > 0.5 {
        return pb::DeploymentFrequencyBand::Monthly;
    }
    pb::DeploymentFrequencyBand::Yearly
}

fn months_spanned(window: Window) -> i64 {
    let month = |d: NaiveDate| d.year() as i64 * 12 + d.month0() as i64;
    month((window.end - Duration::nanoseconds(1)).date_naive()) - month(window.start.date_naive())
        + 1
}

/// DORA's four keys over the window's summary.
pub fn dora(
    window: Window,
    summary: &Summary,
    granularity: pb::SeriesGranularity,
) -> pb::DoraMetrics {
    let mut metrics = dora_totals(window, summary);
    metrics.series = buckets(window, granularity)
        .into_iter()
        .map(|bucket| {
            let totals = dora_totals(bucket, summary);
            pb::DoraPoint {
                start_time: Some(timestamp(bucket.start)),
                deployments: totals.deployment_frequency.map_or(0, |f| f.deployments),
                lead_time_median: totals.lead_time_for_changes.and_then(|l| l.median),
                change_failure_rate: totals.change_failure_rate.map_or(0.0, |c| c.rate),
                recovery_time_median: totals
                    .failed_deployment_recovery_time
                    .and_then(|r| r.median),
            }
        })
        .collect();
    metrics
}

fn per_day(count: i64, window: Window) -> f64 {
    count as f64 / window.days().max(f64::MIN_POSITIVE)
}

fn dora_totals(window: Window, summary: &Summary) -> pb::DoraMetrics {
    let (t, deploy_days) = summary.within(window);
    pb::DoraMetrics {
        window: Some(window.to_pb()),
        deployment_frequency: Some(pb::DeploymentFrequency {
            deployments: t.succeeded,
            per_day: per_day(t.succeeded, window),
            band: band(window, &deploy_days) as i32,
        }),
        lead_time_for_changes: Some(pb::LeadTimeForChanges {
            median: t.lead.percentile(50).map(pb_duration),
            p90: t.lead.percentile(90).map(pb_duration),
            commits: t.lead.count,
        }),
        change_failure_rate: Some(pb::ChangeFailureRate {
            failed_deployments: t.change_failures,
            deployments: t.completed,
            rate: if t.completed == 0 {
                0.0
            } else {
                t.change_failures as f64 / t.completed as f64
            },
        }),
        failed_deployment_recovery_time: Some(pb::RecoveryTime {
            median: t.recoveries.percentile(50).map(pb_duration),
            mean: t.recoveries.mean().map(pb_duration),
            recoveries: t.recoveries.count,
            unrecovered: t.unrecovered,
        }),
        ..Default::default()
    }
}

/// The DPRA's metrics over the window's summary; `security_percent` comes
/// from the scope's pipelines' conformance reports.
pub fn dpra(
    window: Window,
    summary: &Summary,
    security_percent: f64,
    granularity: pb::SeriesGranularity,
) -> pb::DpraMetrics {
    let mut metrics = dpra_totals(window, summary);
    metrics.security_control_automation_percent = security_percent;
    metrics.series = buckets(window, granularity)
        .into_iter()
        .map(|bucket| {
            let totals = dpra_totals(bucket, summary);
            let mainline = totals.mainline.unwrap_or_default();
            pb::DpraPoint {
                start_time: Some(timestamp(bucket.start)),
                lead_time_mean: totals.lead_time_mean,
                deployments: totals.deployments,
                mtbf: mainline.mtbf,
                mttr: mainline.mttr,
                batch_size_mean: totals.batch_size.map_or(0.0, |b| b.mean),
                budget_violations: totals.stage_budgets.map_or(0, |b| b.violations),
            }
        })
        .collect();
    metrics
}

fn dpra_totals(window: Window, summary: &Summary) -> pb::DpraMetrics {
    let (t, _) = summary.within(window);
    let errors = &summary.security_errors;
    let resolved = Mean::of(errors.iter().filter_map(|e| {
        e.resolve_time
            .filter(|r| window.contains(*r))
            .map(|r| r - e.open_time)
    }));
    let open = errors
        .iter()
        .filter(|e| e.open_time < window.end && e.resolve_time.is_none_or(|r| r >= window.end))
        .count() as i64;
    pb::DpraMetrics {
        window: Some(window.to_pb()),
        lead_time_mean: t.lead.mean().map(pb_duration),
        lead_time_first_wave_mean: t.first_wave_lead.get().map(pb_duration),
        lead_time_commits: t.lead.count,
        deployments: t.succeeded,
        deployments_per_day: per_day(t.succeeded, window),
        mainline: Some(pb::MainlineStats {
            mtbf: t.green.get().map(pb_duration),
            green_streaks: t.green.count,
            mttr: t.red.get().map(pb_duration),
            red_streaks: t.red.count,
        }),
        security_errors: Some(pb::SecurityErrorStats {
            mean_time_to_resolve: resolved.get().map(pb_duration),
            resolved: resolved.count,
            open,
        }),
        batch_size: Some(pb::BatchSizeStats {
            mean: if t.succeeded == 0 {
                0.0
            } else {
                t.batch_commits as f64 / t.succeeded as f64
            },
            max: t.batch_max,
            deployments: t.succeeded,
        }),
        stage_budgets: Some(pb::StageBudgetStats {
            stage_runs: t.budget_runs,
            violations: t.budget_violations,
            recent_violations: summary
                .violations
                .iter()
                .filter(|b| window.contains(b.end_time))
                .map(|b| pb::StageBudgetViolation {
                    execution: b.execution.clone(),
                    stage: b.stage.clone(),
                    tier: b.tier,
                    duration: Some(pb_duration(b.duration)),
                    budget: Some(pb_duration(b.budget)),
                    end_time: Some(timestamp(b.end_time)),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

impl History {
    /// The part of the history that falls in `bucket`.
    pub fn within(&self, bucket: Window) -> History {
        History {
            deployments: self
                .deployments
                .iter()
                .filter(|d| bucket.contains(d.end_time))
                .cloned()
                .collect(),
            lead_times: self
                .lead_times
                .iter()
                .filter(|l| bucket.contains(l.deploy_end_time))
                .cloned()
                .collect(),
            failures: self
                .failures
                .iter()
                .filter(|f| bucket.contains(f.detect_time))
                .cloned()
                .collect(),
            streaks: self
                .streaks
                .iter()
                .filter(|s| bucket.contains(s.end_time))
                .cloned()
                .collect(),
            budgets: self
                .budgets
                .iter()
                .filter(|b| bucket.contains(b.end_time))
                .cloned()
                .collect(),
            security_errors: self
                .security_errors
                .iter()
                .filter(|e| {
                    e.resolve_time.is_some_and(|r| bucket.contains(r))
                        || (e.open_time < bucket.end
                            && e.resolve_time.is_none_or(|r| r >= bucket.end))
                })
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    fn mins(m: i64) -> Duration {
        Duration::minutes(m)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=10).map(mins).collect();
        assert_eq!(percentile(&v, 50), Some(mins(5)));
        assert_eq!(percentile(&v, 90), Some(mins(9)));
        assert_eq!(percentile(&[mins(7)], 90), Some(mins(7)));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(
            Mean::of([mins(1), mins(2)]).get(),
            Some(Duration::seconds(90))
        );
    }

    #[test]
    fn bands_follow_the_share_of_days_weeks_and_months() {
        let window = Window {
            start: t(1, 0),
            end: t(29, 0),
        };
        let daily: Vec<_> = (1..=20).map(|d| t(d, 12)).collect();
        assert_eq!(band(window, &daily), pb::DeploymentFrequencyBand::Daily);
        let weekly = [t(2, 1), t(9, 1), t(16, 1)];
        assert_eq!(band(window, &weekly), pb::DeploymentFrequencyBand::Weekly);
        assert_eq!(
            band(window, &[t(3, 1)]),
            pb::DeploymentFrequencyBand::Monthly
        );
        // A 30-day window over two calendar months is still under two months.
        let thirty = Window {
            start: t(15, 0),
            end: t(15, 0) + Duration::days(30),
        };
        assert_eq!(
            band(thirty, &[t(20, 1)]),
            pb::DeploymentFrequencyBand::Monthly
        );
        assert_eq!(band(window, &[]), pb::DeploymentFrequencyBand::Unspecified);
        let year = Window {
            start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        };
        assert_eq!(band(year, &[t(3, 1)]), pb::DeploymentFrequencyBand::Yearly);
    }

    #[test]
    fn weekly_buckets_start_on_monday_and_clip_to_the_window() {
        // 2026-11-04 is a Wednesday.
        let window = Window {
            start: t(4, 6),
            end: t(18, 0),
        };
        let weeks = buckets(window, pb::SeriesGranularity::Weekly);
        assert_eq!(weeks.len(), 3);
        assert_eq!(weeks[0].start, t(4, 6));
        assert_eq!(weeks[0].end, t(9, 0), "the next Monday");
        assert_eq!(weeks[2].end, t(18, 0));
        assert_eq!(buckets(window, pb::SeriesGranularity::Daily).len(), 14);
    }

    /// Three deployments, one rolled back and restored 30 minutes after
    /// detection, one failure never restored; five commits.
    #[test]
    fn dora_on_a_known_history() {
        let window = Window {
            start: t(1, 0),
            end: t(8, 0),
        };
        let history = History {
            deployments: vec![
                ProdDeployment {
                    end_time: t(2, 10),
                    succeeded: true,
                    change_failure: false,
                    commits: 3,
                },
                ProdDeployment {
                    end_time: t(3, 10),
                    succeeded: false,
                    change_failure: true,
                    commits: 0,
                },
                ProdDeployment {
                    end_time: t(4, 10),
                    succeeded: true,
                    change_failure: true,
                    commits: 2,
                },
            ],
            lead_times: [60, 120, 180, 240, 600]
                .into_iter()
                .map(|m| LeadTime {
                    deploy_end_time: t(2, 10),
                    lead: mins(m),
                    first_wave_lead: Some(mins(m / 2)),
                })
                .collect(),
            failures: vec![
                Failure {
                    detect_time: t(3, 9),
                    restore_time: Some(t(3, 9) + mins(30)),
                },
                Failure {
                    detect_time: t(5, 9),
                    restore_time: None,
                },
            ],
            ..Default::default()
        };
        let summary = Summary::from_history(window, &history);
        let m = dora(window, &summary, pb::SeriesGranularity::Daily);
        let f = m.deployment_frequency.unwrap();
        assert_eq!(f.deployments, 2);
        assert!((f.per_day - 2.0 / 7.0).abs() < 1e-9);
        let l = m.lead_time_for_changes.unwrap();
        assert_eq!(l.median, Some(pb_duration(mins(180))));
        assert_eq!(l.p90, Some(pb_duration(mins(600))));
        assert_eq!(l.commits, 5);
        let c = m.change_failure_rate.unwrap();
        assert_eq!((c.failed_deployments, c.deployments), (2, 3));
        let r = m.failed_deployment_recovery_time.unwrap();
        assert_eq!(r.median, Some(pb_duration(mins(30))));
        assert_eq!((r.recoveries, r.unrecovered), (1, 1));
        assert_eq!(m.series.len(), 7);
        assert_eq!(m.series[1].deployments, 1);
        assert_eq!(m.series[2].change_failure_rate, 1.0);
        assert_eq!(
            m.series[2].recovery_time_median,
            Some(pb_duration(mins(30)))
        );

        let d = dpra(window, &summary, 75.0, pb::SeriesGranularity::Unspecified);
        assert_eq!(d.lead_time_mean, Some(pb_duration(mins(240))));
        assert_eq!(d.lead_time_first_wave_mean, Some(pb_duration(mins(120))));
        let b = d.batch_size.unwrap();
        assert_eq!((b.mean, b.max, b.deployments), (2.5, 3, 2));
        assert_eq!(d.security_control_automation_percent, 75.0);
    }

    #[test]
    fn streaks_budgets_and_security_errors() {
        let window = Window {
            start: t(1, 0),
            end: t(8, 0),
        };
        let history = History {
            streaks: vec![
                Streak {
                    green: true,
                    start_time: t(1, 0),
                    end_time: t(3, 0),
                },
                Streak {
                    green: false,
                    start_time: t(3, 0),
                    end_time: t(3, 2),
                },
                Streak {
                    green: true,
                    start_time: t(3, 2),
                    end_time: t(4, 2),
                },
            ],
            budgets: vec![
                BudgetedStage {
                    execution: "pipelines/p/executions/a".into(),
                    stage: "build".into(),
                    tier: 0,
                    end_time: t(2, 0),
                    duration: mins(12),
                    budget: mins(10),
                },
                BudgetedStage {
                    execution: "pipelines/p/executions/b".into(),
                    stage: "beta".into(),
                    tier: 3,
                    end_time: t(2, 1),
                    duration: mins(29),
                    budget: mins(30),
                },
            ],
            security_errors: vec![
                SecurityError {
                    open_time: t(2, 0),
                    resolve_time: Some(t(2, 4)),
                },
                SecurityError {
                    open_time: t(6, 0),
                    resolve_time: None,
                },
            ],
            ..Default::default()
        };
        let summary = Summary::from_history(window, &history);
        let d = dpra(window, &summary, 0.0, pb::SeriesGranularity::Unspecified);
        let m = d.mainline.unwrap();
        assert_eq!(m.mtbf, Some(pb_duration(Duration::hours(36))));
        assert_eq!(m.mttr, Some(pb_duration(Duration::hours(2))));
        assert_eq!((m.green_streaks, m.red_streaks), (2, 1));
        let b = d.stage_budgets.unwrap();
        assert_eq!((b.stage_runs, b.violations), (2, 1));
        assert_eq!(b.recent_violations[0].stage, "build");
        let s = d.security_errors.unwrap();
        assert_eq!(
            s.mean_time_to_resolve,
            Some(pb_duration(Duration::hours(4)))
        );
        assert_eq!((s.resolved, s.open), (1, 1));
    }
}
