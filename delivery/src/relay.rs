//! The relay: claims due deliveries, POSTs them, records what the receivers answered.
//!
//! One relay runs in each worker process that runs the notifications role. Its loop: claim as
//! many due rows as it has free slots (`SAGA_WEBHOOK_CONCURRENCY`), send each on its own task,
//! and sleep until a slot frees, `Notify` queues a row in this process, or the poll interval
//! passes. An attempt that gets a 2xx is delivered; any other status, a timeout or a connection
//! failure is tried again after the schedule's wait, and the last one makes the delivery dead.
//! Redirects are not followed (a 3xx is a failure naming itself), so a signed body is never sent
//! somewhere nobody configured.
//!
//! On shutdown the relay claims nothing more and waits for its attempts in flight (at most one
//! timeout) so their results are recorded; whatever it cannot record is sent again once its lease
//! expires.

use crate::{
    config::{DeliveryConfig, Subscriber},
    signature::{ATTEMPT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, sign},
};
use anyhow::Context as _;
use saga_activities::{
    db::Db,
    metrics,
    outbox::table::{Claimed, Outbox, now_ms},
};
use std::{sync::Arc, time::Duration};
use tokio::{
    sync::{Notify, watch},
    task::JoinSet,
};
use tracing::Instrument as _;

/// What the relay's attempts share.
struct Shared {
    outbox: Outbox,
    config: DeliveryConfig,
    client: reqwest::Client,
}

/// The relay of one process, not yet running.
pub struct Relay {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
}

/// A running relay.
pub struct RelayHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayHandle {
    /// Claims nothing more, waits for the attempts in flight to be recorded, and returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the webhook relay ended abnormally");
        }
    }
}

impl Relay {
    /// A relay over the notifications database `db`.
    pub fn new(db: impl Into<Db>, config: DeliveryConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("saga-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the webhook HTTP client")?;
        Ok(Self {
            shared: Arc::new(Shared {
                outbox: Outbox::new(db),
                config,
                client,
            }),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Notified by `Notify` when it queued deliveries, so they go out without waiting for the
    /// next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs the relay on its own task until [`RelayHandle::stop`].
    pub fn spawn(self) -> RelayHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        RelayHandle { stop, task }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let config = &self.shared.config;
        let names: Vec<String> = config.subscribers.iter().map(|s| s.name.clone()).collect();
        let lease_ms = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let process = format!("{}-{:08x}", std::process::id(), fastrand::u32(..));
        let mut in_flight: JoinSet<()> = JoinSet::new();
        // Consecutive failures to read the outbox (its database away): back off, log once.
        let mut outbox_failures = 0u32;
        loop {
            while in_flight.try_join_next().is_some() {}
            // Stopped, or the handle is gone (the worker is exiting without a clean stop).
            if *stop.borrow() || stop.has_changed().is_err() {
                break;
            }
            let free = config.concurrency.saturating_sub(in_flight.len());
            let mut full_batch = false;
            if free > 0 {
                let token = format!("{process}/{}", uuid::Uuid::new_v4().simple());
                match self
                    .shared
                    .outbox
                    .claim(&token, &names, now_ms() + lease_ms, free)
                    .await
                {
                    Ok(batch) => {
                        if outbox_failures > 0 {
                            tracing::info!("the webhook outbox answers again");
                        }
                        outbox_failures = 0;
                        full_batch = batch.len() == free;
                        for claimed in batch {
                            in_flight.spawn(attempt(self.shared.clone(), claimed, token.clone()));
                        }
                    }
                    Err(e) => {
                        if outbox_failures == 0 {
                            tracing::warn!(error = %e, "cannot read the webhook outbox; retrying");
                        }
                        outbox_failures += 1;
                    }
                }
            }
            if full_batch {
                // More rows may be due; take them as soon as a slot frees.
                if in_flight.len() >= config.concurrency {
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = in_flight.join_next() => {}
                    }
                }
                continue;
            }
            let idle = if outbox_failures > 0 {
                (config.poll * 2u32.saturating_pow(outbox_failures.min(16)))
                    .min(Duration::from_secs(30))
            } else {
                config.poll
            };
            tokio::select! {
                _ = stop.changed() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(idle) => {}
            }
        }
        if !in_flight.is_empty() {
            tracing::info!(
                in_flight = in_flight.len(),
                "webhook relay stopping: waiting for the attempts in flight"
            );
        }
        let drain = config.timeout + Duration::from_secs(5);
        let drained = tokio::time::timeout(drain, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "webhook attempts still unrecorded at shutdown; they are sent again when their \
                 lease expires"
            );
            in_flight.abort_all();
        }
        tracing::info!("webhook relay stopped");
    }
}

