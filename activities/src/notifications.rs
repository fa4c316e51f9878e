//! The notifications service: an outbox of saga outcomes, one row per order and outcome.

use crate::{StepError, db::now};
use saga_protos::Notification;
use serde::Serialize;
use sqlx::{AnyPool, Row};

#[derive(Debug, Clone)]
pub struct NotificationsStore {
    pool: AnyPool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationRecord {
    pub order_id: String,
    pub status: String,
    pub error: Option<String>,
    pub time: String,
}

impl NotificationsStore {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// `Notify`: publishes the outcome to the outbox. A repeat finds the row and sends nothing.
    pub async fn notify(&self, notification: &Notification) -> Result<(), StepError> {
        sqlx::query(
            "INSERT INTO notifications (order_id, status, error, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (order_id, status) DO NOTHING",
        )
        .bind(&notification.order_id)
        .bind(&notification.status)
        .bind(notification.error.as_deref())
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn for_order(&self, order_id: &str) -> Result<Vec<NotificationRecord>, sqlx::Error> {
        sqlx::query(
            "SELECT order_id, status, error, created_at FROM notifications \
             WHERE order_id = $1 ORDER BY created_at, status",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(NotificationRecord {
                order_id: r.try_get(0)?,
                status: r.try_get(1)?,
                error: r.try_get(2)?,
                time: r.try_get(3)?,
            })
        })
        .collect()
    }
}
