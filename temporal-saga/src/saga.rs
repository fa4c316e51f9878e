//! The saga itself: its steps, how they run forward, and how they are undone.

use crate::{
    cancellation,
    context::SagaContext,
    error::{CompensationFailure, SagaError, StepFailure},
    failure::BusinessError,
    options::SagaOptions,
    patience::{Limits, past_deadline},
    rounds::{call, call_until_done},
    status::Phase,
};
use std::marker::PhantomData;
use temporalio_common::{
    ActivityDefinition, data_converters::TemporalDeserializable,
    search_attributes::SearchAttributeKey,
};

/// One step of a saga: an activity that takes the saga's value and returns it, and the
/// activity that undoes it.
///
/// The compensation is registered before the step runs: a step that fails may have committed
/// before it failed, so its own compensation runs first, then those of the earlier steps. A step
/// known never to commit when it fails opts out with [`Step::uncommitted_on_failure`].
pub struct Step<T> {
    activity: String,
    compensation: Option<String>,
    compensate_on_failure: bool,
    value: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Step<T> {
    fn clone(&self) -> Self {
        Self {
            activity: self.activity.clone(),
            compensation: self.compensation.clone(),
            compensate_on_failure: self.compensate_on_failure,
            value: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("activity", &self.activity)
            .field("compensation", &self.compensation)
            .field("compensate_on_failure", &self.compensate_on_failure)
            .finish()
    }
}

impl<T> Step<T> {
    /// A step that runs `activity`, with nothing to undo.
    pub fn new<A>(activity: A) -> Self
    where
        A: ActivityDefinition<Input = T, Output = T>,
    {
        Self {
            activity: activity.name().to_owned(),
            compensation: None,
            compensate_on_failure: true,
            value: PhantomData,
        }
    }

    /// Undoes the step with `compensation`, which also takes the saga's value and returns it.
    pub fn compensate_with<C>(mut self, compensation: C) -> Self
    where
        C: ActivityDefinition<Input = T, Output = T>,
    {
        self.compensation = Some(compensation.name().to_owned());
        self
    }

    /// The step's activity never commits when it fails, so a failure of this step is not
    /// compensated (the earlier steps' still are).
    pub fn uncommitted_on_failure(mut self) -> Self {
        self.compensate_on_failure = false;
        self
    }

    /// The step's activity type.
    pub fn activity(&self) -> &str {
        &self.activity
    }

    /// Its compensation's activity type.
    pub fn compensation(&self) -> Option<&str> {
        self.compensation.as_deref()
    }
}

/// A saga: steps run in order, each passing the value on, and undone when one fails.
///
/// Build it once (e.g. in the workflow's factory) and run it from the workflow with
/// [`Saga::run`] or [`Saga::run_and_notify`]. See the crate docs for an example.
pub struct Saga<T> {
    steps: Vec<Step<T>>,
    options: SagaOptions,
    summary: Option<fn(&T) -> String>,
}

impl<T> std::fmt::Debug for Saga<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saga")
            .field("steps", &self.steps)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<T> Default for Saga<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Saga<T> {
    /// A saga with no steps and the default options.
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            options: SagaOptions::default(),
            summary: None,
        }
    }

    /// Adds a step after the others.
    pub fn step(mut self, step: Step<T>) -> Self {
        self.steps.push(step);
        self
    }

    /// Sets the options.
    pub fn options(mut self, options: SagaOptions) -> Self {
        self.options = options;
        self
    }

    /// What the Web UI shows for each activity, from the value it is given (e.g.
    /// "order 42 (2 items, 39.98)").
    pub fn summary(mut self, summary: fn(&T) -> String) -> Self {
        self.summary = Some(summary);
        self
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step<T>] {
        &self.steps
    }

    /// The options.
    pub fn saga_options(&self) -> &SagaOptions {
        &self.options
    }
}

