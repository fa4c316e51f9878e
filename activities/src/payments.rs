//! The payments service: a ledger of Debits and Credits in integer cents.

use crate::{
    StepError,
    db::{Db, now},
};
use saga_protos::{
    Order, Payment, amount,
    ids::{TransactionType, transaction_id},
};
use serde::Serialize;
use sqlx::{Connection as _, Row, any::AnyRow};

/// The merchant every payment of this shop is made to.
pub const MERCHANT_ID: &str = "saga-merchant-1";

#[derive(Debug, Clone)]
pub struct PaymentsStore {
    db: Db,
}

/// A ledger row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentRecord {
    pub transaction_id: String,
    pub order_id: String,
    pub merchant_id: String,
    pub payment_type: String,
    pub amount_cents: i64,
    pub transaction_date: String,
}

impl PaymentRecord {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            transaction_id: r.try_get(0)?,
            order_id: r.try_get(1)?,
            merchant_id: r.try_get(2)?,
            payment_type: r.try_get(3)?,
            amount_cents: r.try_get(4)?,
            transaction_date: r.try_get(5)?,
        })
    }

    fn to_payment(&self) -> Payment {
        Payment {
            merchant_id: self.merchant_id.clone(),
            payment_amount: amount(self.amount_cents),
            transaction_id: self.transaction_id.clone(),
            transaction_date: self.transaction_date.clone(),
            order_id: self.order_id.clone(),
            payment_type: self.payment_type.clone(),
        }
    }
}

const COLUMNS: &str =
    "transaction_id, order_id, merchant_id, payment_type, amount_cents, transaction_date";

impl PaymentsStore {
    pub fn new(db: impl Into<Db>) -> Self {
        Self { db: db.into() }
    }

    /// `ProcessPayment`: records a Debit of the order total, once per order.
    pub async fn process_payment(&self, order: &Order) -> Result<Order, StepError> {
        let id = transaction_id(&order.order_id, TransactionType::Debit);
        // One statement, as in `ProcessOrder` (read to its end, so a failed commit is an
        // error): a repeat finds the Debit already there and reads it back.
        let inserted = sqlx::query(&format!(
            "INSERT INTO payments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (transaction_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .bind(&order.order_id)
        .bind(MERCHANT_ID)
        .bind(TransactionType::Debit.as_str())
        .bind(order.total_cents())
        .bind(now())
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        let debit = match inserted.first() {
            Some(row) => PaymentRecord::from_row(row)?,
            None => {
                let mut conn = self.db.acquire().await?;
                fetch(&mut conn, &id).await?.ok_or_else(|| missing(&id))?
            }
        };
        Ok(Order {
            payment: Some(debit.to_payment()),
            ..order.clone()
        })
    }

    /// `ProcessRefund`: the compensation of `ProcessPayment`, a Credit of the negated Debit.
    ///
    /// Refunds what the ledger says was debited, not what the order says now; an order never
    /// debited has nothing to refund.
    pub async fn process_refund(&self, order: &Order) -> Result<Order, StepError> {
        let debit_id = transaction_id(&order.order_id, TransactionType::Debit);
        let credit_id = transaction_id(&order.order_id, TransactionType::Credit);
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO payments ({COLUMNS}) \
             SELECT $1, order_id, merchant_id, $2, -amount_cents, $3 FROM payments \
             WHERE transaction_id = $4 \
             ON CONFLICT (transaction_id) DO NOTHING"
        ))
        .bind(&credit_id)
        .bind(TransactionType::Credit.as_str())
        .bind(now())
        .bind(&debit_id)
        .execute(&mut *tx)
        .await?;
        let credit = fetch(&mut tx, &credit_id).await?;
        tx.commit().await?;
        Ok(Order {
            payment: credit
                .map(|c| c.to_payment())
                .or_else(|| order.payment.clone()),
            ..order.clone()
        })
    }

    /// Every ledger row of an order, oldest first.
    pub async fn for_order(&self, order_id: &str) -> Result<Vec<PaymentRecord>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM payments WHERE order_id = $1 \
             ORDER BY transaction_date, payment_type DESC"
        ))
        .bind(order_id)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?
        .iter()
        .map(PaymentRecord::from_row)
        .collect()
    }
}

async fn fetch(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<PaymentRecord>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM payments WHERE transaction_id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(PaymentRecord::from_row)
    .transpose()
}

fn missing(id: &str) -> StepError {
    StepError::infrastructure(anyhow::anyhow!(
        "ledger row {id} was there on insert but not on reading it back"
    ))
}
