//! The saga's activities for a workflow worker that does not run the services.
//!
//! | activity | answers |
//! |---|---|
//! | every one of the seven | non-retryable `LocalDispatchUnavailable`, at once |
//!
//! A saga started by an all-in-one worker runs its steps as local activities. When split
//! workers take it over (the all-in-one worker gone, a step it had begun not yet recorded), the
//! workflow worker that replays it may be asked to run that step locally, without the step's
//! service or database. It answers with this failure, which the history records, and the saga
//! runs the step as a regular activity on its service's queue. Registering these also makes the
//! workflow worker poll its own queue for activities: a regular activity an older version
//! scheduled there gets the same answer, and its saga the same remedy.

use saga_protos::{Notification, Order, contracts::Json, scenario::LOCAL_DISPATCH_UNAVAILABLE};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::{
    ApplicationFailure,
    activities::{ActivityContext, ActivityError},
};

/// Stands in for every service in a workflow-only worker.
pub struct ElsewhereActivities;

fn elsewhere(ctx: &ActivityContext) -> ActivityError {
    let activity = &ctx.info().activity_type;
    ActivityError::application(
        ApplicationFailure::builder(format!(
            "{activity} runs on its service's task queue, not in this workflow worker"
        ))
        .type_name(LOCAL_DISPATCH_UNAVAILABLE.to_owned())
        .non_retryable(true)
        .build(),
    )
}

#[activities]
impl ElsewhereActivities {
    #[activity(name = "ProcessOrder")]
    pub async fn process_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        _order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        Err(elsewhere(&ctx))
    }

    #[activity(name = "UpdateOrderStatus")]
    pub async fn update_order_status(
        self: Arc<Self>,
        ctx: ActivityContext,
        _order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        Err(elsewhere(&ctx))
    }

    #[activity(name = "ProcessPayment")]
    pub async fn process_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        _order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        Err(elsewhere(&ctx))
    }

    #[activity(name = "ProcessRefund")]
    pub async fn process_refund(
        self: Arc<Self>,
        ctx: ActivityContext,
        _order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        Err(elsewhere(&ctx))
    }

    #[activity(name = "ReserveInventory")]
    pub async fn reserve_inventory(
        self: Arc<Self>,
        ctx: ActivityContext,
        _order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        Err(elsewhere(&ctx))
    }

    #[activity(name = "ReleaseInventory")]
    pub async fn release_inventory(
        self: Arc<Self>,
        ctx: ActivityContext,
        _order: Json<Order>,
    ) -> Result<Json<Order>, ActivityError> {
        Err(elsewhere(&ctx))
    }

    #[activity(name = "Notify")]
    pub async fn notify(
        self: Arc<Self>,
        ctx: ActivityContext,
        _notification: Json<Notification>,
    ) -> Result<(), ActivityError> {
        Err(elsewhere(&ctx))
    }
}
