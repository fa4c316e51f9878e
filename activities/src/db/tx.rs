//! A step's local transaction, written once for both backends.
//!
//! The stores' writes go through [`Db::begin`], [`Db::execute`] and [`Db::rows`]: on PostgreSQL
//! (and SQLite opened with a pool) they are sqlx statements on a pooled connection; on SQLite's
//! default, one connection, they run on the caller's thread ([`super::sqlite`]). Arguments are
//! [`Arg`]s, rows are read through [`Columns`], so a store's SQL and logic are the same for both.

use super::{Db, sqlite};
use crate::StepError;
use sqlx::{Any, AnyPool, Row as _, any::AnyRow};

/// One argument of a statement: the stores bind text, integers and NULL, nothing else.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(s)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Text(s)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Arg::Null, Arg::Text)
    }
}

/// The arguments of one statement: `args![a, b, c]`, each anything that is `Into<Arg>`.
macro_rules! args {
    ($($arg:expr),* $(,)?) => { &[$($crate::db::Arg::from($arg)),*] };
}
pub(crate) use args;

/// A row as either driver hands it over, read by column index.
pub trait Columns {
    type Error;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
}

impl Columns for AnyRow {
    type Error = sqlx::Error;
    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(i)
    }
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> Result<String, rusqlite::Error> {
        self.get(i)
    }
    fn int(&self, i: usize) -> Result<i64, rusqlite::Error> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, rusqlite::Error> {
        self.get(i)
    }
}

/// What a row is read into: a record, or a single column.
pub trait FromColumns: Sized {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, R::Error>;
}

impl FromColumns for String {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, R::Error> {
        row.text(0)
    }
}

impl FromColumns for i64 {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, R::Error> {
        row.int(0)
    }
}

impl FromColumns for (String, i64) {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, R::Error> {
        Ok((row.text(0)?, row.int(1)?))
    }
}

impl FromColumns for (String, String) {
    fn from_columns<R: Columns>(row: &R) -> Result<Self, R::Error> {
        Ok((row.text(0)?, row.text(1)?))
    }
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match *arg {
            Arg::Text(s) => query.bind(s),
            Arg::Int(n) => query.bind(n),
            Arg::Null => query.bind(None::<&str>),
        };
    }
    query
}

fn read<T: FromColumns>(rows: Vec<AnyRow>) -> Result<Vec<T>, StepError> {
    rows.iter()
        .map(|row| T::from_columns(row).map_err(StepError::from))
        .collect()
}

/// A local transaction: committed by [`Tx::commit`], rolled back if dropped before.
pub enum Tx<'a> {
    Pooled(sqlx::Transaction<'static, Any>),
    Inline(sqlite::Tx<'a>),
}

impl Db {
    /// Begins a transaction. On SQLite it holds the database's write lock from here on
    /// (`BEGIN IMMEDIATE`), waiting for it without blocking the thread.
    pub async fn begin(&self) -> Result<Tx<'_>, StepError> {
        match self {
            Db::Pool(pool) => Ok(Tx::Pooled(pool.begin().await?)),
            Db::Sqlite(sqlite) => Ok(Tx::Inline(sqlite.begin().await?)),
        }
    }

    /// One statement in a transaction of its own; the rows it changed.
    pub async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StepError> {
        match self {
            Db::Pool(pool) => execute_pooled(pool, sql, args).await,
            Db::Sqlite(_) => {
                let mut tx = self.begin().await?;
                let changed = tx.execute(sql, args).await?;
                tx.commit().await?;
                Ok(changed)
            }
        }
    }

    /// One statement in a transaction of its own, read to its end (so an error of the commit
    /// that ends it is reported): its rows.
    pub async fn rows<T: FromColumns>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, StepError> {
        match self {
            Db::Pool(pool) => read(bind(sqlx::query(sql), args).fetch_all(pool).await?),
            Db::Sqlite(_) => {
                let mut tx = self.begin().await?;
                let rows = tx.rows(sql, args).await?;
                tx.commit().await?;
                Ok(rows)
            }
        }
    }
}

async fn execute_pooled(pool: &AnyPool, sql: &str, args: &[Arg<'_>]) -> Result<u64, StepError> {
    Ok(bind(sqlx::query(sql), args)
        .execute(pool)
        .await?
        .rows_affected())
}

impl Tx<'_> {
    /// Runs a statement in the transaction; the rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StepError> {
        match self {
            Tx::Pooled(tx) => Ok(bind(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected()),
            Tx::Inline(tx) => Ok(tx.execute(sql, args)?),
        }
    }

    /// Runs a statement in the transaction; its rows.
    pub async fn rows<T: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, StepError> {
        match self {
            Tx::Pooled(tx) => read(bind(sqlx::query(sql), args).fetch_all(&mut **tx).await?),
            Tx::Inline(tx) => Ok(tx.rows(sql, args)?),
        }
    }

    /// The first row of a statement, if it returned any.
    pub async fn row<T: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StepError> {
        Ok(self.rows(sql, args).await?.into_iter().next())
    }

    pub async fn commit(self) -> Result<(), StepError> {
        match self {
            Tx::Pooled(tx) => Ok(tx.commit().await?),
            Tx::Inline(tx) => Ok(tx.commit()?),
        }
    }

    pub async fn rollback(self) -> Result<(), StepError> {
        match self {
            Tx::Pooled(tx) => Ok(tx.rollback().await?),
            Tx::Inline(tx) => Ok(tx.rollback()?),
        }
    }
}
