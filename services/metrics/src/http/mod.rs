//! The metrics service's HTTP port: the dashboard (a page, its script and
//! style, all served from the binary: nothing is fetched from the
//! internet), the JSON it reads, a server-sent event stream that tells it
//! new events were applied, and Prometheus `/metrics`.

mod dashboard;
mod prometheus;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::broadcast;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;

use crate::ingest::Stats;
use crate::store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct Http {
    pub store: Store,
    pub stats: Arc<Stats>,
    /// Fires after every applied batch.
    pub updates: broadcast::Sender<u64>,
}

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard.css");

pub fn router(http: Http) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/dashboard", get(dashboard_json))
        .route("/api/events", get(updates))
        .route("/metrics", get(prometheus::scrape))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(http)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn dashboard_json(
    State(http): State<Http>,
    Query(query): Query<dashboard::DashboardQuery>,
) -> Response {
    match dashboard::build(&http.store, &query).await {
        Ok(body) => Json(body).into_response(),
        Err(dashboard::Refused(status, message)) => (status, message).into_response(),
    }
}

/// `update` events, one per applied batch (coalesced for slow readers),
/// with a keep-alive comment every 15 seconds.
async fn updates(
    State(http): State<Http>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(http.updates.subscribe()).map(|batch| {
        // A lagging reader missed batches: one update covers them all.
        let n = batch.unwrap_or_default();
        Ok(Event::default().event("update").data(n.to_string()))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

fn bad_request(message: impl Into<String>) -> dashboard::Refused {
    dashboard::Refused(StatusCode::BAD_REQUEST, message.into())
}
