//! Events the definitions service publishes on the `conveyor.events.v1`
//! stream: a new pipeline revision with its conformance summary
//! (`pipeline.revision.created`), which the metrics service keeps for the
//! security-control automation metric. Published after the revision is
//! committed, so a crash in between loses the event (the revision and its
//! report stay readable through the API).

use conveyor_api::events::v1 as ev;
use conveyor_api::time::timestamp;
use prost::Message;

use crate::store::PipelineRecord;

/// The `source` of every definitions event.
pub const SOURCE: &str = "conveyor.definitions";

/// The event announcing `p`'s current revision, encoded.
pub fn revision_created(p: &PipelineRecord) -> Vec<u8> {
    let r = &p.revision;
    let pipeline = format!("pipelines/{}", p.name);
    let revision = format!("{pipeline}/revisions/{}", r.revision);
    let mut event = conveyor_platform::events::envelope(
        SOURCE,
        "pipeline.revision.created",
        revision.clone(),
        ev::event::Payload::PipelineRevisionCreated(ev::PipelineRevisionCreated {
            pipeline,
            project: p.project.clone(),
            pipeline_type: crate::api::pipeline_type_to_pb(p.pipeline_type) as i32,
            revision,
            spec_sha256: r.spec_sha256.clone(),
            author: r.author.clone(),
            conformance_score: r.conformance.score,
            security_control_automation_percent: r.conformance.security_control_automation_percent,
            required_failures: r.conformance.required_failures as i32,
            recommended_failures: r.conformance.recommended_failures as i32,
            non_conformance_accepted: r.non_conformance_accepted,
        }),
    );
    event.time = Some(timestamp(r.create_time));
    event.encode_to_vec()
}
