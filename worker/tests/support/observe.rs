//! What an operator reads, read the same way by every test: the server's visibility list
//! (`temporal workflow list --query …`), a saga's `state` query and a worker's Prometheus
//! endpoint.

use super::DevServer;
use saga_workflows::{OrderSaga, SagaState};
use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read as _, Write as _},
    time::{Duration, Instant},
};
use temporalio_client::{Client, WorkflowQueryOptions};

impl DevServer {
    /// The workflow ids `temporal workflow list --query QUERY` returns now.
    pub fn list_ids(&self, query: &str) -> BTreeSet<String> {
        let out = self.cli(&["workflow", "list", "--query", query, "--output", "json"]);
        assert!(
            out.status.success(),
            "temporal workflow list --query {query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        workflow_ids(&String::from_utf8_lossy(&out.stdout))
    }

    /// The ids listed for `query` once `done` accepts them, or when `timeout` has passed
    /// (visibility is eventually consistent, so a fresh change may take a moment to show).
    pub fn list_ids_until(
        &self,
        query: &str,
        timeout: Duration,
        done: impl Fn(&BTreeSet<String>) -> bool,
    ) -> BTreeSet<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let ids = self.list_ids(query);
            if done(&ids) || Instant::now() > deadline {
                return ids;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The ids in the CLI's JSON output: one array, one object, or JSON lines, as its versions print.
fn workflow_ids(json: &str) -> BTreeSet<String> {
    let values: Vec<serde_json::Value> = match serde_json::from_str(json) {
        Ok(serde_json::Value::Array(all)) => all,
        Ok(one) => vec![one],
        Err(_) => json
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
    };
    values
        .iter()
        .map(|v| v["execution"]["workflowId"].as_str().unwrap().to_owned())
        .collect()
}

/// The samples of the worker's Prometheus endpoint on `port`: `name{labels}` → value.
pub fn scrape(port: u16) -> BTreeMap<String, f64> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of metric `name`'s samples whose `label` is `value`.
pub fn sample(metrics: &BTreeMap<String, f64>, name: &str, label: &str, value: &str) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            series.starts_with(&format!("{name}{{"))
                && series.contains(&format!("{label}=\"{value}\""))
        })
        .map(|(_, v)| *v)
        .sum()
}

/// The sum of all of metric `name`'s samples.
pub fn total(metrics: &BTreeMap<String, f64>, name: &str) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| series.as_str() == name || series.starts_with(&format!("{name}{{")))
        .map(|(_, v)| *v)
        .sum()
}

/// A saga's `state` query, as `temporal workflow query --type state` shows it.
pub async fn state(client: &Client, workflow_id: &str) -> SagaState {
    client
        .get_workflow_handle::<OrderSaga>(workflow_id)
        .query(OrderSaga::state, (), WorkflowQueryOptions::default())
        .await
        .unwrap_or_else(|e| panic!("querying {workflow_id}: {e}"))
}

/// The `state` query for a test that polls many sagas: `None` when this saga cannot answer
/// within five seconds. A saga whose workflow task is in flight (its local activity retrying
/// against a database that is down) answers only once that task completes, and the server
/// cancels a query that waits too long; the poller moves on to the next saga instead.
pub async fn state_if_answered(client: &Client, workflow_id: &str) -> Option<SagaState> {
    let handle = client.get_workflow_handle::<OrderSaga>(workflow_id);
    let query = handle.query(OrderSaga::state, (), WorkflowQueryOptions::default());
    tokio::time::timeout(Duration::from_secs(5), query)
        .await
        .ok()?
        .ok()
}
