//! The webhook relay against a real local HTTP receiver and real databases (SQLite files and, when
//! it is reachable, PostgreSQL): exclusive claims with two relays on one database, a crashed
//! relay's lease, retries to dead, and resending. The saga end to end is in
//! `worker/tests/alone/webhooks.rs`.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::any,
};
use saga_activities::{
    DbConfig, Service,
    db::{Db, open, open_pool},
    notifications::NotificationsStore,
    outbox::{
        event_id,
        table::{DEAD, DELIVERED, Outbox, PENDING, Selector, now_ms},
    },
    testing::ScratchDatabases,
};
use saga_delivery::{
    DeliveryConfig, Relay, Schedule, Subscriber,
    config::Secret,
    signature::{ATTEMPT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, verify},
};
use saga_protos::Notification;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const SECRET: &str = "whsec_relay_test";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Hit {
    event_id: String,
    attempt: u32,
    answer: u16,
}

type Policy = Arc<dyn Fn(&str, u32) -> u16 + Send + Sync>;

/// A real HTTP server on a free local port that verifies every signature and answers by `policy`.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    policy: Policy,
}

async fn handle(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono_now();
    let verified = verify(
        SECRET.as_bytes(),
        header(SIGNATURE_HEADER),
        &body,
        now,
        Duration::from_secs(300),
    );
    let event_id = header(EVENT_ID_HEADER).unwrap_or_default().to_owned();
    let attempt = header(ATTEMPT_HEADER)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let answer = if verified.is_ok() {
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["event_id"], event_id.as_str(), "header and body agree");
        (state.policy)(&event_id, attempt)
    } else {
        401
    };
    state.hits.lock().unwrap().push(Hit {
        event_id,
        attempt,
        answer,
    });
    StatusCode::from_u16(answer).unwrap()
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Receiver {
    async fn start(policy: Policy) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(any(handle))
            .with_state(ReceiverState {
                hits: hits.clone(),
                policy,
            });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, hits, task }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(url: &str, schedule: Schedule, lease: Duration) -> DeliveryConfig {
    DeliveryConfig {
        subscribers: vec![Subscriber {
            name: "test".into(),
            url: url.parse().unwrap(),
            secret: Secret::new(SECRET),
            statuses: vec![],
        }],
        schedule,
        timeout: Duration::from_secs(2),
        lease,
        poll: Duration::from_millis(50),
        concurrency: 8,
    }
}

fn quick_schedule(max_attempts: u32) -> Schedule {
    Schedule {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        max_attempts,
    }
}

/// A notifications store on `db` that queues deliveries for `config`'s subscribers.
fn store(db: &Db, config: &DeliveryConfig) -> NotificationsStore {
    NotificationsStore::new(db.clone())
        .with_deliveries(config.subscriptions(), Arc::new(tokio::sync::Notify::new()))
}

