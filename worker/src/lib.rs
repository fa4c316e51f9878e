//! The `saga` binary's library: configuration, the Temporal connection, the worker, and the
//! client-side helpers (starting sagas, reading their history) that the commands and the
//! integration tests share.

pub mod config;
pub mod connect;
pub mod connection_errors;
pub mod encryption;
pub mod history;
pub mod intake;
pub mod launch;
pub mod observability;
pub mod roles;
pub mod run_worker;
pub mod scenario_report;
pub mod search_attributes;
pub mod status;
pub mod tuning;
pub mod webhook_receiver;
pub mod webhooks;
