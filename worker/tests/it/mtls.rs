//! mTLS to the server, for real: Debian's nginx terminates TLS in front of a dev server and
//! demands a client certificate (`ssl_verify_client on`, `grpc_pass`); the certificates are made
//! here with the `openssl` CLI. The worker and `saga scenarios` connect through it from a
//! `temporal.toml` profile and the seven scenarios take the design's paths; a profile with the
//! wrong CA, or without the client certificate, makes `saga worker` stop at start with a message
//! that says so (not retry forever).

use crate::support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};
use support::{DevServer, Proc};

fn nginx() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        return Some(PathBuf::from(path));
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME.crt`, `NAME.key`).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A leaf certificate `NAME.crt`/`NAME.key` signed by `ca`, with `extensions`.
fn make_leaf(dir: &Path, ca: &str, name: &str, extensions: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// nginx on `port`: TLS with `server.crt`, client certificates verified against `ca.crt`,
/// gRPC passed to the dev server. Returns once it listens.
fn start_nginx(bin: &Path, dir: &Path, port: u16, upstream: &str) -> Proc {
    let d = dir.display();
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join("tmp").join(sub)).unwrap();
    }
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {d}/server.crt;
        ssl_certificate_key {d}/server.key;
        ssl_client_certificate {d}/ca.crt;
        ssl_verify_client on;
        # Task polls are long polls: keep them open past the server's own timeout.
        grpc_read_timeout 300s;
        grpc_send_timeout 300s;
        client_body_timeout 300s;
        keepalive_timeout 300s;
        location / {{
            grpc_pass grpc://{upstream};
        }}
    }}
}}
"#
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let log = std::fs::File::create(dir.join("nginx.out")).unwrap();
    let child = Command::new(bin)
        .args(["-p", &d.to_string(), "-e", &format!("{d}/nginx-error.log")])
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("starting nginx");
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen on {port}: {}{}",
            std::fs::read_to_string(dir.join("nginx.out")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    proc
}

/// A `temporal.toml` with one profile for the TLS endpoint; `tls` holds its `[tls]` lines.
fn profile(dir: &Path, name: &str, port: u16, tls: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[profile.default]\naddress = \"localhost:{port}\"\nnamespace = \"default\"\n\n\
             [profile.default.tls]\n{tls}"
        ),
    )
    .unwrap();
    path
}

/// `saga ARGS` configured by the profile `config` alone (no TEMPORAL_* variables).
fn saga(config: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_saga"));
    cmd.args(args)
        .env("TEMPORAL_CONFIG_FILE", config)
        .env("SAGA_DATA_DIR", data)
        .env("SAGA_LOG", "info")
        .env_remove("SAGA_ENCRYPTION_KEYS_FILE")
        .env_remove("SAGA_ENCRYPTION_KEYS");
    for (key, _) in std::env::vars() {
        if key.starts_with("TEMPORAL_") && key != "TEMPORAL_BIN" {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `saga worker` with `config`, which must stop by itself within `within`.
fn worker_refused(config: &Path, data: &Path, within: Duration) -> Output {
    let mut child = saga(config, data, &["worker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "saga worker kept running with {}: {}",
                config.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_seven_scenarios_run_through_an_mtls_terminator_and_bad_certificates_fail_at_start() {
    let Some(nginx) = nginx() else {
        assert!(
            std::env::var("CI").is_err(),
            "nginx is required in CI (scripts/setup.sh installs it)"
        );
        eprintln!("SKIPPED: no nginx here; run scripts/setup.sh to install it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path();
    make_ca(pki, "ca");
    make_ca(pki, "other-ca");
    make_leaf(
        pki,
        "ca",
        "server",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    make_leaf(pki, "ca", "client", "extendedKeyUsage=clientAuth\n");

    let server = DevServer::start();
    let port = support::free_port();
    let _nginx = start_nginx(&nginx, pki, port, &server.address());
    let p = |f: &str| pki.join(f).display().to_string();

    let good = profile(
        pki,
        "good",
        port,
        &format!(
            "server_ca_cert_path = \"{}\"\nclient_cert_path = \"{}\"\nclient_key_path = \"{}\"\n",
            p("ca.crt"),
            p("client.crt"),
            p("client.key")
        ),
    );
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let worker_log = dir.path().join("worker.log");
    let log_file = std::fs::File::create(&worker_log).unwrap();
    let _worker = Proc(
        saga(&good, &data, &["worker"])
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap(),
    );
    let scenarios = saga(&good, &data, &["scenarios"]).output().unwrap();
    let table = String::from_utf8_lossy(&scenarios.stdout);
    assert!(
        scenarios.status.success() && table.contains("all 7 scenarios took the design's path"),
        "saga scenarios through mTLS:\n{table}\n{}\nworker log:\n{}",
        String::from_utf8_lossy(&scenarios.stderr),
        support::log_tail(
            &std::fs::read_to_string(&worker_log).unwrap_or_default(),
            30
        )
    );
    let log = std::fs::read_to_string(&worker_log).unwrap();
    assert!(
        log.contains(&format!("localhost:{port}")),
        "the worker connected through the terminator: {}",
        support::log_tail(&log, 20)
    );

    // The server's certificate is not signed by the CA the profile trusts.
    let wrong_ca = profile(
        pki,
        "wrong-ca",
        port,
        &format!(
            "server_ca_cert_path = \"{}\"\nclient_cert_path = \"{}\"\nclient_key_path = \"{}\"\n",
            p("other-ca.crt"),
            p("client.crt"),
            p("client.key")
        ),
    );
    let out = worker_refused(&wrong_ca, &data, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("server_ca_cert") && err.contains("certificate"),
        "wrong CA: {err}"
    );

    // No client certificate: the terminator refuses.
    let no_client_cert = profile(
        pki,
        "no-client-cert",
        port,
        &format!("server_ca_cert_path = \"{}\"\n", p("ca.crt")),
    );
    let out = worker_refused(&no_client_cert, &data, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("client certificate") && err.contains("client_cert_path"),
        "no client certificate: {err}"
    );
}
