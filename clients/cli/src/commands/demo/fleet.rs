//! The demo's production accounts, vended through the fleet service: an OU,
//! a small vending pipeline whose one action records the new account, and
//! one production account per prod port (an account's region is its port).
//! Prod then deploys `fromFleet`, so its waves come from the fleet's plan.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use conveyor_api::common::v1 as common;
use conveyor_api::fleet::v1 as pb;
use conveyor_api::fleet::v1::fleet_service_client::FleetServiceClient;
use serde_json::{Value, json};
use tonic::Code;

use super::spec::Ports;
use crate::status::to_anyhow;

/// The OU the demo's production accounts live in.
pub const OU: &str = "demo-prod";
/// The pipeline that vends them.
pub const VENDING_PIPELINE: &str = "demo-vending";

fn account_id(i: usize) -> String {
    format!("shop-prod-{}", i + 1)
}

/// The vending pipeline: one action that says what it provisions.
pub fn vending_spec(repo: &Path) -> Value {
    json!({
        "apiVersion": "conveyor/v1",
        "kind": "Pipeline",
        "metadata": {"name": VENDING_PIPELINE, "project": "demo"},
        "spec": {
            "type": "account-fleet",
            "source": {"repository": repo.display().to_string()},
            // One execution per account, side by side: never superseded.
            "executionMode": "parallel",
            "stages": [{
                "name": "provision",
                "actions": [{
                    "name": "create-account",
                    "kind": "provision",
                    "run": "echo \"account $CONVEYOR_PARAM_ACCOUNT ($CONVEYOR_PARAM_ACCOUNT_TIER) in OU $CONVEYOR_PARAM_ACCOUNT_OU, regions $CONVEYOR_PARAM_ACCOUNT_REGIONS\"",
                }],
            }],
        },
    })
}

/// Creates the OU and one production account per prod port, and waits
/// until their vending executions made them ACTIVE; returns their ids.
pub async fn vend(endpoint: &str, ports: &Ports) -> anyhow::Result<Vec<String>> {
    let mut client = FleetServiceClient::new(conveyor_api::client::channel(endpoint)?);
    create_ou(&mut client, OU, "Demo production").await?;
    let mut ids = Vec::new();
    for (i, port) in ports.prod.iter().enumerate() {
        let id = account_id(i);
        let created = client
            .create_account(pb::CreateAccountRequest {
                account_id: id.clone(),
                account: Some(pb::Account {
                    display_name: format!("demo shop, prod copy on :{port}"),
                    owner: "demo-team".to_owned(),
                    organizational_unit: format!("organizationalUnits/{OU}"),
                    tier: common::Tier::Production as i32,
                    regions: vec![port.to_string()],
                    ..Default::default()
                }),
                vending_pipeline: format!("pipelines/{VENDING_PIPELINE}"),
                principal: Some(common::Principal {
                    id: super::AUTHOR.to_owned(),
                    groups: Vec::new(),
                }),
                request_id: format!("demo-vend-{id}-{port}"),
            })
            .await;
        match created {
            Ok(_) => {}
            Err(status) if status.code() == Code::AlreadyExists => {}
            Err(status) => return Err(to_anyhow(status)),
        }
        ids.push(id);
    }
    wait_active(&mut client, &ids).await?;
    Ok(ids)
}

/// Creates OU `id` under the root, unless it exists.
pub async fn create_ou(
    client: &mut FleetServiceClient<tonic::transport::Channel>,
    id: &str,
    display_name: &str,
) -> anyhow::Result<()> {
    let created = client
        .create_organizational_unit(pb::CreateOrganizationalUnitRequest {
            organizational_unit_id: id.to_owned(),
            organizational_unit: Some(pb::OrganizationalUnit {
                display_name: display_name.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    match created {
        Err(status) if status.code() != Code::AlreadyExists => Err(to_anyhow(status)),
        _ => Ok(()),
    }
}

/// Waits until the vending executions of `ids` made them ACTIVE.
pub async fn wait_active(
    client: &mut FleetServiceClient<tonic::transport::Channel>,
    ids: &[String],
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    for id in ids {
        loop {
            let account = client
                .get_account(pb::GetAccountRequest {
                    name: format!("accounts/{id}"),
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            match pb::AccountState::try_from(account.state) {
                Ok(pb::AccountState::Active) => break,
                Ok(pb::AccountState::ProvisioningFailed) => {
                    bail!("vending {id} failed: {}", account.state_reason)
                }
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{id} is still {}: {}", account.state, account.state_reason);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Turns prod's explicit waves into waves from the fleet: the demo's OU.
pub fn prod_from_fleet(local: &mut Value) -> anyhow::Result<()> {
    let prod = local["spec"]["stages"]
        .as_array_mut()
        .and_then(|stages| stages.iter_mut().find(|s| s["name"] == "prod"))
        .context("the example pipeline has no prod stage")?;
    let deployment = prod["deployment"]
        .as_object_mut()
        .context("the example's prod stage has no deployment")?;
    deployment.remove("waves");
    deployment.insert(
        "fromFleet".to_owned(),
        json!({"tier": "production", "organizationalUnit": OU}),
    );
    Ok(())
}
