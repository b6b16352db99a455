//! The gRPC adapter: validate and convert the request, call the domain,
//! convert the result, map the error. No business rules here.

mod convert;

use conveyor_api::fleet::v1 as pb;
use conveyor_api::fleet::v1::fleet_service_server::{FleetService, FleetServiceServer};
use tonic::{Request, Response, Status};

use crate::domain::{
    self, AccountQuery, Fleet, Grant, Lifecycle, NewAccount, NewBaselineVersion, NewFreeze,
    NewRollout,
};
use crate::error::Error;
use crate::names::{self, VersionRef};
use crate::store::AccountPatch;

pub struct FleetApi {
    fleet: Fleet,
}

impl FleetApi {
    pub fn new(fleet: Fleet) -> Self {
        FleetApi { fleet }
    }

    /// The tonic service with explicit message-size limits.
    pub fn into_server(self, max_message_bytes: usize) -> FleetServiceServer<Self> {
        FleetServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(value: T) -> Reply<T> {
    Ok(Response::new(value))
}

impl FleetApi {
    /// Suspend, reactivate and close: the same request shape.
    async fn transition(
        &self,
        to: Lifecycle,
        name: &str,
        reason: &str,
        by: crate::model::Principal,
        etag: &str,
        request_id: &str,
    ) -> Reply<pb::Account> {
        let id = names::account_id("name", name)?;
        let account = self
            .fleet
            .transition_account(to, id, reason, &by, etag, request_id)
            .await?;
        ok(convert::account(account))
    }
}

/// FULL version pages carry file contents; keep them inside the message limit.
const MAX_FULL_PAGE_SIZE: u64 = 20;

#[tonic::async_trait]
impl FleetService for FleetApi {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Reply<pb::Account> {
        let r = request.into_inner();
        let a = r
            .account
            .ok_or_else(|| Error::invalid("account", "give the account to vend"))?;
        let new = NewAccount {
            id: r.account_id,
            display_name: a.display_name,
            owner: a.owner,
            ou: convert::ou("account.organizational_unit", &a.organizational_unit, false)?,
            tier: convert::tier(a.tier, "account.tier")?,
            regions: a.regions,
            tags: convert::tags(a.tags),
            principal: convert::principal(r.principal),
            vending_pipeline: r.vending_pipeline,
        };
        let account = self.fleet.create_account(new, &r.request_id).await?;
        ok(convert::account(account))
    }

    async fn get_account(&self, request: Request<pb::GetAccountRequest>) -> Reply<pb::Account> {
        let r = request.into_inner();
        let id = names::account_id("name", &r.name)?;
        ok(convert::account(self.fleet.account(id).await?))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Reply<pb::ListAccountsResponse> {
        let r = request.into_inner();
        let size = domain::page_size(r.page_size)?;
        let query = AccountQuery {
            ou: (!r.organizational_unit.is_empty())
                .then(|| convert::ou("organizational_unit", &r.organizational_unit, false))
                .transpose()?,
            tiers: convert::tiers(&r.tiers, "tiers")?,
            region: (!r.region.is_empty()).then_some(r.region),
            tags: convert::tags(r.tags),
            states: r
                .states
                .iter()
                .enumerate()
                .map(|(i, s)| convert::account_state(*s, &format!("states[{i}]")))
                .collect::<Result<_, _>>()?,
        };
        domain::check_tags("tags", &query.tags)?;
        let page = self.fleet.list_accounts(query, size, &r.page_token).await?;
        ok(pb::ListAccountsResponse {
            accounts: page.items.into_iter().map(convert::account).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn update_account(
        &self,
        request: Request<pb::UpdateAccountRequest>,
    ) -> Reply<pb::Account> {
        let r = request.into_inner();
        let a = r
            .account
            .ok_or_else(|| Error::invalid("account", "give the account"))?;
        let id = names::account_id("account.name", &a.name)?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::invalid("update_mask", "name the fields to change").into());
        }
        let mut patch = (None, None, None, None);
        for (i, path) in paths.iter().enumerate() {
            match path.as_str() {
                "display_name" => patch.0 = Some(a.display_name.clone()),
                "owner" => patch.1 = Some(a.owner.clone()),
                "regions" => patch.2 = Some(a.regions.clone()),
                "tags" => patch.3 = Some(convert::tags(a.tags.clone())),
                other => {
                    return Err(Error::invalid(
                        format!("update_mask.paths[{i}]"),
                        format!("{other:?} cannot be updated (display_name, owner, regions, tags can; use Move, Suspend and Close)"),
                    )
                    .into());
                }
            }
        }
        let patch = AccountPatch::Describe {
            display_name: patch.0,
            owner: patch.1,
            regions: patch.2,
            tags: patch.3,
        };
        let account = self
            .fleet
            .update_account(id, &a.etag, patch, &r.request_id)
            .await?;
        ok(convert::account(account))
    }

    async fn move_account(&self, request: Request<pb::MoveAccountRequest>) -> Reply<pb::Account> {
        let r = request.into_inner();
        let id = names::account_id("name", &r.name)?;
        let dest = convert::ou("destination", &r.destination, false)?;
        ok(convert::account(
            self.fleet
                .move_account(id, &dest, &r.etag, &r.request_id)
                .await?,
        ))
    }

    async fn suspend_account(
        &self,
        request: Request<pb::SuspendAccountRequest>,
    ) -> Reply<pb::Account> {
        let r = request.into_inner();
        let (to, by) = (Lifecycle::Suspend, convert::principal(r.principal));
        self.transition(to, &r.name, &r.reason, by, &r.etag, &r.request_id)
            .await
    }

    async fn reactivate_account(
        &self,
        request: Request<pb::ReactivateAccountRequest>,
    ) -> Reply<pb::Account> {
        let r = request.into_inner();
        let (to, by) = (Lifecycle::Reactivate, convert::principal(r.principal));
        self.transition(to, &r.name, &r.reason, by, &r.etag, &r.request_id)
            .await
    }

    async fn close_account(&self, request: Request<pb::CloseAccountRequest>) -> Reply<pb::Account> {
        let r = request.into_inner();
        let (to, by) = (Lifecycle::Close, convert::principal(r.principal));
        self.transition(to, &r.name, &r.reason, by, &r.etag, &r.request_id)
            .await
    }

    async fn create_organizational_unit(
        &self,
        request: Request<pb::CreateOrganizationalUnitRequest>,
    ) -> Reply<pb::OrganizationalUnit> {
        let r = request.into_inner();
        let parent = convert::ou("parent", &r.parent, true)?;
        let display_name = r
            .organizational_unit
            .map(|o| o.display_name)
            .unwrap_or_default();
        let ou = self
            .fleet
            .create_ou(
                &parent,
                &r.organizational_unit_id,
                &display_name,
                &r.request_id,
            )
            .await?;
        ok(convert::organizational_unit(ou))
    }

    async fn get_organizational_unit(
        &self,
        request: Request<pb::GetOrganizationalUnitRequest>,
    ) -> Reply<pb::OrganizationalUnit> {
        let r = request.into_inner();
        let id = convert::ou("name", &r.name, false)?;
        ok(convert::organizational_unit(self.fleet.ou(&id).await?))
    }

    async fn list_organizational_units(
        &self,
        request: Request<pb::ListOrganizationalUnitsRequest>,
    ) -> Reply<pb::ListOrganizationalUnitsResponse> {
        let r = request.into_inner();
        let parent = convert::ou("parent", &r.parent, true)?;
        let size = domain::page_size(r.page_size)?;
        let page = self
            .fleet
            .list_ous(&parent, r.recursive, size, &r.page_token)
            .await?;
        ok(pb::ListOrganizationalUnitsResponse {
            organizational_units: page
                .items
                .into_iter()
                .map(convert::organizational_unit)
                .collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn update_organizational_unit(
        &self,
        request: Request<pb::UpdateOrganizationalUnitRequest>,
    ) -> Reply<pb::OrganizationalUnit> {
        let r = request.into_inner();
        let ou = r
            .organizational_unit
            .ok_or_else(|| Error::invalid("organizational_unit", "give the OU"))?;
        let id = convert::ou("organizational_unit.name", &ou.name, false)?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if let Some((i, p)) = paths
            .iter()
            .enumerate()
            .find(|(_, p)| p.as_str() != "display_name")
        {
            return Err(Error::invalid(
                format!("update_mask.paths[{i}]"),
                format!("{p:?} cannot be updated (only display_name)"),
            )
            .into());
        }
        let updated = self
            .fleet
            .rename_ou(&id, &ou.display_name, &ou.etag, &r.request_id)
            .await?;
        ok(convert::organizational_unit(updated))
    }

    async fn move_organizational_unit(
        &self,
        request: Request<pb::MoveOrganizationalUnitRequest>,
    ) -> Reply<pb::OrganizationalUnit> {
        let r = request.into_inner();
        let id = convert::ou("name", &r.name, false)?;
        let dest = convert::ou("destination", &r.destination, false)?;
        ok(convert::organizational_unit(
            self.fleet
                .move_ou(&id, &dest, &r.etag, &r.request_id)
                .await?,
        ))
    }

    async fn delete_organizational_unit(
        &self,
        request: Request<pb::DeleteOrganizationalUnitRequest>,
    ) -> Reply<()> {
        let r = request.into_inner();
        let id = convert::ou("name", &r.name, false)?;
        self.fleet.delete_ou(&id, &r.etag).await?;
        ok(())
    }

    async fn create_baseline_version(
        &self,
        request: Request<pb::CreateBaselineVersionRequest>,
    ) -> Reply<pb::BaselineVersion> {
        let r = request.into_inner();
        let baseline = names::baseline_id("parent", &r.parent)?;
        let new = NewBaselineVersion {
            description: r.description,
            content: convert::content(r.content)?,
            author: r.author,
            message: r.message,
        };
        let (version, _) = self
            .fleet
            .create_baseline_version(baseline, new, &r.request_id)
            .await?;
        ok(convert::baseline_version(version))
    }

    async fn get_baseline(&self, request: Request<pb::GetBaselineRequest>) -> Reply<pb::Baseline> {
        let r = request.into_inner();
        let id = names::baseline_id("name", &r.name)?;
        ok(convert::baseline(self.fleet.baseline(id).await?))
    }

    async fn list_baselines(
        &self,
        request: Request<pb::ListBaselinesRequest>,
    ) -> Reply<pb::ListBaselinesResponse> {
        let r = request.into_inner();
        let size = domain::page_size(r.page_size)?;
        let page = self.fleet.list_baselines(size, &r.page_token).await?;
        ok(pb::ListBaselinesResponse {
            baselines: page.items.into_iter().map(convert::baseline).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn get_baseline_version(
        &self,
        request: Request<pb::GetBaselineVersionRequest>,
    ) -> Reply<pb::BaselineVersion> {
        let r = request.into_inner();
        let version = VersionRef::parse("name", &r.name)?;
        let full = convert::full_view(r.view, true)?;
        ok(convert::baseline_version(
            self.fleet.baseline_version(&version, full).await?,
        ))
    }

    async fn list_baseline_versions(
        &self,
        request: Request<pb::ListBaselineVersionsRequest>,
    ) -> Reply<pb::ListBaselineVersionsResponse> {
        let r = request.into_inner();
        let baseline = names::baseline_id("parent", &r.parent)?;
        let full = convert::full_view(r.view, false)?;
        let mut size = domain::page_size(r.page_size)?;
        if full {
            size = size.min(MAX_FULL_PAGE_SIZE);
        }
        let page = self
            .fleet
            .list_baseline_versions(baseline, size, &r.page_token, full)
            .await?;
        ok(pb::ListBaselineVersionsResponse {
            versions: page
                .items
                .into_iter()
                .map(convert::baseline_version)
                .collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn assign_baseline(
        &self,
        request: Request<pb::AssignBaselineRequest>,
    ) -> Reply<pb::OrganizationalUnit> {
        let r = request.into_inner();
        let id = convert::ou("organizational_unit", &r.organizational_unit, false)?;
        let version = (!r.baseline_version.is_empty())
            .then(|| VersionRef::parse("baseline_version", &r.baseline_version))
            .transpose()?;
        let auto_rollout = r
            .auto_rollout
            .map(|s| convert::strategy(Some(s), "auto_rollout"))
            .transpose()?;
        ok(convert::organizational_unit(
            self.fleet
                .assign_baseline_with(&id, version, auto_rollout, &r.etag, &r.request_id)
                .await?,
        ))
    }

    async fn plan_rollout(
        &self,
        request: Request<pb::PlanRolloutRequest>,
    ) -> Reply<pb::RolloutPlan> {
        let r = request.into_inner();
        let version = (!r.baseline_version.is_empty())
            .then(|| VersionRef::parse("baseline_version", &r.baseline_version))
            .transpose()?;
        let selector = convert::selector(r.selector, "selector")?;
        let strategy = convert::strategy(r.strategy, "strategy")?;
        ok(convert::plan(
            self.fleet.plan_rollout(version, selector, strategy).await?,
        ))
    }

    async fn start_rollout(&self, request: Request<pb::StartRolloutRequest>) -> Reply<pb::Rollout> {
        let r = request.into_inner();
        if r.baseline_version.is_empty() {
            return Err(Error::invalid("baseline_version", "give the version to roll out").into());
        }
        let new = NewRollout {
            id: r.rollout_id,
            version: VersionRef::parse("baseline_version", &r.baseline_version)?,
            selector: convert::selector(r.selector, "selector")?,
            strategy: convert::strategy(r.strategy, "strategy")?,
            pipeline: r.pipeline,
            plan_digest: r.plan_digest,
            principal: convert::principal(r.principal),
        };
        ok(convert::rollout(
            self.fleet.start_rollout(new, &r.request_id).await?,
        ))
    }

    async fn get_rollout(&self, request: Request<pb::GetRolloutRequest>) -> Reply<pb::Rollout> {
        let r = request.into_inner();
        let id = names::rollout_id("name", &r.name)?;
        ok(convert::rollout(self.fleet.rollout(id).await?))
    }

    async fn list_rollouts(
        &self,
        request: Request<pb::ListRolloutsRequest>,
    ) -> Reply<pb::ListRolloutsResponse> {
        let r = request.into_inner();
        let size = domain::page_size(r.page_size)?;
        let baseline = (!r.baseline.is_empty())
            .then(|| names::baseline_id("baseline", &r.baseline))
            .transpose()?;
        let states = r
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| convert::rollout_state(*s, &format!("states[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let page = self
            .fleet
            .list_rollouts(baseline, &states, size, &r.page_token)
            .await?;
        ok(pb::ListRolloutsResponse {
            rollouts: page.items.into_iter().map(convert::rollout).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn list_drift(
        &self,
        request: Request<pb::ListDriftRequest>,
    ) -> Reply<pb::ListDriftResponse> {
        let r = request.into_inner();
        let size = domain::page_size(r.page_size)?;
        let ou = (!r.organizational_unit.is_empty())
            .then(|| convert::ou("organizational_unit", &r.organizational_unit, false))
            .transpose()?;
        let baseline = (!r.baseline.is_empty())
            .then(|| names::baseline_id("baseline", &r.baseline))
            .transpose()?;
        let states = r
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| convert::drift_state(*s, &format!("states[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let page = self
            .fleet
            .list_drift(ou.as_deref(), baseline, &states, size, &r.page_token)
            .await?;
        ok(pb::ListDriftResponse {
            accounts: page.items.into_iter().map(convert::account).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn resolve_targets(
        &self,
        request: Request<pb::ResolveTargetsRequest>,
    ) -> Reply<pb::ResolveTargetsResponse> {
        let r = request.into_inner();
        let planned = if r.rollout.is_empty() {
            let selector = convert::selector(r.selector, "selector")?;
            let strategy = convert::strategy(r.strategy, "strategy")?;
            self.fleet
                .resolve_targets(selector, strategy, &r.pipeline)
                .await?
        } else {
            let id = names::rollout_id("rollout", &r.rollout)?;
            names::check_pipeline("pipeline", &r.pipeline)?;
            self.fleet.rollout_targets(id, &r.pipeline).await?
        };
        let plan = convert::plan(planned);
        ok(pb::ResolveTargetsResponse {
            waves: plan.waves,
            active_freezes: plan.active_freezes,
            explanation: plan.explanation,
            plan_digest: plan.plan_digest,
        })
    }

    async fn create_freeze_window(
        &self,
        request: Request<pb::CreateFreezeWindowRequest>,
    ) -> Reply<pb::FreezeWindow> {
        let r = request.into_inner();
        let ou = convert::ou("parent", &r.parent, false)?;
        let w = r
            .freeze_window
            .ok_or_else(|| Error::invalid("freeze_window", "give the window"))?;
        let new = NewFreeze {
            ou,
            id: r.freeze_window_id,
            reason: w.reason,
            start_time: convert::time(w.start_time.as_ref(), "freeze_window.start_time")?,
            end_time: convert::time(w.end_time.as_ref(), "freeze_window.end_time")?,
            principal: convert::principal(r.principal),
        };
        ok(convert::freeze_window(
            self.fleet.create_freeze(new, &r.request_id).await?,
        ))
    }

    async fn list_freeze_windows(
        &self,
        request: Request<pb::ListFreezeWindowsRequest>,
    ) -> Reply<pb::ListFreezeWindowsResponse> {
        let r = request.into_inner();
        let ou = if r.parent == "organizationalUnits/-" {
            None
        } else {
            Some(convert::ou("parent", &r.parent, false)?)
        };
        let size = domain::page_size(r.page_size)?;
        let page = self
            .fleet
            .list_freezes(
                ou.as_deref(),
                r.include_inherited,
                r.include_ended,
                size,
                &r.page_token,
            )
            .await?;
        ok(pb::ListFreezeWindowsResponse {
            freeze_windows: page.items.into_iter().map(convert::freeze_window).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn delete_freeze_window(
        &self,
        request: Request<pb::DeleteFreezeWindowRequest>,
    ) -> Reply<()> {
        let r = request.into_inner();
        self.fleet.delete_freeze(&r.name, &r.etag).await?;
        ok(())
    }

    async fn override_freeze_window(
        &self,
        request: Request<pb::OverrideFreezeWindowRequest>,
    ) -> Reply<pb::FreezeWindow> {
        let r = request.into_inner();
        let grant = Grant {
            reason: r.reason,
            principal: convert::principal(r.principal),
            pipeline: r.pipeline,
            rollout: r.rollout,
            expire_time: r
                .expire_time
                .as_ref()
                .map(|t| convert::time(Some(t), "expire_time"))
                .transpose()?,
        };
        ok(convert::freeze_window(
            self.fleet
                .override_freeze(&r.name, grant, &r.request_id)
                .await?,
        ))
    }
}
