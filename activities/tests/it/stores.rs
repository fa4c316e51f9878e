//! The stores' local transactions against real SQLite files: every one of the seven is
//! idempotent (a repeat leaves every table exactly as the first run left it), and concurrent
//! reservations, from many tasks and from a second pool on the same files (as a second process
//! would open them), never oversell.

use saga_activities::{DbConfig, Service, StepError, Stores, StoresConfig};
use saga_protos::{Item, Notification, Order};
use sqlx::{AnyPool, Row, any::AnyPoolOptions};
use std::{collections::BTreeMap, path::Path};

fn config(dir: &Path, max_connections: u32) -> StoresConfig {
    let db = |s: Service| DbConfig {
        url: s.default_url(dir),
        max_connections,
    };
    StoresConfig {
        orders: db(Service::Orders),
        payments: db(Service::Payments),
        inventory: db(Service::Inventory),
        notifications: db(Service::Notifications),
        default_stock: 100,
    }
}

async fn stores(dir: &Path, max_connections: u32) -> Stores {
    Stores::open(&config(dir, max_connections), &Service::ALL)
        .await
        .unwrap()
}

fn order(order_id: &str, lines: &[(&str, f64)]) -> Order {
    Order {
        order_id: order_id.to_owned(),
        order_date: "2018-10-19T10:50:16+08:00".to_owned(),
        customer_id: "8d04ea6f-c6b2-4422-8550-839a16f01feb".to_owned(),
        items: lines
            .iter()
            .map(|(item, qty)| Item {
                item_id: (*item).to_owned(),
                qty: *qty,
                description: format!("item {item}"),
                unit_price: 19.99,
            })
            .collect(),
        ..Default::default()
    }
}

/// Every row of every table of the four databases, as text, table by table, sorted.
async fn snapshot(dir: &Path) -> BTreeMap<String, Vec<String>> {
    sqlx::any::install_default_drivers();
    let mut all = BTreeMap::new();
    for service in Service::ALL {
        let pool: AnyPool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&service.default_url(dir))
            .await
            .unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' \
             ESCAPE '\\' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for table in tables {
            let columns: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let row_text = columns
                .iter()
                .map(|c| format!("quote({c})"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let mut rows: Vec<String> = sqlx::query(&format!("SELECT {row_text} FROM {table}"))
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            rows.sort();
            all.insert(format!("{}.{table}", service.name()), rows);
        }
        pool.close().await;
    }
    all
}

/// Runs `op` twice: the first run must change the tables, the second must change nothing and
/// return what the first returned.
async fn assert_idempotent<T, F, Fut>(dir: &Path, name: &str, op: F)
where
    T: PartialEq + std::fmt::Debug,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, StepError>>,
{
    let before = snapshot(dir).await;
    let first = op().await.unwrap_or_else(|e| panic!("{name}: {e}"));
    let after_first = snapshot(dir).await;
    assert_ne!(before, after_first, "{name} wrote nothing");
    let second = op()
        .await
        .unwrap_or_else(|e| panic!("{name} repeated: {e}"));
    let after_second = snapshot(dir).await;
    assert_eq!(
        after_first, after_second,
        "{name} repeated changed the tables"
    );
    assert_eq!(first, second, "{name} repeated returned something else");
}

