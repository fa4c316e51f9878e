//! Connections, pools and migrations for the four service databases.
//!
//! Each service owns its own database, chosen by a URL: an SQLite file by default, PostgreSQL when
//! the URL says `postgres://`. The SQL is written once, in the dialect both understand.

mod sqlite;
mod tx;

pub use sqlite::InlineSqlite;
pub(crate) use tx::args;
pub use tx::{Arg, Columns, FromColumns, Tx};

use anyhow::Context as _;
use sqlx::{Any, AnyPool, Executor, any::AnyPoolOptions, pool::PoolConnection};
use std::{path::Path, sync::Arc, time::Duration};

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
    /// one connection to a file only adds lock waits (and with one, the steps run on the
    /// caller's thread: see [`Db`]);
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
/// time) runs the steps' transactions on the caller's thread ([`sqlite`]), and keeps a pool for
/// everything else. The steps reach either through [`Db::begin`], [`Db::execute`] and
/// [`Db::rows`]; reads and the webhook relay take a connection of the pool ([`Db::acquire`]).
#[derive(Debug, Clone)]
pub enum Db {
    Pool(AnyPool),
    Sqlite(Arc<InlineSqlite>),
}

impl Db {
    /// A connection of the pool, for a statement outside the steps (a read, the relay).
    pub async fn acquire(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        self.pool().acquire().await
    }

    /// The pool, for what runs on sqlx: reads, the relay, migrations.
    pub fn pool(&self) -> &AnyPool {
        match self {
            Db::Pool(pool) => pool,
            Db::Sqlite(sqlite) => &sqlite.pool,
        }
    }
}

impl From<AnyPool> for Db {
    fn from(pool: AnyPool) -> Self {
        Db::Pool(pool)
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

/// Opens the database and brings the schema up to date: a pool, or for an SQLite file with one
/// connection that connection beside the pool (see [`Db`]).
pub async fn open(service: Service, config: &DbConfig) -> anyhow::Result<Db> {
    let pool = open_pool(service, config).await?;
    if config.max_connections <= 1
        && let Some(path) = sqlite_path(&config.url)
    {
        let sqlite = InlineSqlite::open(Path::new(path), pool)
            .with_context(|| format!("opening the {} database at {path}", service.name()))?;
        return Ok(Db::Sqlite(Arc::new(sqlite)));
    }
    Ok(Db::Pool(pool))
}

/// How long a statement outside the steps waits for a connection of the pool before failing:
/// well inside an attempt's 10 s start-to-close, so an unreachable or busy database fails the
/// attempt with its own error rather than with the attempt's timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

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

    async fn sqlite(dir: &Path) -> (Db, Arc<InlineSqlite>) {
        let config = DbConfig::new(Service::Orders.default_url(dir));
        let db = open(Service::Orders, &config).await.unwrap();
        let Db::Sqlite(sqlite) = &db else {
            panic!("SQLite with one connection runs on the caller's thread: {db:?}");
        };
        let sqlite = sqlite.clone();
        db.execute("CREATE TABLE scratch (id INTEGER, x TEXT)", &[])
            .await
            .unwrap();
        (db, sqlite)
    }

    async fn scratch(db: &Db) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT x, id FROM scratch ORDER BY id")
            .fetch_all(&mut *db.acquire().await.unwrap())
            .await
            .unwrap()
    }

    /// A step that fails half way through its transaction (or whose future is dropped there)
    /// leaves nothing of it, and the next step free to begin its own.
    #[tokio::test]
    async fn a_transaction_dropped_half_way_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = sqlite(dir.path()).await;
        {
            let mut tx = db.begin().await.unwrap();
            tx.execute("INSERT INTO scratch (id, x) VALUES (1, 'a')", &[])
                .await
                .unwrap();
        }
        let mut tx = db.begin().await.unwrap();
        tx.execute("INSERT INTO scratch (id, x) VALUES (2, 'b')", &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(scratch(&db).await, [("b".to_owned(), 2)]);
    }

    /// `$N` binds the N-th argument wherever it first appears, as on PostgreSQL.
    #[tokio::test]
    async fn arguments_bind_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = sqlite(dir.path()).await;
        db.execute(
            "INSERT INTO scratch (id, x) VALUES ($1, $2)",
            args![7_i64, "before"],
        )
        .await
        .unwrap();
        let changed = db
            .execute(
                "UPDATE scratch SET x = $2 WHERE id = $1 AND x <> $2",
                args![7_i64, "after"],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1);
        let read: Vec<(String, i64)> = db
            .rows("SELECT x, id FROM scratch WHERE id = $1", args![7_i64])
            .await
            .unwrap();
        assert_eq!(read, [("after".to_owned(), 7)]);
    }

    /// While another process holds the file's write lock, a step waits on the runtime's timer,
    /// leaving the thread to the rest of the worker, and fails as busy (retried) after its
    /// wait; once the lock is gone it goes through.
    #[tokio::test(flavor = "current_thread")]
    async fn a_locked_file_is_waited_for_off_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (_, sqlite) = sqlite(dir.path()).await;
        let path = dir.path().join("orders.db");
        let wait = Duration::from_millis(300);
        let db = Db::Sqlite(Arc::new(
            InlineSqlite::open(&path, sqlite.pool.clone())
                .unwrap()
                .with_busy_wait(wait),
        ));
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();

        let ticks = std::sync::atomic::AtomicU32::new(0);
        let ticking = async {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            outcome = db.execute("INSERT INTO scratch (id, x) VALUES (1, 'a')", &[]) => outcome,
            _ = ticking => unreachable!(),
        };
        let e = outcome.unwrap_err();
        assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
        assert!(
            ticks.load(std::sync::atomic::Ordering::Relaxed) >= 10,
            "the thread was free while the step waited"
        );
        assert!(
            matches!(
                e,
                crate::StepError::Infrastructure {
                    kind: crate::FaultKind::Contention,
                    ..
                }
            ),
            "{e}"
        );

        other.execute_batch("ROLLBACK").unwrap();
        db.execute("INSERT INTO scratch (id, x) VALUES (1, 'a')", &[])
            .await
            .unwrap();
        assert_eq!(scratch(&db).await, [("a".to_owned(), 1)]);
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
