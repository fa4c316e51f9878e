//! `saga status`: what each service holds for one order.

use crate::config;
use saga_activities::{
    Service, Stores, inventory::InventoryRecord, notifications::NotificationRecord,
    orders::OrderRecord, payments::PaymentRecord,
};
use serde::Serialize;

/// The contract's JSON: `{"order": …|null, "payments": […], "inventory": […], "notifications": […]}`.
#[derive(Debug, Clone, Serialize)]
pub struct OrderStatus {
    pub order: Option<OrderRecord>,
    pub payments: Vec<PaymentRecord>,
    pub inventory: Vec<InventoryRecord>,
    pub notifications: Vec<NotificationRecord>,
}

/// Reads every service's store for `order_id`.
pub async fn read(stores: &Stores, order_id: &str) -> anyhow::Result<OrderStatus> {
    let (Some(orders), Some(payments), Some(inventory), Some(notifications)) = (
        &stores.orders,
        &stores.payments,
        &stores.inventory,
        &stores.notifications,
    ) else {
        anyhow::bail!("saga status needs all four stores");
    };
    Ok(OrderStatus {
        order: orders.get(order_id).await?,
        payments: payments.for_order(order_id).await?,
        inventory: inventory.for_order(order_id).await?,
        notifications: notifications.for_order(order_id).await?,
    })
}

/// Opens all four stores as configured.
pub async fn open_stores() -> anyhow::Result<Stores> {
    Stores::open(&config::stores_config()?, &Service::ALL).await
}

/// The status as people read it.
pub fn render(order_id: &str, s: &OrderStatus) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "order {order_id}");
    match &s.order {
        Some(o) => {
            let _ = writeln!(
                out,
                "  orders         status {:<8} total {}  customer {}",
                o.order_status,
                money(o.total_cents),
                o.customer_id
            );
        }
        None => {
            let _ = writeln!(out, "  orders         (no order saved)");
        }
    }
    if s.payments.is_empty() {
        let _ = writeln!(out, "  payments       (no ledger rows)");
    }
    for p in &s.payments {
        let _ = writeln!(
            out,
            "  payments       {:<7} {:>10}  {}  {}",
            p.payment_type,
            money(p.amount_cents),
            p.transaction_id,
            p.transaction_date
        );
    }
    if s.inventory.is_empty() {
        let _ = writeln!(out, "  inventory      (no reservations)");
    }
    for t in &s.inventory {
        let items: Vec<String> = t
            .items
            .iter()
            .map(|l| format!("{}×{}", l.qty, l.item_id))
            .collect();
        let _ = writeln!(
            out,
            "  inventory      {:<7} {}  {}  {}",
            t.transaction_type,
            if items.is_empty() {
                "-".into()
            } else {
                items.join(", ")
            },
            t.transaction_id,
            t.transaction_date
        );
    }
    if s.notifications.is_empty() {
        let _ = writeln!(out, "  notifications  (none sent)");
    }
    for n in &s.notifications {
        let _ = writeln!(
            out,
            "  notifications  {:<7} {}{}",
            n.status,
            n.time,
            n.error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
        for d in &n.deliveries {
            let _ = writeln!(
                out,
                "    webhook → {}  {}",
                d.subscriber,
                crate::webhooks::describe(d)
            );
        }
    }
    out
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}
