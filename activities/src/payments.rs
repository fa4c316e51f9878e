//! The payments service: a ledger of Debits and Credits in integer cents.

use crate::{
    StepError,
    db::{Columns, Db, FromColumns, Tx, args, now},
};
use saga_protos::{
    Order, Payment, amount,
    ids::{TransactionType, transaction_id},
};
use serde::Serialize;

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

impl FromColumns for PaymentRecord {
    fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            transaction_id: r.text(0)?,
            order_id: r.text(1)?,
            merchant_id: r.text(2)?,
            payment_type: r.text(3)?,
            amount_cents: r.int(4)?,
            transaction_date: r.text(5)?,
        })
    }
}

impl PaymentRecord {
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
        // One statement, as in `ProcessOrder`: a repeat finds the Debit already there and
        // reads it back.
        let inserted: Option<PaymentRecord> = self
            .db
            .rows(
                &format!(
                    "INSERT INTO payments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (transaction_id) DO NOTHING RETURNING {COLUMNS}"
                ),
                args![
                    &id,
                    &order.order_id,
                    MERCHANT_ID,
                    TransactionType::Debit.as_str(),
                    order.total_cents(),
                    &now(),
                ],
            )
            .await?
            .pop();
        let debit = match inserted {
            Some(debit) => debit,
            None => {
                let mut tx = self.db.begin().await?;
                let debit = fetch(&mut tx, &id).await?;
                tx.commit().await?;
                debit.ok_or_else(|| missing(&id))?
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
        let mut tx = self.db.begin().await?;
        tx.execute(
            &format!(
                "INSERT INTO payments ({COLUMNS}) \
                 SELECT $1, order_id, merchant_id, $2, -amount_cents, $3 FROM payments \
                 WHERE transaction_id = $4 \
                 ON CONFLICT (transaction_id) DO NOTHING"
            ),
            args![
                &credit_id,
                TransactionType::Credit.as_str(),
                &now(),
                &debit_id
            ],
        )
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
        .map(PaymentRecord::from_columns)
        .collect()
    }
}

async fn fetch(tx: &mut Tx<'_>, id: &str) -> Result<Option<PaymentRecord>, StepError> {
    tx.row(
        &format!("SELECT {COLUMNS} FROM payments WHERE transaction_id = $1"),
        args![id],
    )
    .await
}

fn missing(id: &str) -> StepError {
    StepError::infrastructure(anyhow::anyhow!(
        "ledger row {id} was there on insert but not on reading it back"
    ))
}
