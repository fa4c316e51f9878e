//! Malformed and hostile orders started from the `temporal` CLI, as a user or an attacker would.
//!
//! Each one must end its workflow at once as Failed with the non-retryable application failure
//! `InvalidOrder` whose message names the field at fault, without running a single activity,
//! without a workflow-task failure (which the server would retry forever), and without writing
//! to any store. The worker must keep serving: a good order afterwards completes.

use crate::support;

use saga_protos::scenario::INVALID_ORDER;
use saga_worker::{
    history::Closed,
    launch::{self, Started},
};
use serde_json::{Value, json};
use std::{path::Path, time::Duration};
use support::{
    DevServer, WorkerProcess, history_events, open_stores, row_counts, saga_status_json,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;

/// How the bad input reaches the CLI.
enum Input {
    /// `--input TEXT` with extra CLI arguments (`--input-meta`, `--input-base64`).
    Text(String, &'static [&'static str]),
    /// `--input-file` with these exact bytes.
    File(Vec<u8>),
    /// Arguments as given (no input, two inputs).
    Args(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    input: Input,
    /// The field the failure message must name: it starts `invalid order: FIELD: `.
    field: &'static str,
    /// An order id the document carries, to check that no store holds anything for it.
    order_id: Option<String>,
}

fn good() -> Value {
    serde_json::from_slice(include_bytes!("../../../testdata/scenario-7.json")).unwrap()
}

/// The good order with `pointer` set to `value` (or removed when `value` is None).
fn with(order_id: &str, pointer: &str, value: Option<Value>) -> Value {
    let mut doc = good();
    doc["order_id"] = json!(order_id);
    match value {
        // A new key (an unknown field) is added to its parent object.
        Some(value) => match doc.pointer_mut(pointer) {
            Some(slot) => *slot = value,
            None => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                let parent = if parent.is_empty() {
                    &mut doc
                } else {
                    doc.pointer_mut(parent).unwrap()
                };
                parent
                    .as_object_mut()
                    .unwrap()
                    .insert(key.to_owned(), value);
            }
        },
        None => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = if parent.is_empty() {
                &mut doc
            } else {
                doc.pointer_mut(parent).unwrap()
            };
            parent.as_object_mut().unwrap().remove(key);
        }
    }
    doc
}

