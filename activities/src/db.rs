//! Connections, pools and migrations for the four service databases.
//!
//! Each service owns its own database, chosen by a URL: an SQLite file by default, PostgreSQL when
//! the URL says `postgres://`. The SQL is written once, in the dialect both understand.

use anyhow::Context as _;
use sqlx::{
    Any, AnyConnection, AnyPool, Connection as _, Executor, any::AnyPoolOptions,
    pool::PoolConnection,
};
use std::{
    ops::{Deref, DerefMut},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

/// The four services, each with its own database and migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Orders,
    Payments,
    Inventory,
    Notifications,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Orders,
        Service::Payments,
        Service::Inventory,
        Service::Notifications,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Service::Orders => "orders",
            Service::Payments => "payments",
            Service::Inventory => "inventory",
            Service::Notifications => "notifications",
        }
    }

    /// The environment variable that overrides this service's database URL.
    pub const fn url_env(self) -> &'static str {
        match self {
            Service::Orders => "ORDERS_DATABASE_URL",
            Service::Payments => "PAYMENTS_DATABASE_URL",
            Service::Inventory => "INVENTORY_DATABASE_URL",
            Service::Notifications => "NOTIFICATIONS_DATABASE_URL",
        }
    }

    /// The default URL: an SQLite file named after the service under `data_dir`.
    pub fn default_url(self, data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(format!("{}.db", self.name())).display()
        )
    }
}

/// How to reach one service's database.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: String,
    /// Most connections opened to the database. SQLite has one writer at a time, so more than
    /// one connection to a file only adds lock waits (and one is held, not pooled: see [`Db`]);
    /// PostgreSQL benefits from a pool of a few.
    pub max_connections: u32,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let max_connections = if is_sqlite(&url) { 1 } else { 8 };
        Self {
            url,
            max_connections,
        }
    }
}

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// One service's database, as its store reaches it.
///
/// PostgreSQL is a pool. SQLite with one connection (the default: a file has one writer at a
/// time) is that connection, held for the life of the process. A pool would ping the
/// connection's thread as a step takes it and again as it hands it back, two thread hand-offs
/// beside each statement's own, and a pool of one serialises the steps just as a lock does.
/// A step cancelled inside a transaction leaves the connection as a pool would: the dropped
/// transaction queues its rollback ahead of the next statement. What the pool's pings were
/// for, replacing a connection whose thread has died, the held connection does at most once a
/// second (see [`HeldConnection`]).
#[derive(Debug, Clone)]
pub enum Db {
    Pool(AnyPool),
    Held(Arc<HeldConnection>),
}

/// SQLite's one connection, and the pool (of one, idle) that opens a replacement when it dies.
#[derive(Debug)]
pub struct HeldConnection {
    /// Opens connections with the pragmas of [`open_pool`]; it holds none itself.
    pool: AnyPool,
    state: Mutex<Held>,
}

#[derive(Debug)]
struct Held {
    /// `None` after the connection was found dead, until the next step opens another.
    connection: Option<AnyConnection>,
    /// When the connection last answered a ping (or was opened).
    checked: Instant,
}

/// How often a step taking the held connection first pings it: a dead connection (its thread
/// gone, which sqlx reports as `WorkerCrashed`, an outage to the retry policy) is replaced
/// within this of a step finding it so, at one ping a second under any load.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A connection taken from a [`Db`] for one statement or one transaction.
pub enum DbConnection<'a> {
    Pooled(PoolConnection<Any>),
    Held(MappedMutexGuard<'a, AnyConnection>),
}

/// How long a step waits for its database's connection before failing: well inside an
/// attempt's 10 s start-to-close, so an unreachable or busy database fails the attempt with its
/// own error rather than with the attempt's timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Db {
    /// Takes the connection, waiting at most [`ACQUIRE_TIMEOUT`] (then `PoolTimedOut`, as a
    /// pool's timeout reads). Give it back (drop it) before the same store takes another.
    pub async fn acquire(&self) -> Result<DbConnection<'_>, sqlx::Error> {
        match self {
            Db::Pool(pool) => pool.acquire().await.map(DbConnection::Pooled),
            Db::Held(held) => tokio::time::timeout(ACQUIRE_TIMEOUT, held.take())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map(DbConnection::Held),
        }
    }
}

impl HeldConnection {
    fn new(pool: AnyPool, connection: AnyConnection) -> Self {
        Self {
            pool,
            state: Mutex::new(Held {
                connection: Some(connection),
                checked: Instant::now(),
            }),
        }
    }

    async fn take(&self) -> Result<MappedMutexGuard<'_, AnyConnection>, sqlx::Error> {
        let mut held = self.state.lock().await;
        if held.checked.elapsed() >= CHECK_EVERY
            && let Some(connection) = held.connection.as_mut()
        {
            match connection.ping().await {
                Ok(()) => held.checked = Instant::now(),
                Err(e) => {
                    tracing::warn!("the SQLite connection is gone ({e}); opening another");
                    held.connection = None;
                }
            }
        }
        if held.connection.is_none() {
            held.connection = Some(self.pool.acquire().await?.detach());
            held.checked = Instant::now();
        }
        MutexGuard::try_map(held, |held| held.connection.as_mut())
            .map_err(|_| sqlx::Error::PoolClosed)
    }
}

impl From<AnyPool> for Db {
    fn from(pool: AnyPool) -> Self {
        Db::Pool(pool)
    }
}

