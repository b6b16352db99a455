//! Fleets on every backend, and a fleet service on a real socket.

use std::collections::BTreeMap;

use conveyor_api::fleet::v1::fleet_service_client::FleetServiceClient;
use conveyor_fleet::domain::{Fleet, NewAccount, NewBaselineVersion};
use conveyor_fleet::error::Error;
use conveyor_fleet::model::{AccountState, BaselineContent, BaselineFile, Principal, Tier};
use conveyor_fleet::names::VersionRef;
use conveyor_fleet::store::Store;
pub use conveyor_platform::testing::Backend;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub async fn backends() -> Vec<Backend> {
    conveyor_platform::testing::backends("fleet").await
}

pub async fn fleet(backend: &Backend) -> Fleet {
    fleet_and_store(backend).await.0
}

/// A fleet, and its store to play the part of what the tracker records
/// from executions (there is no execution service here).
pub async fn fleet_and_store(backend: &Backend) -> (Fleet, Store) {
    let store = Store::connect(&backend.url, 4).await.unwrap();
    let fleet = Fleet::new(
        store.clone(),
        std::sync::Arc::new(conveyor_fleet::executions::NoExecutions),
    );
    (fleet, store)
}

/// Runs `test` on a fresh fleet on every backend.
#[macro_export]
macro_rules! on_every_backend {
    ($name:ident, |$fleet:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            for backend in $crate::support::backends().await {
                eprintln!("-- {} on {}", stringify!($name), backend.name);
                let $fleet = $crate::support::fleet(&backend).await;
                $body
                backend.cleanup().await;
            }
        }
    };
}

pub async fn ou(fleet: &Fleet, parent: &str, id: &str) {
    fleet.create_ou(parent, id, "", "").await.unwrap();
}

/// An ACTIVE account (vending recorded as done).
pub async fn active_account(fleet: &Fleet, id: &str, ou: &str, tier: Tier, regions: &[&str]) {
    requested_account(fleet, id, ou, tier, regions, &[]).await;
    fleet
        .record_provisioning(id, AccountState::Active, "provisioned", "")
        .await
        .unwrap();
}

pub async fn requested_account(
    fleet: &Fleet,
    id: &str,
    ou: &str,
    tier: Tier,
    regions: &[&str],
    tags: &[(&str, &str)],
) {
    fleet
        .create_account(new_account(id, ou, tier, regions, tags), "")
        .await
        .unwrap();
}

pub fn new_account(
    id: &str,
    ou: &str,
    tier: Tier,
    regions: &[&str],
    tags: &[(&str, &str)],
) -> NewAccount {
    NewAccount {
        id: id.to_owned(),
        display_name: String::new(),
        owner: "platform-team".to_owned(),
        ou: ou.to_owned(),
        tier,
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        principal: Principal {
            id: "alice".to_owned(),
            groups: vec![],
        },
        vending_pipeline: String::new(),
    }
}

pub fn content(marker: &str) -> BaselineContent {
    BaselineContent {
        files: vec![
            BaselineFile {
                path: "guardrails/policy.json".to_owned(),
                content: format!("{{\"marker\": \"{marker}\"}}").into_bytes(),
                size: 0,
                executable: false,
            },
            BaselineFile {
                path: "apply.sh".to_owned(),
                content: b"echo apply".to_vec(),
                size: 0,
                executable: true,
            },
        ],
        apply_command: "sh apply.sh".to_owned(),
        check_command: "true".to_owned(),
        timeout: std::time::Duration::ZERO,
    }
}

pub async fn baseline_version(fleet: &Fleet, baseline: &str, marker: &str) -> VersionRef {
    let new = NewBaselineVersion {
        description: "guardrails".to_owned(),
        content: content(marker),
        author: "alice".to_owned(),
        message: marker.to_owned(),
    };
    fleet
        .create_baseline_version(baseline, new, "")
        .await
        .unwrap()
        .0
        .version
}

/// The field an INVALID_ARGUMENT error names.
pub fn invalid_field(e: Error) -> String {
    match e {
        Error::InvalidArgument { field, .. } => field,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

/// A fleet service on a real socket.
pub struct Server {
    pub client: FleetServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub async fn start(database_url: &str) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = conveyor_fleet::Config {
            database_url: database_url.to_owned(),
            max_connections: 4,
            ..conveyor_fleet::Config::default()
        };
        config.server.listen = addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(conveyor_fleet::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let url = format!("http://{addr}");
        let mut health = tonic_health::pb::health_client::HealthClient::new(
            conveyor_api::client::channel(&url).unwrap(),
        );
        for _ in 0..200 {
            let request = tonic_health::pb::HealthCheckRequest {
                service: "conveyor.fleet.v1.FleetService".into(),
            };
            if let Ok(r) = health.check(request).await
                && r.into_inner().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            {
                let client = FleetServiceClient::new(conveyor_api::client::channel(&url).unwrap());
                return Server {
                    client,
                    stop: Some(stop),
                    task,
                };
            }
            assert!(!task.is_finished(), "server exited: {:?}", task.await);
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server did not become healthy");
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}
