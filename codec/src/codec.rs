//! The AES-256-GCM payload codec: what leaves this process for the Temporal server is ciphertext.
//!
//! | direction | payload in                         | payload out                                   |
//! |-----------|------------------------------------|-----------------------------------------------|
//! | encode    | any (`json/plain`, `binary/null`…) | `binary/encrypted`, key id in the metadata    |
//! | encode    | already `binary/encrypted`         | unchanged (never encrypted twice)             |
//! | decode    | `binary/encrypted`, known key id   | the original payload, metadata and all        |
//! | decode    | `binary/encrypted`, unknown key    | an error naming the key id (nothing guessed)  |
//! | decode    | not encrypted                      | unchanged: orders started without the codec   |
//!
//! The whole original payload (its metadata with the encoding, and its data) is serialized as
//! protobuf and sealed, so decoding restores it byte for byte. Each payload gets a fresh random
//! 96-bit nonce, stored in front of the ciphertext; GCM's tag makes any change to the stored
//! bytes a decode error rather than wrong data. The layout (`binary/encrypted`,
//! `encryption-key-id`, nonce ‖ ciphertext ‖ tag over the marshalled payload) is the one of
//! Temporal's encryption samples in the other SDKs.
//!
//! With no keys the codec still runs, as a guard: it passes plain payloads through and refuses
//! encrypted ones with a clear error, so a worker started without its keys fails its workflow
//! tasks (logged, retried by the server) instead of handing ciphertext to the workflow as input.

use crate::keys::KeyRing;
use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead as _, AeadCore as _, OsRng},
};
use futures_util::{FutureExt as _, future::BoxFuture};
use prost::Message as _;
use std::sync::Arc;
use temporalio_common::{
    data_converters::{
        DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError,
        PayloadConverter, SerializationContextData,
    },
    protos::temporal::api::common::v1::Payload,
};

/// The `encoding` of an encrypted payload.
pub const ENCRYPTED_ENCODING: &str = "binary/encrypted";
/// Metadata key naming the key that sealed the payload.
pub const KEY_ID_METADATA: &str = "encryption-key-id";
/// Metadata key naming the cipher, so a future cipher can sit beside this one.
pub const CIPHER_METADATA: &str = "encryption-cipher";
/// The only cipher this codec writes and reads.
pub const CIPHER: &str = "AES256-GCM";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a payload could not be decoded. Messages name keys and encodings, never payload content.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(
        "a payload is encrypted with key `{key_id}`, but no encryption keys are configured \
         (set SAGA_ENCRYPTION_KEYS_FILE)"
    )]
    NoKeys { key_id: String },
    #[error(
        "a payload is encrypted with key `{key_id}`, which is not among the configured keys \
         ({known}); add it to the keys file"
    )]
    UnknownKey { key_id: String, known: String },
    #[error("an encrypted payload has no `{KEY_ID_METADATA}` metadata")]
    NoKeyId,
    #[error("an encrypted payload uses cipher `{0}`; this codec reads only {CIPHER}")]
    UnknownCipher(String),
    #[error(
        "a payload encrypted with key `{key_id}` does not decrypt: it was altered, or the key \
         under that id is not the one that encrypted it"
    )]
    Tampered { key_id: String },
    #[error("a payload encrypted with key `{key_id}` decrypts to something that is not a payload")]
    NotAPayload { key_id: String },
    #[error("encryption failed")]
    Encrypt,
}

/// Encrypts and decrypts payloads with a [`KeyRing`]; with no ring, a guard (see the module
/// documentation).
#[derive(Debug, Clone, Default)]
pub struct EncryptionCodec {
    keys: Option<Arc<KeyRing>>,
}

impl EncryptionCodec {
    pub fn new(keys: Option<KeyRing>) -> Self {
        Self {
            keys: keys.map(Arc::new),
        }
    }

    /// The keys, when encryption is on.
    pub fn keys(&self) -> Option<&KeyRing> {
        self.keys.as_deref()
    }

