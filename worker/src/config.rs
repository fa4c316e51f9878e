//! Settings from the environment, with the design's defaults.

use saga_activities::{DbConfig, Service, StoresConfig};
use std::path::PathBuf;

/// The workflow type every client starts.
pub const WORKFLOW_TYPE: &str = "OrderSaga";
/// The task queue of the design.
pub const DEFAULT_TASK_QUEUE: &str = "order-saga";
/// The stock an item starts with the first time an order names it.
pub const DEFAULT_STOCK: i64 = 1000;

/// Where the service databases live: `SAGA_DATA_DIR`, default `./data`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("SAGA_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Each service's database: `<SERVICE>_DATABASE_URL`, default an SQLite file under the data
/// directory; `<SERVICE>_DB_POOL_SIZE`, else `SAGA_DB_POOL_SIZE`, overrides how many connections
/// it opens (default 8 for PostgreSQL, a pool; 1 for SQLite, held rather than pooled: see
/// [`saga_activities::db::Db`]).
pub fn stores_config() -> anyhow::Result<StoresConfig> {
    let dir = data_dir();
    let pool_size = env_parse::<u32>("SAGA_DB_POOL_SIZE")?;
    let db = |service: Service| -> anyhow::Result<DbConfig> {
        let url = std::env::var(service.url_env())
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| service.default_url(&dir));
        let mut config = DbConfig::new(url);
        let own = env_parse::<u32>(&format!(
            "{}_DB_POOL_SIZE",
            service.name().to_ascii_uppercase()
        ))?;
        if let Some(size) = own.or(pool_size) {
            anyhow::ensure!(size > 0, "a database pool needs at least one connection");
            config.max_connections = size;
        }
        Ok(config)
    };
    Ok(StoresConfig {
        orders: db(Service::Orders)?,
        payments: db(Service::Payments)?,
        inventory: db(Service::Inventory)?,
        notifications: db(Service::Notifications)?,
        default_stock: env_parse("SAGA_DEFAULT_STOCK")?.unwrap_or(DEFAULT_STOCK),
    })
}

/// An optional environment variable parsed as `T`, with an error naming it when it is not.
pub fn env_parse<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid value")),
        _ => Ok(None),
    }
}
