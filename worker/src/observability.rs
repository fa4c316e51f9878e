//! What the worker adds so a running saga can be seen from outside: the Prometheus endpoint (SDK
//! metrics and the services' own, see [`saga_activities::metrics`]). The search attributes the
//! saga sets are registered by [`crate::search_attributes`].

use anyhow::Context as _;
use std::{net::SocketAddr, sync::Arc};
use temporalio_common::telemetry::{
    PrometheusExporterOptions, TelemetryOptions, metrics::CoreMeter,
    start_prometheus_metric_exporter,
};

/// A started Prometheus endpoint.
pub struct Metrics {
    pub address: SocketAddr,
    pub meter: Arc<dyn CoreMeter>,
}

/// Serves `/metrics` on `0.0.0.0:port` and records the services' metrics there.
pub fn start_metrics(port: u16) -> anyhow::Result<Metrics> {
    let options = PrometheusExporterOptions::builder()
        .socket_addr(SocketAddr::from(([0, 0, 0, 0], port)))
        .build();
    let server = start_prometheus_metric_exporter(options)
        .with_context(|| format!("serving metrics on port {port}"))?;
    let meter: Arc<dyn CoreMeter> = server.meter;
    saga_activities::metrics::install(meter.clone());
    Ok(Metrics {
        address: server.bound_addr,
        meter,
    })
}

/// The SDK's telemetry: its metrics go to `metrics` when given; its logs go through the
/// process's own `tracing` subscriber.
pub fn telemetry_options(metrics: Option<&Metrics>) -> TelemetryOptions {
    match metrics {
        Some(m) => TelemetryOptions::builder().metrics(m.meter.clone()).build(),
        None => TelemetryOptions::default(),
    }
}
