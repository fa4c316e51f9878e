//! Payload encryption wired into the `saga` binary (the codec itself is the `saga-codec` crate).
//!
//! | piece                          | what it does here                                          |
//! |--------------------------------|------------------------------------------------------------|
//! | [`data_converter_from_env`]    | the data converter of every client and worker of `saga`    |
//! | [`encrypts`]                   | whether a client encrypts (so `saga start` keeps the order |
//! |                                | out of the plain workflow summary)                          |
//! | [`decode_history`]             | a history as the keys' holder reads it: payloads and       |
//! |                                | failure messages decrypted, for `saga start --wait` & co.  |
//! | [`CodecServerArgs`] / [`serve`]| `saga codec-server`                                        |
//!
//! Encryption is on when `SAGA_ENCRYPTION_KEYS_FILE` (or `SAGA_ENCRYPTION_KEYS`) holds keys; a
//! malformed key stops the command at start, naming the line.

use anyhow::Context as _;
use saga_codec::{CodecServerConfig, EncryptionCodec, KeyRing};
use std::net::{IpAddr, SocketAddr};
use temporalio_client::Client;
use temporalio_common::{
    data_converters::{DataConverter, SerializationContextData, WorkflowSerializationContext},
    payload_visitor::decode_payloads,
    protos::temporal::api::{
        common::v1::Payload, failure::v1::Failure, history::v1::HistoryEvent,
        history::v1::history_event::Attributes,
    },
};

/// The keys of this process (`None`: encryption off), with errors that name the setting.
pub fn keys_from_env() -> anyhow::Result<Option<KeyRing>> {
    KeyRing::from_env().context("payload encryption keys")
}

/// The data converter for this process's settings.
pub fn data_converter_from_env() -> anyhow::Result<DataConverter> {
    Ok(saga_codec::data_converter(keys_from_env()?))
}

/// One line for the worker's start-up log.
pub fn describe(keys: Option<&KeyRing>) -> String {
    match keys {
        Some(keys) => format!(
            "on: encrypting with key `{}`, decrypting with {:?}",
            keys.encrypting().id(),
            keys.ids()
        ),
        None => "off (set SAGA_ENCRYPTION_KEYS_FILE to encrypt payloads)".to_owned(),
    }
}

/// True when `client` encrypts what it sends: its codec changes a plain payload.
///
/// The client's options do not say which codec they hold, so this asks the codec itself.
pub async fn encrypts(client: &Client) -> bool {
    let probe = Payload {
        metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
        data: b"null".to_vec(),
        ..Default::default()
    };
    client
        .options()
        .data_converter
        .codec()
        .encode(&workflow_context(), vec![probe.clone()])
        .await
        .is_ok_and(|out| out.first() != Some(&probe))
}

fn workflow_context() -> SerializationContextData {
    SerializationContextData::Workflow(WorkflowSerializationContext::new())
}

/// Decrypts every payload of `events` that `converter`'s keys can open and restores the failure
/// messages that encryption moved into encoded attributes. An event it cannot decode stays as
/// the server holds it (its failure reads `Encoded failure`); the count of those is returned.
pub async fn decode_history<'a>(
    converter: &DataConverter,
    events: impl IntoIterator<Item = &'a mut HistoryEvent>,
) -> usize {
    let mut undecodable = 0;
    for event in events {
        let mut decoded = event.clone();
        if decode_payloads(&mut decoded, converter.codec(), &workflow_context())
            .await
            .is_ok()
        {
            restore_failure_messages(&mut decoded);
            *event = decoded;
        } else {
            undecodable += 1;
        }
    }
    undecodable
}

fn restore_failure_messages(event: &mut HistoryEvent) {
    let failure = match &mut event.attributes {
        Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => a.failure.as_mut(),
        Some(Attributes::ActivityTaskFailedEventAttributes(a)) => a.failure.as_mut(),
        Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => a.failure.as_mut(),
        Some(Attributes::MarkerRecordedEventAttributes(a)) => a.failure.as_mut(),
        _ => None,
    };
    if let Some(failure) = failure {
        restore_failure_message(failure);
    }
}

