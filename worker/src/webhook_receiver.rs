//! `saga webhook-receiver`: a webhook endpoint for trying delivery out and for reading what
//! arrives.
//!
//! | request | answer | printed |
//! |---|---|---|
//! | signed with the secret, signed within the tolerance, a saga event | `200` | `✓` order, status, event id, attempt, summary or error (`again` for an event id seen before) |
//! | signature missing, wrong (another secret, an altered body) or too old | `401` | `✗` and why |
//! | not a saga event (genuinely signed, but not the event JSON) | `400` | `✗` and why |
//!
//! The secret comes from `SAGA_WEBHOOK_SECRET` only (never the command line, where `ps` shows
//! it). It listens on loopback unless `--bind` says otherwise. `--json` prints one JSON object
//! per request instead, for scripts and tests.

use anyhow::Context as _;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::any,
};
use saga_delivery::{
    Event,
    config::{SECRET_ENV, Secret},
    signature::{self, ATTEMPT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, VerifyError},
};
use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

/// `saga webhook-receiver`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Address to listen on (loopback by default; 0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Oldest signature accepted, in seconds: an older one is refused as a possible replay.
    #[arg(long, default_value_t = signature::DEFAULT_TOLERANCE.as_secs())]
    pub tolerance: u64,
    /// Print one JSON object per request instead of a readable line.
    #[arg(long)]
    pub json: bool,
}

struct Receiver {
    secret: Secret,
    tolerance: Duration,
    json: bool,
    /// Event ids answered 200 so far: a repeat is shown as such (and answered 200 again).
    seen: Mutex<HashSet<String>>,
}

/// Listens until SIGINT or SIGTERM.
pub async fn run(args: &ReceiverArgs) -> anyhow::Result<()> {
    let secret = std::env::var(SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .with_context(|| {
            format!("set {SECRET_ENV} to the secret the worker signs deliveries with")
        })?;
    let address = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let receiver = Arc::new(Receiver {
        secret,
        tolerance: Duration::from_secs(args.tolerance),
        json: args.json,
        seen: Mutex::default(),
    });
    let app = Router::new().fallback(any(receive)).with_state(receiver);
    eprintln!(
        "webhook receiver listening on http://{}/ (verifying with {SECRET_ENV}); Ctrl-C stops it",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await
        .context("serving webhooks")?;
    Ok(())
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let event_id = header(EVENT_ID_HEADER).unwrap_or("-").to_owned();
    let attempt = header(ATTEMPT_HEADER).unwrap_or("-").to_owned();
    let now = chrono::Utc::now().timestamp();
    let verified = signature::verify(
        receiver.secret.as_bytes(),
        header(SIGNATURE_HEADER),
        &body,
        now,
        receiver.tolerance,
    );
    if let Err(e) = verified {
        let status = match e {
            VerifyError::Malformed(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        receiver.rejected(status, &event_id, &attempt, &e.to_string());
        return (status, "signature rejected\n");
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => {
            let why = format!("the body is not a saga event: {e}");
            receiver.rejected(StatusCode::BAD_REQUEST, &event_id, &attempt, &why);
            return (StatusCode::BAD_REQUEST, "not a saga event\n");
        }
    };
    let repeat = !receiver
        .seen
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(event.event_id.clone());
    receiver.accepted(&event, &attempt, repeat);
    (StatusCode::OK, "ok\n")
}

impl Receiver {
    fn accepted(&self, event: &Event, attempt: &str, repeat: bool) {
        if self.json {
            let line = serde_json::json!({
                "verified": true,
                "duplicate": repeat,
                "attempt": attempt.parse::<u32>().ok(),
                "event": event,
            });
            println!("{line}");
            return;
        }
        let detail = match (&event.error, &event.order) {
            (Some(error), _) => format!("error: {error}"),
            (None, Some(order)) => format!(
                "customer {}, {} item{}, total {:.2}, order {}",
                order.customer_id,
                order.items.len(),
                if order.items.len() == 1 { "" } else { "s" },
                order.total,
                order.order_status.as_deref().unwrap_or("-")
            ),
            (None, None) => String::new(),
        };
        println!(
            "{} ✓ {}order {} {:<7} event {} attempt {}  {detail}",
            clock(),
            if repeat { "(again) " } else { "" },
            event.order_id,
            event.status,
            event.event_id,
            attempt
        );
    }

    fn rejected(&self, status: StatusCode, event_id: &str, attempt: &str, why: &str) {
        if self.json {
            let line = serde_json::json!({
                "verified": false,
                "answer": status.as_u16(),
                "event_id": event_id,
                "attempt": attempt.parse::<u32>().ok(),
                "error": why,
            });
            println!("{line}");
            return;
        }
        println!(
            "{} ✗ rejected ({}) event {event_id} attempt {attempt}: {why}",
            clock(),
            status.as_u16()
        );
    }
}

fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
