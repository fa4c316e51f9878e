//! Cancellation: a client's request stops a saga between steps, never inside one, and never
//! skips a committed step.
//!
//! Every round runs with a cancellation token of its own, detached from the workflow's: a local
//! transaction that has started is allowed to finish, so the saga always knows what it must
//! compensate. The compensations run detached too, so a cancelled saga is always undone.
//!
//! The saga acts on a request only after a step whose last round ran as a regular activity
//! (`settled`). A local activity runs before the history records it. When a cancellation
//! request arrives while a workflow task runs local steps, the server refuses that task's
//! completion and the next worker runs the saga again from the history, where the request now
//! precedes the steps the refused task ran: acting on it there would skip steps that did commit
//! and leave them uncompensated. A regular activity's result comes from the history, so every
//! run sees the request at the same point. So an all-local saga, whose steps take
//! milliseconds, finishes once it has started, as if the request came after its last step; a
//! saga waiting on its infrastructure (its later rounds are regular activities) stops at the
//! end of the current round and compensates.
//!
//! A request that is acted on lands in one of three places, each ending once the compensations
//! have run:
//! - the step in progress succeeds: it is compensated with the earlier ones, and the saga ends
//!   [`Phase::Cancelled`](crate::Phase::Cancelled) with
//!   [`StepFailure::Cancelled`](crate::StepFailure::Cancelled);
//! - the step fails with its business error at the same time: the failure is compensated as
//!   usual, but the caller asked for a cancellation and the saga is undone, so it ends
//!   `Cancelled` (with `cancelled: true` in [`SagaError::Compensated`](crate::SagaError)), the
//!   cause kept as its last error;
//! - a compensation fails: the saga ends
//!   [`SagaError::CompensationFailed`](crate::SagaError::CompensationFailed) as without the
//!   request, because someone must look at what was left done.

use crate::context::SagaContext;

/// Whether to act on a cancellation request now: only after a step whose last round ran as a
/// regular activity.
pub(crate) fn settled(ctx: &impl SagaContext) -> bool {
    ctx.cancel_requested() && ctx.read_saga(|s| s.last_round_remote)
}