#[tokio::test]
async fn each_of_the_seven_transactions_repeated_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(dir.path(), 1).await;
    let (orders, payments, inventory, notifications) = (
        s.orders.as_ref().unwrap(),
        s.payments.as_ref().unwrap(),
        s.inventory.as_ref().unwrap(),
        s.notifications.as_ref().unwrap(),
    );
    let o = order("47aa-idempotent", &[("i1", 2.0), ("i2", 1.0), ("i1", 1.0)]);
    let p = dir.path();

    assert_idempotent(p, "ProcessOrder", || orders.process_order(&o)).await;
    assert_idempotent(p, "ProcessPayment", || payments.process_payment(&o)).await;
    assert_idempotent(p, "ReserveInventory", || inventory.reserve(&o)).await;
    assert_eq!(inventory.available("i1").await.unwrap(), Some(97));
    assert_idempotent(p, "ReleaseInventory", || inventory.release(&o)).await;
    assert_eq!(inventory.available("i1").await.unwrap(), Some(100));
    assert_eq!(inventory.available("i2").await.unwrap(), Some(100));
    assert_idempotent(p, "ProcessRefund", || payments.process_refund(&o)).await;
    assert_idempotent(p, "UpdateOrderStatus", || orders.set_pending(&o)).await;
    let n = Notification {
        order_id: o.order_id.clone(),
        status: "failed".to_owned(),
        error: Some("ErrReserveInventory".to_owned()),
        order: Some(o.clone()),
    };
    assert_idempotent(p, "Notify", || notifications.notify(&n)).await;

    let ledger = payments.for_order(&o.order_id).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger.iter().map(|r| r.amount_cents).sum::<i64>(), 0);
    assert_eq!(
        orders.get(&o.order_id).await.unwrap().unwrap().order_status,
        "Pending"
    );

    // A reservation released once stays released: reserving again after the release is a
    // repeat of the first reservation, not a new one.
    inventory.reserve(&o).await.unwrap();
    assert_eq!(inventory.available("i1").await.unwrap(), Some(100));
}

#[tokio::test]
async fn the_order_date_is_saved_in_utc_whatever_offset_it_came_with() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(dir.path(), 1).await;
    let orders = s.orders.as_ref().unwrap();
    let o = order("47-dated", &[("i1", 1.0)]);
    assert_eq!(o.order_date, "2018-10-19T10:50:16+08:00");
    let saved = orders.process_order(&o).await.unwrap();
    assert_eq!(
        saved.order_date, "2018-10-19T02:50:16Z",
        "the order ProcessOrder returns"
    );
    let row = orders.get(&o.order_id).await.unwrap().unwrap();
    assert_eq!(
        row.order_date, "2018-10-19T02:50:16Z",
        "the orders.order_date column"
    );
    let pool = sqlx::SqlitePool::connect(&Service::Orders.default_url(dir.path()))
        .await
        .unwrap();
    let document: String = sqlx::query_scalar("SELECT document FROM orders WHERE order_id = $1")
        .bind(&o.order_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let document: Order = serde_json::from_str(&document).unwrap();
    assert_eq!(
        document.order_date, "2018-10-19T02:50:16Z",
        "the saved document"
    );

    // The same instant written another way is the same order: a retry changes nothing.
    let again = Order {
        order_date: "2018-10-18T21:50:16-05:00".to_owned(),
        ..o.clone()
    };
    assert_eq!(orders.process_order(&again).await.unwrap(), saved);
    // Not a date-time: refused by name before anything is written.
    let bad = Order {
        order_id: "47-undated".to_owned(),
        order_date: "yesterday".to_owned(),
        ..o
    };
    match orders.process_order(&bad).await {
        Err(StepError::Invalid(e)) => assert_eq!(e.field, "order_date"),
        other => panic!("expected an invalid order_date, got {other:?}"),
    }
    assert!(orders.get("47-undated").await.unwrap().is_none());
}

#[tokio::test]
async fn an_order_beyond_the_default_stock_is_short_unless_the_item_holds_more() {
    let dir = tempfile::tempdir().unwrap();
    let s = stores(dir.path(), 1).await;
    let inventory = s.inventory.as_ref().unwrap();
    let before = snapshot(dir.path()).await;
    // The default stock is 100: 101 units of an item no order named before cannot be had.
    let o = order("47-too-many", &[("fresh", 101.0)]);
    match inventory.reserve(&o).await {
        Err(StepError::Business { kind, message }) => {
            assert_eq!(kind, "ErrReserveInventory");
            assert!(message.contains("101 wanted, 100 available"), "{message}");
        }
        other => panic!("expected a short item, got {other:?}"),
    }
    assert_eq!(
        snapshot(dir.path()).await,
        before,
        "a short reservation wrote something"
    );
    assert_eq!(inventory.available("fresh").await.unwrap(), None);
    // Exactly the default stock is there to take.
    inventory
        .reserve(&order("47-all-of-it", &[("fresh", 100.0)]))
        .await
        .unwrap();
    assert_eq!(inventory.available("fresh").await.unwrap(), Some(0));
    // An item stocked above the default can be had beyond the default.
    inventory.set_stock("plenty", 1000).await.unwrap();
    inventory
        .reserve(&order("47-more-than-default", &[("plenty", 101.0)]))
        .await
        .unwrap();
    assert_eq!(inventory.available("plenty").await.unwrap(), Some(899));
}

