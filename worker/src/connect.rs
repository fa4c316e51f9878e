//! Connecting to Temporal from the standard settings: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
//! or a `temporal.toml` profile (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`), as every Temporal
//! SDK and the `temporal` CLI read them.

use anyhow::Context as _;
use std::time::Duration;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression,
    envconfig::LoadClientConfigProfileOptions,
};

/// The connection settings, before connecting.
pub fn options() -> anyhow::Result<(ConnectionOptions, ClientOptions)> {
    let (mut connection, client) = ClientOptions::load_from_config(
        LoadClientConfigProfileOptions::default(),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "reading the Temporal connection settings (TEMPORAL_ADDRESS, temporal.toml): {e}"
        )
    })?;
    connection.grpc_compression = grpc_compression_from_env()?;
    let mut client = client;
    client.data_converter = crate::encryption::data_converter_from_env()?;
    Ok((connection, client))
}

fn grpc_compression_from_env() -> anyhow::Result<GrpcCompression> {
    grpc_compression(std::env::var("SAGA_GRPC_COMPRESSION").ok().as_deref())
}

/// `SAGA_GRPC_COMPRESSION`: `none` (the default here) or `gzip` (the SDK's default).
///
/// A saga's messages are a few hundred bytes; gzip saves nothing on them but costs a fresh
/// compressor per message on both ends, which docs/performance-history.md measured as a large share of the
/// worker's CPU. Turn it on where bytes cost more than CPU (a metered WAN link).
fn grpc_compression(value: Option<&str>) -> anyhow::Result<GrpcCompression> {
    match value.map(str::trim) {
        None | Some("" | "none") => Ok(GrpcCompression::None),
        Some("gzip") => Ok(GrpcCompression::Gzip),
        Some(other) => {
            anyhow::bail!("SAGA_GRPC_COMPRESSION: expected `none` or `gzip`, got `{other}`")
        }
    }
}

/// Connects once.
pub async fn connect() -> anyhow::Result<Client> {
    let (conn_opts, client_opts) = options()?;
    let target = conn_opts.target.to_string();
    let connection = Connection::connect(conn_opts)
        .await
        .with_context(|| format!("connecting to the Temporal server at {target}"))?;
    Ok(Client::new(connection, client_opts)?)
}

/// Connects, retrying with backoff until the server answers: a worker may start before its
/// server (docker compose, systemd), and should simply wait for it. A certificate problem is
/// not waited out: it fails at once, saying which setting to fix.
pub async fn connect_with_retry() -> anyhow::Result<Client> {
    let mut delay = Duration::from_millis(500);
    let client_certificate = options()?
        .0
        .tls_options
        .is_some_and(|tls| tls.client_tls_options.is_some());
    loop {
        match connect().await {
            Ok(client) => return Ok(client),
            Err(e) => {
                if let Some(reason) = crate::connection_errors::permanent(&e, client_certificate) {
                    return Err(e.context(reason));
                }
                tracing::warn!("{e:#}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Connects to an explicit address (tests, tools that manage their own server).
pub async fn connect_to(address: &str, namespace: &str) -> anyhow::Result<Client> {
    connect_to_with(address, namespace, Default::default()).await
}

/// [`connect_to`] with a data converter of the caller's (tests of payload encryption).
pub async fn connect_to_with(
    address: &str,
    namespace: &str,
    data_converter: temporalio_common::data_converters::DataConverter,
) -> anyhow::Result<Client> {
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let mut options = ConnectionOptions::new(url.parse::<temporalio_client::Url>()?).build();
    options.grpc_compression = grpc_compression_from_env()?;
    let connection = Connection::connect(options)
        .await
        .with_context(|| format!("connecting to the Temporal server at {address}"))?;
    Ok(Client::new(
        connection,
        ClientOptions::new(namespace.to_owned())
            .data_converter(data_converter)
            .build(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_off_unless_asked_for() {
        assert_eq!(grpc_compression(None).unwrap(), GrpcCompression::None);
        assert_eq!(
            grpc_compression(Some("none")).unwrap(),
            GrpcCompression::None
        );
        assert_eq!(
            grpc_compression(Some("gzip")).unwrap(),
            GrpcCompression::Gzip
        );
        let err = grpc_compression(Some("zstd")).unwrap_err().to_string();
        assert!(
            err.contains("SAGA_GRPC_COMPRESSION") && err.contains("zstd"),
            "{err}"
        );
    }
}
