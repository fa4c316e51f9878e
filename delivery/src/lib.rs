//! Webhook delivery of the notifications outbox: signed, retried, never lost.
//!
//! The outbox itself (its table, the event ids, what `Notify` queues in its own transaction)
//! stays with the notifications store, in `saga_activities::outbox`; this crate is the relay
//! that reads it and sends.
//!
//! | part          | what it does                                                              | where it runs |
//! |---------------|---------------------------------------------------------------------------|---------------|
//! | [`config`]    | subscribers (`SAGA_WEBHOOK_URLS` + `SAGA_WEBHOOK_SECRET`, or a TOML file with per-subscriber secrets and status filters) and the retry schedule | read once at worker start |
//! | `saga_activities::outbox::event` | the JSON body: stable event id, order id, status, error, order summary, time | built for every attempt, byte for byte the same |
//! | [`signature`] | `Saga-Signature: t=…,v1=hex(HMAC-SHA256(secret, "{t}.{body}"))`, Stripe's scheme; signing and verifying | relay and `saga webhook-receiver` |
//! | `saga_activities::outbox::table` | `webhook_deliveries`: one row per notification and subscriber, written in `Notify`'s own transaction; claims with a lease, results, resends | the notifications database (SQLite or PostgreSQL, same SQL) |
//! | [`relay`]     | claims due rows, POSTs them, records 2xx as delivered, anything else as a retry after exponential backoff with jitter, dead after the last attempt | every worker process running the notifications role |
//!
//! Why a relay that reads the outbox, not a workflow per delivery: the saga only writes its
//! outcome (one local transaction, as every step does) and never waits for a receiver, so a
//! receiver that is down for a day cannot touch a saga's outcome, its history or its workflow
//! code. Delivery state lives beside the outbox rows it belongs to, in the service's own database,
//! and the relay is as many processes as run the notifications role: a lease on each claimed row
//! keeps two of them from sending the same row at once, and a crashed relay's lease simply
//! expires. The cost is that attempts are not visible in the Temporal Web UI; `saga status`, the
//! `saga_webhook_*` metrics and `saga webhooks list` show them instead.
//!
//! Delivery is at least once: a relay killed after the receiver answered but before it recorded
//! the answer sends again after the lease. Receivers de-duplicate on the event id, which is the
//! same on every attempt and for every subscriber.

pub mod config;
pub mod relay;
pub mod signature;

pub use config::{DeliveryConfig, Schedule, Subscriber};
pub use relay::{Relay, RelayHandle};
pub use saga_activities::outbox::{Event, OrderSummary, Subscription, event_id};
