//! `webhook_deliveries`: the delivery state of each notification, per subscriber.
//!
//! | state       | meaning | leaves it when |
//! |-------------|---------|----------------|
//! | `pending`   | queued, or waiting for its next attempt (`next_attempt_ms`) | a 2xx (`delivered`), or the last attempt fails (`dead`) |
//! | `delivered` | a 2xx answered (`delivered_at`) | never |
//! | `dead`      | every attempt failed (`dead_at`, `last_error`) | `saga webhooks resend` makes it `pending` again |
//!
//! Rows are queued in the same local transaction as the notification itself, so a notification
//! never exists without its deliveries. A relay claims due rows by writing a lease (a fresh token
//! and an expiry) in one `UPDATE` whose `WHERE` repeats every condition, so of two relays racing
//! for a row exactly one matches it (PostgreSQL re-checks the condition on the row it waited for;
//! SQLite has one writer at a time); the result is recorded only under the same token, so a relay
//! whose lease ran out cannot overwrite the work of the one that took over. Times compared in SQL
//! are epoch milliseconds (`BIGINT`), which both databases order alike.

use super::{
    Subscription,
    event::{Event, OrderSummary, event_id},
};
use crate::{
    StepError,
    db::{Db, Tx, args, now},
};
use serde::Serialize;
use sqlx::{Connection as _, Row, any::AnyRow};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";

/// The id of one notification's delivery to one subscriber.
pub fn delivery_id(order_id: &str, status: &str, subscriber: &str) -> String {
    uuid::Uuid::new_v5(
        &saga_protos::ids::NAMESPACE,
        format!("{}|{subscriber}", event_id(order_id, status)).as_bytes(),
    )
    .to_string()
}

/// Milliseconds since the Unix epoch, as the lease and schedule columns hold them.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Queues one delivery per subscription that wants `status`, on `conn` (the `Notify`
/// transaction). A repeat changes nothing.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    order_id: &str,
    status: &str,
    subscriptions: &[Subscription],
) -> Result<usize, StepError> {
    let (created, due) = (now(), now_ms());
    let mut queued = 0;
    for subscription in subscriptions.iter().filter(|s| s.wants(status)) {
        queued += tx
            .execute(
                "INSERT INTO webhook_deliveries (delivery_id, order_id, status, subscriber, \
                 state, attempts, next_attempt_ms, lease_until_ms, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, 0, $7) ON CONFLICT DO NOTHING",
                args![
                    &delivery_id(order_id, status, &subscription.name),
                    order_id,
                    status,
                    &subscription.name,
                    PENDING,
                    due,
                    &created,
                ],
            )
            .await? as usize;
    }
    Ok(queued)
}

/// A row a relay holds the lease of, with what it must send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: String,
    pub subscriber: String,
    /// This attempt's number, 1-based.
    pub attempt: u32,
    pub event: Event,
}

/// One delivery as `saga status` and `saga webhooks list` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub order_id: String,
    pub status: String,
    pub subscriber: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made (since the last resend).
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub dead_at: Option<String>,
}

const DELIVERY_COLUMNS: &str = "order_id, status, subscriber, state, attempts, last_error, \
     last_attempt_at, next_attempt_ms, delivered_at, dead_at";

fn delivery(row: &AnyRow) -> sqlx::Result<Delivery> {
    let state: String = row.try_get(3)?;
    let next: i64 = row.try_get(7)?;
    Ok(Delivery {
        order_id: row.try_get(0)?,
        status: row.try_get(1)?,
        subscriber: row.try_get(2)?,
        attempts: row.try_get(4)?,
        last_error: row.try_get(5)?,
        last_attempt_at: row.try_get(6)?,
        next_attempt_at: if state == PENDING {
            rfc3339(next)
        } else {
            None
        },
        delivered_at: row.try_get(8)?,
        dead_at: row.try_get(9)?,
        state,
    })
}

