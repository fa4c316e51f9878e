//! How each activity is dispatched: decided when it is scheduled, recorded in the history, and
//! followed by every replay whatever the worker replaying it is configured to do.
//!
//! | the history holds, before this activity | it runs as | recorded now |
//! |---|---|---|
//! | nothing yet (the saga's first activity) | the worker's `dispatch` | marker `saga-dispatch-<mode>` |
//! | the start request's memo names `<mode>` under [`DISPATCH_MEMO`] (the saga's first activity) | `<mode>`, or the worker's `dispatch` if it prefers the other | nothing, or marker `saga-dispatch-<mode>@0` |
//! | `saga-dispatch-<mode>`, whatever the memo names (a worker that did not read the memo ran the first task) | `<mode>` | — |
//! | the previous activity's mode, which the worker does not prefer | the worker's `dispatch` | marker `saga-dispatch-<mode>@<n>` |
//! | `saga-dispatch-<mode>@<n>` at this activity | `<mode>` | — |
//! | no dispatch marker at all: a saga started before the choice was recorded | the worker's `legacy_dispatch` | — |
//!
//! So a saga started by an all-in-one worker (local activities) finishes on split workers
//! (regular activities on each service's queue) and the reverse: the activities already recorded
//! are replayed as they ran, never run again, and the rest run the way the workers now left
//! prefer.
//!
//! The markers are Temporal patch markers (`patched`): replay answers `patched(id)` from the
//! history alone, and a fresh call records the marker with the activity's commands, so it costs
//! no round trip. A saga records one marker, plus one per change of mode while it is in flight.
//! (The server also lists them in the `TemporalChangeVersion` search attribute, so
//! `temporal workflow list --query "TemporalChangeVersion='saga-dispatch-local'"` finds them.)
//!
//! That upsert is a visibility write, the dearest thing a saga asks of the server after the
//! workflow task itself (about 1 ms of a dev server's CPU, docs/performance.md). A starter that
//! knows how the deployment's workers run the steps (a worker starting sagas with eager
//! workflow start, which runs the first workflow task itself; a command told the deployment's
//! mode) can name it in the start request's memo ([`DISPATCH_MEMO`]): the start event then
//! records the choice, and the history needs no marker for it. A worker that prefers the other
//! mode still switches at the first activity, with a change marker, as for any later activity;
//! so a wrong name costs what no name costs.

use crate::{context::SagaContext, options::Dispatch};

/// The start request's memo key under which a starter can name the saga's dispatch (`local` or
/// `remote`), so that the first activity's choice is recorded by the start event instead of a
/// patch marker and its `TemporalChangeVersion` upsert. A starter sets it when it knows how the
/// workers that will run the saga dispatch; a worker that prefers the other mode records a
/// change at the first activity, which costs what an unnamed start costs.
pub const DISPATCH_MEMO: &str = "SagaDispatch";

/// The dispatch decisions of one saga so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Decisions {
    /// The mode of the last activity decided; `None` before the first.
    current: Option<Dispatch>,
    /// How many activities have been decided (the `<n>` of a change marker).
    count: u32,
}

/// The marker of a saga's first activity.
pub fn first_marker(mode: Dispatch) -> String {
    format!("saga-dispatch-{mode}")
}

/// The marker of a change of mode at the `n`th activity decided (from 0).
pub fn change_marker(mode: Dispatch, n: u32) -> String {
    format!("saga-dispatch-{mode}@{n}")
}

/// How the next activity runs; records the choice when it is new.
pub(crate) fn next<C: SagaContext>(ctx: &C, preferred: Dispatch, legacy: Dispatch) -> Dispatch {
    let decisions = ctx.read_saga(|s| s.dispatch);
    // Replaying, the history decides; otherwise the worker does, and says so in the history.
    let replaying = ctx.is_replaying();
    let mode = match decisions.current {
        None => first(ctx, preferred, legacy, replaying),
        Some(current) => after(ctx, current, preferred, decisions.count, replaying),
    };
    ctx.with_saga(|s| {
        s.dispatch = Decisions {
            current: Some(mode),
            count: decisions.count + 1,
        }
    });
    mode
}

/// How the saga's first activity runs.
fn first<C: SagaContext>(
    ctx: &C,
    preferred: Dispatch,
    legacy: Dispatch,
    replaying: bool,
) -> Dispatch {
    // A marker for the first activity decides a replay even when the start request named a
    // mode: a worker from before the memo was read (5a466f0) that ran the saga's first task
    // recorded its own choice. (Replaying, `patched` of an id the history lacks records
    // nothing.)
    let recorded = || {
        [Dispatch::Local, Dispatch::Remote]
            .into_iter()
            .find(|&mode| ctx.patched(&first_marker(mode)))
    };
    if replaying && let Some(mode) = recorded() {
        return mode;
    }
    match ctx.start_memo(DISPATCH_MEMO).and_then(|m| m.parse().ok()) {
        // The starter decided the first activity; this one is taken as a change from it.
        Some(named) => after(ctx, named, preferred, 0, replaying),
        None if replaying => legacy,
        None => {
            ctx.patched(&first_marker(preferred));
            preferred
        }
    }
}

/// How the `count`th activity runs (from 0), the one before it having run as `current`.
fn after<C: SagaContext>(
    ctx: &C,
    current: Dispatch,
    preferred: Dispatch,
    count: u32,
    replaying: bool,
) -> Dispatch {
    let other = current.other();
    let changes = (replaying || preferred == other) && ctx.patched(&change_marker(other, count));
    if changes { other } else { current }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_name_the_mode_and_the_activity() {
        assert_eq!(first_marker(Dispatch::Local), "saga-dispatch-local");
        assert_eq!(first_marker(Dispatch::Remote), "saga-dispatch-remote");
        assert_eq!(change_marker(Dispatch::Remote, 3), "saga-dispatch-remote@3");
    }
}
