//! What the saga tells the server's visibility store, so sagas can be listed by order and outcome:
//! `temporal workflow list --query "SagaOutcome='compensated'"`.
//!
//! The server must know every attribute of [`SEARCH_ATTRIBUTES`] before a saga upserts it (an
//! unknown attribute fails the workflow task, and the saga would hang). `saga worker` (and the
//! commands that start sagas) register the missing ones at start, from this list.

use temporalio_common::search_attributes::SearchAttributeKey;

/// The order id of the saga (unset for an order that could not be read).
pub const ORDER_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("OrderId");
/// Where the saga stands: [`RUNNING`] until it ends, then its outcome.
pub const SAGA_OUTCOME: SearchAttributeKey<String> = SearchAttributeKey::keyword("SagaOutcome");

/// The attributes the saga sets, with their server type (as the `temporal` CLI names it:
/// `Keyword`, `KeywordList`, `Datetime`, …), which the worker registers when they are missing.
pub const SEARCH_ATTRIBUTES: [(&str, &str); 2] =
    [("OrderId", "Keyword"), ("SagaOutcome", "Keyword")];

pub const RUNNING: &str = "running";
/// Only while compensating; never an outcome.
pub const COMPENSATING: &str = "compensating";
pub const COMPLETED: &str = "completed";
pub const COMPENSATED: &str = "compensated";
pub const COMPENSATION_FAILED: &str = "compensation-failed";
/// Cancelled by a client; its compensations ran.
pub const CANCELLED: &str = "cancelled";
/// The input was not a valid order; nothing ran.
pub const INVALID: &str = "invalid";
/// Ended for another reason, e.g. the success notification exhausted its retries.
pub const FAILED: &str = "failed";

/// Every value `SagaOutcome` can take.
pub const OUTCOMES: [&str; 7] = [
    RUNNING,
    COMPLETED,
    COMPENSATED,
    COMPENSATION_FAILED,
    CANCELLED,
    INVALID,
    FAILED,
];

/// The outcome of a saga that closes in `phase`: a saga still running or compensating when it
/// closes did not end by the design's rules.
pub fn outcome_at_close(phase: &str) -> &'static str {
    match phase {
        COMPLETED => COMPLETED,
        COMPENSATED => COMPENSATED,
        COMPENSATION_FAILED => COMPENSATION_FAILED,
        CANCELLED => CANCELLED,
        INVALID => INVALID,
        _ => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saga_that_closes_mid_way_is_failed() {
        assert_eq!(outcome_at_close(RUNNING), FAILED);
        assert_eq!(outcome_at_close(COMPENSATING), FAILED);
        assert_eq!(outcome_at_close(""), FAILED);
        for outcome in OUTCOMES.into_iter().filter(|o| *o != RUNNING) {
            assert_eq!(outcome_at_close(outcome), outcome);
        }
    }
}
