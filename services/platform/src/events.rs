//! What every service's published events share: the `conveyor.events.v1`
//! envelope (a UUID v7 id, the time, the source, the current trace
//! context) and a best-effort publish for services without an outbox.

use std::sync::Arc;

use conveyor_api::events::v1 as ev;

use crate::queue::{EVENTS_STREAM, Queue};

/// An event from `source` (e.g. "conveyor.execution") of type `kind` about
/// `subject`, stamped now and carrying the current trace context; callers
/// that report an earlier change set `time` themselves.
pub fn envelope(
    source: &str,
    kind: &str,
    subject: String,
    payload: ev::event::Payload,
) -> ev::Event {
    let traceparent = crate::telemetry::traceparent();
    ev::Event {
        id: uuid::Uuid::now_v7().to_string(),
        time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        source: source.to_owned(),
        r#type: kind.to_owned(),
        subject,
        traceparent,
        tracestate: String::new(),
        schema_version: 1,
        payload: Some(payload),
    }
}

/// Publishes an encoded event, logging (not failing) when the queue
/// refuses it: for changes already committed, whose record stays readable.
pub async fn publish(queue: &Arc<dyn Queue>, payload: Vec<u8>) {
    if let Err(e) = queue.publish(EVENTS_STREAM, &payload).await {
        tracing::warn!(error = %e, "event not published");
    }
}
