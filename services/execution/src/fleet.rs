//! Where a `fromFleet` stage gets its waves: the fleet service's
//! ResolveTargets over gRPC (also in `conveyor dev`, which serves it on the
//! same port), or nothing when no fleet service is configured.

use conveyor_api::common::v1 as common;
use conveyor_api::fleet::v1 as pb;
use conveyor_api::fleet::v1::fleet_service_client::FleetServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::engine::{Resolution, ResolvedWave};
use crate::model::FleetTargets;

#[async_trait::async_trait]
pub trait TargetSource: Send + Sync + 'static {
    /// The waves for `targets` of `pipeline` ("pipelines/{p}"), or why not;
    /// with `rollout`, the waves the fleet service planned for it.
    async fn resolve(
        &self,
        pipeline: &str,
        rollout: Option<&str>,
        targets: &FleetTargets,
    ) -> Resolution;
}

/// The execution parameter naming the fleet rollout an account-fleet
/// execution applies (`rollouts/{id}`), set by the fleet service.
pub const ROLLOUT_PARAMETER: &str = "ROLLOUT";

/// No fleet service: fleet stages wait and say why.
pub struct NoFleet;

#[async_trait::async_trait]
impl TargetSource for NoFleet {
    async fn resolve(
        &self,
        _pipeline: &str,
        _rollout: Option<&str>,
        _targets: &FleetTargets,
    ) -> Resolution {
        Resolution::Unavailable("no fleet service is configured (set fleet_endpoint)".to_owned())
    }
}

fn tier(name: &str) -> Option<common::Tier> {
    Some(match name {
        "sandbox" => common::Tier::Sandbox,
        "development" => common::Tier::Development,
        "beta" => common::Tier::Beta,
        "gamma" => common::Tier::Gamma,
        "production" => common::Tier::Production,
        "tooling" => common::Tier::Tooling,
        _ => return None,
    })
}

/// The ResolveTargets request for a stage's selector, or for a rollout.
pub fn request(
    pipeline: &str,
    rollout: Option<&str>,
    t: &FleetTargets,
) -> pb::ResolveTargetsRequest {
    if let Some(rollout) = rollout {
        return pb::ResolveTargetsRequest {
            rollout: rollout.to_owned(),
            pipeline: pipeline.to_owned(),
            ..Default::default()
        };
    }
    pb::ResolveTargetsRequest {
        selector: Some(pb::TargetSelector {
            organizational_units: if t.organizational_unit.is_empty() {
                Vec::new()
            } else {
                vec![format!("organizationalUnits/{}", t.organizational_unit)]
            },
            tiers: tier(&t.tier).map(|t| t as i32).into_iter().collect(),
            regions: t.regions.clone(),
            tags: t.tags.clone().into_iter().collect(),
            accounts: Vec::new(),
        }),
        strategy: Some(pb::RolloutStrategy {
            growth_factor: f64::from(t.growth_factor.max(1)),
            bake_time: Some(prost_types::Duration {
                seconds: t.bake_secs.min(i64::MAX as u64) as i64,
                nanos: 0,
            }),
            ..Default::default()
        }),
        rollout: String::new(),
        pipeline: pipeline.to_owned(),
    }
}

/// What the fleet service's answer means for the stage.
pub fn resolution(reply: Result<pb::ResolveTargetsResponse, tonic::Status>) -> Resolution {
    let r = match reply {
        Ok(r) => r,
        Err(status) => {
            return match status.code() {
                Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => {
                    Resolution::Refused(status.message().to_owned())
                }
                _ => Resolution::Unavailable(format!("{:?}: {}", status.code(), status.message())),
            };
        }
    };
    if !r.active_freezes.is_empty() {
        let held: Vec<String> = r
            .active_freezes
            .iter()
            .map(|w| format!("{} ({})", w.name, w.reason))
            .collect();
        return Resolution::Frozen(format!(
            "held by freeze window {}; it starts when the freeze ends or is overridden",
            held.join(", ")
        ));
    }
    Resolution::Waves {
        waves: r
            .waves
            .into_iter()
            .map(|w| ResolvedWave {
                name: w.name,
                targets: w
                    .targets
                    .into_iter()
                    .map(|t| (t.account, t.region))
                    .collect(),
                bake_secs: w
                    .bake_time
                    .filter(|d| d.seconds > 0 || d.nanos > 0)
                    .map(|d| d.seconds.max(0) as u64),
            })
            .collect(),
        digest: r.plan_digest,
    }
}

#[async_trait::async_trait]
impl TargetSource for FleetServiceClient<Channel> {
    async fn resolve(
        &self,
        pipeline: &str,
        rollout: Option<&str>,
        targets: &FleetTargets,
    ) -> Resolution {
        let mut client = self.clone();
        let mut call = tonic::Request::new(request(pipeline, rollout, targets));
        conveyor_platform::telemetry::inject(call.metadata_mut());
        resolution(
            client
                .resolve_targets(call)
                .await
                .map(tonic::Response::into_inner),
        )
    }
}
