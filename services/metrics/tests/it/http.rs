//! The HTTP port: Prometheus `/metrics`, the dashboard's JSON, and the
//! dashboard itself in a real browser (Debian's Chromium, driven by
//! playwright-core from tests/browser/dashboard.mjs).

use std::path::PathBuf;
use std::process::Stdio;

use chrono::{Duration, Utc};
use conveyor_api::metrics::v1 as pb;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::history::{deploy_from, known_history_from};
use crate::on_every_backend;
use crate::support::http_get;

/// The value of a sample line `name value` in a text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

on_every_backend!(prometheus_exposes_counters_and_dora_gauges, |server| {
    let t0 = Utc::now() - Duration::days(2);
    server.publish(&known_history_from(t0).events).await;
    server.publish_raw(b"garbage").await;
    server.settle().await;
    let (code, text) = http_get(&server.http_url, "/metrics").await;
    assert_eq!(code, 200, "{text}");
    let applied = sample(&text, "conveyor_metrics_events_applied_total").unwrap();
    assert_eq!(applied as usize, known_history_from(t0).events.len());
    assert_eq!(
        sample(&text, "conveyor_metrics_events_dead_letter_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "conveyor_metrics_dora_deployments_30d"),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, "conveyor_metrics_dora_change_failure_rate_30d"),
        Some(0.4)
    );
    assert_eq!(
        sample(&text, "conveyor_metrics_dora_lead_time_median_seconds_30d"),
        Some(70.0 * 60.0)
    );
    assert!(sample(&text, "conveyor_metrics_event_lag_seconds").is_some());
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
});

on_every_backend!(the_dashboard_json_refuses_a_bad_window, |server| {
    let (code, body) = http_get(&server.http_url, "/api/dashboard?window=forever").await;
    assert_eq!(code, 400);
    assert!(body.contains("window"), "{body}");
    let (code, body) = http_get(&server.http_url, "/api/dashboard?pipeline=nope/x").await;
    assert_eq!(code, 400, "{body}");
    let (code, page) = http_get(&server.http_url, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("/assets/dashboard.js"));
    assert!(
        !page.contains("https://"),
        "nothing is fetched from the internet"
    );
});

fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("CONVEYOR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    path.exists().then_some(path)
}

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The page shows the same numbers as the API for a seeded history, and a
/// new deployment appears without a reload.
#[tokio::test]
async fn the_page_shows_the_api_numbers_and_updates_live() {
    let root = repository_root();
    let driver = root.join("node_modules/playwright-core");
    if chromium().is_none() || !driver.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install chromium and playwright-core (npm ci)"
        );
        eprintln!("skipped: no /usr/bin/chromium or node_modules/playwright-core");
        return;
    }
    let backend = crate::support::backends().await.remove(0);
    let mut server = crate::support::Server::start(&backend).await;
    let t0 = Utc::now() - Duration::days(2);
    server.publish(&known_history_from(t0).events).await;
    server.settle().await;
    let api = server
        .client
        .get_dora_metrics(pb::GetDoraMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();

    let mut node = tokio::process::Command::new("node")
        .arg(root.join("services/metrics/tests/browser/dashboard.mjs"))
        .arg(format!("{}/", server.http_url))
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let first: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().expect("a first report")).unwrap();
    let f = api.deployment_frequency.unwrap();
    let l = api.lead_time_for_changes.unwrap();
    let c = api.change_failure_rate.unwrap();
    let r = api.failed_deployment_recovery_time.unwrap();
    assert_eq!(first["deployments"], f.deployments.to_string());
    assert_eq!(
        first["leadTimeMedianSeconds"],
        l.median.unwrap().seconds.to_string()
    );
    assert_eq!(
        first["changeFailureRate"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        c.rate
    );
    assert_eq!(
        first["recoveryMedianSeconds"],
        r.median.unwrap().seconds.to_string()
    );
    assert_eq!(first["pipelines"][0]["name"], "pipelines/shop");
    assert_eq!(first["pipelines"][0]["health"], "green");
    assert_eq!(first["failedRequests"], serde_json::json!([]));

    // A new production deployment, published while the page is open.
    let mut more = crate::events::Script::new("pipelines/shop");
    let now = Utc::now() - Duration::hours(1);
    more.start("live", now, &[("l1", now)]);
    deploy_from(now, &mut more, "live", 0, 5, 10);
    server.publish(&more.events).await;
    server.settle().await;
    let mut stdin = node.stdin.take().unwrap();
    stdin.write_all(b"published\n").await.unwrap();
    stdin.flush().await.unwrap();
    drop(stdin);
    let second: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().expect("a second report")).unwrap();
    assert_eq!(second["deployments"], (f.deployments + 1).to_string());
    assert_eq!(
        second["pageId"], first["pageId"],
        "the page was not reloaded"
    );
    assert!(second["renders"].as_i64() > first["renders"].as_i64());
    assert!(node.wait().await.unwrap().success());
    server.stop().await;
    backend.cleanup().await;
}
