//! `/metrics` in the Prometheus text format (OpenMetrics), through
//! prometheus-client: the consumer's counters, how far behind the stream
//! it is, and fleet-wide DORA gauges over the last 30 days.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use conveyor_api::metrics::v1 as pb;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Http;
use crate::compute::{self, Window};
use crate::store::Scope;

fn counter(registry: &mut Registry, name: &str, help: &str, value: &AtomicU64) {
    let c: Counter = Counter::default();
    c.inc_by(value.load(Ordering::Relaxed));
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

pub async fn scrape(State(http): State<Http>) -> Response {
    let mut registry = Registry::with_prefix("conveyor_metrics");
    let s = &http.stats;
    counter(
        &mut registry,
        "events_applied",
        "Events applied to the records",
        &s.applied,
    );
    counter(
        &mut registry,
        "events_duplicate",
        "Events delivered again and skipped (idempotency)",
        &s.duplicates,
    );
    counter(
        &mut registry,
        "events_dead_letter",
        "Events sent to the dead-letter stream",
        &s.dead_letters,
    );
    counter(&mut registry, "batches", "Batches applied", &s.batches);
    counter(
        &mut registry,
        "batch_failures",
        "Attempts to apply a batch that failed (then retried)",
        &s.failed_batches,
    );
    let last = s.last_event_millis.load(Ordering::Relaxed);
    if last > 0 {
        let lag = (Utc::now().timestamp_millis() as f64 - last as f64).max(0.0) / 1000.0;
        gauge(
            &mut registry,
            "event_lag_seconds",
            "Age of the newest event applied",
            lag,
        );
    }
    let now = Utc::now();
    let window = Window {
        start: now - chrono::Duration::days(30),
        end: now,
    };
    match http.store.summary(&Scope::Fleet, window).await {
        Ok(summary) => {
            let d = compute::dora(window, &summary, pb::SeriesGranularity::Unspecified);
            let secs = |x: Option<prost_types::Duration>| x.map_or(f64::NAN, |x| x.seconds as f64);
            let f = d.deployment_frequency.unwrap_or_default();
            let l = d.lead_time_for_changes.unwrap_or_default();
            let c = d.change_failure_rate.unwrap_or_default();
            let r = d.failed_deployment_recovery_time.unwrap_or_default();
            gauge(
                &mut registry,
                "dora_deployments_30d",
                "Production deployments completed in the last 30 days",
                f.deployments as f64,
            );
            gauge(
                &mut registry,
                "dora_lead_time_median_seconds_30d",
                "Median lead time for changes, last 30 days",
                secs(l.median),
            );
            gauge(
                &mut registry,
                "dora_change_failure_rate_30d",
                "Change failure rate, last 30 days (0 to 1)",
                c.rate,
            );
            gauge(
                &mut registry,
                "dora_recovery_time_median_seconds_30d",
                "Median failed-deployment recovery time, last 30 days",
                secs(r.median),
            );
        }
        Err(e) => tracing::warn!(error = %e, "DORA gauges unavailable for this scrape"),
    }
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
