//! What the worker adds so a running saga can be seen from outside: the search attributes check
//! and the Prometheus endpoint (SDK metrics and the services' own, see
//! [`saga_activities::metrics`]).

use anyhow::Context as _;
use saga_workflows::visibility::SEARCH_ATTRIBUTES;
use std::{net::SocketAddr, sync::Arc};
use temporalio_client::Client;
use temporalio_common::{
    protos::temporal::api::{
        enums::v1::IndexedValueType, operatorservice::v1::ListSearchAttributesRequest,
    },
    telemetry::{
        PrometheusExporterOptions, TelemetryOptions, metrics::CoreMeter,
        start_prometheus_metric_exporter,
    },
};

/// Fails with the commands that register them when the server lacks the saga's search
/// attributes: a saga upserting an unknown attribute fails its workflow task again and again, so
/// it is better not to start polling at all.
pub async fn check_search_attributes(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let response = client
        .connection()
        .operator_service()
        .list_search_attributes(tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await
        .context("listing the namespace's search attributes")?
        .into_inner();
    let mut problems = Vec::new();
    let mut commands = Vec::new();
    for (name, kind) in SEARCH_ATTRIBUTES {
        let registered = response
            .custom_attributes
            .get(name)
            .and_then(|t| IndexedValueType::try_from(*t).ok())
            .map(|t| {
                t.as_str_name()
                    .trim_start_matches("INDEXED_VALUE_TYPE_")
                    .to_lowercase()
            });
        match registered {
            Some(t) if t == kind.to_lowercase() => continue,
            Some(t) => problems.push(format!(
                "{name} is registered as {t}, the saga needs {kind}"
            )),
            None => problems.push(format!("{name} ({kind}) is not registered")),
        }
        commands.push(format!(
            "temporal operator search-attribute create --namespace {namespace} --name {name} --type {kind}"
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "the Temporal server lacks the search attributes the saga sets ({}); register them and \
         start the worker again:\n  {}\n(a dev server registers them at start with \
         `temporal server start-dev --search-attribute OrderId=Keyword --search-attribute \
         SagaOutcome=Keyword`)",
        problems.join("; "),
        commands.join("\n  ")
    )
}

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
