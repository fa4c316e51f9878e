//! docker-compose.yml and the Dockerfile, checked structurally: no Docker engine runs where the
//! tests do, so this is what stands between a typo and a user's failed `docker compose up`.
//! When a compose client is on the PATH, it validates the file too.

use serde_norway::Value;
use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("service {name} missing"))
}

fn str_of(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

/// `environment:` as a map or a `KEY=VALUE` list, after YAML merge keys (`<<`).
fn env(service: &Value, key: &str) -> Option<String> {
    let environment = &service["environment"];
    if let Some(map) = environment.as_mapping() {
        if let Some(v) = map.get(key) {
            return Some(scalar(v));
        }
        if let Some(merged) = map.get("<<") {
            return merged.get(key).map(scalar);
        }
        return None;
    }
    environment.as_sequence()?.iter().find_map(|e| {
        let (k, v) = str_of(e).split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn image(service: &Value) -> &str {
    str_of(&service["image"])
}

fn ports(service: &Value) -> Vec<String> {
    service["ports"]
        .as_sequence()
        .map(|p| p.iter().map(scalar).collect())
        .unwrap_or_default()
}

fn depends_on(service: &Value, on: &str) -> String {
    let condition = &service["depends_on"][on]["condition"];
    assert!(
        !condition.is_null(),
        "{on} must be a depends_on with a condition in {service:?}"
    );
    str_of(condition).to_owned()
}

fn healthcheck(service: &Value) -> String {
    let test = &service["healthcheck"]["test"];
    match test {
        Value::String(s) => s.clone(),
        Value::Sequence(parts) => parts.iter().map(scalar).collect::<Vec<_>>().join(" "),
        other => panic!("no healthcheck test: {other:?}"),
    }
}

#[test]
fn the_services_and_their_images() {
    let c = compose();
    assert!(image(service(&c, "postgresql")).starts_with("postgres:16"));
    assert!(image(service(&c, "temporal")).starts_with("temporalio/auto-setup:1.29."));
    assert!(image(service(&c, "temporal-ui")).starts_with("temporalio/ui:2."));
    assert!(image(service(&c, "temporal-admin-tools")).starts_with("temporalio/admin-tools:1.29."));
    assert!(
        image(service(&c, "register-search-attributes")).starts_with("temporalio/admin-tools:")
    );
    // The base services start with a plain `docker compose up`: none hides behind a profile.
    for (name, s) in c["services"].as_mapping().unwrap() {
        if [
            "postgresql",
            "temporal",
            "temporal-ui",
            "temporal-admin-tools",
            "worker",
        ]
        .contains(&str_of(name))
        {
            assert!(s.get("profiles").is_none(), "{name:?} has profiles");
        }
    }
}

#[test]
fn temporal_persists_in_postgresql_and_reports_health() {
    let c = compose();
    let temporal = service(&c, "temporal");
    assert_eq!(env(temporal, "DB").as_deref(), Some("postgres12"));
    assert_eq!(
        env(temporal, "POSTGRES_SEEDS").as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        env(temporal, "POSTGRES_USER"),
        env(service(&c, "postgresql"), "POSTGRES_USER")
    );
    assert_eq!(
        env(temporal, "POSTGRES_PWD"),
        env(service(&c, "postgresql"), "POSTGRES_PASSWORD")
    );
    assert_eq!(depends_on(temporal, "postgresql"), "service_healthy");
    let check = healthcheck(temporal);
    assert!(check.contains("temporal operator"), "{check}");
    assert!(healthcheck(service(&c, "postgresql")).contains("pg_isready"));
}

#[test]
fn ports_are_the_documented_ones() {
    let c = compose();
    assert_eq!(ports(service(&c, "temporal")), ["7233:7233"]);
    assert_eq!(ports(service(&c, "temporal-ui")), ["8080:8080"]);
    assert_eq!(ports(service(&c, "postgresql")), ["5432:5432"]);
    // The worker's order intake: on the compose network only (it has no authentication), and
    // as a flag the split workers' own commands replace.
    let worker = service(&c, "worker");
    assert!(ports(worker).is_empty(), "{:?}", ports(worker));
    assert_eq!(env(worker, "SAGA_INTAKE"), None);
    let command: Vec<String> = worker["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(scalar)
        .collect();
    assert_eq!(command, ["worker", "--intake", "0.0.0.0:8090"]);
    // The README and the operations guide it links to, where Docker and the intake are.
    let readme = ["README.md", "docs/operations.md"]
        .map(|doc| std::fs::read_to_string(repo().join(doc)).unwrap())
        .join("\n");
    assert!(
        readme.contains("http://worker:8090/orders"),
        "README does not document the intake's address in compose"
    );
    for port in ["7233", "8080", "5432"] {
        assert!(
            readme.contains(port),
            "README does not document port {port}"
        );
    }
}

#[test]
fn the_ui_and_the_tools_talk_to_the_server() {
    let c = compose();
    let ui = service(&c, "temporal-ui");
    assert_eq!(
        env(ui, "TEMPORAL_ADDRESS").as_deref(),
        Some("temporal:7233")
    );
    assert_eq!(depends_on(ui, "temporal"), "service_healthy");

    let tools = service(&c, "temporal-admin-tools");
    assert_eq!(
        env(tools, "TEMPORAL_ADDRESS").as_deref(),
        Some("temporal:7233")
    );
    assert_eq!(
        env(tools, "TEMPORAL_CLI_ADDRESS").as_deref(),
        Some("temporal:7233")
    );
    assert_eq!(depends_on(tools, "temporal"), "service_healthy");
    let volumes: Vec<&str> = tools["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert!(
        volumes.contains(&"./testdata:/testdata:ro"),
        "sample orders mounted read-only: {volumes:?}"
    );
    assert!(repo().join("testdata/scenario-5.json").is_file());
}

#[test]
fn search_attributes_are_registered_before_the_worker_starts() {
    let c = compose();
    let register = service(&c, "register-search-attributes");
    assert_eq!(depends_on(register, "temporal"), "service_healthy");
    let script = serde_norway::to_string(&register["entrypoint"]).unwrap();
    for (sa, _) in saga_workflows::visibility::SEARCH_ATTRIBUTES {
        assert!(script.contains(sa), "{sa} not registered: {script}");
    }
    assert!(script.contains("--type Keyword"), "{script}");

    let worker = service(&c, "worker");
    assert_eq!(
        depends_on(worker, "register-search-attributes"),
        "service_completed_successfully"
    );
    assert_eq!(depends_on(worker, "temporal"), "service_healthy");
}

#[test]
fn the_worker_is_built_here_and_keeps_its_data_in_a_volume() {
    let c = compose();
    let worker = service(&c, "worker");
    assert_eq!(str_of(&worker["build"]["context"]), ".");
    let dockerfile = str_of(&worker["build"]["dockerfile"]);
    assert!(repo().join(dockerfile).is_file(), "{dockerfile} missing");
    assert_eq!(
        env(worker, "TEMPORAL_ADDRESS").as_deref(),
        Some("temporal:7233")
    );
    let data_dir = env(worker, "SAGA_DATA_DIR").expect("SAGA_DATA_DIR set");
    let volumes: Vec<&str> = worker["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    let named = volumes
        .iter()
        .find_map(|v| v.strip_suffix(&format!(":{data_dir}")))
        .unwrap_or_else(|| panic!("no volume at {data_dir}: {volumes:?}"));
    assert!(
        c["volumes"].get(named).is_some(),
        "volume {named} not declared"
    );
}

/// Dockerfile stages as (FROM image, stage name) pairs, with each stage's instructions.
fn dockerfile_stages(text: &str) -> Vec<(String, String, Vec<String>)> {
    let mut stages: Vec<(String, String, Vec<String>)> = Vec::new();
    // Join continuation lines so each instruction is one string.
    let joined = text.replace("\\\n", " ");
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0].eq_ignore_ascii_case("FROM") {
            let name = match words.get(2) {
                Some(kw) if kw.eq_ignore_ascii_case("AS") => words[3].to_owned(),
                _ => String::new(),
            };
            stages.push((words[1].to_owned(), name, Vec::new()));
        } else if let Some(stage) = stages.last_mut() {
            stage.2.push(line.to_owned());
        }
    }
    stages
}

#[test]
fn the_dockerfile_builds_with_protoc_and_runs_slim_as_a_user() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let stages = dockerfile_stages(&text);
    assert_eq!(stages.len(), 2, "{stages:?}");
    let (builder_image, builder, build_steps) = &stages[0];
    assert!(builder_image.starts_with("rust:"), "{builder_image}");
    let build = build_steps.join("\n");
    assert!(build.contains("protobuf-compiler"), "{build}");
    // protoc alone fails on the SDK's imports of Google's well-known types.
    assert!(build.contains("libprotobuf-dev"), "{build}");
    // The shipped build: the profile the benchmarks measure.
    assert!(build.contains("cargo build --profile dist"), "{build}");

    let (runtime_image, _, run_steps) = &stages[1];
    assert!(runtime_image.contains("slim"), "{runtime_image}");
    let run = run_steps.join("\n");
    assert!(
        run.contains(&format!("COPY --from={builder} ")) && run.contains("/saga"),
        "{run}"
    );
    let user = run_steps
        .iter()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER instruction");
    assert!(user != "root" && user != "0", "runs as {user}");
    assert!(run.contains("ENTRYPOINT [\"saga\"]"), "{run}");
    assert!(run.contains("CMD [\"worker\"]"), "{run}");

    // The build context leaves out what would make it huge or stale.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target"), "{ignore}");
}

/// `docker compose config -q` or `docker-compose config -q`, when either works here (they need
/// no engine to validate a file).
#[test]
fn a_compose_client_accepts_the_file_when_one_is_installed() {
    let dir = repo();
    let candidates: [(&str, &[&str], &[&str]); 2] = [
        (
            "docker",
            &["compose", "version"],
            &["compose", "config", "-q"],
        ),
        ("docker-compose", &["version"], &["config", "-q"]),
    ];
    let mut checked = false;
    for (bin, probe, args) in candidates {
        // A docker client without the compose plugin is no compose client.
        if !run_in(&dir, bin, probe).is_some_and(|o| o.status.success()) {
            continue;
        }
        let out = run_in(&dir, bin, args).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{bin} {args:?}: {stderr}");
        eprintln!("{bin} {} accepts docker-compose.yml", args.join(" "));
        checked = true;
    }
    if !checked {
        eprintln!("no docker compose client here: docker-compose.yml checked structurally only");
    }
}

fn run_in(dir: &Path, bin: &str, args: &[&str]) -> Option<std::process::Output> {
    Command::new(bin).args(args).current_dir(dir).output().ok()
}

fn volumes(service: &Value) -> Vec<String> {
    service["volumes"]
        .as_sequence()
        .map(|v| v.iter().map(scalar).collect())
        .unwrap_or_default()
}

#[test]
fn payloads_are_encrypted_and_the_ui_and_tools_decrypt_through_the_codec_server() {
    let c = compose();
    // One key file, made once into a volume, shared by the worker and the codec server.
    let keys = service(&c, "encryption-keys");
    let script = serde_norway::to_string(&keys["entrypoint"]).unwrap();
    assert!(
        script.contains("/keys/keys.txt") && script.contains("head -c 32 /dev/urandom"),
        "{script}"
    );
    assert!(
        script.contains("if [ ! -s /keys/keys.txt ]"),
        "never overwrite a key: {script}"
    );
    assert!(volumes(keys).contains(&"saga-keys:/keys".to_owned()));
    assert!(
        c["volumes"].get("saga-keys").is_some(),
        "saga-keys declared"
    );

    let worker = service(&c, "worker");
    let codec = service(&c, "codec-server");
    for (name, s) in [("worker", worker), ("codec-server", codec)] {
        assert_eq!(
            env(s, "SAGA_ENCRYPTION_KEYS_FILE").as_deref(),
            Some("/keys/keys.txt"),
            "{name}"
        );
        assert!(
            volumes(s).contains(&"saga-keys:/keys:ro".to_owned()),
            "{name} reads the keys: {:?}",
            volumes(s)
        );
        assert_eq!(
            depends_on(s, "encryption-keys"),
            "service_completed_successfully",
            "{name}"
        );
    }

    // The codec server: built here, on 8081, reachable from the host's browser only locally.
    assert_eq!(image(codec), image(worker));
    let command: Vec<String> = codec["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(scalar)
        .collect();
    assert_eq!(&command[..1], ["codec-server"]);
    assert!(
        command.windows(2).any(|w| w == ["--port", "8081"]),
        "{command:?}"
    );
    assert_eq!(ports(codec), ["127.0.0.1:8081:8081"]);
    let origins = env(codec, "SAGA_CODEC_CORS_ORIGINS").unwrap_or_default();
    assert!(
        origins.split(',').any(|o| o == "http://localhost:8080"),
        "the Web UI's origin is allowed: {origins}"
    );

    // The UI (in the browser, so the host's address) and the CLIs (on the compose network).
    assert_eq!(
        env(service(&c, "temporal-ui"), "TEMPORAL_CODEC_ENDPOINT").as_deref(),
        Some("http://localhost:8081")
    );
    let tools = service(&c, "temporal-admin-tools");
    assert_eq!(
        env(tools, "TEMPORAL_CODEC_ENDPOINT").as_deref(),
        Some("http://codec-server:8081")
    );
    assert_eq!(
        env(tools, "TEMPORAL_CLI_CODEC_ENDPOINT").as_deref(),
        Some("http://codec-server:8081")
    );
}
