//! The saga's local transactions, one service per module, each with its own database.
//!
//! | service         | activities (forward / compensation)      | tables |
//! |-----------------|------------------------------------------|--------|
//! | [`orders`]        | `ProcessOrder` / `UpdateOrderStatus`     | `orders` |
//! | [`payments`]      | `ProcessPayment` / `ProcessRefund`       | `payments` (ledger) |
//! | [`inventory`]     | `ReserveInventory` / `ReleaseInventory`  | `stock`, `inventory_transactions`, `inventory_lines` |
//! | [`notifications`] | `Notify`                                 | `notifications` (outbox), `webhook_deliveries` |
//!
//! [`outbox`] holds the webhook deliveries `Notify` queues in its own transaction; the relay
//! that sends them (the `saga-delivery` crate) runs beside the notifications service, never on
//! a saga's path.
//!
//! [`db`] opens each service's database and gives the stores one way to write to either
//! backend ([`db::Tx`]): sqlx's pool on PostgreSQL, and on SQLite one connection whose
//! transactions run on the caller's thread ([`db::InlineSqlite`]).
//!
//! Each activity's input and result is a [`Json`] (the saga library's, named by the contracts
//! in `saga_protos::contracts`): JSON straight from and to the payload's bytes, past the SDK's
//! detour through `serde_json::Value`.
//!
//! Every activity validates its input, runs one local transaction keyed by a deterministic id
//! (so a repeat changes nothing), and only then applies the design's failure injection by order
//! id prefix. Each service's activities are a separate implementer, so a worker can run any
//! subset of them.

pub mod db;
pub mod elsewhere;
mod error;
pub mod faults;
pub mod inventory;
pub mod metrics;
mod migrations;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod payments;
#[cfg(feature = "test-support")]
pub mod testing;

pub use db::{DbConfig, Service};
pub use error::{FaultKind, INFRASTRUCTURE, StepError};
pub use faults::Faults;
pub use saga_protos::contracts::Json;

use inventory::InventoryStore;
use notifications::NotificationsStore;
use orders::OrdersStore;
use payments::PaymentsStore;
use saga_protos::{Notification, Order, scenario::injected_failure, validate_order};
use std::{future::Future, sync::Arc};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Runs one saga step: validation, faults, the local transaction, then failure injection.
async fn step<Fut>(
    ctx: &ActivityContext,
    service: Service,
    faults: &Faults,
    order_id: &str,
    transaction: impl FnOnce() -> Fut,
) -> Result<Order, ActivityError>
where
    Fut: Future<Output = Result<Order, StepError>>,
{
    let info = ctx.info();
    let activity = info.activity_type.as_str();
    let attempt = info.attempt;
    let workflow_id = info.workflow_id.as_deref().unwrap_or_default();
    let outcome: Result<Order, StepError> = async {
        faults.before(activity, attempt).await?;
        let started = std::time::Instant::now();
        let order = transaction().await;
        metrics::store_latency(activity, started.elapsed());
        let order = order?;
        faults.after_commit(activity, attempt, order_id, workflow_id)?;
        if let Some(kind) = injected_failure(activity, order_id) {
            return Err(StepError::business(
                kind,
                format!("{activity} failed for order {order_id}"),
            ));
        }
        Ok(order)
    }
    .await;
    let waiting = metrics::WaitingStep {
        workflow_id,
        activity,
    };
    // One line per attempt, its fields on the event itself: a span per step nearly doubled
    // the line's cost (docs/performance-history.md, "The step's line without a span"). The
    // activity type is one this worker registered, so it prints bare; the ids come with the
    // input (a notification's order id is not an order's, checked by `validate_order`), so
    // they stay quoted and escaped.
    macro_rules! step_line {
        ($level:ident, $($rest:tt)*) => {
            tracing::$level!(%activity, order_id, workflow_id, attempt, $($rest)*)
        };
    }
    match outcome {
        Ok(order) => {
            step_line!(info, "committed");
            metrics::succeeded(activity);
            metrics::step_got_through(&waiting);
            Ok(order)
        }
        Err(e) => {
            match &e {
                StepError::Infrastructure { .. } => {
                    step_line!(warn, service = service.name(), error = %e, "infrastructure fault, will retry");
                    metrics::infrastructure_fault(&waiting);
                }
                StepError::Business { .. } => {
                    step_line!(info, error = %e, "failed");
                    metrics::business_failure(activity);
                    metrics::step_got_through(&waiting);
                }
                StepError::Invalid(_) => step_line!(info, error = %e, "failed"),
            }
            Err(e.into_activity_error(service.name()))
        }
    }
}