/// One attempt of one delivery, from signing to recording the answer.
async fn attempt(shared: Arc<Shared>, claimed: Claimed, token: String) {
    let span = tracing::info_span!(
        "webhook",
        order_id = %claimed.event.order_id,
        status = %claimed.event.status,
        subscriber = %claimed.subscriber,
        event_id = %claimed.event.event_id,
        attempt = claimed.attempt,
    );
    attempt_in_span(shared, claimed, token)
        .instrument(span)
        .await
}

async fn attempt_in_span(shared: Arc<Shared>, claimed: Claimed, token: String) {
    let config = &shared.config;
    let Some(subscriber) = config.subscriber(&claimed.subscriber) else {
        // Claimed by name from this configuration, so it is there.
        return;
    };
    let started = std::time::Instant::now();
    let answer = send(&shared.client, subscriber, &claimed, config.timeout).await;
    metrics::webhook_attempt(&subscriber.name, started.elapsed());
    let outbox = &shared.outbox;
    let recorded = match &answer {
        Ok(code) => {
            tracing::info!(http_status = code, "webhook delivered");
            metrics::webhook_delivered(&subscriber.name);
            record(|| outbox.delivered(&claimed, &token)).await
        }
        Err(error) if config.schedule.gives_up_after(claimed.attempt) => {
            tracing::warn!(%error, "webhook delivery dead after its last attempt");
            metrics::webhook_dead(&subscriber.name);
            record(|| outbox.failed(&claimed, &token, error, None)).await
        }
        Err(error) => {
            let wait = config.schedule.wait(claimed.attempt);
            tracing::info!(
                %error,
                retry_in = %humantime::format_duration(round(wait)),
                "webhook attempt failed"
            );
            metrics::webhook_retry(&subscriber.name);
            let at = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            record(|| outbox.failed(&claimed, &token, error, Some(at))).await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "the lease ran out during the attempt and another relay took the delivery over; its \
             result stands (the receiver may see this event twice)"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "cannot record the attempt; the delivery is sent again when its lease expires"
        ),
    }
}

/// Retries a result write briefly: losing it means sending the event again after the lease.
async fn record<F, Fut>(write: F) -> sqlx::Result<bool>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<bool>>,
{
    let mut tries = 0;
    loop {
        match write().await {
            Err(e) if tries < 3 => {
                tries += 1;
                tracing::debug!(error = %e, "recording a webhook attempt failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            result => return result,
        }
    }
}

/// POSTs the event; the HTTP status of a 2xx answer, or why the attempt failed.
async fn send(
    client: &reqwest::Client,
    subscriber: &Subscriber,
    claimed: &Claimed,
    timeout: Duration,
) -> Result<u16, String> {
    let body = claimed.event.body();
    let signature = sign(
        subscriber.secret.as_bytes(),
        chrono::Utc::now().timestamp(),
        &body,
    );
    let response = client
        .post(subscriber.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, &claimed.event.event_id)
        .header(ATTEMPT_HEADER, claimed.attempt.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => return Err(describe(&e, timeout)),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    let mut error = format!("HTTP {status}");
    if status.is_redirection() {
        error.push_str(" (redirects are not followed: configure the final URL)");
    }
    // The start of the answer usually says why; a slow body is not waited for past the timeout.
    if let Ok(Ok(text)) = tokio::time::timeout(timeout, response.text()).await {
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            let cut: String = text.chars().take(200).collect();
            error.push_str(": ");
            error.push_str(&cut);
        }
    }
    Err(error)
}

/// "timed out after 10s", "connection failed: Connection refused (os error 111)", …
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("timed out after {}", humantime::format_duration(timeout));
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    if error.is_connect() {
        format!("connection failed: {innermost}")
    } else {
        format!("request failed: {innermost}")
    }
}

/// A wait rounded to the millisecond, for logs.
fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
