//! The consumer's counters as OpenTelemetry instruments: exported over OTLP
//! when the service exports telemetry (`OTEL_EXPORTER_OTLP_ENDPOINT`), under
//! the names `/metrics` gives them. The DORA gauges need a database query
//! per reading and are on `/metrics` only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::metrics::{Meter, ObservableCounter, ObservableGauge};

use super::Stats;

/// The registered instruments; they report for as long as this lives.
pub struct Meters {
    _counters: Vec<ObservableCounter<u64>>,
    _lag: ObservableGauge<f64>,
}

fn counter(
    meter: &Meter,
    stats: &Arc<Stats>,
    name: &'static str,
    help: &'static str,
    value: fn(&Stats) -> &AtomicU64,
) -> ObservableCounter<u64> {
    let stats = stats.clone();
    meter
        .u64_observable_counter(name)
        .with_description(help)
        .with_callback(move |o| o.observe(value(&stats).load(Ordering::Relaxed), &[]))
        .build()
}

pub fn register(stats: &Arc<Stats>) -> Meters {
    let meter = opentelemetry::global::meter("conveyor-metrics");
    let counters = vec![
        counter(
            &meter,
            stats,
            "conveyor_metrics_events_applied",
            "Events applied to the records",
            |s| &s.applied,
        ),
        counter(
            &meter,
            stats,
            "conveyor_metrics_events_duplicate",
            "Events delivered again and skipped (idempotency)",
            |s| &s.duplicates,
        ),
        counter(
            &meter,
            stats,
            "conveyor_metrics_events_dead_letter",
            "Events sent to the dead-letter stream",
            |s| &s.dead_letters,
        ),
        counter(
            &meter,
            stats,
            "conveyor_metrics_batches",
            "Batches applied",
            |s| &s.batches,
        ),
        counter(
            &meter,
            stats,
            "conveyor_metrics_batch_failures",
            "Attempts to apply a batch that failed (then retried)",
            |s| &s.failed_batches,
        ),
    ];
    let lag_stats = stats.clone();
    let lag = meter
        .f64_observable_gauge("conveyor_metrics_event_lag_seconds")
        .with_description("Age of the newest event applied")
        .with_callback(move |o| {
            let last = lag_stats.last_event_millis.load(Ordering::Relaxed);
            if last > 0 {
                let now = chrono::Utc::now().timestamp_millis() as f64;
                o.observe((now - last as f64).max(0.0) / 1000.0, &[]);
            }
        })
        .build();
    Meters {
        _counters: counters,
        _lag: lag,
    }
}
