//! PostgreSQL for tests (feature `test-support`):
//!
//! | helper | what | for |
//! |---|---|---|
//! | [`ScratchDatabases`] | fresh databases on the shared server named by `SAGA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped at the end of the test, also when it panics | tests that need PostgreSQL |
//! | [`PrivatePostgres`] | a server of the test's own, in a temporary directory | outage tests, which stop and start it |
//!
//! With no shared server a test is skipped (`create` gives `None`), except under CI
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

/// A PostgreSQL server of a test's own, in a temporary directory on a port of its own, that the
/// test may stop and start at will (an outage) without touching the machine's shared server.
///
/// Made with the server binaries `pg_config --bindir` names (`initdb`, `pg_ctl`); as root they
/// run as the `postgres` user, as PostgreSQL requires. Stopped and deleted on drop.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    pub port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Initialises a cluster, starts it and creates `databases` in it.
    pub async fn start(databases: &[&str]) -> Self {
        let bin = std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .expect("pg_config --bindir names PostgreSQL's server binaries");
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("saga-pg-")
            .tempdir()
            .expect("a directory for the private PostgreSQL");
        if as_postgres {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown of the private PostgreSQL's directory"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let server = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.start_again();
        let admin = server.url("postgres");
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connecting to the private PostgreSQL");
        for db in databases {
            conn.execute(format!("CREATE DATABASE {db}").as_str())
                .await
                .expect("creating a database");
        }
        let _ = conn.close().await;
        server
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// A command running one of the server's binaries, as `postgres` when this process is root.
    fn command(&self, program: &str) -> std::process::Command {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs one of the server's binaries to success.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server the way an operator's restart does: open connections are terminated,
    /// new ones refused until [`Self::start_again`].
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data_dir(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data_dir(), "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// PostgreSQL refuses to run as root; as root, its binaries run as `postgres`.
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
