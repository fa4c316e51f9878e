//! Reading a saga's outcome from the server's own history: the activity types in the order they
//! were scheduled, and how the workflow closed.

use temporalio_common::protos::temporal::api::{
    enums::v1::EventType,
    failure::v1::{Failure, failure::FailureInfo},
    history::v1::{HistoryEvent, history_event::Attributes},
};

/// How a workflow execution ended, as its close event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    Completed,
    /// Failed, with the application failure type (`SagaFailed`, `InvalidOrder`) and message.
    Failed {
        failure_type: String,
        message: String,
    },
    Cancelled,
    Terminated,
    TimedOut,
    /// Still running (no close event yet).
    Running,
}

impl Closed {
    /// One word for tables: `Completed`, `Failed (SagaFailed)`, …
    pub fn label(&self) -> String {
        match self {
            Closed::Completed => "Completed".into(),
            Closed::Failed { failure_type, .. } => format!("Failed ({failure_type})"),
            Closed::Cancelled => "Cancelled".into(),
            Closed::Terminated => "Terminated".into(),
            Closed::TimedOut => "TimedOut".into(),
            Closed::Running => "Running".into(),
        }
    }
}

/// What a history says about a saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaHistory {
    /// Activity types in the order they were scheduled, each step once: the server's retries
    /// are not rescheduled, and the further rounds of a step that waited on its infrastructure
    /// (the same activity scheduled again at once) count as that one step.
    pub path: Vec<String>,
    pub closed: Closed,
}

impl SagaHistory {
    pub fn from_events(events: &[HistoryEvent]) -> Self {
        let mut path: Vec<String> = Vec::new();
        let mut closed = Closed::Running;
        // No step of the design follows itself, so a repeat is another round of the same step.
        let mut step = |name: String| {
            if path.last() != Some(&name) {
                path.push(name);
            }
        };
        for event in events {
            match &event.attributes {
                Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                    step(
                        a.activity_type
                            .as_ref()
                            .map(|t| t.name.clone())
                            .unwrap_or_default(),
                    );
                }
                Some(Attributes::MarkerRecordedEventAttributes(m))
                    if m.marker_name == "core_local_activity" =>
                {
                    // Local activities record a marker instead of scheduled/started/completed.
                    if let Some(name) = local_activity_type(m) {
                        step(name);
                    }
                }
                Some(Attributes::WorkflowExecutionCompletedEventAttributes(_)) => {
                    closed = Closed::Completed
                }
                Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                    closed = failed(a.failure.as_ref())
                }
                Some(Attributes::WorkflowExecutionCanceledEventAttributes(_)) => {
                    closed = Closed::Cancelled
                }
                Some(Attributes::WorkflowExecutionTerminatedEventAttributes(_)) => {
                    closed = Closed::Terminated
                }
                Some(Attributes::WorkflowExecutionTimedOutEventAttributes(_)) => {
                    closed = Closed::TimedOut
                }
                _ => {}
            }
            if event.event_type() == EventType::WorkflowExecutionContinuedAsNew {
                closed = Closed::Terminated;
            }
        }
        Self { path, closed }
    }
}

fn failed(failure: Option<&Failure>) -> Closed {
    let failure_type = match failure.and_then(|f| f.failure_info.as_ref()) {
        Some(FailureInfo::ApplicationFailureInfo(info)) => info.r#type.clone(),
        _ => String::new(),
    };
    Closed::Failed {
        failure_type,
        message: failure.map(|f| f.message.clone()).unwrap_or_default(),
    }
}

fn local_activity_type(
    marker: &temporalio_common::protos::temporal::api::history::v1::MarkerRecordedEventAttributes,
) -> Option<String> {
    let data = marker.details.get("data")?.payloads.first()?;
    let value: serde_json::Value = serde_json::from_slice(&data.data).ok()?;
    value
        .get("activity_type")
        .or_else(|| value.get("activityType"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
