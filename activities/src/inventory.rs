//! The inventory service: stock per item, reservations and releases.
//!
//! Stock never goes negative: a reservation takes stock with a conditional update
//! (`available >= qty`), which the database applies atomically, so concurrent sagas can never
//! oversell. Items are taken in item id order so that concurrent transactions on PostgreSQL lock
//! rows in one order and cannot deadlock.

use crate::{
    StepError,
    db::{Db, Tx, args, now},
};
use saga_protos::{
    Inventory, Order,
    ids::{TransactionType, transaction_id},
};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// The error type of a failed reservation.
pub const ERR_RESERVE_INVENTORY: &str = "ErrReserveInventory";

#[derive(Debug, Clone)]
pub struct InventoryStore {
    db: Db,
    default_stock: i64,
}

/// A reservation or a release, with its lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryRecord {
    pub transaction_id: String,
    pub order_id: String,
    pub transaction_type: String,
    pub transaction_date: String,
    pub items: Vec<InventoryLine>,
}

/// One item's stock and the units every reservation and release moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockAudit {
    pub item_id: String,
    pub available: i64,
    pub reserved: i64,
    pub released: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryLine {
    pub item_id: String,
    pub qty: i64,
}

impl InventoryStore {
    /// `default_stock` is the stock of an item the first time any order names it.
    pub fn new(db: impl Into<Db>, default_stock: i64) -> Self {
        Self {
            db: db.into(),
            default_stock,
        }
    }