/// Reserves `order` and tells whether it got the stock; any error but the business one fails.
async fn try_reserve(s: &Stores, order: &Order) -> bool {
    match s.inventory.as_ref().unwrap().reserve(order).await {
        Ok(_) => true,
        Err(StepError::Business {
            kind: "ErrReserveInventory",
            ..
        }) => false,
        Err(e) => panic!("reserving {}: {e}", order.order_id),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_from_two_pools_never_oversell() {
    reservations_from_two_processes_never_oversell(4).await;
}

/// The default: each process has one connection to each file, its steps' transactions run on
/// the calling thread and wait for the other's write lock on a timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_from_two_inline_connections_never_oversell() {
    reservations_from_two_processes_never_oversell(1).await;
}

async fn reservations_from_two_processes_never_oversell(connections: u32) {
    const STOCK: i64 = 25;
    let dir = tempfile::tempdir().unwrap();
    // Two sets of stores on the same files, `connections` each: two processes, many tasks.
    let a = stores(dir.path(), connections).await;
    let b = stores(dir.path(), connections).await;
    let inventory = a.inventory.as_ref().unwrap();
    inventory.set_stock("scarce", STOCK).await.unwrap();
    inventory.set_stock("other", 1000).await.unwrap();

    // Sixty one-unit orders, half also taking another item (listed first, so that the lock
    // order differs from the listing order), each reserved twice at once from both pools.
    let orders: Vec<Order> = (0..60)
        .map(|i| {
            let lines: &[(&str, f64)] = if i % 2 == 0 {
                &[("other", 2.0), ("scarce", 1.0)]
            } else {
                &[("scarce", 1.0)]
            };
            order(&format!("47-concurrent-{i}"), lines)
        })
        .collect();
    let mut tasks = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        for pool in [&a, &b] {
            let (s, o) = (pool.clone(), o.clone());
            tasks.push(tokio::spawn(async move { (i, try_reserve(&s, &o).await) }));
        }
    }
    let mut got: BTreeMap<usize, Vec<bool>> = BTreeMap::new();
    for t in tasks {
        let (i, ok) = t.await.unwrap();
        got.entry(i).or_default().push(ok);
    }

    // Both reservations of an order report the same outcome: the one that got there second
    // finds the first one's reservation, or finds the stock gone just as the first did.
    for (i, oks) in &got {
        assert!(oks.iter().all(|ok| *ok == oks[0]), "order {i}: {oks:?}");
    }
    let reserved: Vec<usize> = got
        .iter()
        .filter(|(_, oks)| oks.iter().any(|ok| *ok))
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(reserved.len(), STOCK as usize, "{got:?}");
    assert_eq!(inventory.available("scarce").await.unwrap(), Some(0));
    let mut other_taken = 0;
    for (i, o) in orders.iter().enumerate() {
        let records = inventory.for_order(&o.order_id).await.unwrap();
        if reserved.contains(&i) {
            assert_eq!(records.len(), 1, "one reservation for {}", o.order_id);
            other_taken += records[0]
                .items
                .iter()
                .filter(|l| l.item_id == "other")
                .map(|l| l.qty)
                .sum::<i64>();
        } else {
            assert!(records.is_empty(), "{} holds {records:?}", o.order_id);
        }
    }
    assert_eq!(
        inventory.available("other").await.unwrap(),
        Some(1000 - other_taken),
        "the other item lost exactly what the reservations hold"
    );
}
