//! The consumer of the `conveyor.events.v1` stream: its own consumer group
//! (`metrics`), batches applied in one transaction each, every event id
//! applied once. An event that cannot be used (not an Event, an unknown
//! schema version, no payload) goes to the dead-letter stream
//! (`events.dead`) and is counted; the consumer never stops for one.
//!
//! One replica consumes at a time (a Postgres advisory lock, as the other
//! services' singletons), so the records see each execution's events in
//! the order they were relayed; the others serve reads. Every replica reads
//! under the same consumer name, so a batch left unacknowledged by a
//! replica that stopped is read again first by whichever replica leads next.

pub mod meters;
pub mod project;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conveyor_api::events::v1 as ev;
use conveyor_platform::queue::{Delivery, EVENTS_STREAM, Queue};
use prost::Message;

use crate::store::{Retention, Store};

/// The consumer group of the metrics service on the event stream.
pub const GROUP: &str = "metrics";
/// Where events that cannot be used go.
pub const DEAD_LETTER_STREAM: &str = "events.dead";
/// The advisory-lock key of the consumer ("conveyor-metrics-ingest").
const LEADER_KEY: i64 = 0x636f_6e76_6d69_6e67;
/// Events read and applied together.
const BATCH: usize = 1000;
/// How often the leader prunes what retention no longer keeps.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What the consumer has done since it started; read by `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub dead_letters: AtomicU64,
    pub batches: AtomicU64,
    pub failed_batches: AtomicU64,
    /// Unix milliseconds of the newest event applied.
    pub last_event_millis: AtomicU64,
}

/// Why an event went to the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("not a conveyor.events.v1.Event: {0}")]
    Undecodable(String),
    #[error("unknown schema version {0}")]
    SchemaVersion(i32),
    #[error("no id, time or payload")]
    Incomplete,
}

/// An event from its stream bytes, or why it cannot be used.
pub fn decode(payload: &[u8]) -> Result<ev::Event, Unusable> {
    let event = ev::Event::decode(payload).map_err(|e| Unusable::Undecodable(e.to_string()))?;
    if event.schema_version != 1 {
        return Err(Unusable::SchemaVersion(event.schema_version));
    }
    if event.id.is_empty() || event.time.is_none() || event.payload.is_none() {
        return Err(Unusable::Incomplete);
    }
    Ok(event)
}

/// Reads the event stream and applies it to the store until dropped.
pub struct Consumer {
    pub store: Store,
    pub queue: Arc<dyn Queue>,
    /// The consumer name; the same on every replica (one reads at a time),
    /// so the next to read finds the batch left pending.
    pub name: String,
    pub database_url: String,
    pub stats: Arc<Stats>,
    /// Told the number of every batch applied (the dashboard's live updates).
    pub updates: tokio::sync::broadcast::Sender<u64>,
    /// Rung when a batch recorded deliveries (the notification sender).
    pub deliveries: Arc<tokio::sync::Notify>,
    /// What is kept; the leader prunes the rest every hour.
    pub retention: Retention,
}

