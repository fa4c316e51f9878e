//! The notifications service: an outbox of saga outcomes, one row per order and outcome, and the
//! webhook deliveries queued with each row (see [`crate::outbox`]; the relay that sends them is the `saga-delivery` crate).

use crate::{
    StepError,
    db::{Db, args, now},
    outbox::{
        Subscription,
        event::{OrderSummary, event_id},
        table::{self as outbox, Delivery, Outbox},
    },
};
use saga_protos::Notification;
use serde::Serialize;
use sqlx::Row;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct NotificationsStore {
    db: Db,
    /// The webhook subscribers each notification is queued for; empty when delivery is off.
    subscriptions: Arc<[Subscription]>,
    /// Wakes this process's relay when deliveries are queued.
    wake: Option<Arc<tokio::sync::Notify>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationRecord {
    pub order_id: String,
    pub status: String,
    pub error: Option<String>,
    pub time: String,
    /// The id every webhook delivery of this notification carries.
    pub event_id: String,
    /// Its webhook delivery to each subscriber; empty when delivery is off.
    pub deliveries: Vec<Delivery>,
}

impl NotificationsStore {
    pub fn new(db: impl Into<Db>) -> Self {
        Self {
            db: db.into(),
            subscriptions: Arc::from([]),
            wake: None,
        }
    }

    /// From now on, `Notify` queues a webhook delivery for each of `subscriptions` in the
    /// notification's own transaction, and wakes `wake`'s relay.
    pub fn with_deliveries(
        mut self,
        subscriptions: Vec<Subscription>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        self.subscriptions = subscriptions.into();
        self.wake = Some(wake);
        self
    }

    /// The database, for the webhook relay beside this store.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The webhook deliveries of this database.
    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.db.clone())
    }

    /// `Notify`: publishes the outcome to the outbox and queues its webhook deliveries, in one
    /// transaction. A repeat finds the rows and sends nothing. Never waits for a delivery.
    pub async fn notify(&self, notification: &Notification) -> Result<(), StepError> {
        let summary = notification
            .order
            .as_ref()
            .map(|order| serde_json::to_string(&OrderSummary::of(order)))
            .transpose()
            .map_err(anyhow::Error::from)?;
        let insert = "INSERT INTO notifications (order_id, status, error, created_at, summary) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, status) DO NOTHING";
        let created = now();
        let values = args![
            &notification.order_id,
            &notification.status,
            notification.error.as_deref(),
            &created,
            summary.as_deref(),
        ];
        if self.subscriptions.is_empty() {
            // Nothing to queue beside the row: one statement, its own transaction.
            self.db.execute(insert, values).await?;
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        tx.execute(insert, values).await?;
        let queued = outbox::enqueue(
            &mut tx,
            &notification.order_id,
            &notification.status,
            &self.subscriptions,
        )
        .await?;
        tx.commit().await?;
        if queued > 0
            && let Some(wake) = &self.wake
        {
            wake.notify_one();
        }
        Ok(())
    }

    pub async fn for_order(&self, order_id: &str) -> Result<Vec<NotificationRecord>, sqlx::Error> {
        let deliveries = self.outbox().for_order(order_id).await?;
        sqlx::query(
            "SELECT order_id, status, error, created_at FROM notifications \
             WHERE order_id = $1 ORDER BY created_at, status",
        )
        .bind(order_id)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?
        .iter()
        .map(|r| {
            let order_id: String = r.try_get(0)?;
            let status: String = r.try_get(1)?;
            Ok(NotificationRecord {
                event_id: event_id(&order_id, &status),
                deliveries: deliveries
                    .iter()
                    .filter(|d| d.status == status)
                    .cloned()
                    .collect(),
                order_id,
                status,
                error: r.try_get(2)?,
                time: r.try_get(3)?,
            })
        })
        .collect()
    }
}
