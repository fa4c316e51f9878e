//! The stores on PostgreSQL: migrations, idempotency and no oversell under concurrent pools.
//!
//! Each test creates its own database (`saga_activities::testing`, which says where and when a
//! missing server skips the test) and drops it at the end.

use saga_activities::{
    DbConfig, Service, StepError, Stores, StoresConfig, inventory::ERR_RESERVE_INVENTORY,
    testing::ScratchDatabases,
};
use saga_protos::{Item, Notification, Order};
use sqlx::{Connection as _, postgres::PgConnection};

const STOCK: i64 = 1000;

/// A database of its own for all four services, dropped at the end of the test (or when the
/// test panics).
struct TestDb(ScratchDatabases);

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is unreachable outside CI.
    async fn create(tag: &str) -> Option<Self> {
        ScratchDatabases::create(tag, &["all"]).await.map(Self)
    }

    fn url(&self) -> &str {
        self.0.url("all")
    }

    fn config(&self, pool: u32) -> StoresConfig {
        let db = || DbConfig {
            url: self.url().to_owned(),
            max_connections: pool,
        };
        StoresConfig {
            orders: db(),
            payments: db(),
            inventory: db(),
            notifications: db(),
            default_stock: STOCK,
        }
    }

    async fn stores(&self, pool: u32) -> Stores {
        Stores::open(&self.config(pool), &Service::ALL)
            .await
            .expect("opening the stores on PostgreSQL")
    }

    async fn drop_now(self) {
        self.0.drop_now().await;
    }
}

