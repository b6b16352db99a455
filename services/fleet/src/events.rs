//! Events the fleet publishes on the `conveyor.events.v1` stream. Today one:
//! a break-glass override of a freeze window (`fleet.freeze.overridden`).
//! Published after the override is committed, so a crash in between loses
//! the event; the override on the window stays the audit record.

use conveyor_api::events::v1 as ev;
use conveyor_api::time::timestamp;
use prost::Message;

use crate::model::{FreezeWindow, Override};
use crate::names::freeze_window_name;

/// The `source` of every fleet event.
pub const SOURCE: &str = "conveyor.fleet";

/// The event of `grant` on `window`, encoded.
pub fn freeze_overridden(window: &FreezeWindow, grant: &Override) -> Vec<u8> {
    let name = freeze_window_name(&window.ou, &window.id);
    let mut event = conveyor_platform::events::envelope(
        SOURCE,
        "fleet.freeze.overridden",
        name.clone(),
        ev::event::Payload::FreezeOverridden(ev::FreezeOverridden {
            freeze_window: name,
            principal: Some(conveyor_api::common::v1::Principal {
                id: grant.principal.id.clone(),
                groups: grant.principal.groups.clone(),
            }),
            reason: grant.reason.clone(),
            pipeline: grant.pipeline.clone(),
            rollout: grant.rollout.clone(),
            expire_time: Some(timestamp(grant.expire_time)),
        }),
    );
    event.time = Some(timestamp(grant.create_time));
    event.encode_to_vec()
}
