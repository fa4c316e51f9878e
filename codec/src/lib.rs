//! Order data stays private: payload encryption for the saga's clients and workers, and the
//! codec server that decrypts for the people allowed to read it.
//!
//! | module     | job                                                                     |
//! |------------|-------------------------------------------------------------------------|
//! | [`keys`]   | the key ring from `SAGA_ENCRYPTION_KEYS_FILE` / `SAGA_ENCRYPTION_KEYS`  |
//! | [`codec`]  | the AES-256-GCM `PayloadCodec` and the data converter built around it   |
//! | [`server`] | Temporal's codec server protocol (`/encode`, `/decode`) for UI and CLIs |
//!
//! What stays readable without a key: workflow and activity types, task queues, ids (the
//! workflow id carries the order id), timestamps, failure types and search attributes (the
//! server must index them, so `OrderId` and `SagaOutcome` are plain by design). Everything else
//! a saga sends through Temporal (the order, the enriched records, query answers, activity
//! summaries, failure messages) is ciphertext.

pub mod codec;
pub mod keys;
pub mod server;

pub use codec::{CodecError, EncryptionCodec, data_converter};
pub use keys::{Key, KeyError, KeyRing};
pub use server::{CodecServerConfig, router};
