//! How each step is dispatched: decided when the step is scheduled, recorded in the history, and
//! followed by every replay whatever the worker replaying it is configured to do.
//!
//! | the history holds, before this step         | this step runs as                  | recorded now |
//! |---------------------------------------------|------------------------------------|--------------|
//! | nothing yet (the saga's first step)         | the worker's `dispatch`            | marker `saga-dispatch-<mode>` |
//! | `saga-dispatch-<mode>`                      | `<mode>`                           | — |
//! | the previous step's mode, which the worker does not prefer | the worker's `dispatch` | marker `saga-dispatch-<mode>@<n>` |
//! | `saga-dispatch-<mode>@<n>` at this step     | `<mode>`                           | — |
//! | no dispatch marker at all: a saga started before the choice was recorded | the worker's `legacy_dispatch` | — |
//!
//! So a saga started by an all-in-one worker (local activities) finishes on split workers
//! (regular activities on each service's queue) and the reverse: the steps already recorded are
//! replayed as they ran, never run again, and the rest run the way the workers now left prefer.
//!
//! The markers are Temporal patch markers (`ctx.patched`): replay answers `patched(id)` from the
//! history alone, and a fresh call records the marker with the step's commands, so it costs no
//! round trip. A saga records one marker, plus one per change of mode while it is in flight.
//! (The server also lists them in the `TemporalChangeVersion` search attribute, so
//! `temporal workflow list --query "TemporalChangeVersion='saga-dispatch-local'"` finds them.)

use crate::{OrderSaga, config::Dispatch};
use temporalio_sdk::WorkflowContext;

/// The dispatch decisions of one saga so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Decisions {
    /// The mode of the last step decided; `None` before the first.
    current: Option<Dispatch>,
    /// How many steps have been decided (the `<n>` of a change marker).
    count: u32,
}

/// The marker of a saga's first step.
fn first_marker(mode: Dispatch) -> String {
    format!("saga-dispatch-{mode}")
}

/// The marker of a change of mode at the `n`th step decided.
fn change_marker(mode: Dispatch, n: u32) -> String {
    format!("saga-dispatch-{mode}@{n}")
}

/// How the next step runs; records the choice when it is new.
pub(crate) fn next_step(ctx: &WorkflowContext<OrderSaga>) -> Dispatch {
    let (decisions, preferred, legacy) =
        ctx.state(|w| (w.dispatch, w.config().dispatch, w.config().legacy_dispatch));
    // Replaying, the history decides; otherwise the worker does, and says so in the history.
    let replaying = ctx.is_replaying();
    let mode = match decisions.current {
        None if replaying => [Dispatch::Local, Dispatch::Remote]
            .into_iter()
            .find(|&mode| ctx.patched(&first_marker(mode)))
            .unwrap_or(legacy),
        None => {
            ctx.patched(&first_marker(preferred));
            preferred
        }
        Some(current) => {
            let other = current.other();
            let changes = (replaying || preferred == other)
                && ctx.patched(&change_marker(other, decisions.count));
            if changes { other } else { current }
        }
    };
    ctx.state_mut(|w| {
        w.dispatch = Decisions {
            current: Some(mode),
            count: decisions.count + 1,
        }
    });
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_name_the_mode_and_the_step() {
        assert_eq!(first_marker(Dispatch::Local), "saga-dispatch-local");
        assert_eq!(first_marker(Dispatch::Remote), "saga-dispatch-remote");
        assert_eq!(change_marker(Dispatch::Remote, 3), "saga-dispatch-remote@3");
    }
}