fn checked(service: Service, order: &Order) -> Result<(), ActivityError> {
    validate_order(order).map_err(|e| StepError::from(e).into_activity_error(service.name()))
}

/// `ProcessOrder` and its compensation `UpdateOrderStatus`.
pub struct OrderActivities {
    store: OrdersStore,
    faults: Arc<Faults>,
}

#[activities]
impl OrderActivities {
    #[activity(name = "ProcessOrder")]
    pub async fn process_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        let Json(order) = order;
        checked(Service::Orders, &order)?;
        step(&ctx, Service::Orders, &self.faults, &order.order_id, || {
            self.store.process_order(&order)
        })
        .await
        .map(Json)
    }

    #[activity(name = "UpdateOrderStatus")]
    pub async fn update_order_status(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        let Json(order) = order;
        checked(Service::Orders, &order)?;
        step(&ctx, Service::Orders, &self.faults, &order.order_id, || {
            self.store.set_pending(&order)
        })
        .await
        .map(Json)
    }
}

/// `ProcessPayment` and its compensation `ProcessRefund`.
pub struct PaymentActivities {
    store: PaymentsStore,
    faults: Arc<Faults>,
}

#[activities]
impl PaymentActivities {
    #[activity(name = "ProcessPayment")]
    pub async fn process_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        let Json(order) = order;
        checked(Service::Payments, &order)?;
        step(
            &ctx,
            Service::Payments,
            &self.faults,
            &order.order_id,
            || self.store.process_payment(&order),
        )
        .await
        .map(Json)
    }

    #[activity(name = "ProcessRefund")]
    pub async fn process_refund(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        let Json(order) = order;
        checked(Service::Payments, &order)?;
        step(
            &ctx,
            Service::Payments,
            &self.faults,
            &order.order_id,
            || self.store.process_refund(&order),
        )
        .await
        .map(Json)
    }
}

/// `ReserveInventory` and its compensation `ReleaseInventory`.
pub struct InventoryActivities {
    store: InventoryStore,
    faults: Arc<Faults>,
}

#[activities]
impl InventoryActivities {
    #[activity(name = "ReserveInventory")]
    pub async fn reserve_inventory(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        let Json(order) = order;
        checked(Service::Inventory, &order)?;
        step(
            &ctx,
            Service::Inventory,
            &self.faults,
            &order.order_id,
            || self.store.reserve(&order),
        )
        .await
        .map(Json)
    }

    #[activity(name = "ReleaseInventory")]
    pub async fn release_inventory(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        let Json(order) = order;
        checked(Service::Inventory, &order)?;
        step(
            &ctx,
            Service::Inventory,
            &self.faults,
            &order.order_id,
            || self.store.release(&order),
        )
        .await
        .map(Json)
    }
}

/// `Notify`.
pub struct NotificationActivities {
    store: NotificationsStore,
    faults: Arc<Faults>,
}