    /// Seals one payload with the encrypting key (or passes it through with no keys).
    pub fn encrypt(&self, payload: Payload) -> Result<Payload, CodecError> {
        let Some(keys) = &self.keys else {
            return Ok(payload);
        };
        if encoding(&payload) == Some(ENCRYPTED_ENCODING.as_bytes()) {
            return Ok(payload);
        }
        let key = keys.encrypting();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher
            .encrypt(&nonce, payload.encode_to_vec().as_slice())
            .map_err(|_| CodecError::Encrypt)?;
        let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        Ok(Payload {
            metadata: [
                ("encoding", ENCRYPTED_ENCODING.as_bytes()),
                (KEY_ID_METADATA, key.id.as_bytes()),
                (CIPHER_METADATA, CIPHER.as_bytes()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_vec()))
            .collect(),
            data,
            ..Default::default()
        })
    }

    /// Opens one payload; plain payloads pass through.
    pub fn decrypt(&self, payload: Payload) -> Result<Payload, CodecError> {
        if encoding(&payload) != Some(ENCRYPTED_ENCODING.as_bytes()) {
            return Ok(payload);
        }
        let key_id = payload
            .metadata
            .get(KEY_ID_METADATA)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or(CodecError::NoKeyId)?;
        if let Some(cipher) = payload.metadata.get(CIPHER_METADATA)
            && cipher.as_slice() != CIPHER.as_bytes()
        {
            return Err(CodecError::UnknownCipher(
                String::from_utf8_lossy(cipher).into_owned(),
            ));
        }
        let Some(keys) = &self.keys else {
            return Err(CodecError::NoKeys { key_id });
        };
        let Some(key) = keys.get(&key_id) else {
            return Err(CodecError::UnknownKey {
                known: keys.ids().join(", "),
                key_id,
            });
        };
        if payload.data.len() < NONCE_LEN + TAG_LEN {
            return Err(CodecError::Tampered { key_id });
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CodecError::Tampered {
                key_id: key_id.clone(),
            })?;
        Payload::decode(plain.as_slice()).map_err(|_| CodecError::NotAPayload { key_id })
    }

    /// [`Self::encrypt`] over a batch.
    pub fn encrypt_all(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.into_iter().map(|p| self.encrypt(p)).collect()
    }

    /// [`Self::decrypt`] over a batch.
    pub fn decrypt_all(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.into_iter().map(|p| self.decrypt(p)).collect()
    }
}

fn encoding(payload: &Payload) -> Option<&[u8]> {
    payload.metadata.get("encoding").map(Vec::as_slice)
}

fn conversion_error(e: CodecError) -> PayloadConversionError {
    PayloadConversionError::EncodingError(Box::new(e))
}

impl PayloadCodec for EncryptionCodec {
    // AES-GCM over a few hundred bytes takes microseconds: the work is done before the future
    // is returned rather than handed to another thread.
    fn encode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let result = self.encrypt_all(payloads).map_err(conversion_error);
        async move { result }.boxed()
    }

    fn decode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let result = self.decrypt_all(payloads).map_err(conversion_error);
        async move { result }.boxed()
    }
}

