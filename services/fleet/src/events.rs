//! Events the fleet publishes on the `conveyor.events.v1` stream. Today one:
//! a break-glass override of a freeze window (`fleet.freeze.overridden`).
//! Published after the override is committed, so a crash in between loses
//! the event; the override on the window stays the audit record.

use std::sync::Arc;

use conveyor_api::events::v1 as ev;
use conveyor_api::time::timestamp;
use conveyor_platform::queue::{EVENTS_STREAM, Queue};
use prost::Message;

use crate::model::{FreezeWindow, Override};
use crate::names::freeze_window_name;

/// The `source` of every fleet event.
pub const SOURCE: &str = "conveyor.fleet";

/// The event of `grant` on `window`, encoded.
pub fn freeze_overridden(window: &FreezeWindow, grant: &Override) -> Vec<u8> {
    let name = freeze_window_name(&window.ou, &window.id);
    let traceparent = conveyor_platform::telemetry::current_context()
        .remove("traceparent")
        .unwrap_or_default();
    ev::Event {
        id: uuid::Uuid::now_v7().to_string(),
        time: Some(timestamp(grant.create_time)),
        source: SOURCE.to_owned(),
        r#type: "fleet.freeze.overridden".to_owned(),
        subject: name.clone(),
        traceparent,
        tracestate: String::new(),
        schema_version: 1,
        payload: Some(ev::event::Payload::FreezeOverridden(ev::FreezeOverridden {
            freeze_window: name,
            principal: Some(conveyor_api::common::v1::Principal {
                id: grant.principal.id.clone(),
                groups: grant.principal.groups.clone(),
            }),
            reason: grant.reason.clone(),
            pipeline: grant.pipeline.clone(),
            rollout: grant.rollout.clone(),
            expire_time: Some(timestamp(grant.expire_time)),
        })),
    }
    .encode_to_vec()
}

/// Publishes `payload`, logging (not failing) when the queue refuses it.
pub async fn publish(queue: &Arc<dyn Queue>, payload: Vec<u8>) {
    if let Err(e) = queue.publish(EVENTS_STREAM, &payload).await {
        tracing::warn!(error = %e, "fleet event not published");
    }
}
