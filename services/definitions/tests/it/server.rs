//! What every Conveyor server does: health, reflection, draining on shutdown.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::Server;

async fn health_of(addr: std::net::SocketAddr, service: &str) -> Result<i32, tonic::Status> {
    let channel = conveyor_api::client::channel(&format!("http://{addr}")).expect("channel");
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(response.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&format!("sqlite://{}", dir.path().join("r.db").display())).await;
    let channel =
        conveyor_api::client::channel(&format!("http://{}", server.addr)).expect("channel");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = stream
        .message()
        .await
        .expect("message")
        .expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "conveyor.definitions.v1.PipelineService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_not_serving_while_draining() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("d.db").display());
    let mut server = Server::start_with(&url, |c| c.server.shutdown_grace_secs = 2).await;
    let addr = server.addr;
    assert_eq!(
        health_of(addr, "").await.expect("health"),
        ServingStatus::Serving as i32
    );
    server.begin_stop();
    let mut status = ServingStatus::Serving as i32;
    for _ in 0..100 {
        status = health_of(addr, "conveyor.definitions.v1.PipelineService")
            .await
            .expect("still serving while draining");
        if status == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, ServingStatus::NotServing as i32);
    server.stop().await;
    assert!(
        health_of(addr, "").await.is_err(),
        "the listener is closed after the grace period"
    );
}