/// Which dead deliveries `resend` picks up; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub order_id: Option<String>,
    pub status: Option<String>,
    pub subscriber: Option<String>,
}

/// The delivery table of one notifications database.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
}

impl Outbox {
    pub fn new(db: impl Into<Db>) -> Self {
        Self { db: db.into() }
    }

    /// Takes up to `limit` due rows of `subscribers` under the lease `token` until
    /// `lease_until_ms`, counting the attempt, and returns them with their events.
    pub async fn claim(
        &self,
        token: &str,
        subscribers: &[String],
        lease_until_ms: i64,
        limit: usize,
    ) -> sqlx::Result<Vec<Claimed>> {
        if subscribers.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let names: Vec<String> = (0..subscribers.len())
            .map(|i| format!("${}", i + 6))
            .collect();
        let due = "state = 'pending' AND next_attempt_ms <= $4 AND lease_until_ms <= $4";
        let sql = format!(
            "UPDATE webhook_deliveries \
             SET lease_owner = $1, lease_until_ms = $2, attempts = attempts + 1, \
                 last_attempt_at = $3 \
             WHERE {due} AND delivery_id IN (\
                 SELECT delivery_id FROM webhook_deliveries \
                 WHERE {due} AND subscriber IN ({}) \
                 ORDER BY next_attempt_ms LIMIT $5)",
            names.join(", ")
        );
        let mut query = sqlx::query(&sql)
            .bind(token)
            .bind(lease_until_ms)
            .bind(now())
            .bind(now_ms())
            .bind(limit as i64);
        for name in subscribers {
            query = query.bind(name);
        }
        if query
            .execute(&mut *self.db.acquire().await?)
            .await?
            .rows_affected()
            == 0
        {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT d.delivery_id, d.order_id, d.status, d.subscriber, d.attempts, \
                    n.error, n.summary, n.created_at \
             FROM webhook_deliveries d \
             JOIN notifications n ON n.order_id = d.order_id AND n.status = d.status \
             WHERE d.lease_owner = $1 AND d.state = 'pending'",
        )
        .bind(token)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?;
        rows.iter()
            .map(|row| {
                let order_id: String = row.try_get(1)?;
                let status: String = row.try_get(2)?;
                let attempts: i64 = row.try_get(4)?;
                let summary: Option<String> = row.try_get(6)?;
                Ok(Claimed {
                    delivery_id: row.try_get(0)?,
                    subscriber: row.try_get(3)?,
                    attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
                    event: Event {
                        event_id: event_id(&order_id, &status),
                        order_id,
                        status,
                        error: row.try_get(5)?,
                        // Written by `Notify` from a typed summary; unreadable only if edited by
                        // hand, and then the event goes out without it rather than not at all.
                        order: summary
                            .as_deref()
                            .and_then(|s| serde_json::from_str::<OrderSummary>(s).ok()),
                        time: row.try_get(7)?,
                    },
                })
            })
            .collect()
    }

    /// Records a 2xx. `false` when the lease was lost meanwhile (another relay has the row).
    pub async fn delivered(&self, claimed: &Claimed, token: &str) -> sqlx::Result<bool> {
        let at = now();
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET state = $3, delivered_at = $4, lease_owner = NULL, \
             lease_until_ms = 0 WHERE delivery_id = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(&claimed.delivery_id)
        .bind(token)
        .bind(DELIVERED)
        .bind(&at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The notification's own `delivered_at`: when its last subscriber got it.
        sqlx::query(
            "UPDATE notifications SET delivered_at = $3 \
             WHERE order_id = $1 AND status = $2 AND delivered_at IS NULL AND NOT EXISTS (\
                 SELECT 1 FROM webhook_deliveries \
                 WHERE order_id = $1 AND status = $2 AND state <> 'delivered')",
        )
        .bind(&claimed.event.order_id)
        .bind(&claimed.event.status)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated == 1)
    }

