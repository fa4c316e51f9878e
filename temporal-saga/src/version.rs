//! Evolution: changing a saga's definition while sagas of the old one are in flight.
//!
//! A saga's steps and compensations are commands in its history; a worker whose code issues
//! other commands for a saga in flight fails its replay. So a change (a step added, a
//! compensation changed) goes behind a version, on the SDK's patching:
//!
//! 1. **Decide once, at the start.** Call [`decide`] before the saga's first step, and build
//!    the definition from its answer. A new saga records the version's marker and takes the
//!    new definition; a saga started before the change has no marker, and its replay (on any
//!    worker, also after the old worker is gone) answers `false` for the rest of the run, so it
//!    keeps the old definition to its end, compensations included. (The SDK answers a patch
//!    from its first call for the rest of the run; deciding later, e.g. only when compensating,
//!    would put the marker mid-history and mix the versions.)
//! 2. **Retire the old version** once no saga of it is left in flight (list them with
//!    `temporal workflow list --query "TemporalChangeVersion != '<id>'"`): replace [`decide`]
//!    by [`retired`] and delete the old definition. A retired marker still records the version
//!    in new histories, and histories that carry the marker replay on the retired code.
//! 3. **Drop the marker** a release later, when no history with it needs to replay.
//!
//! The SDK 1.1.1 also offers worker deployment versioning, but only per worker: its workflow
//! completions carry no per-workflow versioning behaviour, so it cannot pin a saga to the code
//! that started it. Patching can, and needs nothing from the server.

use crate::context::SagaContext;

/// Whether this saga runs with the change `patch_id`: `true` for a saga started with code that
/// knows the change, `false` for one started before. Call it before the first step.
pub fn decide(ctx: &impl SagaContext, patch_id: &str) -> bool {
    ctx.patched(patch_id)
}

/// The change `patch_id` is now the only way: records it as retired (deprecated) and returns
/// `true`. Use it in place of [`decide`] once no saga without the change is in flight.
pub fn retired(ctx: &impl SagaContext, patch_id: &str) -> bool {
    ctx.deprecate_patch(patch_id);
    true
}
