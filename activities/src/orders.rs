//! The orders service: saves the order (`New`) and compensates it (`Pending`).
//!
//! The order is saved with its `order_date` in one canonical form, the same instant in UTC
//! ([`saga_protos::validate::canonical_order_date`]: `2018-10-19T10:50:16+08:00` is saved as
//! `2018-10-19T02:50:16Z`), so the column sorts and compares as time whatever offset the client
//! sent; the order `ProcessOrder` returns carries the saved form.

use crate::{
    StepError,
    db::{Db, args, now},
};
use saga_protos::{Order, STATUS_NEW, STATUS_PENDING, validate::canonical_order_date};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct OrdersStore {
    db: Db,
}

/// An order as the orders database holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRecord {
    pub order_id: String,
    pub customer_id: String,
    pub order_date: String,
    pub order_status: String,
    pub total_cents: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl OrdersStore {
    pub fn new(db: impl Into<Db>) -> Self {
        Self { db: db.into() }
    }

    /// `ProcessOrder`: saves the order with status `New`. A repeat finds the row and changes
    /// nothing.
    pub async fn process_order(&self, order: &Order) -> Result<Order, StepError> {
        let now = now();
        let order = &Order {
            order_date: canonical_order_date(&order.order_date)?,
            ..order.clone()
        };
        let document = serde_json::to_string(order).map_err(anyhow::Error::from)?;
        // One statement, its own transaction: the insert reports the row it made, and only a
        // repeat (the row already there) reads the saved status back.
        let inserted: Option<String> = self
            .db
            .rows(
                "INSERT INTO orders (order_id, customer_id, order_date, order_status, \
                 total_cents, document, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (order_id) DO NOTHING RETURNING order_status",
                args![
                    &order.order_id,
                    &order.customer_id,
                    &order.order_date,
                    STATUS_NEW,
                    order.total_cents(),
                    &document,
                    &now,
                ],
            )
            .await?
            .pop();
        let status = match inserted {
            Some(status) => status,
            None => self
                .db
                .rows(
                    "SELECT order_status FROM orders WHERE order_id = $1",
                    args![&order.order_id],
                )
                .await?
                .pop()
                .ok_or_else(|| {
                    StepError::infrastructure(anyhow::anyhow!(
                        "order {} was there on insert but not on reading it back",
                        order.order_id
                    ))
                })?,
        };
        Ok(Order {
            order_status: Some(status),
            ..order.clone()
        })
    }

    /// `UpdateOrderStatus`: the compensation of `ProcessOrder`, sets the status to `Pending`.
    ///
    /// An order that was never saved has nothing to compensate; a repeat changes nothing.
    pub async fn set_pending(&self, order: &Order) -> Result<Order, StepError> {
        self.db
            .execute(
                "UPDATE orders SET order_status = $2, updated_at = $3 \
                 WHERE order_id = $1 AND order_status <> $2",
                args![&order.order_id, STATUS_PENDING, &now()],
            )
            .await?;
        let status = self.get(&order.order_id).await?.map(|r| r.order_status);
        Ok(Order {
            order_status: status,
            ..order.clone()
        })
    }

    pub async fn get(&self, order_id: &str) -> Result<Option<OrderRecord>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT order_id, customer_id, order_date, order_status, total_cents, created_at, \
             updated_at FROM orders WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(&mut *self.db.acquire().await?)
        .await?;
        row.map(|r| {
            Ok(OrderRecord {
                order_id: r.try_get(0)?,
                customer_id: r.try_get(1)?,
                order_date: r.try_get(2)?,
                order_status: r.try_get(3)?,
                total_cents: r.try_get(4)?,
                created_at: r.try_get(5)?,
                updated_at: r.try_get(6)?,
            })
        })
        .transpose()
    }
}
