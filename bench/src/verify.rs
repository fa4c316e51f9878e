//! Judging every answer after the run: the saga's path in the server's history against the
//! design's table, and, when the stores are reachable, the rows each service holds.

use super::load::Sample;
use anyhow::Context as _;
use saga_activities::{Service, Stores, StoresConfig};
use saga_protos::{
    ids::{TransactionType, transaction_id},
    scenario::{Scenario, activity},
};
use saga_worker::{
    config,
    history::{Closed, SagaHistory},
    launch,
    status::{self, OrderStatus},
};
use temporalio_client::Client;

pub(crate) struct Verdict {
    pub(crate) path_checked: bool,
    pub(crate) store_checked: bool,
    /// Whether it completed (true) or compensated (false) as designed, or why it is wrong.
    pub(crate) outcome: Result<bool, String>,
}

/// Checks every saga, a few at a time, after the timed window.
pub(crate) async fn check_all(
    client: &Client,
    stores: Option<&Stores>,
    samples: &[Sample],
    floor: bool,
) -> Vec<Verdict> {
    use futures_util::StreamExt as _;
    futures_util::stream::iter(samples)
        .map(|s| check(client, stores, s, floor))
        .buffered(16)
        .collect()
        .await
}

async fn check(client: &Client, stores: Option<&Stores>, sample: &Sample, floor: bool) -> Verdict {
    let mut verdict = Verdict {
        path_checked: false,
        store_checked: false,
        outcome: Err(String::new()),
    };
    let id = &sample.order_id;
    if let Some(error) = &sample.error {
        verdict.outcome = Err(format!("{id}: {error}"));
        return verdict;
    }
    let history = match launch::history(client, &sample.workflow_id).await {
        Ok(h) => h,
        Err(e) => {
            verdict.outcome = Err(format!("{id}: {e:#}"));
            return verdict;
        }
    };
    verdict.path_checked = true;
    if floor {
        // `saga-floor` runs no step: completing is all it can do right.
        verdict.outcome = match history.closed {
            Closed::Completed => Ok(true),
            _ => Err(path_mismatch(id, &history)),
        };
        return verdict;
    }
    if !launch::matches_design(id, &history) {
        verdict.outcome = Err(path_mismatch(id, &history));
        return verdict;
    }
    let scenario = Scenario::for_order_id(id);
    if let Some(stores) = stores {
        verdict.store_checked = true;
        let rows = match status::read(stores, id).await {
            Ok(rows) => rows,
            Err(e) => {
                verdict.outcome = Err(format!("{id}: reading the stores: {e:#}"));
                return verdict;
            }
        };
        if let Err(why) = check_rows(scenario, id, &rows) {
            verdict.outcome = Err(format!("{id}: {why}"));
            return verdict;
        }
    }
    verdict.outcome = Ok(scenario.completes);
    verdict
}

fn path_mismatch(id: &str, history: &SagaHistory) -> String {
    let scenario = Scenario::for_order_id(id);
    format!(
        "{id}: ended {} by [{}], the design says {} by [{}]",
        history.closed.label(),
        history.path.join(", "),
        if scenario.completes {
            "Completed"
        } else {
            "Failed (SagaFailed)"
        },
        scenario.path.join(", ")
    )
}

/// What the stores must hold once a saga has taken its scenario's path: every activity in the
/// path committed exactly one row (failures are injected after the commit), with the design's
/// deterministic transaction ids and amounts.
pub fn check_rows(scenario: &Scenario, order_id: &str, rows: &OrderStatus) -> Result<(), String> {
    let ran = |a: &str| scenario.path.contains(&a);
    let order = rows.order.as_ref().ok_or("no order row")?;
    let status = if ran(activity::UPDATE_ORDER_STATUS) {
        "Pending"
    } else {
        "New"
    };
    if order.order_status != status {
        return Err(format!(
            "order status {}, expected {status}",
            order.order_status
        ));
    }
    let mut want_payments = Vec::new();
    if ran(activity::PROCESS_PAYMENT) {
        want_payments.push((TransactionType::Debit, order.total_cents));
    }
    if ran(activity::PROCESS_REFUND) {
        want_payments.push((TransactionType::Credit, -order.total_cents));
    }
    let mut got: Vec<(String, String, i64)> = rows
        .payments
        .iter()
        .map(|p| {
            (
                p.payment_type.clone(),
                p.transaction_id.clone(),
                p.amount_cents,
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String, i64)> = want_payments
        .iter()
        .map(|&(kind, cents)| {
            (
                kind.as_str().to_owned(),
                transaction_id(order_id, kind),
                cents,
            )
        })
        .collect();
    want.sort();
    if got != want {
        return Err(format!("ledger {got:?}, expected {want:?}"));
    }
    let mut want_inventory = Vec::new();
    if ran(activity::RESERVE_INVENTORY) {
        want_inventory.push(TransactionType::Reserve);
    }
    if ran(activity::RELEASE_INVENTORY) {
        want_inventory.push(TransactionType::Release);
    }
    let mut got: Vec<(String, String)> = rows
        .inventory
        .iter()
        .map(|t| (t.transaction_type.clone(), t.transaction_id.clone()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = want_inventory
        .iter()
        .map(|&k| (k.as_str().to_owned(), transaction_id(order_id, k)))
        .collect();
    want.sort();
    if got != want {
        return Err(format!("inventory {got:?}, expected {want:?}"));
    }
    if let [a, b] = rows.inventory.as_slice()
        && a.items != b.items
    {
        return Err("the release does not give back the reservation".into());
    }
    let got: Vec<&str> = rows
        .notifications
        .iter()
        .map(|n| n.status.as_str())
        .collect();
    let want: &[&str] = match (ran(activity::NOTIFY), scenario.completes) {
        (false, _) => &[],
        (true, true) => &["success"],
        (true, false) => &["failed"],
    };
    if got != want {
        return Err(format!("notifications {got:?}, expected {want:?}"));
    }
    Ok(())
}

pub(crate) async fn open_stores(dir: &std::path::Path) -> anyhow::Result<Stores> {
    let db = |s: Service| saga_activities::DbConfig::new(s.default_url(dir));
    let config = StoresConfig {
        orders: db(Service::Orders),
        payments: db(Service::Payments),
        inventory: db(Service::Inventory),
        notifications: db(Service::Notifications),
        default_stock: config::DEFAULT_STOCK,
    };
    Stores::open(&config, &Service::ALL)
        .await
        .with_context(|| format!("opening the stores under {}", dir.display()))
}