fn notification(i: usize) -> Notification {
    let failed = i.is_multiple_of(3);
    Notification {
        order_id: format!("47relay-{i:04}"),
        status: if failed { "failed" } else { "success" }.into(),
        error: failed.then(|| "ErrReleaseInventory: test".into()),
        order: None,
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within {timeout:?}");
}

async fn states(outbox: &Outbox) -> BTreeMap<String, i64> {
    outbox.counts().await.unwrap().into_iter().collect()
}

/// Two relays, each with its own connections (as two worker processes have), share one database:
/// with a receiver that always answers 200, every event arrives exactly once, on its first
/// attempt.
async fn two_relays_deliver_each_event_once(dbs: [Db; 2]) {
    const N: usize = 150;
    let receiver = Receiver::start(Arc::new(|_, _| 200)).await;
    let config = config(&receiver.url, quick_schedule(5), Duration::from_secs(10));
    let store = store(&dbs[0], &config);
    for i in 0..N {
        store.notify(&notification(i)).await.unwrap();
    }
    let relays = [
        Relay::new(dbs[0].clone(), config.clone()).unwrap().spawn(),
        Relay::new(dbs[1].clone(), config.clone()).unwrap().spawn(),
    ];
    let outbox = store.outbox();
    wait_for("every delivery", Duration::from_secs(60), async || {
        states(&outbox).await.get(DELIVERED) == Some(&(N as i64))
    })
    .await;
    for relay in relays {
        relay.stop().await;
    }
    let hits = receiver.hits();
    let mut per_event: BTreeMap<&str, usize> = BTreeMap::new();
    for hit in &hits {
        assert_eq!((hit.attempt, hit.answer), (1, 200), "{hit:?}");
        *per_event.entry(&hit.event_id).or_default() += 1;
    }
    assert_eq!(per_event.len(), N, "every event arrived");
    assert!(
        per_event.values().all(|&n| n == 1),
        "no event was sent twice: {:?}",
        per_event
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
    for i in 0..N {
        let n = notification(i);
        assert!(per_event.contains_key(event_id(&n.order_id, &n.status).as_str()));
        let record = &store.for_order(&n.order_id).await.unwrap()[0];
        assert_eq!(record.deliveries.len(), 1);
        let d = &record.deliveries[0];
        assert_eq!((d.state.as_str(), d.attempts), (DELIVERED, 1), "{d:?}");
        assert!(d.delivered_at.is_some() && d.last_error.is_none(), "{d:?}");
    }
}

async fn sqlite_db(dir: &std::path::Path) -> Db {
    open(
        Service::Notifications,
        &DbConfig::new(Service::Notifications.default_url(dir)),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_relays_on_one_sqlite_file_never_send_a_row_twice() {
    let dir = tempfile::tempdir().unwrap();
    let dbs = [sqlite_db(dir.path()).await, sqlite_db(dir.path()).await];
    two_relays_deliver_each_event_once(dbs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_relays_on_one_postgres_database_never_send_a_row_twice() {
    let Some(db) = ScratchDatabases::create("relay", &["notifications"]).await else {
        return;
    };
    let url = db.url("notifications").to_owned();
    let pool = || async {
        open_pool(
            Service::Notifications,
            &DbConfig {
                url: url.clone(),
                max_connections: 4,
            },
        )
        .await
        .unwrap()
    };
    let pools = [pool().await, pool().await];
    two_relays_deliver_each_event_once(pools.clone().map(Db::from)).await;
    for pool in pools {
        pool.close().await;
    }
    db.drop_now().await;
}

/// A relay that claimed rows and died never records them; another relay sends them once the
/// lease has run out, and not before.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_relays_lease_expires_and_its_rows_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path()).await;
    let receiver = Receiver::start(Arc::new(|_, _| 200)).await;
    let config = config(&receiver.url, quick_schedule(5), Duration::from_secs(10));
    let store = store(&db, &config);
    for i in 0..5 {
        store.notify(&notification(i)).await.unwrap();
    }
    let outbox = store.outbox();
    let lease = Duration::from_millis(1500);
    let claimed_at = Instant::now();
    let claimed = outbox
        .claim("crashed-relay", &["test".into()], now_ms() + 1500, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    assert!(claimed.iter().all(|c| c.attempt == 1));
    // A second claim finds nothing: the rows are leased.
    assert!(
        outbox
            .claim("other", &["test".into()], now_ms() + 1500, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let relay = Relay::new(db.clone(), config).unwrap().spawn();
    tokio::time::sleep(lease / 2).await;
    assert!(
        receiver.hits().is_empty() || claimed_at.elapsed() >= lease,
        "sent while the lease was held"
    );
    wait_for(
        "the leased rows' delivery",
        Duration::from_secs(20),
        async || states(&outbox).await.get(DELIVERED) == Some(&5),
    )
    .await;
    relay.stop().await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 5, "{hits:?}");
    // The crashed relay's attempt counts: the receiver may have seen it.
    assert!(hits.iter().all(|h| h.attempt == 2), "{hits:?}");
    // Its late result cannot overwrite the new owner's.
    assert!(
        !outbox
            .delivered(&claimed[0], "crashed-relay")
            .await
            .unwrap()
    );
}

/// A receiver that keeps failing: the same event id on every attempt, waits that grow, dead after
/// the last attempt with its error; `resend` sends it again with a fresh schedule.
#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_then_dead_then_resent() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path()).await;
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let policy_healthy = healthy.clone();
    let receiver = Receiver::start(Arc::new(move |_, _| {
        if policy_healthy.load(std::sync::atomic::Ordering::SeqCst) {
            204
        } else {
            503
        }
    }))
    .await;
    let config = config(&receiver.url, quick_schedule(3), Duration::from_secs(10));
    let store = store(&db, &config);
    let n = notification(0);
    store.notify(&n).await.unwrap();
    // A repeat of Notify queues nothing more.
    store.notify(&n).await.unwrap();
    let outbox = store.outbox();
    let relay = Relay::new(db.clone(), config.clone()).unwrap().spawn();
    wait_for("the dead letter", Duration::from_secs(20), async || {
        states(&outbox).await.get(DEAD) == Some(&1)
    })
    .await;
    let hits = receiver.hits();
    let id = event_id(&n.order_id, &n.status);
    assert_eq!(
        hits.iter()
            .map(|h| (h.event_id.as_str(), h.attempt, h.answer))
            .collect::<Vec<_>>(),
        [
            (id.as_str(), 1, 503),
            (id.as_str(), 2, 503),
            (id.as_str(), 3, 503)
        ]
    );
    let d = &store.for_order(&n.order_id).await.unwrap()[0].deliveries[0];
    assert_eq!((d.state.as_str(), d.attempts), (DEAD, 3));
    assert!(
        d.last_error.as_deref().unwrap().starts_with("HTTP 503"),
        "{d:?}"
    );
    assert!(d.dead_at.is_some() && d.next_attempt_at.is_none());

    // Nothing else is dead; a selector that matches nothing resends nothing.
    let none = outbox
        .resend(&Selector {
            status: Some("success".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let resent = outbox
        .resend(&Selector {
            order_id: Some(n.order_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resent.len(), 1);
    wait_for("the resent delivery", Duration::from_secs(20), async || {
        states(&outbox).await.get(DELIVERED) == Some(&1)
    })
    .await;
    relay.stop().await;
    let d = &store.for_order(&n.order_id).await.unwrap()[0].deliveries[0];
    assert_eq!((d.state.as_str(), d.attempts), (DELIVERED, 1), "{d:?}");
    // The error that made it dead stays visible.
    assert!(d.last_error.as_deref().unwrap().starts_with("HTTP 503"));
    let last = receiver.hits().last().cloned().unwrap();
    assert_eq!(
        (last.event_id.as_str(), last.attempt, last.answer),
        (id.as_str(), 1, 204)
    );
    assert_eq!(states(&outbox).await.get(PENDING), None);
}

/// With delivery off, `Notify` queues nothing and the relay has nothing to do.
#[tokio::test]
async fn nothing_is_queued_without_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path()).await;
    let store = NotificationsStore::new(db);
    store.notify(&notification(1)).await.unwrap();
    assert!(states(&store.outbox()).await.is_empty());
    let records = store.for_order(&notification(1).order_id).await.unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].deliveries.is_empty());
}