impl Deref for DbConnection<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            DbConnection::Pooled(connection) => connection,
            DbConnection::Held(connection) => connection,
        }
    }
}

impl DerefMut for DbConnection<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            DbConnection::Pooled(connection) => connection,
            DbConnection::Held(connection) => connection,
        }
    }
}

/// Like [`open`], but waits (with capped backoff, logging) while the database is unavailable: a
/// worker started during an outage, or restarted in one, comes up when its database does
/// instead of exiting. Any other failure (a wrong URL, a refused login) ends it at once.
pub async fn open_when_available(service: Service, config: &DbConfig) -> anyhow::Result<Db> {
    let mut delay = Duration::from_millis(500);
    loop {
        match open(service, config).await {
            Ok(pool) => return Ok(pool),
            Err(e) if is_unavailable(&e) => {
                tracing::warn!(
                    service = service.name(),
                    "the {} database is unavailable ({e:#}); retrying in {delay:?}",
                    service.name()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_unavailable(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(|db| crate::error::classify(db) == crate::FaultKind::Unavailable)
}

/// Opens the database and brings the schema up to date: a pool, or for SQLite with one
/// connection that connection, held (see [`Db`]).
pub async fn open(service: Service, config: &DbConfig) -> anyhow::Result<Db> {
    let pool = open_pool(service, config).await?;
    if is_sqlite(&config.url) && config.max_connections <= 1 {
        let connection = pool.acquire().await?.detach();
        return Ok(Db::Held(Arc::new(HeldConnection::new(pool, connection))));
    }
    Ok(Db::Pool(pool))
}

/// Opens a pool and brings the schema up to date.
pub async fn open_pool(service: Service, config: &DbConfig) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    if let Some(path) = sqlite_path(&config.url)
        && let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(config.max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                    // WAL lets readers (`saga status`) run beside the worker; NORMAL sync is
                    // durable across process crashes, which is what a worker restart needs.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 5000;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect(&config.url)
        .await
        .with_context(|| {
            format!(
                "connecting to the {} database at {}",
                service.name(),
                redact(&config.url)
            )
        })?;
    // Two processes opening the same SQLite file at once (a worker starting while `saga status`
    // or another worker opens it) can both try to record the same migration; the loser finds it
    // applied on a second look. (PostgreSQL serialises migrators with an advisory lock.)
    let mut attempt = 0;
    loop {
        match crate::migrations::migrator(service).await?.run(&pool).await {
            Ok(()) => break,
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(service = service.name(), "migration raced, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("migrating the {} database", service.name()));
            }
        }
    }
    Ok(pool)
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The current time as the stores write it: RFC 3339, UTC, seconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://saga:secret@db:5432/orders"),
            "postgres://saga:***@db:5432/orders"
        );
        assert_eq!(redact("postgres://db/orders"), "postgres://db/orders");
        assert_eq!(redact("sqlite://data/orders.db"), "sqlite://data/orders.db");
    }

    /// A step whose future is dropped inside its transaction (an attempt's timeout, a worker
    /// shutting down) must leave the one held SQLite connection as a pool would leave it:
    /// nothing of the transaction written, and the next step free to begin its own.
    #[tokio::test]
    async fn a_transaction_dropped_half_way_leaves_the_held_connection_clean() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let config = DbConfig::new(Service::Orders.default_url(dir.path()));
        let db = open(Service::Orders, &config).await.unwrap();
        assert!(matches!(db, Db::Held(_)), "{db:?}");
        sqlx::query("CREATE TABLE scratch (x INTEGER)")
            .execute(&mut *db.acquire().await.unwrap())
            .await
            .unwrap();
        {
            let mut connection = db.acquire().await.unwrap();
            let mut tx = connection.begin().await.unwrap();
            sqlx::query("INSERT INTO scratch (x) VALUES (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let mut connection = db.acquire().await.unwrap();
        let mut tx = connection.begin().await.unwrap();
        sqlx::query("INSERT INTO scratch (x) VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let rows: Vec<i64> = sqlx::query_scalar("SELECT x FROM scratch")
            .fetch_all(&mut *connection)
            .await
            .unwrap();
        assert_eq!(rows, [2]);
    }

    /// A held connection found dead is replaced by the next step, with the pragmas every
    /// connection gets; a live one is only pinged, once a second at most.
    #[tokio::test]
    async fn a_dead_held_connection_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let config = DbConfig::new(Service::Orders.default_url(dir.path()));
        let Db::Held(held) = open(Service::Orders, &config).await.unwrap() else {
            panic!("SQLite with one connection is held");
        };
        let db = Db::Held(held.clone());
        let journal = async |db: &Db| -> String {
            sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *db.acquire().await.unwrap())
                .await
                .unwrap()
        };
        assert_eq!(journal(&db).await, "wal");
        // Due for its ping: it answers and stays.
        held.state.lock().await.checked -= CHECK_EVERY;
        assert_eq!(journal(&db).await, "wal");
        assert!(held.state.lock().await.checked.elapsed() < CHECK_EVERY);
        // Found dead (what a failed ping does): the next step opens another.
        held.state.lock().await.connection = None;
        assert_eq!(journal(&db).await, "wal");
        assert!(held.state.lock().await.connection.is_some());
    }

    #[test]
    fn finds_the_sqlite_file() {
        assert_eq!(
            sqlite_path("sqlite://data/o.db?mode=rwc"),
            Some("data/o.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