/// The data converter of every client and worker of the saga.
///
/// With keys, payloads are encrypted and failure messages and stack traces move into an encoded
/// (so encrypted) attribute: the server keeps only `Encoded failure`, the failure's type
/// (`SagaFailed`, `ErrProcessPayment`…) and whether it is retryable. Without keys, everything
/// stays as before, guarded by the codec against payloads it cannot read.
pub fn data_converter(keys: Option<KeyRing>) -> DataConverter {
    let encode_failures = keys.is_some();
    DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::new(encode_failures),
        EncryptionCodec::new(keys),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;

    fn ring(ids: &[(&str, u8)]) -> KeyRing {
        KeyRing::new(ids.iter().map(|(id, b)| Key::new(*id, &[*b; 32])).collect()).unwrap()
    }

    fn json(text: &str) -> Payload {
        Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_payload_round_trips_exactly_and_is_unreadable_in_between() {
        let codec = EncryptionCodec::new(Some(ring(&[("k1", 1)])));
        let mut original = json(r#"{"customer_id":"c-42","total":1999}"#);
        original
            .metadata
            .insert("messageType".into(), b"saga.Order".to_vec());
        let sealed = codec.encrypt(original.clone()).unwrap();
        assert_eq!(encoding(&sealed), Some(&b"binary/encrypted"[..]));
        assert_eq!(sealed.metadata[KEY_ID_METADATA], b"k1");
        let shown = String::from_utf8_lossy(&sealed.data);
        assert!(!shown.contains("c-42") && !shown.contains("json/plain"));
        assert_eq!(codec.decrypt(sealed).unwrap(), original);
    }

    #[test]
    fn every_payload_gets_its_own_nonce() {
        let codec = EncryptionCodec::new(Some(ring(&[("k1", 1)])));
        let a = codec.encrypt(json("1")).unwrap();
        let b = codec.encrypt(json("1")).unwrap();
        assert_ne!(a.data[..NONCE_LEN], b.data[..NONCE_LEN]);
        assert_ne!(a.data, b.data);
    }

    #[test]
    fn rotation_encrypts_with_the_newest_and_reads_the_old() {
        let before = EncryptionCodec::new(Some(ring(&[("a", 1)])));
        let after = EncryptionCodec::new(Some(ring(&[("b", 2), ("a", 1)])));
        let old = before.encrypt(json("\"old\"")).unwrap();
        assert_eq!(after.decrypt(old).unwrap(), json("\"old\""));
        let new = after.encrypt(json("\"new\"")).unwrap();
        assert_eq!(new.metadata[KEY_ID_METADATA], b"b");
        let err = before.decrypt(new).unwrap_err().to_string();
        assert!(err.contains("`b`") && err.contains("(a)"), "{err}");
    }

    #[test]
    fn plain_payloads_pass_and_encrypted_ones_are_never_sealed_twice() {
        let codec = EncryptionCodec::new(Some(ring(&[("k1", 1)])));
        assert_eq!(codec.decrypt(json("7")).unwrap(), json("7"));
        let once = codec.encrypt(json("7")).unwrap();
        assert_eq!(codec.encrypt(once.clone()).unwrap(), once);
    }

    #[test]
    fn without_keys_plain_passes_and_ciphertext_is_refused_by_name() {
        let sealed = EncryptionCodec::new(Some(ring(&[("k1", 1)])))
            .encrypt(json("7"))
            .unwrap();
        let guard = EncryptionCodec::default();
        assert_eq!(guard.encrypt(json("7")).unwrap(), json("7"));
        let err = guard.decrypt(sealed).unwrap_err().to_string();
        assert!(
            err.contains("`k1`") && err.contains("SAGA_ENCRYPTION_KEYS_FILE"),
            "{err}"
        );
    }

    #[test]
    fn altered_ciphertext_or_a_different_key_under_the_same_id_is_an_error() {
        let codec = EncryptionCodec::new(Some(ring(&[("k1", 1)])));
        let mut sealed = codec.encrypt(json("7")).unwrap();
        let last = sealed.data.len() - 1;
        sealed.data[last] ^= 1;
        assert!(matches!(
            codec.decrypt(sealed),
            Err(CodecError::Tampered { .. })
        ));

        let sealed = codec.encrypt(json("7")).unwrap();
        let impostor = EncryptionCodec::new(Some(ring(&[("k1", 9)])));
        assert!(matches!(
            impostor.decrypt(sealed),
            Err(CodecError::Tampered { .. })
        ));

        let mut truncated = codec.encrypt(json("7")).unwrap();
        truncated.data.truncate(5);
        assert!(codec.decrypt(truncated).is_err());
    }

    #[test]
    fn failures_are_encoded_only_when_encryption_is_on() {
        use temporalio_common::{
            data_converters::SerializationContextData,
            error::{ApplicationFailure, OutgoingError, OutgoingWorkflowError},
        };
        let failure = |dc: &DataConverter| {
            dc.to_failure(
                &SerializationContextData::None,
                OutgoingError::Workflow(OutgoingWorkflowError::Application(Box::new(
                    ApplicationFailure::builder("order 1ae4 failed")
                        .type_name("SagaFailed".to_owned())
                        .build(),
                ))),
            )
        };
        let on = failure(&data_converter(Some(ring(&[("k1", 1)]))));
        assert_eq!(on.message, "Encoded failure");
        assert!(on.encoded_attributes.is_some());
        let off = failure(&data_converter(None));
        assert_eq!(off.message, "order 1ae4 failed");
    }
}