    /// Records a failed attempt: tried again at `retry_at_ms`, or dead when `None`. `false` when
    /// the lease was lost meanwhile.
    pub async fn failed(
        &self,
        claimed: &Claimed,
        token: &str,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> sqlx::Result<bool> {
        let query = match retry_at_ms {
            Some(at) => sqlx::query(
                "UPDATE webhook_deliveries SET last_error = $3, next_attempt_ms = $4, \
                 lease_owner = NULL, lease_until_ms = 0 \
                 WHERE delivery_id = $1 AND lease_owner = $2 AND state = 'pending'",
            )
            .bind(&claimed.delivery_id)
            .bind(token)
            .bind(error)
            .bind(at),
            None => sqlx::query(
                "UPDATE webhook_deliveries SET last_error = $3, state = $4, dead_at = $5, \
                 lease_owner = NULL, lease_until_ms = 0 \
                 WHERE delivery_id = $1 AND lease_owner = $2 AND state = 'pending'",
            )
            .bind(&claimed.delivery_id)
            .bind(token)
            .bind(error)
            .bind(DEAD)
            .bind(now()),
        };
        Ok(query
            .execute(&mut *self.db.acquire().await?)
            .await?
            .rows_affected()
            == 1)
    }

    /// Every delivery of one order's notifications.
    pub async fn for_order(&self, order_id: &str) -> sqlx::Result<Vec<Delivery>> {
        sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE order_id = $1 \
             ORDER BY status, subscriber"
        ))
        .bind(order_id)
        .fetch_all(&mut *self.db.acquire().await?)
        .await?
        .iter()
        .map(delivery)
        .collect()
    }

    /// Up to `limit` deliveries in `state` (any state when `None`), newest first.
    pub async fn list(&self, state: Option<&str>, limit: i64) -> sqlx::Result<Vec<Delivery>> {
        let filter = if state.is_some() {
            "WHERE state = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries {filter} \
             ORDER BY created_at DESC, order_id, status, subscriber LIMIT $1"
        );
        let mut query = sqlx::query(&sql).bind(limit);
        if let Some(state) = state {
            query = query.bind(state);
        }
        query
            .fetch_all(&mut *self.db.acquire().await?)
            .await?
            .iter()
            .map(delivery)
            .collect()
    }

    /// How many deliveries are in each state.
    pub async fn counts(&self) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state ORDER BY state")
            .fetch_all(&mut *self.db.acquire().await?)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Makes the dead deliveries that `selector` matches pending again, due now, with a fresh
    /// count of attempts; returns them as they were.
    pub async fn resend(&self, selector: &Selector) -> sqlx::Result<Vec<Delivery>> {
        let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE state = $1");
        let mut binds = vec![DEAD.to_owned()];
        for (column, value) in [
            ("order_id", &selector.order_id),
            ("status", &selector.status),
            ("subscriber", &selector.subscriber),
        ] {
            if let Some(value) = value {
                binds.push(value.clone());
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        sql.push_str(" ORDER BY created_at, order_id, status, subscriber");
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = query.bind(value);
        }
        let dead: Vec<Delivery> = query
            .fetch_all(&mut *self.db.acquire().await?)
            .await?
            .iter()
            .map(delivery)
            .collect::<sqlx::Result<_>>()?;
        let mut resent = Vec::new();
        for d in dead {
            let updated = sqlx::query(
                "UPDATE webhook_deliveries SET state = $2, attempts = 0, next_attempt_ms = $3, \
                 lease_owner = NULL, lease_until_ms = 0, dead_at = NULL \
                 WHERE delivery_id = $1 AND state = 'dead'",
            )
            .bind(delivery_id(&d.order_id, &d.status, &d.subscriber))
            .bind(PENDING)
            .bind(now_ms())
            .execute(&mut *self.db.acquire().await?)
            .await?
            .rows_affected();
            if updated == 1 {
                resent.push(d);
            }
        }
        Ok(resent)
    }
}
