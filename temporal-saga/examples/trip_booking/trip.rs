//! The trip saga: book a flight, a hotel and a car; on a failure, cancel what was booked, all
//! at once, and go on past a cancellation that fails.

use crate::bookings::Bookings;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporal_saga::{
    Compensation, Saga, SagaError, SagaOptions, SagaRuntime, SagaWorkflow, SearchAttributeNames,
    Step,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ApplicationFailure, WorkflowContext, WorkflowContextView, WorkflowResult};

/// The saga's value: the trip and what is booked for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    pub trip_id: String,
    pub flight: Option<String>,
    pub hotel: Option<String>,
    pub car: Option<String>,
}

/// The search attribute that holds a trip's outcome (`temporal workflow list --query
/// "TripOutcome='compensation-failed'"`).
pub const TRIP_OUTCOME: &str = "TripOutcome";

fn definition() -> Saga<Trip> {
    Saga::new()
        .step(Step::new(Bookings::book_flight).compensate_with(Bookings::cancel_flight))
        .step(Step::new(Bookings::book_hotel).compensate_with(Bookings::cancel_hotel))
        .step(Step::new(Bookings::book_car).compensate_with(Bookings::cancel_car))
        .summary(|trip| format!("trip {}", trip.trip_id))
        .options(SagaOptions {
            compensation: Compensation::PARALLEL,
            search_attributes: SearchAttributeNames {
                outcome: Some(TRIP_OUTCOME),
                waiting: None,
            },
            ..Default::default()
        })
}

/// What the `report` query returns once the saga has ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `completed`, `compensated`, `compensation-failed`, …
    pub outcome: String,
    /// The compensations that succeeded.
    pub compensations: Vec<String>,
    /// The error that stopped the saga, or that a compensation ended with.
    pub last_error: Option<String>,
}

#[workflow]
pub struct TripSaga {
    definition: Arc<Saga<Trip>>,
    saga: SagaRuntime<Trip>,
}

impl Default for TripSaga {
    fn default() -> Self {
        Self {
            definition: Arc::new(definition()),
            saga: SagaRuntime::default(),
        }
    }
}

impl SagaWorkflow for TripSaga {
    type Value = Trip;
    fn saga(&self) -> &SagaRuntime<Trip> {
        &self.saga
    }
    fn saga_mut(&mut self) -> &mut SagaRuntime<Trip> {
        &mut self.saga
    }
}

#[workflow_methods]
impl TripSaga {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, trip: Trip) -> WorkflowResult<Trip> {
        let saga = ctx.state(|w| w.definition.clone());
        if trip.trip_id.is_empty() {
            saga.reject(ctx, "invalid trip: trip_id: empty");
            saga.close(ctx);
            return Err(failure(
                "InvalidTrip",
                "invalid trip: trip_id: empty".into(),
            ));
        }
        let result = saga.run(ctx, trip).await;
        saga.close(ctx);
        result.map_err(|error| match &error {
            SagaError::CompensationFailed {
                failure: cause,
                failed,
                ..
            } => {
                let left: Vec<String> = failed.iter().map(ToString::to_string).collect();
                failure(
                    "TripCompensationFailed",
                    format!("after {cause}, left booked: {}", left.join("; ")),
                )
            }
            _ => failure("TripCompensated", error.to_string()),
        })
    }

    /// The saga's outcome and what its compensations did.
    #[query]
    pub fn report(&self, _ctx: &WorkflowContextView) -> Report {
        let status = self.saga.status();
        Report {
            outcome: status.phase.as_str().to_owned(),
            compensations: status.compensations.clone(),
            last_error: status.last_error.clone(),
        }
    }
}

fn failure(error_type: &str, message: String) -> temporalio_sdk::WorkflowTermination {
    ApplicationFailure::builder(message)
        .type_name(error_type.to_owned())
        .non_retryable(true)
        .build()
        .into()
}
