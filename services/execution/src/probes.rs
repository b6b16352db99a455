//! Built-in HTTP health probes: while a rollout deploys and bakes, the
//! execution service GETs each probe URL its stage declares, and after
//! `failureThreshold` failures in a row puts the probe's alarm in ALARM
//! (which rolls the rollout back); a later success sets it OK again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::domain::Executions;
use crate::model::{Probe, StageState};
use crate::store::AlarmRecord;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    next_check: Option<Instant>,
    failures: u32,
    alarmed: bool,
}

/// Checks due probes every second until dropped.
pub fn spawn(executions: Executions) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client: Client<HttpConnector, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let mut states: HashMap<(String, String, String), State> = HashMap::new();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticker.tick().await;
            if let Err(e) = pass(&executions, &client, &mut states).await {
                tracing::warn!(error = %e, "health probe pass failed");
            }
        }
    })
}

async fn pass(
    executions: &Executions,
    client: &Client<HttpConnector, Empty<Bytes>>,
    states: &mut HashMap<(String, String, String), State>,
) -> Result<(), crate::error::Error> {
    let mut live = Vec::new();
    for id in executions.rolling_out_ids().await? {
        let Ok(snapshot) = executions.store().load(&id).await else {
            continue;
        };
        let mut checks: Vec<(Probe, String)> = Vec::new();
        for stage in snapshot
            .stages
            .iter()
            .filter(|st| st.state == StageState::Running)
        {
            for probe in stage.guards.iter().flat_map(|g| &g.probes) {
                for url in urls(probe, &snapshot, stage.index) {
                    checks.push((probe.clone(), url));
                }
            }
        }
        for (probe, url) in checks {
            let key = (id.clone(), probe.alarm.clone(), url.clone());
            live.push(key.clone());
            let state = states.entry(key).or_default();
            let now = Instant::now();
            if state.next_check.is_some_and(|t| t > now) {
                continue;
            }
            state.next_check = Some(now + Duration::from_secs(probe.interval_secs));
            match check(client, &url).await {
                Ok(()) => {
                    state.failures = 0;
                    let recovered = std::mem::take(&mut state.alarmed);
                    let others_alarmed = states
                        .iter()
                        .any(|((e, a, _), s)| *e == id && *a == probe.alarm && s.alarmed);
                    if recovered && !others_alarmed {
                        set(
                            executions,
                            &snapshot.execution.pipeline,
                            &probe,
                            "ok",
                            "probe healthy again",
                        )
                        .await?;
                    }
                }
                Err(why) => {
                    state.failures += 1;
                    tracing::info!(execution = %id, alarm = %probe.alarm, failures = state.failures, reason = %why, "health probe failed");
                    if state.failures >= probe.failure_threshold && !state.alarmed {
                        state.alarmed = true;
                        let reason =
                            format!("{url} failed {} times in a row: {why}", state.failures);
                        set(
                            executions,
                            &snapshot.execution.pipeline,
                            &probe,
                            "alarm",
                            &reason,
                        )
                        .await?;
                    }
                }
            }
        }
    }
    states.retain(|key, _| live.contains(key));
    Ok(())
}

/// The URLs a probe checks now: its URL, or, when it names
/// `{target.account}` or `{target.region}`, one URL per target the stage
/// has deployed so far (targets not yet deployed are not probed).
fn urls(probe: &Probe, s: &crate::model::Snapshot, stage: i32) -> Vec<String> {
    if !probe.url.contains("{target.") {
        return vec![probe.url.clone()];
    }
    let mut targets: Vec<&(String, String)> = s
        .actions
        .iter()
        .filter(|a| a.stage_index == stage && !a.rollback)
        .filter(|a| a.state == crate::model::ActionState::Succeeded)
        .filter_map(|a| a.target.as_ref())
        .collect();
    targets.sort();
    targets.dedup();
    targets
        .into_iter()
        .map(|(account, region)| {
            probe
                .url
                .replace("{target.account}", account)
                .replace("{target.region}", region)
        })
        .collect()
}

async fn set(
    executions: &Executions,
    pipeline: &str,
    probe: &Probe,
    state: &str,
    reason: &str,
) -> Result<(), crate::error::Error> {
    let now = chrono::Utc::now();
    executions
        .set_alarm(AlarmRecord {
            name: probe.alarm.clone(),
            pipeline: pipeline.to_owned(),
            environment: String::new(),
            state: state.to_owned(),
            reason: reason.to_owned(),
            source: "health_probe".to_owned(),
            state_change_time: now,
            observe_time: now,
            update_time: now,
        })
        .await
        .map(|_| ())
}

/// One GET: healthy on a 2xx answer within the timeout.
async fn check(client: &Client<HttpConnector, Empty<Bytes>>, url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let request = http::Request::get(uri)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status()))
    }
}
