//! A second saga on `temporal-saga`: book a flight, a hotel and a car, and undo them in
//! parallel when a booking fails, going on past a cancellation that fails.
//!
//! ```text
//! temporal server start-dev          # or any server; TEMPORAL_ADDRESS, default 127.0.0.1:7233
//! cargo run --release -p temporal-saga --example trip_booking
//! ```
//!
//! It starts its worker in this process on a task queue of its own, registers the search
//! attribute it sets, runs each scenario of the design table once, prints what happened, and
//! exits 0 only when every scenario took its design path:
//!
//! | trip id prefix | what fails | compensations | outcome |
//! |---|---|---|---|
//! | `1` | BookFlight | CancelFlight | failed, nothing left booked |
//! | `2` | BookHotel | CancelHotel, CancelFlight (in parallel) | failed, nothing left booked |
//! | `3` | BookCar | CancelCar, CancelHotel, CancelFlight (in parallel) | failed, nothing left booked |
//! | `4` | BookCar, then CancelHotel | CancelCar, CancelFlight run; CancelHotel fails | failed, the hotel left booked and named in the result |
//! | other | nothing | none | completed: flight, hotel and car booked |

mod bookings;
mod trip;

use anyhow::Context as _;
use bookings::Bookings;
use std::{collections::BTreeSet, str::FromStr, sync::Arc, time::Duration};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowGetResultOptions,
    WorkflowQueryOptions, WorkflowStartOptions,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::IndexedValueType,
    operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use trip::{Report, Trip, TripSaga};

/// One row of the design table.
struct Scenario {
    prefix: &'static str,
    /// The forward steps that run, in order.
    steps: &'static [&'static str],
    /// The compensations that succeed, in any order (they run in parallel).
    compensations: &'static [&'static str],
    outcome: &'static str,
    left_booked: &'static [&'static str],
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        prefix: "1",
        steps: &["BookFlight"],
        compensations: &["CancelFlight"],
        outcome: "compensated",
        left_booked: &[],
    },
    Scenario {
        prefix: "2",
        steps: &["BookFlight", "BookHotel"],
        compensations: &["CancelHotel", "CancelFlight"],
        outcome: "compensated",
        left_booked: &[],
    },
    Scenario {
        prefix: "3",
        steps: &["BookFlight", "BookHotel", "BookCar"],
        compensations: &["CancelCar", "CancelHotel", "CancelFlight"],
        outcome: "compensated",
        left_booked: &[],
    },
    Scenario {
        prefix: "4",
        steps: &["BookFlight", "BookHotel", "BookCar"],
        compensations: &["CancelCar", "CancelFlight"],
        outcome: "compensation-failed",
        left_booked: &["hotel"],
    },
    Scenario {
        prefix: "7",
        steps: &["BookFlight", "BookHotel", "BookCar"],
        compensations: &[],
        outcome: "completed",
        left_booked: &["car", "flight", "hotel"],
    },
];

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("trip_booking: a scenario left its design path (see the table)");
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("trip_booking: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let address = std::env::var("TEMPORAL_ADDRESS").unwrap_or_else(|_| "127.0.0.1:7233".into());
    let namespace = std::env::var("TEMPORAL_NAMESPACE").unwrap_or_else(|_| "default".into());
    let client = connect(&address, &namespace).await?;
    register_search_attribute(&client, &namespace).await?;

    // Each run books into a database and a task queue of its own.
    let run_id = uuid_like();
    let dir = tempfile::tempdir()?;
    let bookings = Arc::new(Bookings::open(&dir.path().join("bookings.db")).await?);
    let task_queue = format!("trip-booking-{run_id}");
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let options = WorkerOptions::new(&task_queue)
        .register_workflow::<TripSaga>()?
        .register_activities(ArcBookings(bookings.clone()))
        .build();
    let mut worker = Worker::new(&runtime, client.clone(), options)?;
    let stop = worker.shutdown_handle();
    let scenarios = async {
        let result = run_scenarios(&client, &bookings, &task_queue, &run_id).await;
        stop();
        result
    };
    let (worked, scenarios) = tokio::join!(worker.run(), scenarios);
    worked.context("the trip worker stopped")?;
    let rows = scenarios?;

    println!(
        "{:<6} {:<20} {:<78} {:<19} design",
        "trip", "outcome", "path", "left booked"
    );
    let mut all_right = true;
    for row in &rows {
        all_right &= row.as_designed;
        println!(
            "{:<6} {:<20} {:<78} {:<19} {}",
            row.trip_id,
            row.outcome,
            row.path,
            if row.left_booked.is_empty() {
                "nothing".to_owned()
            } else {
                row.left_booked.join(", ")
            },
            if row.as_designed {
                "ok"
            } else {
                "NOT AS DESIGNED"
            }
        );
    }
    println!();
    for row in &rows {
        println!("trip {}: {}", row.trip_id, row.result);
    }
    println!(
        "{} of {} scenarios took their design path",
        rows.iter().filter(|r| r.as_designed).count(),
        rows.len()
    );
    Ok(all_right)
}

