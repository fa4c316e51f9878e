//! Scratch PostgreSQL databases for tests (feature `test-support`): created on the server named
//! by `SAGA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, an admin
//! connection) and dropped at the end of the test, also when it panics.
//!
//! With no server there a test is skipped (`create` gives `None`), except under CI
//! (`CI=true`), where that is a failure.

use sqlx::{Connection as _, Executor as _, postgres::PgConnection};
use std::time::Duration;

/// Databases of a test's own, named `saga_<tag>_<random>_<part>`.
pub struct ScratchDatabases {
    admin_url: String,
    /// (part, database name, URL)
    databases: Vec<(String, String, String)>,
    dropped: bool,
}

impl ScratchDatabases {
    /// One fresh database per `parts` entry, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn create(tag: &str, parts: &[&str]) -> Option<Self> {
        let admin_url = std::env::var("SAGA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let connect = PgConnection::connect(&admin_url);
        let mut admin = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(conn)) => conn,
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("PostgreSQL at {admin_url} is required in CI: {reason}");
                }
                eprintln!("skipping: PostgreSQL at {admin_url} is unreachable ({reason})");
                return None;
            }
        };
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let base = &base[..base.rfind('/').unwrap_or(base.len())];
        let run = format!("{:08x}", fastrand::u32(..));
        let mut databases = Vec::new();
        for part in parts {
            let name = format!("saga_{tag}_{run}_{part}");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("creating a test database");
            databases.push((part.to_string(), name.clone(), format!("{base}/{name}")));
        }
        let _ = admin.close().await;
        Some(Self {
            admin_url,
            databases,
            dropped: false,
        })
    }

    /// The URL of the database made for `part`.
    pub fn url(&self, part: &str) -> &str {
        self.databases
            .iter()
            .find(|(p, ..)| p == part)
            .map(|(.., url)| url.as_str())
            .unwrap_or_else(|| panic!("no scratch database for `{part}`"))
    }

    /// Drops the databases now (closing any connection still open to them).
    pub async fn drop_now(mut self) {
        drop_databases(&self.admin_url, &self.databases).await;
        self.dropped = true;
    }
}

impl Drop for ScratchDatabases {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // On a thread of its own: this may run inside the test's runtime.
        let admin = self.admin_url.clone();
        let databases = std::mem::take(&mut self.databases);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test databases")
                .block_on(drop_databases(&admin, &databases))
        })
        .join();
    }
}

async fn drop_databases(admin_url: &str, databases: &[(String, String, String)]) {
    if let Ok(mut admin) = PgConnection::connect(admin_url).await {
        for (_, name, _) in databases {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
        let _ = admin.close().await;
    }
}
