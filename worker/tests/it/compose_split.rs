//! The compose split profile (`docker-compose.split.yml`), checked structurally: one container
//! per role running `saga worker --role <role>`, each service on its own PostgreSQL database
//! created by the init script, everything waiting for a healthy Temporal.

use serde_norway::Value;
use std::path::PathBuf;

fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
}

fn split_compose() -> Value {
    let text = std::fs::read_to_string(repo_file("docker-compose.split.yml")).unwrap();
    let mut doc: Value = serde_norway::from_str(&text).expect("valid YAML");
    doc.apply_merge().expect("valid merge keys");
    doc
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

const SERVICES: [&str; 4] = ["orders", "payments", "inventory", "notifications"];

#[test]
fn one_container_per_role_on_the_worker_image() {
    let doc = split_compose();
    let services = &doc["services"];
    for role in std::iter::once("workflow").chain(SERVICES) {
        let svc = &services[format!("worker-{role}").as_str()];
        assert!(svc.is_mapping(), "worker-{role} is defined");
        // The image's entrypoint is `saga`, so the command starts at the subcommand.
        assert_eq!(strings(&svc["command"]), ["worker", "--role", role]);
        assert_eq!(strings(&svc["profiles"]), ["split"], "worker-{role}");
        assert_eq!(svc["extends"]["service"].as_str(), Some("worker"));
        assert_eq!(svc["extends"]["file"].as_str(), Some("docker-compose.yml"));
        assert_eq!(
            svc["depends_on"]["temporal"]["condition"].as_str(),
            Some("service_healthy"),
            "worker-{role} waits for Temporal"
        );
        assert_eq!(
            svc["depends_on"]["postgresql"]["condition"].as_str(),
            Some("service_healthy"),
            "worker-{role} waits for PostgreSQL"
        );
        assert_eq!(
            svc["environment"]["TEMPORAL_ADDRESS"].as_str(),
            Some("temporal:7233")
        );
        // Every role agrees on the queue names: the workflow routes to the queues the
        // services poll.
        for service in SERVICES {
            let key = format!("SAGA_{}_QUEUE", service.to_uppercase());
            assert_eq!(
                svc["environment"][key.as_str()].as_str(),
                Some(service),
                "worker-{role} {key}"
            );
        }
    }
    // The combined worker would route differently from the split workflow worker.
    assert_eq!(services["worker"]["scale"].as_u64(), Some(0));
}

#[test]
fn each_service_has_its_own_database_on_the_compose_postgresql() {
    let doc = split_compose();
    let services = &doc["services"];
    let init = std::fs::read_to_string(repo_file("deploy/postgres-init.sql")).unwrap();
    for role in SERVICES {
        let env = &services[format!("worker-{role}").as_str()]["environment"];
        for other in SERVICES {
            let key = format!("{}_DATABASE_URL", other.to_uppercase());
            let url = env[key.as_str()].as_str();
            if other == role {
                let database = format!("saga_{role}");
                assert_eq!(
                    url,
                    Some(
                        format!("postgres://temporal:temporal@postgresql:5432/{database}").as_str()
                    )
                );
                assert!(
                    init.contains(&format!("CREATE DATABASE {database};")),
                    "the init script creates {database}"
                );
            } else {
                assert_eq!(
                    url, None,
                    "worker-{role} has no business with {other}'s data"
                );
            }
        }
    }
    assert!(
        services["worker-workflow"]["environment"]
            .as_mapping()
            .unwrap()
            .keys()
            .all(|k| !k.as_str().unwrap().ends_with("_DATABASE_URL")),
        "the workflow worker opens no database"
    );
    let postgres = &services["postgresql"];
    assert!(
        strings(&postgres["volumes"]).contains(
            &"./deploy/postgres-init.sql:/docker-entrypoint-initdb.d/saga-databases.sql:ro"
        ),
        "the init script is mounted"
    );
    assert!(postgres["healthcheck"]["test"].is_sequence());
}
