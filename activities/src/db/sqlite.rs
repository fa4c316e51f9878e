//! SQLite's one connection, on the caller's thread.
//!
//! A step's transaction on SQLite takes tens of microseconds. Through sqlx each statement
//! would be a message to the connection's own thread and a wake-up back, two thread switches a
//! statement: more CPU than the statements themselves. Here the steps run their statements on
//! the thread that runs the step, with one rule that keeps that thread free: it never waits for
//! a lock inside SQLite (`busy_timeout` 0). A transaction begins `IMMEDIATE`, taking the write
//! lock at once or failing at once; while another process holds the lock the step sleeps on the
//! runtime's timer between tries, and after [`BUSY_WAIT`] fails as busy, as sqlx's
//! `busy_timeout` did. Once begun, nothing in the transaction can wait on another connection.
//!
//! The WAL's checkpoints (fsync of the WAL and the database file) are the other wait SQLite
//! would do on this thread; the connection does none itself (`wal_autocheckpoint` 0), and every
//! [`CHECKPOINT_EVERY`] commits one runs on the sqlx pool's connection thread instead.
//!
//! Everything else on the database (`saga status`, the webhook relay, migrations) uses that
//! pool, as before.

use super::tx::{Arg, FromColumns};
use rusqlite::{Connection, OpenFlags, ToSql, types::ToSqlOutput, types::ValueRef};
use sqlx::AnyPool;
use std::{
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};
use tokio::sync::{Mutex, MutexGuard};

/// How long a step waits for another connection's write lock before failing as busy.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Commits between two checkpoints: a step commits two to four pages, so about the 1,000 pages
/// at which SQLite itself would checkpoint.
const CHECKPOINT_EVERY: u32 = 256;

/// One SQLite database: the connection the steps use, and the pool for everything else.
#[derive(Debug)]
pub struct InlineSqlite {
    connection: Mutex<Connection>,
    pub(super) pool: AnyPool,
    busy_wait: Duration,
    commits: AtomicU32,
}

impl InlineSqlite {
    /// Opens the steps' connection to the file the (already migrated) `pool` reaches.
    pub fn open(path: &Path, pool: AnyPool) -> rusqlite::Result<Self> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // WAL as every connection has it (a file's journal mode is persistent); NORMAL sync is
        // durable across process crashes; no waits and no checkpoints on this thread.
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA busy_timeout = 0; PRAGMA wal_autocheckpoint = 0;",
        )?;
        connection.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            connection: Mutex::new(connection),
            pool,
            busy_wait: BUSY_WAIT,
            commits: AtomicU32::new(0),
        })
    }

    #[cfg(test)]
    pub(super) fn with_busy_wait(mut self, busy_wait: Duration) -> Self {
        self.busy_wait = busy_wait;
        self
    }

    /// Takes the connection and begins a transaction holding the write lock.
    pub async fn begin(&self) -> rusqlite::Result<Tx<'_>> {
        let started = Instant::now();
        // Steps queue here while one waits for the lock: the wait counts from the queue's end.
        // The connection is almost always free (a step holds it for tens of microseconds, and
        // longer only while another process holds the file), so the timeout is built only
        // when it is not.
        let connection = match self.connection.try_lock() {
            Ok(connection) => connection,
            Err(_) => tokio::time::timeout(self.busy_wait, self.connection.lock())
                .await
                .map_err(|_| {
                    rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("database is locked (waited for the connection)".into()),
                    )
                })?,
        };
        let mut pause = Duration::from_millis(1);
        loop {
            match run_cached(&connection, "BEGIN IMMEDIATE") {
                Ok(()) => {
                    return Ok(Tx {
                        connection,
                        owner: self,
                        open: true,
                    });
                }
                Err(e) if is_busy(&e) && started.elapsed() < self.busy_wait => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn committed(&self) {
        if self.commits.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
            let pool = self.pool.clone();
            // Outside a runtime (a test's blocking code) the next commit asks again.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&pool)
                        .await
                    {
                        tracing::debug!("WAL checkpoint skipped: {e}");
                    }
                });
            }
        }
    }
}

/// Runs a statement of no arguments and no rows, prepared once per connection (`BEGIN` and
/// `COMMIT` run on every step; `execute_batch` would parse them each time).
fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.raw_execute().map(drop)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A transaction on the steps' connection; rolled back if dropped before [`Tx::commit`].
pub struct Tx<'a> {
    connection: MutexGuard<'a, Connection>,
    owner: &'a InlineSqlite,
    open: bool,
}

impl Tx<'_> {
    pub fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> rusqlite::Result<u64> {
        let mut statement = self.connection.prepare_cached(sql)?;
        bind(&mut statement, args)?;
        Ok(statement.raw_execute()? as u64)
    }

    pub fn rows<T: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> rusqlite::Result<Vec<T>> {
        let mut statement = self.connection.prepare_cached(sql)?;
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        let mut read = Vec::new();
        while let Some(row) = rows.next()? {
            read.push(T::from_columns(row)?);
        }
        Ok(read)
    }

    pub fn commit(mut self) -> rusqlite::Result<()> {
        run_cached(&self.connection, "COMMIT")?;
        self.open = false;
        self.owner.committed();
        Ok(())
    }

    pub fn rollback(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.connection.execute_batch("ROLLBACK")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        // A step that failed (or was dropped) half way: nothing of it stays. A failed COMMIT
        // leaves the transaction open too, and this ends it.
        if self.open && !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

/// Binds each `$N` of the statement to `args[N - 1]`, as sqlx does: SQLite numbers named
/// parameters in the order they first appear, and `… SET a = $2 WHERE id = $1` names them out
/// of order.
fn bind(statement: &mut rusqlite::Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let position = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(index);
        let arg = args
            .get(position - 1)
            .ok_or(rusqlite::Error::InvalidParameterCount(position, args.len()))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(n)),
            Arg::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}
