//! Webhook delivery in the `saga` binary: the relay beside a worker's notifications service, and
//! `saga webhooks list|resend` for the people who look after it.
//!
//! | piece | what it does |
//! |---|---|
//! | [`attach_relay`] | with delivery configured and the notifications role in this process, makes `Notify` queue deliveries and starts the relay (stopped with the worker) |
//! | `saga webhooks list` | deliveries by state, newest first, with attempts and last error |
//! | `saga webhooks resend` | makes dead deliveries pending again, due at once, with a fresh schedule |
//!
//! The delivery itself lives in [`saga_delivery`], the outbox in [`saga_activities::outbox`].

use crate::config;
use saga_activities::{
    Service, Stores,
    outbox::table::{self as outbox, Delivery, Selector},
};
use saga_delivery::{DeliveryConfig, Relay, RelayHandle};

/// Starts the relay when `delivery` is configured and `stores` include the notifications
/// service, and makes that service's `Notify` queue a delivery per subscriber.
pub fn attach_relay(
    mut stores: Stores,
    delivery: Option<DeliveryConfig>,
) -> anyhow::Result<(Stores, Option<RelayHandle>)> {
    let Some(delivery) = delivery else {
        return Ok((stores, None));
    };
    let Some(notifications) = stores.notifications.take() else {
        tracing::info!(
            "webhook delivery is configured, but it runs with the notifications role, which this \
             process does not run"
        );
        return Ok((stores, None));
    };
    tracing::info!(
        subscribers = ?delivery.subscribers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        timeout = %humantime::format_duration(delivery.timeout),
        retry_initial = %humantime::format_duration(delivery.schedule.initial),
        retry_max = %humantime::format_duration(delivery.schedule.max),
        max_attempts = delivery.schedule.max_attempts,
        retried_for = %humantime::format_duration(delivery.schedule.span()),
        lease = %humantime::format_duration(delivery.lease),
        concurrency = delivery.concurrency,
        "webhook delivery on"
    );
    let subscriptions = delivery.subscriptions();
    let relay = Relay::new(notifications.db().clone(), delivery)?;
    stores.notifications = Some(notifications.with_deliveries(subscriptions, relay.waker()));
    Ok((stores, Some(relay.spawn())))
}

/// `saga webhooks …`.
#[derive(Debug, clap::Subcommand)]
pub enum WebhooksCommand {
    /// List webhook deliveries, newest first: subscriber, state, attempts, last error.
    List {
        /// Only deliveries in this state.
        #[arg(long, value_parser = [outbox::PENDING, outbox::DELIVERED, outbox::DEAD])]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send dead deliveries again: they become pending, due now, with a fresh retry schedule.
    /// A running worker with the notifications role sends them within a second.
    #[command(after_help = "Examples:
  saga webhooks resend 11328abd-368d-43fd-bd4f-db15b5b63951
  saga webhooks resend --all --subscriber ops")]
    Resend {
        /// The order whose dead deliveries to send again.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        order_id: Option<String>,
        /// Every dead delivery (narrowed by --status and --subscriber).
        #[arg(long)]
        all: bool,
        /// Only the notification with this status.
        #[arg(long, value_parser = ["success", "failed"])]
        status: Option<String>,
        /// Only deliveries to this subscriber (its name, or its URL).
        #[arg(long)]
        subscriber: Option<String>,
    },
}

/// Runs `saga webhooks …` on the notifications database (`NOTIFICATIONS_DATABASE_URL`, or under
/// `SAGA_DATA_DIR`).
pub async fn run(command: &WebhooksCommand) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let stores = Stores::open(&config::stores_config()?, &[Service::Notifications]).await?;
    let outbox = stores
        .notifications
        .as_ref()
        .expect("opened above")
        .outbox();
    match command {
        WebhooksCommand::List { state, limit, json } => {
            let deliveries = outbox.list(state.as_deref(), *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&deliveries)?);
            } else {
                let counts = outbox.counts().await?;
                print!("{}", render_list(&deliveries, &counts));
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhooksCommand::Resend {
            order_id,
            all: _,
            status,
            subscriber,
        } => {
            let resent = outbox
                .resend(&Selector {
                    order_id: order_id.clone(),
                    status: status.clone(),
                    subscriber: subscriber.clone(),
                })
                .await?;
            if resent.is_empty() {
                eprintln!("no dead delivery matches; nothing to send again");
                return Ok(ExitCode::FAILURE);
            }
            for d in &resent {
                println!(
                    "queued again: order {} {} → {} (was dead after {} attempts: {})",
                    d.order_id,
                    d.status,
                    d.subscriber,
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("-")
                );
            }
            let (noun, verb, them) = if resent.len() == 1 {
                ("delivery", "is", "it")
            } else {
                ("deliveries", "are", "them")
            };
            println!(
                "{} {noun} {verb} pending again; a worker running the notifications role sends {them}",
                resent.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One delivery in a line: state, when, attempts, last error.
pub fn describe(d: &Delivery) -> String {
    let attempts = format!(
        "{} attempt{}",
        d.attempts,
        if d.attempts == 1 { "" } else { "s" }
    );
    let last_error = d
        .last_error
        .as_deref()
        .map(|e| format!(", last error: {e}"))
        .unwrap_or_default();
    match d.state.as_str() {
        outbox::DELIVERED => format!(
            "delivered {} after {attempts}{last_error}",
            d.delivered_at.as_deref().unwrap_or("-")
        ),
        outbox::DEAD => format!(
            "DEAD since {} after {attempts}{last_error} (saga webhooks resend {})",
            d.dead_at.as_deref().unwrap_or("-"),
            d.order_id
        ),
        _ => format!(
            "pending, {attempts}, next {}{last_error}",
            d.next_attempt_at.as_deref().unwrap_or("now")
        ),
    }
}

fn render_list(deliveries: &[Delivery], counts: &[(String, i64)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let _ = writeln!(
        out,
        "webhook deliveries: {}",
        if summary.is_empty() {
            "none".to_owned()
        } else {
            summary.join(", ")
        }
    );
    for d in deliveries {
        let _ = writeln!(
            out,
            "  {} {:<7} → {}  {}",
            d.order_id,
            d.status,
            d.subscriber,
            describe(d)
        );
    }
    out
}