impl Consumer {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        let mut leader = conveyor_platform::database::Leader::new(
            self.database_url.clone(),
            LEADER_KEY,
            "event ingest",
        );
        let mut rollups_ready = false;
        let mut pruned_at: Option<tokio::time::Instant> = None;
        loop {
            if !leader.holds().await {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            if !rollups_ready {
                if let Err(e) = self.store.ensure_rollups(self.retention).await {
                    tracing::warn!(error = %e, "cannot build the daily rollups; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
                rollups_ready = true;
            }
            let mut reader = match self.queue.reader(EVENTS_STREAM, GROUP, &self.name).await {
                Ok(reader) => reader,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the event stream; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            loop {
                if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                    self.prune().await;
                    pruned_at = Some(tokio::time::Instant::now());
                }
                let batch = match reader.next(Duration::from_secs(2), BATCH).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the event stream failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                };
                if batch.is_empty() {
                    if !leader.holds().await {
                        break;
                    }
                    continue;
                }
                self.handle(&batch).await;
                let ids: Vec<String> = batch.into_iter().map(|d| d.id).collect();
                if let Err(e) = reader.ack_all(&ids).await {
                    // Left pending: read again (and skipped as duplicates)
                    // by the next leader.
                    tracing::warn!(error = %e, "ack failed");
                }
            }
        }
    }

    /// Applies one batch, retrying until the store takes it: nothing is
    /// acknowledged before it is recorded.
    async fn handle(&self, batch: &[Delivery]) {
        let mut events = Vec::with_capacity(batch.len());
        for d in batch {
            match decode(&d.payload) {
                Ok(event) => events.push(event),
                Err(why) => self.dead_letter(d, &why).await,
            }
        }
        // One span per trace in the batch (an execution's events carry
        // its trace), so the projection shows in each execution's trace.
        let traces: std::collections::BTreeMap<&str, usize> =
            events.iter().fold(Default::default(), |mut m, e| {
                if !e.traceparent.is_empty() {
                    *m.entry(e.traceparent.as_str()).or_default() += 1;
                }
                m
            });
        let _spans: Vec<tracing::Span> = traces
            .into_iter()
            .map(|(traceparent, n)| {
                let span = tracing::info_span!("metrics.apply", events = n);
                conveyor_platform::telemetry::follow(&span, traceparent);
                span
            })
            .collect();
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.store.apply(&events, self.retention).await {
                Ok(applied) => {
                    let s = &self.stats;
                    s.applied.fetch_add(applied.new as u64, Ordering::Relaxed);
                    s.duplicates
                        .fetch_add(applied.duplicates as u64, Ordering::Relaxed);
                    let number = s.batches.fetch_add(1, Ordering::Relaxed) + 1;
                    if applied.new > 0 {
                        // No subscriber is fine: nobody is watching.
                        let _ = self.updates.send(number);
                    }
                    if applied.deliveries > 0 {
                        self.deliveries.notify_one();
                    }
                    if let Some(newest) = events
                        .iter()
                        .filter_map(|e| e.time.as_ref())
                        .filter_map(conveyor_api::time::from_timestamp)
                        .max()
                    {
                        s.last_event_millis
                            .fetch_max(newest.timestamp_millis().max(0) as u64, Ordering::Relaxed);
                    }
                    return;
                }
                Err(e) => {
                    self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, events = events.len(), "applying events failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Deletes what retention no longer keeps; a failure waits for the
    /// next pass.
    async fn prune(&self) {
        match self.store.prune(self.retention, chrono::Utc::now()).await {
            Ok(p) if p == Default::default() => {}
            Ok(p) => tracing::info!(
                records = p.records,
                rollups = p.rollups,
                event_ids = p.event_ids,
                "pruned what retention no longer keeps"
            ),
            Err(e) => tracing::warn!(error = %e, "pruning failed"),
        }
    }

    async fn dead_letter(&self, d: &Delivery, why: &Unusable) {
        self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(id = %d.id, reason = %why, "event sent to the dead-letter stream");
        if let Err(e) = self.queue.publish(DEAD_LETTER_STREAM, &d.payload).await {
            tracing::warn!(error = %e, id = %d.id, "cannot write the dead-letter stream");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_events_are_told_apart() {
        assert!(matches!(decode(b"\xff\xff"), Err(Unusable::Undecodable(_))));
        let mut event = ev::Event {
            id: "e1".into(),
            time: Some(prost_types::Timestamp::default()),
            schema_version: 2,
            payload: Some(ev::event::Payload::PromotionBlocked(Default::default())),
            ..Default::default()
        };
        assert_eq!(
            decode(&event.encode_to_vec()),
            Err(Unusable::SchemaVersion(2))
        );
        event.schema_version = 1;
        assert!(decode(&event.encode_to_vec()).is_ok());
        event.payload = None;
        assert_eq!(decode(&event.encode_to_vec()), Err(Unusable::Incomplete));
    }
}
