//! The worker's integration tests that may share the machine: one binary (linked once), one
//! module a topic, run in parallel. Each test starts its own dev server and workers on free
//! ports. Tests that must not share the machine (load, outages, timing) are in `../alone/`,
//! which `make test` runs one test at a time.
//!
//! | module | what it shows |
//! |---|---|
//! | `scenarios` | the seven design paths through the `saga` binary |
//! | `bad_input` | hostile orders fail at once, naming the field, writing nothing |
//! | `cancellation` | a cancel request lets the step finish, then compensates |
//! | `cli` | `saga`'s commands as a user runs them |
//! | `demo` | `make demo`'s clean-up under Ctrl-C |
//! | `encryption`, `mtls` | payload encryption, the codec server, mutual TLS |
//! | `observability` | search attributes, the `state` query, metrics |
//! | `split`, `topology` | services on their own workers; the topology switched with sagas in flight |
//! | `web_ui` | the Web UI in headless Chromium |
//! | `compose`, `compose_split`, `lockfile` | the compose files' structure; the committed lock file |
//! | `docs` | links in the docs resolve; the configuration reference names every flag and setting; crate layers |
//! | `record_histories` | (ignored) records the histories `workflows/tests/it/replay.rs` replays |

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod cancellation;
mod cli;
mod compose;
mod compose_split;
mod demo;
mod docs;
mod encryption;
mod lockfile;
mod mtls;
mod observability;
mod record_histories;
mod scenarios;
mod split;
mod topology;
mod web_ui;
