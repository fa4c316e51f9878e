//! What the saga tells the server's visibility store, so sagas can be listed by order and outcome:
//! `temporal workflow list --query "SagaOutcome='compensated'"`.
//!
//! | attribute     | type    | value |
//! |---------------|---------|-------|
//! | `OrderId`     | Keyword | the order id (unset for an order that could not be read) |
//! | `SagaOutcome` | Keyword | `running` until the saga ends, then its outcome ([`OUTCOMES`]) |
//! | `SagaWaiting` | Keyword | while a step keeps failing for infrastructure reasons, its activity type (`ProcessPayment`); unset otherwise (kept by the saga library: [`temporal_saga::SearchAttributeNames`]) |
//!
//! The server must know every attribute of [`SEARCH_ATTRIBUTES`] before a saga upserts it (an
//! unknown attribute fails the workflow task, and the saga would hang). `saga worker` (and the
//! commands that start sagas) register the missing ones at start, from this list.

use crate::OrderSaga;
use temporal_saga::Phase;
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_sdk::WorkflowContext;

/// The order id of the saga (unset for an order that could not be read).
pub const ORDER_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("OrderId");
/// Where the saga stands: [`RUNNING`] until it ends, then its outcome.
pub const SAGA_OUTCOME: SearchAttributeKey<String> = SearchAttributeKey::keyword("SagaOutcome");
/// The activity a step waits on while its infrastructure is down.
pub const SAGA_WAITING: SearchAttributeKey<String> = SearchAttributeKey::keyword("SagaWaiting");

/// The attributes the saga sets, with their server type (as the `temporal` CLI names it:
/// `Keyword`, `KeywordList`, `Datetime`, …), which the worker registers when they are missing.
pub const SEARCH_ATTRIBUTES: [(&str, &str); 3] = [
    ("OrderId", "Keyword"),
    ("SagaOutcome", "Keyword"),
    ("SagaWaiting", "Keyword"),
];

pub const RUNNING: &str = Phase::Running.as_str();
/// Only while compensating; never an outcome.
pub const COMPENSATING: &str = Phase::Compensating.as_str();
pub const COMPLETED: &str = Phase::Completed.as_str();
pub const COMPENSATED: &str = Phase::Compensated.as_str();
pub const COMPENSATION_FAILED: &str = Phase::CompensationFailed.as_str();
/// Cancelled by a client; its compensations ran.
pub const CANCELLED: &str = Phase::Cancelled.as_str();
/// The input was not a valid order; nothing ran.
pub const INVALID: &str = Phase::Invalid.as_str();
/// Ended for another reason, e.g. the success notification exhausted its retries.
pub const FAILED: &str = Phase::Failed.as_str();

/// Every value `SagaOutcome` can take.
pub const OUTCOMES: [&str; 7] = Phase::OUTCOMES;

/// Marks a saga `running` under its order id, unless its starter already did (`saga start` sets
/// both in the start request, which saves the server a visibility update per saga). Both ways
/// read only the start event, so a replay takes the same one.
pub(crate) fn record_start(ctx: &WorkflowContext<OrderSaga>, order_id: &str) {
    let given = ctx.search_attributes();
    let set_by_starter = given.get(&ORDER_ID).as_deref() == Some(order_id)
        && given.get(&SAGA_OUTCOME).as_deref() == Some(RUNNING);
    if !set_by_starter {
        ctx.upsert_search_attributes([
            ORDER_ID.value_set(order_id.to_owned()),
            SAGA_OUTCOME.value_set(RUNNING.to_owned()),
        ]);
    }
}

/// The outcome of a saga that closes in `phase`: a saga still running or compensating when it
/// closes did not end by the design's rules.
pub fn outcome_at_close(phase: &str) -> &'static str {
    Phase::parse(phase).map_or(FAILED, |phase| phase.at_close().as_str())
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