#[activities]
impl NotificationActivities {
    #[activity(name = "Notify")]
    pub async fn notify(
        self: Arc<Self>,
        ctx: ActivityContext,
        notification: Json<Notification>,
    ) -> Result<(), ActivityError> {
        let Json(notification) = notification;
        if !matches!(notification.status.as_str(), "success" | "failed") {
            return Err(StepError::Invalid(saga_protos::InvalidOrder {
                field: "status".into(),
                reason: format!("must be success or failed, got {:?}", notification.status),
            })
            .into_activity_error(Service::Notifications.name()));
        }
        // The order rides along for the webhook summary; a bad one is refused by name like any
        // other input, never summed into a wrong total.
        if let Some(order) = &notification.order
            && let Err(e) = validate_order(order)
        {
            return Err(StepError::Invalid(saga_protos::InvalidOrder {
                field: format!("order.{}", e.field),
                reason: e.reason,
            })
            .into_activity_error(Service::Notifications.name()));
        }
        let order = Order {
            order_id: notification.order_id.clone(),
            ..Default::default()
        };
        step(
            &ctx,
            Service::Notifications,
            &self.faults,
            &notification.order_id,
            || async {
                self.store.notify(&notification).await?;
                Ok(order)
            },
        )
        .await?;
        metrics::notified(&notification.status);
        Ok(())
    }
}

/// Where each service keeps its data and how the stores behave.
#[derive(Debug, Clone)]
pub struct StoresConfig {
    pub orders: DbConfig,
    pub payments: DbConfig,
    pub inventory: DbConfig,
    pub notifications: DbConfig,
    /// The stock of an item the first time any order names it.
    pub default_stock: i64,
}

impl StoresConfig {
    pub fn db(&self, service: Service) -> &DbConfig {
        match service {
            Service::Orders => &self.orders,
            Service::Payments => &self.payments,
            Service::Inventory => &self.inventory,
            Service::Notifications => &self.notifications,
        }
    }
}

/// The opened stores of the services a process runs; `None` for a service it does not run.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    pub orders: Option<OrdersStore>,
    pub payments: Option<PaymentsStore>,
    pub inventory: Option<InventoryStore>,
    pub notifications: Option<NotificationsStore>,
}

impl Stores {
    /// Opens (and migrates) the databases of `services`; fails at once when one is unreachable.
    pub async fn open(config: &StoresConfig, services: &[Service]) -> anyhow::Result<Self> {
        Self::open_with(config, services, false).await
    }

    /// Opens the databases of `services`, waiting for any that is unavailable (see
    /// [`db::open_when_available`]): what a worker does.
    pub async fn open_when_available(
        config: &StoresConfig,
        services: &[Service],
    ) -> anyhow::Result<Self> {
        Self::open_with(config, services, true).await
    }

    async fn open_with(
        config: &StoresConfig,
        services: &[Service],
        wait: bool,
    ) -> anyhow::Result<Self> {
        let mut stores = Self::default();
        for &service in services {
            let db = config.db(service);
            let db = if wait {
                db::open_when_available(service, db).await?
            } else {
                db::open(service, db).await?
            };
            match service {
                Service::Orders => stores.orders = Some(OrdersStore::new(db)),
                Service::Payments => stores.payments = Some(PaymentsStore::new(db)),
                Service::Inventory => {
                    stores.inventory = Some(InventoryStore::new(db, config.default_stock))
                }
                Service::Notifications => stores.notifications = Some(NotificationsStore::new(db)),
            }
        }
        Ok(stores)
    }

    pub fn order_activities(&self, faults: &Arc<Faults>) -> Option<OrderActivities> {
        Some(OrderActivities {
            store: self.orders.clone()?,
            faults: faults.clone(),
        })
    }

    pub fn payment_activities(&self, faults: &Arc<Faults>) -> Option<PaymentActivities> {
        Some(PaymentActivities {
            store: self.payments.clone()?,
            faults: faults.clone(),
        })
    }

    pub fn inventory_activities(&self, faults: &Arc<Faults>) -> Option<InventoryActivities> {
        Some(InventoryActivities {
            store: self.inventory.clone()?,
            faults: faults.clone(),
        })
    }

    pub fn notification_activities(&self, faults: &Arc<Faults>) -> Option<NotificationActivities> {
        Some(NotificationActivities {
            store: self.notifications.clone()?,
            faults: faults.clone(),
        })
    }
}
