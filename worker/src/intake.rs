//! Order intake: `saga worker --intake ADDR` takes orders over HTTP and starts each order's saga
//! through the worker's own client, so the server hands the saga's first workflow task straight
//! back in its reply (eager workflow start) instead of queueing it for the next poll.
//!
//! | request | answer |
//! |---|---|
//! | `POST /orders`, a valid order (the contract's JSON) | `202` `{workflow_id, run_id, web_ui}`: the saga runs |
//! | the same order id again, running or closed | `200`, the same body with `"already_started": true`: one saga per order |
//! | a malformed or invalid order | `400` `{error, field}`: nothing is started |
//! | the server cannot be reached or is overloaded | `503` `{error}`: not started; post again |
//! | the server refuses the start (a setting, a codec) | `502` `{error}`: not started; see the log |
//! | `GET /healthz` | `200` |
//!
//! Why it exists: an order started through the server waits 25 to 35 ms in the dev server's task
//! queue before a poll picks it up, most of a local saga's 50 ms; posted here, a saga takes
//! about 27 ms (docs/performance-history.md, "Where one saga's time goes"). Eager start needs the starter and the worker in one process; this is the
//! door into that process. The saga is otherwise the one `saga start` begins: the same workflow
//! id (`order-<order_id>`), search attributes, summary and history. When the worker has no free
//! workflow slot, the server queues the task as usual.
//!
//! At most `--intake-sagas` posted sagas are in the worker at once; the orders beyond them wait
//! for a place, first come first served, before their saga is started (see [`admission`]).
//!
//! There is no authentication: bind it to a private address (the default `127.0.0.1`), or put
//! it behind the shop's own gateway.

pub mod admission;

use crate::launch;
use anyhow::Context as _;
use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use saga_workflows::{Dispatch, OrderSaga};
use serde::Serialize;
use std::net::SocketAddr;
use temporalio_client::{Client, WorkflowIdReusePolicy, errors::WorkflowStartError};
use tokio::{net::TcpListener, sync::watch};

/// What the intake needs to start a saga.
#[derive(Clone)]
struct Intake {
    client: Client,
    task_queue: String,
    admission: admission::Admission,
    /// Whether `client` encrypts, worked out once: it cannot change while the worker runs.
    encrypted: bool,
    /// How this worker's sagas dispatch their steps, named in the memo of the sagas it starts
    /// eagerly (see `take_order`).
    dispatch: Dispatch,
}

/// A bound intake, not yet serving: binding first makes a taken port fail the worker's start.
pub struct Listener {
    listener: TcpListener,
    pub address: SocketAddr,
}

/// Binds `address`; a port of 0 picks a free one (see [`Listener::address`]).
pub async fn bind(address: SocketAddr) -> anyhow::Result<Listener> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("order intake: cannot listen on {address}"))?;
    let address = listener.local_addr()?;
    Ok(Listener { listener, address })
}

/// Serves the intake until `stop` turns true, then finishes the requests it has begun.
///
/// `client` must be the client the workflow worker was built with: the SDK offers the server
/// eager execution only for task queues that a worker of that client polls.
pub async fn serve(
    listener: Listener,
    client: Client,
    task_queue: String,
    dispatch: Dispatch,
    admission: admission::Admission,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let sweep = tokio::spawn(admission.clone().sweep());
    let closing = admission.clone();
    let app = Router::new()
        .route("/orders", post(take_order))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Intake {
            encrypted: crate::encryption::encrypts(&client).await,
            client,
            task_queue,
            admission,
            dispatch,
        });
    let served = axum::serve(listener.listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            closing.close();
        })
        .await
        .context("order intake");
    // It runs forever; nothing is left to sweep once the intake has stopped.
    sweep.abort();
    served
}

/// The answer to an order that was taken.
#[derive(Debug, Serialize)]
struct Taken {
    workflow_id: String,
    run_id: String,
    web_ui: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    already_started: bool,
}

/// The answer to an order that was not.
#[derive(Debug, Serialize)]
struct Refused {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

/// 503 for what posting again can fix (the server away or overloaded), 502 for the rest.
fn status_of(error: &WorkflowStartError) -> StatusCode {
    use tonic::Code;
    match error {
        WorkflowStartError::Rpc(status)
            if matches!(
                status.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
                    | Code::Aborted
            ) =>
        {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_GATEWAY,
    }
}

fn refused(status: StatusCode, error: String, field: Option<String>) -> Response {
    (status, Json(Refused { error, field })).into_response()
}

async fn take_order(State(intake): State<Intake>, body: Bytes) -> Response {
    // The same checks as `saga start` and the workflow: an invalid order never starts a saga.
    let order = match saga_protos::parse_order(&body) {
        Ok(order) => order,
        Err(invalid) => {
            return refused(
                StatusCode::BAD_REQUEST,
                invalid.to_string(),
                Some(invalid.field),
            );
        }
    };
    let workflow_id = launch::workflow_id(&order.order_id);
    let (input, mut options) =
        launch::start_request(intake.encrypted, &intake.task_queue, &workflow_id, &order);
    // One saga per order, even after it closed: posting it again answers with that saga.
    options.id_reuse_policy = WorkflowIdReusePolicy::RejectDuplicate;
    let admitted = intake.admission.admit(&workflow_id).await;
    // Without a place the saga must not land in this worker's memory: the server queues it.
    options.enable_eager_workflow_start = admitted.with_a_place;
    if admitted.with_a_place {
        // Its first workflow task comes back to this worker in the start reply, so the start
        // request can record how that task dispatches the steps: the saga then needs no patch
        // marker for it, nor the visibility write of the upsert the SDK adds to a marker. (A
        // task that runs elsewhere after all follows the memo, or records its own choice.)
        launch::name_dispatch(&mut options, intake.dispatch);
    } else {
        tracing::info!(
            %workflow_id,
            "order intake: no place free in the worker; started through the server's queue"
        );
    }
    let started = intake
        .client
        .start_workflow(OrderSaga::run, input, options)
        .await;
    if started.is_err() {
        intake.admission.not_started(&workflow_id);
    }
    let (status, run_id, already_started) = match started {
        Ok(handle) => (
            StatusCode::ACCEPTED,
            handle.run_id().unwrap_or_default().to_owned(),
            false,
        ),
        // A retried post (the first answer lost on the way) must not start a second saga.
        Err(WorkflowStartError::AlreadyStarted { run_id, .. }) => {
            (StatusCode::OK, run_id.unwrap_or_default(), true)
        }
        Err(e) => {
            tracing::warn!(%workflow_id, "order intake: not started: {e}");
            return refused(status_of(&e), format!("not started: {e}"), None);
        }
    };
    let web_ui = launch::ui_link(&workflow_id, &run_id);
    (
        status,
        Json(Taken {
            workflow_id,
            run_id,
            web_ui,
            already_started,
        }),
    )
        .into_response()
}