struct Row {
    trip_id: String,
    outcome: String,
    path: String,
    left_booked: Vec<String>,
    /// How the workflow ended, as its result or failure says.
    result: String,
    as_designed: bool,
}

async fn run_scenarios(
    client: &Client,
    bookings: &Bookings,
    task_queue: &str,
    run_id: &str,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for scenario in &SCENARIOS {
        let trip_id = format!("{}-{run_id}", scenario.prefix);
        let trip = Trip {
            trip_id: trip_id.clone(),
            ..Default::default()
        };
        let workflow_id = format!("trip-{trip_id}");
        let handle = client
            .start_workflow(
                TripSaga::run,
                trip,
                WorkflowStartOptions::new(task_queue, &workflow_id).build(),
            )
            .await
            .with_context(|| format!("starting {workflow_id}"))?;
        let result = tokio::time::timeout(
            Duration::from_secs(120),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .with_context(|| format!("{workflow_id} did not end within 2 minutes"))?;
        let report: Report = handle
            .query(TripSaga::report, (), WorkflowQueryOptions::default())
            .await
            .with_context(|| format!("querying {workflow_id}"))?;
        let journal = bookings.journal(&trip_id).await?;
        let left_booked = bookings.booked(&trip_id).await?;
        let (steps, undone) =
            journal.split_at(journal.iter().take_while(|a| a.starts_with("Book")).count());
        let as_designed = steps == scenario.steps
            && undone.iter().map(String::as_str).collect::<BTreeSet<_>>()
                == scenario.compensations.iter().copied().collect::<BTreeSet<_>>()
            && report.compensations.iter().map(String::as_str).collect::<BTreeSet<_>>()
                == scenario.compensations.iter().copied().collect::<BTreeSet<_>>()
            && report.outcome == scenario.outcome
            && result.is_ok() == (scenario.outcome == "completed")
            && left_booked == scenario.left_booked
            // A failed cancellation is named in the saga's result.
            && (scenario.outcome != "compensation-failed"
                || result
                    .as_ref()
                    .is_err_and(|e| format!("{e:?}").contains("CancelHotel")));
        let path = if undone.is_empty() {
            steps.join(" → ")
        } else {
            format!("{} ⇒ {{{}}}", steps.join(" → "), undone.join(" ∥ "))
        };
        rows.push(Row {
            trip_id: scenario.prefix.to_owned(),
            outcome: report.outcome,
            path,
            left_booked,
            result: match &result {
                Ok(_) => "completed".to_owned(),
                Err(error) => failure_message(error),
            },
            as_designed,
        });
    }
    Ok(rows)
}

/// The message of the failure a workflow ended with (the innermost cause names it best).
fn failure_message(error: &impl std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    message
}

/// `Bookings` behind the `Arc` the worker shares with the table's checks.
struct ArcBookings(Arc<Bookings>);

impl temporalio_sdk::activities::ActivityImplementer for ArcBookings {
    fn register_all(self: Arc<Self>, defs: &mut temporalio_sdk::activities::ActivityDefinitions) {
        self.0.clone().register_all(defs)
    }
}

async fn connect(address: &str, namespace: &str) -> anyhow::Result<Client> {
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let connection = Connection::connect(ConnectionOptions::new(Url::from_str(&url)?).build())
        .await
        .with_context(|| {
            format!("connecting to the Temporal server at {address} (TEMPORAL_ADDRESS)")
        })?;
    Ok(Client::new(
        connection,
        ClientOptions::new(namespace.to_owned()).build(),
    )?)
}

/// Registers `TripOutcome` (Keyword) unless the namespace has it: an attribute the server does
/// not know fails the workflow task that sets it.
async fn register_search_attribute(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let mut operator = client.connection().operator_service();
    let known = operator
        .list_search_attributes(tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await
        .context("listing the namespace's search attributes")?
        .into_inner();
    if known.custom_attributes.contains_key(trip::TRIP_OUTCOME) {
        return Ok(());
    }
    operator
        .add_search_attributes(tonic::Request::new(AddSearchAttributesRequest {
            namespace: namespace.to_owned(),
            search_attributes: [(
                trip::TRIP_OUTCOME.to_owned(),
                IndexedValueType::Keyword as i32,
            )]
            .into(),
        }))
        .await
        .with_context(|| format!("registering the search attribute {}", trip::TRIP_OUTCOME))?;
    Ok(())
}

/// A short id that sets this run's trips, queue and database apart from earlier runs'.
fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}