fn order(order_id: &str, items: &[(&str, f64)]) -> Order {
    Order {
        order_id: order_id.into(),
        order_date: "2018-10-19T10:50:16+08:00".into(),
        customer_id: "8d04ea6f-c6b2-4422-8550-839a16f01feb".into(),
        items: items
            .iter()
            .map(|(id, qty)| Item {
                item_id: (*id).into(),
                qty: *qty,
                description: format!("item {id}"),
                unit_price: 19.99,
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_run_once_and_services_can_share_one_database() {
    let Some(db) = TestDb::create("migrate").await else {
        return;
    };
    // Four services in one database, opened twice (a second worker starting): each service's
    // migrator ignores the others' versions and applies nothing the second time.
    let first = db.stores(2).await;
    let _second = db.stores(2).await;
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, [101, 201, 301, 401, 402]);
    let o = order("47migrate", &[("m1", 2.0)]);
    first
        .orders
        .as_ref()
        .unwrap()
        .process_order(&o)
        .await
        .unwrap();
    assert_eq!(
        first
            .orders
            .as_ref()
            .unwrap()
            .get("47migrate")
            .await
            .unwrap()
            .unwrap()
            .order_status,
        "New"
    );
    let _ = conn.close().await;
    drop((first, _second));
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_repeated_changes_nothing() {
    let Some(db) = TestDb::create("idem").await else {
        return;
    };
    let stores = db.stores(4).await;
    let (orders, payments, inventory, notifications) = (
        stores.orders.as_ref().unwrap(),
        stores.payments.as_ref().unwrap(),
        stores.inventory.as_ref().unwrap(),
        stores.notifications.as_ref().unwrap(),
    );
    let o = order("47idem", &[("i1", 2.0), ("i2", 3.0), ("i1", 1.0)]);

    for _ in 0..2 {
        let saved = orders.process_order(&o).await.unwrap();
        assert_eq!(saved.order_status.as_deref(), Some("New"));
        let paid = payments.process_payment(&o).await.unwrap();
        assert_eq!(paid.payment.unwrap().payment_amount, 119.94);
        inventory.reserve(&o).await.unwrap();
    }
    assert_eq!(inventory.available("i1").await.unwrap(), Some(STOCK - 3));
    assert_eq!(inventory.available("i2").await.unwrap(), Some(STOCK - 3));

    for _ in 0..2 {
        inventory.release(&o).await.unwrap();
        let refunded = payments.process_refund(&o).await.unwrap();
        assert_eq!(refunded.payment.unwrap().payment_amount, -119.94);
        let pending = orders.set_pending(&o).await.unwrap();
        assert_eq!(pending.order_status.as_deref(), Some("Pending"));
        notifications
            .notify(&Notification {
                order_id: o.order_id.clone(),
                status: "failed".into(),
                error: Some("ErrReserveInventory: test".into()),
                order: None,
            })
            .await
            .unwrap();
    }
    assert_eq!(inventory.available("i1").await.unwrap(), Some(STOCK));
    assert_eq!(inventory.available("i2").await.unwrap(), Some(STOCK));
    let ledger = payments.for_order("47idem").await.unwrap();
    let amounts: Vec<(&str, i64)> = ledger
        .iter()
        .map(|p| (p.payment_type.as_str(), p.amount_cents))
        .collect();
    assert_eq!(amounts, [("Debit", 11994), ("Credit", -11994)]);
    let records = inventory.for_order("47idem").await.unwrap();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r.transaction_type.as_str())
        .collect();
    assert_eq!(kinds, ["Reserve", "Release"]);
    assert_eq!(records[0].items, records[1].items);
    let sent = notifications.for_order("47idem").await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].error.as_deref(), Some("ErrReserveInventory: test"));
    for audit in inventory.audit().await.unwrap() {
        assert_eq!(audit.available + audit.reserved - audit.released, STOCK);
        assert_eq!(audit.reserved, 3);
    }

    // An order never paid or reserved has nothing to compensate.
    let ghost = order("47ghost", &[("i1", 1.0)]);
    inventory.release(&ghost).await.unwrap();
    payments.process_refund(&ghost).await.unwrap();
    assert!(payments.for_order("47ghost").await.unwrap().is_empty());
    assert!(inventory.for_order("47ghost").await.unwrap().is_empty());
    assert_eq!(inventory.available("i1").await.unwrap(), Some(STOCK));

    // An item no order named before, wanted beyond the default stock: short, nothing written.
    let greedy = order("47greedy", &[("fresh", (STOCK + 1) as f64)]);
    match inventory.reserve(&greedy).await {
        Err(StepError::Business { kind, .. }) => assert_eq!(kind, ERR_RESERVE_INVENTORY),
        other => panic!("expected a short item, got {other:?}"),
    }
    assert_eq!(inventory.available("fresh").await.unwrap(), None);
    assert!(inventory.for_order("47greedy").await.unwrap().is_empty());
    // One stocked above the default can be had beyond it.
    inventory.set_stock("plenty", STOCK * 5).await.unwrap();
    let big = order("47big", &[("plenty", (STOCK + 1) as f64)]);
    inventory.reserve(&big).await.unwrap();
    assert_eq!(
        inventory.available("plenty").await.unwrap(),
        Some(STOCK * 4 - 1)
    );

    drop(stores);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_reservations_from_two_pools_never_oversell_nor_deadlock() {
    let Some(db) = TestDb::create("oversell").await else {
        return;
    };
    // Two workers' pools on one inventory database.
    let a = db.stores(6).await;
    let b = db.stores(6).await;
    let inv_a = a.inventory.clone().unwrap();
    let inv_b = b.inventory.clone().unwrap();
    inv_a.set_stock("x", 40).await.unwrap();
    inv_a.set_stock("y", 40).await.unwrap();
    inv_a.set_stock("z", 40).await.unwrap();

    // 60 orders each want one x, one y and one z (listed in different orders, so a store that
    // locked in listing order would deadlock); every order is delivered twice, once to each
    // pool, at the same time.
    let orders: Vec<Order> = (0..60)
        .map(|i| {
            let items: &[(&str, f64)] = match i % 3 {
                0 => &[("x", 1.0), ("y", 1.0), ("z", 1.0)],
                1 => &[("z", 1.0), ("y", 1.0), ("x", 1.0)],
                _ => &[("y", 1.0), ("z", 1.0), ("x", 1.0)],
            };
            order(&format!("47race-{i:03}"), items)
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, o) in orders.iter().enumerate() {
        for store in [inv_a.clone(), inv_b.clone()] {
            let o = o.clone();
            tasks.spawn(async move { (i, store.reserve(&o).await) });
        }
    }
    let mut reserved = std::collections::BTreeSet::new();
    let mut short = std::collections::BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.unwrap();
        match outcome {
            Ok(o) if o.inventory.is_some() => {
                reserved.insert(i);
            }
            Err(StepError::Business { kind, .. }) if kind == ERR_RESERVE_INVENTORY => {
                short.insert(i);
            }
            other => panic!("reservation {i}: {other:?}"),
        }
    }
    // A duplicate delivery that ran after a successful one reports it; one that ran beside a
    // refused one is refused too. Never both for one order.
    assert!(
        reserved.is_disjoint(&short),
        "an order both reserved and refused"
    );
    assert_eq!(reserved.len(), 40, "exactly the stock was sold");
    for item in ["x", "y", "z"] {
        assert_eq!(inv_b.available(item).await.unwrap(), Some(0));
    }

    // Release every reservation twice, from both pools, beside new reservations that find the
    // stock coming back: still no deadlock, and everything adds up.
    let mut tasks = tokio::task::JoinSet::new();
    for &i in &reserved {
        for store in [inv_a.clone(), inv_b.clone()] {
            let o = orders[i].clone();
            tasks.spawn(async move { store.release(&o).await.map(drop) });
        }
    }
    for i in 0..20 {
        let store = if i % 2 == 0 {
            inv_a.clone()
        } else {
            inv_b.clone()
        };
        let o = order(&format!("47late-{i:02}"), &[("z", 1.0), ("x", 1.0)]);
        tasks.spawn(async move {
            match store.reserve(&o).await {
                Err(StepError::Business { kind, .. }) if kind == ERR_RESERVE_INVENTORY => Ok(()),
                other => other.map(drop),
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined
            .unwrap()
            .expect("no deadlock or other database error");
    }
    for audit in inv_a.audit().await.unwrap() {
        assert!(audit.available >= 0);
        assert_eq!(
            audit.available + audit.reserved - audit.released,
            40,
            "{audit:?}"
        );
    }
    drop((a, b));
    db.drop_now().await;
}