fn json_case(name: &'static str, pointer: &str, value: Option<Value>, field: &'static str) -> Case {
    let order_id = format!("4bad-{name}");
    Case {
        name,
        input: Input::File(with(&order_id, pointer, value).to_string().into_bytes()),
        field,
        order_id: Some(order_id),
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // A payload that is not JSON at all, declared as plain bytes.
        Case {
            name: "not-json-binary",
            input: Input::Text(
                "not json".into(),
                &["--input-meta", "encoding=binary/plain"],
            ),
            field: "order",
            order_id: None,
        },
        // "1234" passes the CLI's JSON check and decodes to three non-JSON bytes declared
        // json/plain: the parser itself must refuse them.
        Case {
            name: "not-json-bytes",
            input: Input::Text("1234".into(), &["--input-base64"]),
            field: "order",
            order_id: None,
        },
        Case {
            name: "json-null",
            input: Input::Text("null".into(), &[]),
            field: "order",
            order_id: None,
        },
        Case {
            name: "json-array",
            input: Input::Text(r#"[{"order_id":"4bad"}]"#.into(), &[]),
            field: "order",
            order_id: None,
        },
        Case {
            name: "no-input",
            input: Input::Args(&[]),
            field: "order",
            order_id: None,
        },
        Case {
            name: "two-inputs",
            input: Input::Args(&["--input", "{}", "--input", "{}"]),
            field: "order",
            order_id: None,
        },
    ];
    let id = |name: &str| format!("4bad-{name}");
    cases.extend([
        json_case("order-id-number", "/order_id", Some(json!(42)), "order_id"),
        json_case(
            "qty-string",
            "/items/0/qty",
            Some(json!("1")),
            "items[0].qty",
        ),
        json_case("items-object", "/items", Some(json!({"0": 1})), "items"),
        json_case("missing-order-id", "/order_id", None, "order_id"),
        json_case("missing-items", "/items", None, "items"),
        json_case("empty-items", "/items", Some(json!([])), "items"),
        json_case("zero-qty", "/items/1/qty", Some(json!(0)), "items[1].qty"),
        json_case(
            "negative-qty",
            "/items/2/qty",
            Some(json!(-2)),
            "items[2].qty",
        ),
        json_case(
            "fractional-qty",
            "/items/0/qty",
            Some(json!(0.5)),
            "items[0].qty",
        ),
        json_case(
            "negative-price",
            "/items/0/unit_price",
            Some(json!(-19.99)),
            "items[0].unit_price",
        ),
        json_case(
            "absurd-price",
            "/items/0/unit_price",
            Some(json!(1e300)),
            "items[0].unit_price",
        ),
        json_case("unknown-field", "/coupon", Some(json!("FREE")), "coupon"),
        json_case(
            "unknown-item-field",
            "/items/0/discount",
            Some(json!(1)),
            "items[0].discount",
        ),
        json_case(
            "long-customer-id",
            "/customer_id",
            Some(json!("c".repeat(10_000))),
            "customer_id",
        ),
        json_case(
            "long-description",
            "/items/0/description",
            Some(json!("d".repeat(5_000))),
            "items[0].description",
        ),
        json_case(
            "control-char-id",
            "/items/0/item_id",
            Some(json!("12\u{7}3")),
            "items[0].item_id",
        ),
        // The date must be an RFC 3339 date-time: words, a bare date, a time without offset or
        // an impossible day are refused like any other bad value.
        json_case(
            "date-yesterday",
            "/order_date",
            Some(json!("yesterday")),
            "order_date",
        ),
        json_case(
            "date-without-time",
            "/order_date",
            Some(json!("2018-10-19")),
            "order_date",
        ),
        json_case(
            "date-without-offset",
            "/order_date",
            Some(json!("2018-10-19T10:50:16")),
            "order_date",
        ),
        json_case(
            "date-february-30",
            "/order_date",
            Some(json!("2018-02-30T10:50:16Z")),
            "order_date",
        ),
        json_case(
            "date-number",
            "/order_date",
            Some(json!(1539917416)),
            "order_date",
        ),
        json_case(
            "too-many-items",
            "/items",
            Some(Value::Array(vec![good()["items"][0].clone(); 600])),
            "items",
        ),
    ]);
    // A price of 1e999 is valid JSON text (the CLI accepts it) but no finite number.
    let order_id = id("infinite-price");
    let text = with(&order_id, "/items/0/unit_price", Some(json!(12345.5)))
        .to_string()
        .replace("12345.5", "1e999");
    cases.push(Case {
        name: "infinite-price",
        input: Input::File(text.into_bytes()),
        field: "items[0].unit_price",
        order_id: Some(order_id),
    });
    // A 300 KB document: refused on its size before it is parsed.
    let order_id = id("huge-document");
    let mut doc = with(&order_id, "/items/0/description", Some(json!("ok")));
    doc["padding"] = json!(" ".repeat(300 * 1024));
    cases.push(Case {
        name: "huge-document",
        input: Input::File(doc.to_string().into_bytes()),
        field: "order",
        order_id: Some(order_id),
    });
    // A very long order id: it would become a key in every store.
    cases.push(Case {
        name: "long-order-id",
        input: Input::File(
            with(&"4".repeat(100_000), "/customer_id", Some(json!("c")))
                .to_string()
                .into_bytes(),
        ),
        field: "order_id",
        order_id: None,
    });
    // Bytes that are not UTF-8 inside the order id: the CLI passes a file through untouched.
    let mut bytes = with("4bad-utf8-XX", "/customer_id", Some(json!("c")))
        .to_string()
        .into_bytes();
    let at = bytes.windows(2).position(|w| w == b"XX").unwrap();
    bytes[at] = 0xff;
    bytes[at + 1] = 0xfe;
    cases.push(Case {
        name: "non-utf8-order-id",
        input: Input::File(bytes.clone()),
        field: "order_id",
        order_id: None,
    });
    // The same bytes base64-encoded on the command line (the CLI checks JSON before decoding
    // base64, so they travel as plain bytes).
    cases.push(Case {
        name: "non-utf8-base64",
        input: Input::Text(
            base64(&bytes),
            &["--input-base64", "--input-meta", "encoding=binary/plain"],
        ),
        field: "order",
        order_id: None,
    });
    cases
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn start_args(case: &Case, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "workflow",
        "start",
        "--type",
        "OrderSaga",
        "--task-queue",
        "order-saga",
        "--execution-timeout",
        "600s",
        "--workflow-id",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("bad-{}", case.name));
    match &case.input {
        Input::Text(text, extra) => {
            args.extend(["--input".to_owned(), text.clone()]);
            args.extend(extra.iter().map(|s| s.to_string()));
        }
        Input::File(bytes) => {
            let file = dir.join(format!("{}.json", case.name));
            std::fs::write(&file, bytes).unwrap();
            args.extend(["--input-file".to_owned(), file.display().to_string()]);
        }
        Input::Args(extra) => args.extend(extra.iter().map(|s| s.to_string())),
    }
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_orders_from_the_cli_fail_fast_name_the_field_and_write_nothing() {
    let server = DevServer::start();
    let data = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(&server, data.path(), &[]);
    let client = server.client().await;

    let cases = cases();
    for case in &cases {
        let args = start_args(case, inputs.path());
        let out = server.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "{}: temporal workflow start: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    for case in &cases {
        let workflow_id = format!("bad-{}", case.name);
        let started = Started {
            workflow_id: workflow_id.clone(),
            run_id: String::new(),
        };
        // A workflow-task failure would retry forever; the timeout turns that into a failure.
        let history =
            tokio::time::timeout(Duration::from_secs(60), launch::wait(&client, &started))
                .await
                .unwrap_or_else(|_| panic!("{}: still running after 60 s", case.name))
                .unwrap();
        match &history.closed {
            Closed::Failed {
                failure_type,
                message,
            } => {
                assert_eq!(failure_type, INVALID_ORDER, "{}: {message}", case.name);
                let prefix = format!("invalid order: {}: ", case.field);
                assert!(
                    message.starts_with(&prefix),
                    "{}: expected the message to name {}, got {message}",
                    case.name,
                    case.field
                );
            }
            other => panic!(
                "{}: expected an InvalidOrder failure, got {other:?}",
                case.name
            ),
        }
        assert!(
            history.path.is_empty(),
            "{}: activities ran: {:?}",
            case.name,
            history.path
        );
        let events = history_events(&client, &workflow_id).await;
        let task_failures = events
            .iter()
            .filter(|e| e.event_type() == EventType::WorkflowTaskFailed)
            .count();
        assert_eq!(task_failures, 0, "{}: workflow task failures", case.name);
        if let Some(order_id) = &case.order_id {
            let status = saga_status_json(data.path(), order_id);
            assert_eq!(
                status,
                json!({"order": null, "payments": [], "inventory": [], "notifications": []}),
                "{}: saga status",
                case.name
            );
        }
    }

    let counts = row_counts(data.path()).await;
    assert!(counts.len() >= 4, "every store has its tables: {counts:?}");
    assert!(
        counts.values().all(|n| *n == 0),
        "bad orders wrote nothing to any store: {counts:?}"
    );

    // The worker still serves: a good order completes and is stored.
    let good_file = inputs.path().join("good.json");
    let order_id = "4good-after-bad-input";
    let mut doc = good();
    doc["order_id"] = json!(order_id);
    std::fs::write(&good_file, doc.to_string()).unwrap();
    server.start_order_with_cli("order-saga", "good-after-bad", &good_file);
    let history = tokio::time::timeout(
        Duration::from_secs(120),
        launch::wait(
            &client,
            &Started {
                workflow_id: "good-after-bad".into(),
                run_id: String::new(),
            },
        ),
    )
    .await
    .expect("the good order finishes")
    .unwrap();
    assert_eq!(history.closed, Closed::Completed);
    let stores = open_stores(data.path()).await;
    support::assert_consistent(&stores, order_id).await;
    // Its date, sent with a +08:00 offset, is stored as the same instant in UTC.
    assert_eq!(doc["order_date"], "2018-10-19T10:50:16+08:00");
    assert_eq!(
        saga_status_json(data.path(), order_id)["order"]["order_date"],
        "2018-10-19T02:50:16Z"
    );
}
