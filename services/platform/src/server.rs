//! gRPC server assembly, done once for every service: health, reflection,
//! request timeout, a global concurrency limit with load shedding, trace
//! context from request metadata, message-size limits, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tonic::service::{Routes, RoutesBuilder};
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::telemetry;

/// Settings every gRPC server shares.
/// Flattened into each service's configuration, so `CONVEYOR_LISTEN` sets
/// `listen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Longest a unary call may run, in seconds (streams are not limited).
    pub request_timeout_secs: u64,
    /// Requests handled at once; beyond it calls fail fast with RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// After SIGTERM: seconds to keep serving while health reports NOT_SERVING.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            request_timeout_secs: 30,
            concurrency_limit: 1024,
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace_secs: 0,
        }
    }
}

/// The gRPC services of one process, with their health.
pub struct Services {
    routes: RoutesBuilder,
    health: HealthReporter,
    /// Names of the services added, to report NOT_SERVING on shutdown.
    names: Vec<&'static str>,
}

impl Services {
    /// Starts a set with health (overall status SERVING) and reflection over
    /// every Conveyor contract.
    pub fn new() -> Result<Self, tonic_reflection::server::Error> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        routes.add_service(reflection().build_v1()?);
        routes.add_service(reflection().build_v1alpha()?);
        Ok(Services {
            routes,
            health,
            names: Vec::new(),
        })
    }

    /// Adds a service and marks it SERVING.
    pub async fn add<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.health.set_serving::<S>().await;
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    pub fn into_routes(self) -> Routes {
        self.routes.routes()
    }
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(conveyor_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Serves `services` on `listener` until `shutdown` completes, then lets
/// in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    config: &ServerConfig,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let layer = tower::ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(config.concurrency_limit)
        .into_inner();
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    // On shutdown, report NOT_SERVING first and keep serving for the grace
    // period, so load balancers stop routing here before the listener closes.
    let (health, names) = (services.health.clone(), services.names.clone());
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let drained = async move {
        shutdown.await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        for name in names {
            health
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        if !grace.is_zero() {
            tracing::info!(grace_secs = grace.as_secs(), "draining before shutdown");
            tokio::time::sleep(grace).await;
        }
    };
    Server::builder()
        .timeout(Duration::from_secs(config.request_timeout_secs))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .trace_fn(telemetry::server_span)
        .layer(layer)
        .add_routes(services.into_routes())
        .serve_with_incoming_shutdown(incoming, drained)
        .await
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
