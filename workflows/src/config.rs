//! What the worker tells the saga: where its steps run and how long it may wait for them.
//!
//! The worker builds every `OrderSaga` instance with a [`SagaConfig`] (a workflow factory), so the
//! workflow code itself reads no environment. None of these settings can break a saga in flight
//! when it changes: each one reaches the history only through something the history records.
//!
//! | setting | used for | why a change is safe with sagas in flight |
//! |---|---|---|
//! | [`SagaConfig::dispatch`] | how the next step is dispatched | the choice is recorded when it is made ([`temporal_saga::dispatch`]); replay follows the record |
//! | [`SagaConfig::legacy_dispatch`] | sagas started before the choice was recorded | nothing else can tell how their steps ran |
//! | [`SagaConfig::routing`] | the task queue of a regular activity | replay does not compare task queues |
//! | [`Patience::step_window`], [`Patience::deadline`] | a forward step's schedule-to-close timeout; the deadline check | the timeout is an option of the scheduled step, and the check's verdict is recorded ([`temporal_saga::patience`]) |

use saga_protos::scenario::{LOCAL_DISPATCH_UNAVAILABLE, activity::*};
use temporal_saga::{Compensation, Retries, SagaOptions, SearchAttributeNames};
pub use temporal_saga::{Dispatch, Patience};

/// Where and how the saga's activities run, and how long forward steps may wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaConfig {
    pub routing: Routing,
    /// How new steps are dispatched.
    pub dispatch: Dispatch,
    /// How the steps of a saga whose history records no dispatch choice ran: sagas started by a
    /// worker older than the recorded choice used the worker's `--dispatch`, remote by default.
    pub legacy_dispatch: Dispatch,
    pub patience: Patience,
}

/// The task queue of each service's activities; `None` schedules on the workflow's own queue
/// (the all-in-one worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub orders: Option<String>,
    pub payments: Option<String>,
    pub inventory: Option<String>,
    pub notifications: Option<String>,
}

impl Routing {
    /// The task queue of the service that runs `activity_type`.
    pub fn queue_of(&self, activity_type: &str) -> Option<String> {
        match activity_type {
            PROCESS_ORDER | UPDATE_ORDER_STATUS => self.orders.clone(),
            PROCESS_PAYMENT | PROCESS_REFUND => self.payments.clone(),
            RESERVE_INVENTORY | RELEASE_INVENTORY => self.inventory.clone(),
            NOTIFY => self.notifications.clone(),
            _ => None,
        }
    }
}

impl SagaConfig {
    /// The saga library's options for these settings: the order saga's policy (the library's
    /// defaults: reverse compensation that stops at the first failure, 4 attempts a round),
    /// its search attributes, and each activity's task queue.
    pub fn saga_options(&self) -> SagaOptions {
        let activities = [
            PROCESS_ORDER,
            UPDATE_ORDER_STATUS,
            PROCESS_PAYMENT,
            PROCESS_REFUND,
            RESERVE_INVENTORY,
            RELEASE_INVENTORY,
            NOTIFY,
        ];
        SagaOptions {
            dispatch: self.dispatch,
            legacy_dispatch: self.legacy_dispatch,
            patience: self.patience,
            retries: Retries::default(),
            compensation: Compensation::SEQUENTIAL,
            task_queues: activities
                .into_iter()
                .filter_map(|activity| {
                    Some((activity.to_owned(), self.routing.queue_of(activity)?))
                })
                .collect(),
            search_attributes: SearchAttributeNames {
                outcome: Some(crate::visibility::SAGA_OUTCOME.name()),
                waiting: Some(crate::visibility::SAGA_WAITING.name()),
            },
            not_here_error_type: LOCAL_DISPATCH_UNAVAILABLE,
        }
    }
}
