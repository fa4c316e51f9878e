//! Each service's schema migrations, compiled into the binary and run by sqlx's `Migrator`.
//!
//! | service         | file (in `activities/migrations/`) | version |
//! |-----------------|------------------------------------|---------|
//! | orders          | `orders/101_orders.sql`            | 1xx     |
//! | payments        | `payments/201_payments.sql`        | 2xx     |
//! | inventory       | `inventory/301_inventory.sql`      | 3xx     |
//! | notifications   | `notifications/401_notifications.sql`, `402_webhook_deliveries.sql` | 4xx |
//!
//! Versions differ per service so that services sharing one PostgreSQL database keep their
//! migrations apart (each migrator ignores the others' rows).
//!
//! Why not `sqlx::migrate!`: that procedural macro makes the compiler build a second copy of
//! sqlx, its PostgreSQL and SQLite drivers and SQLite's C sources for the macro itself, a large
//! share of a cold build (CONTRIBUTING.md, "Build time"). The files are embedded with `include_str!`
//! instead and handed to the same `Migrator` through its public `MigrationSource` trait, named,
//! described and checksummed exactly as the macro would, so databases migrated by earlier
//! builds are recognised as up to date.

use crate::db::Service;
use futures::future::BoxFuture;
use sqlx::{
    error::BoxDynError,
    migrate::{Migration, MigrationSource, MigrationType, Migrator},
};
use std::borrow::Cow;

/// A service's migration files: (file name, SQL).
type Files = &'static [(&'static str, &'static str)];

fn files(service: Service) -> Files {
    match service {
        Service::Orders => &[(
            "101_orders.sql",
            include_str!("../migrations/orders/101_orders.sql"),
        )],
        Service::Payments => &[(
            "201_payments.sql",
            include_str!("../migrations/payments/201_payments.sql"),
        )],
        Service::Inventory => &[(
            "301_inventory.sql",
            include_str!("../migrations/inventory/301_inventory.sql"),
        )],
        Service::Notifications => &[
            (
                "401_notifications.sql",
                include_str!("../migrations/notifications/401_notifications.sql"),
            ),
            (
                "402_webhook_deliveries.sql",
                include_str!("../migrations/notifications/402_webhook_deliveries.sql"),
            ),
        ],
    }
}

/// The migrator of one service's database.
pub async fn migrator(service: Service) -> Result<Migrator, sqlx::migrate::MigrateError> {
    let mut migrator = Migrator::new(Embedded(files(service))).await?;
    migrator.set_ignore_missing(true);
    Ok(migrator)
}

/// Embedded files as a migration source.
#[derive(Debug)]
struct Embedded(Files);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            self.0
                .iter()
                .map(|&(name, sql)| migration(name, sql))
                .collect()
        })
    }
}

/// `101_orders.sql` → version 101, description `orders`: sqlx's rules for a migrations folder.
fn migration(file_name: &str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let (version, rest) = file_name
        .split_once('_')
        .ok_or_else(|| format!("migration {file_name}: expected VERSION_DESCRIPTION.sql"))?;
    let version: i64 = version
        .parse()
        .map_err(|_| format!("migration {file_name}: the version is not a number"))?;
    let migration_type = MigrationType::from_filename(rest);
    let description = rest
        .trim_end_matches(migration_type.suffix())
        .replace('_', " ");
    Ok(Migration::new(
        version,
        Cow::Owned(description),
        migration_type,
        Cow::Borrowed(sql),
        sql.starts_with("-- no-transaction"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_file_of_the_migrations_folders_is_embedded_as_sqlx_reads_it() {
        for service in Service::ALL {
            let embedded = migrator(service).await.unwrap();
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(service.name());
            // What sqlx itself (and its `migrate!` macro) reads from the folder.
            let from_folder = Migrator::new(dir).await.unwrap();
            let key = |m: &Migration| {
                (
                    m.version,
                    m.description.to_string(),
                    m.checksum.to_vec(),
                    m.no_tx,
                    m.migration_type,
                )
            };
            assert_eq!(
                embedded.iter().map(key).collect::<Vec<_>>(),
                from_folder.iter().map(key).collect::<Vec<_>>(),
                "{}",
                service.name()
            );
            assert!(embedded.iter().count() >= 1);
        }
    }
}