    /// `ReserveInventory`: takes every item of the order out of stock, all or nothing.
    ///
    /// Fails with `ErrReserveInventory` (nothing written) when any item is short.
    pub async fn reserve(&self, order: &Order) -> Result<Order, StepError> {
        let id = transaction_id(&order.order_id, TransactionType::Reserve);
        let date = now();
        let mut tx = self.db.begin().await?;
        let claimed = tx
            .execute(
                "INSERT INTO inventory_transactions (transaction_id, order_id, \
                 transaction_type, transaction_date) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (transaction_id) DO NOTHING",
                args![
                    &id,
                    &order.order_id,
                    TransactionType::Reserve.as_str(),
                    &date
                ],
            )
            .await?;
        if claimed == 0 {
            // Reserved by an earlier attempt: report it, change nothing.
            let order = with_record(&mut tx, order, &id).await?;
            tx.rollback().await?;
            return Ok(order);
        }
        for (item_id, qty) in units_by_item(order) {
            // Takes the units in one statement: an item seen for the first time starts at the
            // default stock, a known one is taken only if enough is available. An order for more
            // than the default stock proposes no row, so the conflict branch never runs: the
            // plain conditional update below then decides, for an item stocked above the
            // default (`set_stock`, or another worker's default).
            let mut taken = tx
                .execute(
                    "INSERT INTO stock (item_id, available) SELECT $1, $2 - $3 WHERE $2 >= $3 \
                     ON CONFLICT (item_id) DO UPDATE SET available = stock.available - $3 \
                     WHERE stock.available >= $3",
                    args![item_id, self.default_stock, qty],
                )
                .await?;
            if taken == 0 && qty > self.default_stock {
                taken = tx
                    .execute(
                        "UPDATE stock SET available = available - $2 \
                         WHERE item_id = $1 AND available >= $2",
                        args![item_id, qty],
                    )
                    .await?;
            }
            if taken == 0 {
                let available: Option<i64> = tx
                    .row::<i64>(
                        "SELECT available FROM stock WHERE item_id = $1",
                        args![item_id],
                    )
                    .await?;
                let available = available.unwrap_or(self.default_stock);
                tx.rollback().await?;
                return Err(StepError::business(
                    ERR_RESERVE_INVENTORY,
                    format!(
                        "insufficient stock for item {item_id}: {qty} wanted, {available} available"
                    ),
                ));
            }
            tx.execute(
                "INSERT INTO inventory_lines (transaction_id, item_id, qty) VALUES ($1, $2, $3)",
                args![&id, item_id, qty],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Order {
            inventory: Some(inventory(order, &id, &date, TransactionType::Reserve)),
            ..order.clone()
        })
    }

    /// `ReleaseInventory`: the compensation of `ReserveInventory`, gives back exactly what the
    /// order's reservation took. Nothing reserved, nothing released; a repeat changes nothing.
    pub async fn release(&self, order: &Order) -> Result<Order, StepError> {
        let reserve_id = transaction_id(&order.order_id, TransactionType::Reserve);
        let release_id = transaction_id(&order.order_id, TransactionType::Release);
        let date = now();
        let mut tx = self.db.begin().await?;
        let claimed = tx
            .execute(
                "INSERT INTO inventory_transactions (transaction_id, order_id, \
                 transaction_type, transaction_date) SELECT $1, order_id, $2, $3 \
                 FROM inventory_transactions WHERE transaction_id = $4 \
                 ON CONFLICT (transaction_id) DO NOTHING",
                args![
                    &release_id,
                    TransactionType::Release.as_str(),
                    &date,
                    &reserve_id
                ],
            )
            .await?;
        if claimed == 0 {
            let order = with_record(&mut tx, order, &release_id).await?;
            tx.rollback().await?;
            return Ok(order);
        }
        tx.execute(
            "INSERT INTO inventory_lines (transaction_id, item_id, qty) \
             SELECT $1, item_id, qty FROM inventory_lines WHERE transaction_id = $2",
            args![&release_id, &reserve_id],
        )
        .await?;
        let lines: Vec<(String, i64)> = tx
            .rows(
                "SELECT item_id, qty FROM inventory_lines WHERE transaction_id = $1",
                args![&reserve_id],
            )
            .await?;
        // One row at a time in the same (byte) order as reservations lock them, so a release
        // and a concurrent reservation never wait on each other in a cycle. (A single UPDATE …
        // WHERE item_id IN (…) would lock in scan order, and the database's collation may sort
        // ids differently from the reservation's order.)
        let give_back: BTreeMap<String, i64> = lines.into_iter().collect();
        for (item_id, qty) in &give_back {
            tx.execute(
                "UPDATE stock SET available = available + $2 WHERE item_id = $1",
                args![item_id, *qty],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Order {
            inventory: Some(inventory(
                order,
                &release_id,
                &date,
                TransactionType::Release,
            )),
            ..order.clone()
        })
    }

    /// The stock of an item, if any order has named it.
    pub async fn available(&self, item_id: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT available FROM stock WHERE item_id = $1")
            .bind(item_id)
            .fetch_optional(&mut *self.db.acquire().await?)
            .await
    }

    /// Sets an item's stock (for demos and tests of limited stock).
    pub async fn set_stock(&self, item_id: &str, available: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO stock (item_id, available) VALUES ($1, $2) \
             ON CONFLICT (item_id) DO UPDATE SET available = excluded.available",
        )
        .bind(item_id)
        .bind(available)
        .execute(&mut *self.db.acquire().await?)
        .await?;
        Ok(())
    }

    /// Every item's stock beside what reservations took and releases gave back, for audits:
    /// with every item starting at the same stock, `available + reserved - released` is that
    /// stock for each item when nothing was oversold or given back twice.
    pub async fn audit(&self) -> Result<Vec<StockAudit>, sqlx::Error> {
        // SUM is NUMERIC on PostgreSQL, which the Any driver cannot decode: cast it back.
        let total = |kind: &str| {
            format!(
                "CAST(COALESCE((SELECT SUM(l.qty) FROM inventory_lines l \
                 JOIN inventory_transactions t ON t.transaction_id = l.transaction_id \
                 WHERE l.item_id = s.item_id AND t.transaction_type = '{kind}'), 0) AS BIGINT)"
            )
        };
        let sql = format!(
            "SELECT s.item_id, s.available, {}, {} FROM stock s ORDER BY s.item_id",
            total(TransactionType::Reserve.as_str()),
            total(TransactionType::Release.as_str()),
        );
        sqlx::query(&sql)
            .fetch_all(&mut *self.db.acquire().await?)
            .await?
            .iter()
            .map(|r| {
                Ok(StockAudit {
                    item_id: r.try_get(0)?,
                    available: r.try_get(1)?,
                    reserved: r.try_get(2)?,
                    released: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Every reservation and release of an order, with its lines.
    pub async fn for_order(&self, order_id: &str) -> Result<Vec<InventoryRecord>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT t.transaction_id, t.transaction_type, t.transaction_date, l.item_id, l.qty \
             FROM inventory_transactions t \
             LEFT JOIN inventory_lines l ON l.transaction_id = t.transaction_id \
             WHERE t.order_id = $1 \
             ORDER BY t.transaction_date, t.transaction_type DESC, l.item_id",
        )
        .bind(order_id)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        let mut records: Vec<InventoryRecord> = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            if records.last().is_none_or(|last| last.transaction_id != id) {
                records.push(InventoryRecord {
                    transaction_id: id,
                    order_id: order_id.to_owned(),
                    transaction_type: r.try_get(1)?,
                    transaction_date: r.try_get(2)?,
                    items: Vec::new(),
                });
            }
            let item_id: Option<String> = r.try_get(3)?;
            let qty: Option<i64> = r.try_get(4)?;
            if let (Some(item_id), Some(qty), Some(record)) = (item_id, qty, records.last_mut()) {
                record.items.push(InventoryLine { item_id, qty });
            }
        }
        Ok(records)
    }
}

/// Units per item id, merged and in id order (the lock order).
/// The order with `inventory` set from the stored transaction `id`, if there is one.
async fn with_record(tx: &mut Tx<'_>, order: &Order, id: &str) -> Result<Order, StepError> {
    let row: Option<(String, String)> = tx
        .row(
            "SELECT transaction_type, transaction_date FROM inventory_transactions \
             WHERE transaction_id = $1",
            args![id],
        )
        .await?;
    let inventory = match row {
        Some((kind, date)) => {
            let kind = if kind == TransactionType::Release.as_str() {
                TransactionType::Release
            } else {
                TransactionType::Reserve
            };
            Some(inventory(order, id, &date, kind))
        }
        None => order.inventory.clone(),
    };
    Ok(Order {
        inventory,
        ..order.clone()
    })
}

fn units_by_item(order: &Order) -> BTreeMap<&str, i64> {
    let mut units = BTreeMap::new();
    for item in &order.items {
        *units.entry(item.item_id.as_str()).or_insert(0) += item.units();
    }
    units
}

fn inventory(order: &Order, id: &str, date: &str, kind: TransactionType) -> Inventory {
    Inventory {
        transaction_id: id.to_owned(),
        transaction_date: date.to_owned(),
        order_id: order.order_id.clone(),
        items: order.items.clone(),
        transaction_type: kind.as_str().to_owned(),
    }
}
