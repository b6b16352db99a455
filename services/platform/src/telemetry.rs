//! Logs, traces and metrics. `tracing` everywhere; human-readable or JSON
//! logs on stderr; spans and metrics exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (metrics every
//! `OTEL_METRIC_EXPORT_INTERVAL` ms, 60 s by default; a service's
//! instruments come from `opentelemetry::global::meter`); W3C trace context
//! read from and written to gRPC metadata, so one trace follows a change
//! across services.

use std::collections::HashMap;

use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Flushes and stops the exporters when dropped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
        if let Some(meters) = self.meters.take()
            && let Err(e) = meters.shutdown()
        {
            eprintln!("telemetry: flushing metrics failed: {e}");
        }
    }
}

/// Installs the global subscriber. Call once, inside the tokio runtime.
///
/// The filter comes from `RUST_LOG` (default `info`). Spans go to OTLP only
/// when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; h2, hyper, tonic and tower are
/// kept out of the exported traces so the exporter does not trace itself.
pub fn init(service: &'static str, format: LogFormat) -> Telemetry {
    init_with_filter(service, format, "info")
}

/// [`init`] with `default_filter` where RUST_LOG is not set.
pub fn init_with_filter(
    service: &'static str,
    format: LogFormat,
    default_filter: &'static str,
) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let env_filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let exporting = endpoint.map(|endpoint| otlp_providers(service, &endpoint));
    let (provider, meters) = match exporting {
        Some(Ok((provider, meters))) => (Some(provider), Some(meters)),
        Some(Err(e)) => {
            eprintln!("telemetry: OTLP export disabled: {e}");
            (None, None)
        }
        None => (None, None),
    };
    if let Some(meters) = &meters {
        global::set_meter_provider(meters.clone());
    }
    let otel = provider.as_ref().map(|p| {
        global::set_tracer_provider(p.clone());
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .with_filter(EnvFilter::new(
                "info,h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,opentelemetry=off",
            ))
    });
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(env_filter()))
        .with(otel)
        .try_init();
    if installed.is_err() {
        // Tests and `conveyor dev` start several services in one process.
        tracing::debug!("a global subscriber is already installed");
    }
    Telemetry { provider, meters }
}

fn resource(service: &'static str) -> Resource {
    match std::env::var("OTEL_SERVICE_NAME") {
        // The builder's environment detector already applied it.
        Ok(name) if !name.is_empty() => Resource::builder().build(),
        _ => Resource::builder().with_service_name(service).build(),
    }
}

/// The span and metric exporters to `endpoint` (OTLP over gRPC).
fn otlp_providers(
    service: &'static str,
    endpoint: &str,
) -> Result<(SdkTracerProvider, SdkMeterProvider), opentelemetry_otlp::ExporterBuildError> {
    let timeout = std::time::Duration::from_secs(5);
    let spans = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(timeout)
        .build()?;
    let metrics = MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(timeout)
        .build()?;
    Ok((
        SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource(service))
            .build(),
        SdkMeterProvider::builder()
            .with_periodic_exporter(metrics)
            .with_resource(resource(service))
            .build(),
    ))
}

/// The span of one incoming gRPC call, child of the caller's trace context.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let parent =
        global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
    let span = tracing::info_span!("grpc", rpc = %request.uri().path());
    if let Err(e) = span.set_parent(parent) {
        tracing::debug!(error = ?e, "cannot attach the caller's trace context");
    }
    span
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
}

/// The current trace context as a string map, for queue messages and events.
pub fn current_context() -> HashMap<String, String> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier
}

/// Makes `span` a child of the W3C `traceparent` (the trace a record was
/// started in); nothing when it is empty or malformed.
pub fn follow(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = global::get_text_map_propagator(|p| p.extract(&carrier));
    if let Err(e) = span.set_parent(parent) {
        tracing::debug!(error = ?e, "cannot attach the stored trace context");
    }
}

/// The current span's W3C traceparent; empty when nothing is traced.
pub fn traceparent() -> String {
    current_context().remove("traceparent").unwrap_or_default()
}

/// A tonic interceptor that propagates the trace context on every call.
pub fn propagate(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    inject(request.metadata_mut());
    Ok(request)
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::AsciiMetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::AsciiMetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}
