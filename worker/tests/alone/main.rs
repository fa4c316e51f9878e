//! The worker's integration tests that must not share the machine: load, outages, crashes and
//! timing. One binary; `make test` (`scripts/test.sh`) runs it with `--test-threads=1`, after
//! the others, so no other test's servers compete with these for the two cores. The outage
//! tests, mostly minutes of waiting on a stopped database, run beside the rest instead.
//!
//! | module | what it shows |
//! |---|---|
//! | `outages` | databases down for minutes under load: every saga waits, then ends right |
//! | `reliability_crash` | workers and the server killed mid-load |
//! | `reliability_load` | transient faults under load; nothing lost, nothing twice |
//! | `webhooks` | a thousand sagas to misbehaving receivers: every delivery made, signed |
//! | `intake` | the order intake's admission under a burst, its gauges sampled every 5 ms |

#[path = "../support/mod.rs"]
mod support;

mod intake;
mod outages;
mod reliability_crash;
mod reliability_load;
mod webhooks;