/// `Encoded failure` back to the message it hides (the failure converter's JSON
/// `{message, stack_trace}`), down the cause chain.
fn restore_failure_message(failure: &mut Failure) {
    #[derive(serde::Deserialize)]
    struct Attributes {
        message: String,
        #[serde(default)]
        stack_trace: String,
    }
    if let Some(encoded) = &failure.encoded_attributes
        && encoded.metadata.get("encoding").map(Vec::as_slice) == Some(b"json/plain")
        && let Ok(attributes) = serde_json::from_slice::<Attributes>(&encoded.data)
    {
        failure.message = attributes.message;
        failure.stack_trace = attributes.stack_trace;
        failure.encoded_attributes = None;
    }
    if let Some(cause) = failure.cause.as_deref_mut() {
        restore_failure_message(cause);
    }
}

/// `saga codec-server`: the settings that are not secrets (keys and token come only from the
/// environment).
#[derive(Debug, Clone, clap::Args)]
pub struct CodecServerArgs {
    /// Port to listen on.
    #[arg(long, env = "SAGA_CODEC_PORT", default_value_t = 8081)]
    pub port: u16,
    /// Address to listen on. The default serves this machine only; anything else exposes
    /// decryption to the network, so put TLS and a token in front of it.
    #[arg(long, env = "SAGA_CODEC_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Browser origins allowed to call it (the Web UI's address, scheme and port; repeat the
    /// flag or separate with commas).
    #[arg(
        long = "cors-origin",
        env = "SAGA_CODEC_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8233,http://127.0.0.1:8233"
    )]
    pub cors_origins: Vec<String>,
}

/// The bearer token the codec server demands, from `SAGA_CODEC_AUTH_TOKEN`.
pub const TOKEN_ENV: &str = "SAGA_CODEC_AUTH_TOKEN";

/// Serves the codec server protocol until SIGINT or SIGTERM.
pub async fn serve(
    args: &CodecServerArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let keys = keys_from_env()?.context(
        "the codec server needs the encryption keys: set SAGA_ENCRYPTION_KEYS_FILE to the keys \
         file of the workers",
    )?;
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let key_ids: Vec<String> = keys.ids().into_iter().map(str::to_owned).collect();
    let app = saga_codec::router(CodecServerConfig {
        codec: EncryptionCodec::new(Some(keys)),
        token: token.clone(),
        cors_origins: args.cors_origins.clone(),
    })
    .map_err(|e| anyhow::anyhow!("--cors-origin: {e}"))?;
    let address = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    if !args.host.is_loopback() && token.is_none() {
        tracing::warn!(
            %address,
            "the codec server listens beyond this machine without a token: anyone who reaches it \
             can decrypt; set {TOKEN_ENV}"
        );
    }
    tracing::info!(
        url = format!("http://{address}"),
        keys = ?key_ids,
        cors_origins = ?args.cors_origins,
        token = token.is_some(),
        "codec server ready"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the codec server stopped")?;
    tracing::info!("codec server stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::protos::temporal::api::history::v1::WorkflowExecutionFailedEventAttributes;

    #[tokio::test]
    async fn a_history_reads_decrypted_with_the_key_and_as_stored_without() {
        let keys = KeyRing::new(vec![saga_codec::Key::new("k1", &[3; 32])]);
        let with_key = saga_codec::data_converter(keys);
        let failure = with_key.to_failure(
            &SerializationContextData::None,
            temporalio_common::error::OutgoingError::Workflow(
                temporalio_common::error::OutgoingWorkflowError::Application(Box::new(
                    temporalio_common::error::ApplicationFailure::builder(
                        "saga for order 1ae4 compensated",
                    )
                    .type_name("SagaFailed".to_owned())
                    .build(),
                )),
            ),
        );
        let mut event = HistoryEvent {
            attributes: Some(Attributes::WorkflowExecutionFailedEventAttributes(
                WorkflowExecutionFailedEventAttributes {
                    failure: Some(failure),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        // What the worker's completion encoding does before the server stores it.
        temporalio_common::payload_visitor::encode_payloads(
            &mut event,
            with_key.codec(),
            &workflow_context(),
        )
        .await
        .unwrap();
        let message = |e: &HistoryEvent| match &e.attributes {
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                a.failure.as_ref().unwrap().message.clone()
            }
            _ => unreachable!(),
        };

        let mut without = vec![event.clone()];
        assert_eq!(
            decode_history(&saga_codec::data_converter(None), &mut without).await,
            1
        );
        assert_eq!(message(&without[0]), "Encoded failure");

        let mut with = vec![event];
        assert_eq!(decode_history(&with_key, &mut with).await, 0);
        assert_eq!(message(&with[0]), "saga for order 1ae4 compensated");
    }
}
