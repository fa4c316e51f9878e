//! How an activity's failure reaches Temporal: business errors end the step, everything else is
//! infrastructure and is retried.
//!
//! | error | Temporal failure | the saga |
//! |---|---|---|
//! | a business error (`ErrReserveInventory`, …) | non-retryable, typed `Err*` | changes course at once |
//! | an invalid order | non-retryable, typed `InvalidOrder` | changes course at once |
//! | the database unavailable, locked, in conflict, or failing otherwise | retryable, typed `Infrastructure`, the message naming the service and the kind | waits for it (see the workflow's retry rounds) |

use saga_protos::{InvalidOrder, scenario::INVALID_ORDER};
use temporalio_sdk::{ApplicationFailure, activities::ActivityError};

/// The failure type of a retryable, infrastructure failure.
pub const INFRASTRUCTURE: &str = "Infrastructure";

/// Everything a step can fail with, sorted by whether a retry could help.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A business failure (`ErrReserveInventory`, …): final, never retried.
    #[error("{kind}: {message}")]
    Business { kind: &'static str, message: String },
    /// The order itself is invalid: final, never retried.
    #[error(transparent)]
    Invalid(#[from] InvalidOrder),
    /// The database (or the network to it) failed: retried until it is back.
    #[error("database {kind}: {error:#}")]
    Infrastructure {
        kind: FaultKind,
        error: anyhow::Error,
    },
}

/// What kind of infrastructure fault, as far as the driver tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// No connection: refused, lost, timed out waiting for the pool (or for SQLite's held
    /// connection), the server shutting down, the file unreadable.
    Unavailable,
    /// Another transaction holds what this one needs: an SQLite lock, a PostgreSQL
    /// serialization failure or deadlock.
    Contention,
    /// Anything else the database reported.
    Error,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultKind::Unavailable => "unavailable",
            FaultKind::Contention => "busy",
            FaultKind::Error => "error",
        })
    }
}

impl StepError {
    pub fn business(kind: &'static str, message: impl Into<String>) -> Self {
        Self::Business {
            kind,
            message: message.into(),
        }
    }

    /// An infrastructure fault that is not a database error (an injected fault, a vanished row).
    pub fn infrastructure(error: anyhow::Error) -> Self {
        Self::Infrastructure {
            kind: FaultKind::Error,
            error,
        }
    }

    pub fn is_infrastructure(&self) -> bool {
        matches!(self, Self::Infrastructure { .. })
    }
}

impl From<sqlx::Error> for StepError {
    fn from(e: sqlx::Error) -> Self {
        Self::Infrastructure {
            kind: classify(&e),
            error: anyhow::Error::new(e),
        }
    }
}

impl From<rusqlite::Error> for StepError {
    fn from(e: rusqlite::Error) -> Self {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(failure, _) => {
                sqlite_kind(i64::from(failure.extended_code))
            }
            _ => FaultKind::Error,
        };
        Self::Infrastructure {
            kind,
            error: anyhow::Error::new(e),
        }
    }
}

impl From<anyhow::Error> for StepError {
    fn from(e: anyhow::Error) -> Self {
        Self::infrastructure(e)
    }
}

/// Sorts a driver error by what an operator would do about it.
pub(crate) fn classify(e: &sqlx::Error) -> FaultKind {
    use sqlx::Error::*;
    match e {
        Io(_) | Tls(_) | PoolTimedOut | PoolClosed | WorkerCrashed => FaultKind::Unavailable,
        Database(db) => match db.code().as_deref() {
            // PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
            Some("40001" | "40P01" | "55P03") => FaultKind::Contention,
            // PostgreSQL: connection exceptions, the server shutting down or starting up,
            // too many connections.
            Some(code)
                if code.starts_with("08")
                    || matches!(code, "57P01" | "57P02" | "57P03" | "53300") =>
            {
                FaultKind::Unavailable
            }
            Some(code) => code.parse::<i64>().map_or(FaultKind::Error, sqlite_kind),
            None => FaultKind::Error,
        },
        _ => FaultKind::Error,
    }
}

/// Sorts an SQLite result code, extended or not (the primary code is its low byte).
fn sqlite_kind(code: i64) -> FaultKind {
    match code & 0xff {
        // SQLITE_BUSY and SQLITE_LOCKED.
        5 | 6 => FaultKind::Contention,
        // SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_FULL.
        8 | 10 | 13 | 14 => FaultKind::Unavailable,
        _ => FaultKind::Error,
    }
}

impl StepError {
    /// The Temporal failure: business and validation errors non-retryable, the rest retryable.
    ///
    /// (Not a `From` impl: the SDK already converts every error into a retryable failure, which
    /// would be the wrong default for a business error.) `service` names the database in the
    /// message an operator reads: "payments database unavailable: …".
    pub fn into_activity_error(self, service: &str) -> ActivityError {
        let failure = match self {
            StepError::Business { kind, message } => ApplicationFailure::builder(message)
                .type_name(kind.to_owned())
                .non_retryable(true)
                .build(),
            StepError::Invalid(invalid) => ApplicationFailure::builder(invalid.to_string())
                .type_name(INVALID_ORDER.to_owned())
                .non_retryable(true)
                .build(),
            e @ StepError::Infrastructure { .. } => {
                ApplicationFailure::builder(format!("{service} {e}"))
                    .type_name(INFRASTRUCTURE.to_owned())
                    .build()
            }
        };
        ActivityError::application(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_connection_is_unavailable() {
        let e = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&e), FaultKind::Unavailable);
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), FaultKind::Unavailable);
        assert_eq!(classify(&sqlx::Error::RowNotFound), FaultKind::Error);
    }

    #[test]
    fn sqlite_extended_codes_keep_their_primary_meaning() {
        // SQLITE_BUSY_SNAPSHOT = 517, SQLITE_CANTOPEN_ISDIR = 526.
        assert_eq!(sqlite_kind(517), FaultKind::Contention);
        assert_eq!(sqlite_kind(526), FaultKind::Unavailable);
        assert_eq!(sqlite_kind(19), FaultKind::Error);
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(
            StepError::from(busy),
            StepError::Infrastructure {
                kind: FaultKind::Contention,
                ..
            }
        ));
    }

    #[test]
    fn the_message_names_the_service_and_the_kind() {
        let e = StepError::from(sqlx::Error::PoolTimedOut);
        assert!(e.is_infrastructure());
        assert!(
            format!("payments {e}").starts_with("payments database unavailable: "),
            "{e}"
        );
    }
}