impl<T: Clone + 'static> Saga<T>
where
    T: temporalio_common::data_converters::TemporalSerializable + TemporalDeserializable,
{
    /// Runs the steps in order; when one fails, runs the compensations. On success the saga's
    /// phase is [`Phase::Completed`].
    pub async fn run<C: SagaContext<Value = T>>(
        &self,
        ctx: &C,
        value: T,
    ) -> Result<T, SagaError<T>> {
        let result = self.forward(ctx, value).await;
        if result.is_ok() {
            ctx.with_saga(|s| s.status.phase = Phase::Completed);
        }
        result
    }

    /// Runs the steps like [`Saga::run`], then publishes the outcome with `notify`: after the
    /// last step, and after a compensation that failed (someone must look). `notice` builds the
    /// notification's input and its summary from the value and, after a failed compensation,
    /// that compensation's error. The notification is retried until it gets through; the saga
    /// is [`Phase::Completed`] only once it has.
    pub async fn run_and_notify<C, A>(
        &self,
        ctx: &C,
        value: T,
        notify: A,
        notice: impl Fn(&T, Option<String>) -> (A::Input, String),
    ) -> Result<T, SagaError<T>>
    where
        C: SagaContext<Value = T>,
        A: ActivityDefinition,
    {
        match self.forward(ctx, value).await {
            Ok(value) => {
                let (input, summary) = notice(&value, None);
                self.notify(ctx, &notify, input, summary).await?;
                ctx.with_saga(|s| s.status.phase = Phase::Completed);
                Ok(value)
            }
            Err(SagaError::CompensationFailed {
                value,
                failure,
                failed,
            }) => {
                let (input, summary) = notice(&value, Some(failed[0].error.to_string()));
                self.notify(ctx, &notify, input, summary).await?;
                Err(SagaError::CompensationFailed {
                    value,
                    failure,
                    failed,
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Runs any other activity the way the saga runs a compensation: in rounds, through
    /// infrastructure errors, until it succeeds or fails with its business error.
    pub async fn execute<C, A>(
        &self,
        ctx: &C,
        activity: &A,
        input: A::Input,
        summary: Option<String>,
    ) -> Result<A::Output, BusinessError>
    where
        C: SagaContext<Value = T>,
        A: ActivityDefinition,
    {
        call_until_done(ctx, &self.options, activity.name(), &input, summary).await
    }

    /// Refuses the saga's input before any step runs: its phase becomes [`Phase::Invalid`],
    /// with `reason` as its last error.
    pub fn reject<C: SagaContext<Value = T>>(&self, ctx: &C, reason: &str) {
        ctx.with_saga(|s| {
            s.status.last_error = Some(reason.to_owned());
            s.status.phase = Phase::Invalid;
        });
    }

    /// Closes the saga: its phase becomes its outcome ([`Phase::at_close`]), which the outcome
    /// search attribute and the Web UI's current details show. Call it last, in the workflow
    /// task that ends the workflow, so that a list query by outcome never sees a closed saga
    /// still running.
    pub fn close<C: SagaContext<Value = T>>(&self, ctx: &C) -> Phase {
        let outcome = ctx.read_saga(|s| s.status.phase.at_close());
        ctx.with_saga(|s| s.status.phase = outcome);
        if let Some(name) = self.options.search_attributes.outcome {
            ctx.upsert_search_attributes(vec![
                SearchAttributeKey::<String>::keyword(name).value_set(outcome.as_str().to_owned()),
            ]);
        }
        ctx.set_current_details(format!("ended: {outcome}"));
        outcome
    }

    async fn notify<C, A>(
        &self,
        ctx: &C,
        notify: &A,
        input: A::Input,
        summary: String,
    ) -> Result<(), SagaError<T>>
    where
        C: SagaContext<Value = T>,
        A: ActivityDefinition,
    {
        self.execute(ctx, notify, input, Some(summary))
            .await
            .map(drop)
            .map_err(|error| SagaError::NotificationFailed {
                activity: notify.name().to_owned(),
                error,
            })
    }

    fn summary_of(&self, value: &T) -> Option<String> {
        self.summary.map(|summary| summary(value))
    }

    async fn forward<C: SagaContext<Value = T>>(
        &self,
        ctx: &C,
        value: T,
    ) -> Result<T, SagaError<T>> {
        ctx.with_saga(|s| {
            s.value = Some(value.clone());
            s.status.phase = Phase::Running;
        });
        let patience = self.options.patience;
        let started = ctx.start_time();
        let mut value = value;
        let mut done: Vec<&Step<T>> = Vec::new();
        for (index, step) in self.steps.iter().enumerate() {
            let mut cancelled = false;
            let failure = if past_deadline(ctx, started, patience, index) {
                StepFailure::DeadlinePassed {
                    before: step.activity.clone(),
                    deadline: patience.deadline,
                }
            } else {
                let limits = Some(Limits::for_step(ctx, started, patience));
                let summary = self.summary_of(&value);
                match call(ctx, &self.options, &step.activity, &value, summary, limits).await {
                    Ok(next) => {
                        value = next;
                        done.push(step);
                        ctx.with_saga(|s| s.value = Some(value.clone()));
                        if !cancellation::settled(ctx) {
                            continue;
                        }
                        cancelled = true;
                        StepFailure::Cancelled
                    }
                    Err(stop) => {
                        // The failed step may have committed before it failed: undo it first.
                        if step.compensate_on_failure {
                            done.push(step);
                        }
                        cancelled = cancellation::settled(ctx);
                        StepFailure::of_step(&step.activity, stop)
                    }
                }
            };
            // See `cancellation` for where a cancel request can land and why each ends so.
            return Err(self.compensate(ctx, value, &done, failure, cancelled).await);
        }
        Ok(value)
    }

    /// Runs the compensations of `done` as the options say and returns how the saga ended.
    async fn compensate<C: SagaContext<Value = T>>(
        &self,
        ctx: &C,
        mut value: T,
        done: &[&Step<T>],
        failure: StepFailure,
        cancelled: bool,
    ) -> SagaError<T> {
        ctx.with_saga(|s| {
            s.status.last_error = Some(failure.to_string());
            s.status.phase = Phase::Compensating;
        });
        // Newest first; in parallel, the same order is the order they are scheduled in.
        let undo: Vec<(&str, &str)> = done
            .iter()
            .rev()
            .filter_map(|step| Some((step.activity.as_str(), step.compensation.as_deref()?)))
            .collect();
        let mut failed = Vec::new();
        if self.options.compensation.parallel {
            let runs = undo.iter().map(|&(step, compensation)| {
                let value = &value;
                async move {
                    let result = self.undo(ctx, compensation, value).await;
                    (step, compensation, result)
                }
            });
            for (step, compensation, result) in futures_util::future::join_all(runs).await {
                if let Err(error) = result {
                    failed.push(failure_of(step, compensation, error));
                }
            }
        } else {
            for &(step, compensation) in &undo {
                match self.undo(ctx, compensation, &value).await {
                    Ok(next) => {
                        value = next;
                        ctx.with_saga(|s| s.value = Some(value.clone()));
                    }
                    Err(error) => {
                        failed.push(failure_of(step, compensation, error));
                        if !self.options.compensation.continue_after_failure {
                            break;
                        }
                    }
                }
            }
        }
        if let Some(first) = failed.first() {
            let error = first.error.to_string();
            ctx.with_saga(|s| {
                s.status.last_error = Some(error);
                s.status.phase = Phase::CompensationFailed;
            });
            return SagaError::CompensationFailed {
                value,
                failure,
                failed,
            };
        }
        let phase = if cancelled {
            Phase::Cancelled
        } else {
            Phase::Compensated
        };
        ctx.with_saga(|s| s.status.phase = phase);
        SagaError::Compensated {
            value,
            failure,
            cancelled,
        }
    }

    /// One compensation, retried through infrastructure errors until it succeeds; recorded in
    /// the status when it does.
    async fn undo<C: SagaContext<Value = T>>(
        &self,
        ctx: &C,
        compensation: &str,
        value: &T,
    ) -> Result<T, BusinessError> {
        let summary = self.summary_of(value);
        let next: T = call_until_done(ctx, &self.options, compensation, value, summary).await?;
        ctx.with_saga(|s| s.status.compensations.push(compensation.to_owned()));
        Ok(next)
    }
}

fn failure_of(step: &str, compensation: &str, error: BusinessError) -> CompensationFailure {
    CompensationFailure {
        compensation: compensation.to_owned(),
        step: step.to_owned(),
        error,
    }
}
