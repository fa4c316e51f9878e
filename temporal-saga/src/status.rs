//! What a saga shows while it runs: its phase, current activity, compensations, what it waits
//! on, and the value as the last successful activity returned it.
//!
//! The SDK keeps a workflow's state in the author's workflow type, so the saga's own state, a
//! [`SagaRuntime`], lives there too: the author's type holds one and hands it to the library
//! through [`crate::SagaWorkflow`]. A `state` query returns whatever the author builds from it
//! (the order saga builds its `SagaState` JSON from [`SagaRuntime::status`] and
//! [`SagaRuntime::value`]).

use crate::dispatch::Decisions;
use serde::{Deserialize, Serialize};

/// Where a saga stands. While it runs: [`Phase::Running`] or [`Phase::Compensating`]; once it
/// has ended, its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Forward steps run (also before the first, and while a final notification goes out).
    #[default]
    Running,
    /// A step failed; its compensation and the earlier ones run. Never an outcome.
    Compensating,
    /// Every forward step and the notification succeeded.
    Completed,
    /// Every compensation succeeded.
    Compensated,
    /// A compensation failed with its business error: someone must look.
    CompensationFailed,
    /// Cancelled by a client; every committed step was compensated.
    Cancelled,
    /// The input was refused before any step ran ([`crate::Saga::reject`]).
    Invalid,
    /// Ended for another reason (e.g. the notification failed with its business error, or the
    /// saga closed mid-way).
    Failed,
}

impl Phase {
    /// Every phase a saga can close in, as [`Phase::as_str`] spells it, plus `running`: the
    /// values of an outcome search attribute.
    pub const OUTCOMES: [&str; 7] = [
        "running",
        "completed",
        "compensated",
        "compensation-failed",
        "cancelled",
        "invalid",
        "failed",
    ];

    /// `running`, `compensating`, `completed`, `compensated`, `compensation-failed`,
    /// `cancelled`, `invalid` or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Compensating => "compensating",
            Self::Completed => "completed",
            Self::Compensated => "compensated",
            Self::CompensationFailed => "compensation-failed",
            Self::Cancelled => "cancelled",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
        }
    }

    /// The phase [`Phase::as_str`] spells `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Compensating,
            Self::Completed,
            Self::Compensated,
            Self::CompensationFailed,
            Self::Cancelled,
            Self::Invalid,
            Self::Failed,
        ]
        .into_iter()
        .find(|phase| phase.as_str() == name)
    }

    /// The outcome of a saga that closes in this phase: one still running or compensating when
    /// it closes did not end by the saga's rules, so it failed.
    pub const fn at_close(self) -> Self {
        match self {
            Self::Running | Self::Compensating => Self::Failed,
            other => other,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step that waits on infrastructure rather than failing the saga.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The activity that keeps failing.
    pub activity: String,
    /// When its first round of attempts ran out (RFC 3339, workflow time).
    pub since: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: String,
}

/// What the saga has done so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SagaStatus {
    /// Where the saga stands.
    pub phase: Phase,
    /// The activity running now, or the last one that ran.
    pub current: Option<String>,
    /// The error that started the compensation, or that stopped it.
    pub last_error: Option<String>,
    /// The compensations that have completed, in the order they completed.
    pub compensations: Vec<String>,
    /// Set while the current activity keeps failing for infrastructure reasons; cleared when it
    /// gets through.
    pub waiting: Option<Waiting>,
}

/// The state a saga keeps in its workflow: its status, the value its steps pass on, and its
/// recorded decisions. Hold one in the workflow type and expose it with
/// [`crate::SagaWorkflow`].
#[derive(Debug, Clone)]
pub struct SagaRuntime<T> {
    pub(crate) status: SagaStatus,
    pub(crate) value: Option<T>,
    pub(crate) dispatch: Decisions,
    /// Whether the last round of the last activity ran as a regular activity (see
    /// [`crate::cancellation`]).
    pub(crate) last_round_remote: bool,
}

impl<T> Default for SagaRuntime<T> {
    fn default() -> Self {
        Self {
            status: SagaStatus::default(),
            value: None,
            dispatch: Decisions::default(),
            last_round_remote: false,
        }
    }
}

impl<T> SagaRuntime<T> {
    /// The saga's status, for a query.
    pub fn status(&self) -> &SagaStatus {
        &self.status
    }

    /// The value as the last successful activity returned it (`None` before the saga starts).
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }
}
