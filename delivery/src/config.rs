//! Who receives deliveries, and when a failed attempt is tried again.
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `SAGA_WEBHOOK_URLS` | off | comma-separated URLs; delivery is on when it (or the file) names any |
//! | `SAGA_WEBHOOK_SECRET` | — | the signing secret of those URLs (required with them), and the default of the file's subscribers |
//! | `SAGA_WEBHOOK_CONFIG` | — | a TOML file of `[[subscriber]]` entries: `url`, optional `name`, `secret` or `secret_env`, `statuses` |
//! | `SAGA_WEBHOOK_TIMEOUT` | `10s` | one attempt, connect to last byte of the answer |
//! | `SAGA_WEBHOOK_RETRY_INITIAL` | `30s` | the wait after the first failed attempt; it doubles after each further one |
//! | `SAGA_WEBHOOK_RETRY_MAX` | `1h` | the longest wait between attempts |
//! | `SAGA_WEBHOOK_MAX_ATTEMPTS` | `30` | attempts before a delivery is dead (about a day with the defaults) |
//! | `SAGA_WEBHOOK_LEASE` | `60s`, at least twice the timeout | how long a claimed row is a relay's own; a crashed relay's rows are sent again after it |
//! | `SAGA_WEBHOOK_POLL` | `1s` | how often an idle relay looks for due rows (a `Notify` in the same process wakes it at once) |
//! | `SAGA_WEBHOOK_CONCURRENCY` | `16` | attempts one relay has in flight at once |
//!
//! Durations are written `500ms`, `30s`, `5m`, `1h`.

use anyhow::{Context as _, bail, ensure};
use saga_activities::outbox::Subscription;
use serde::Deserialize;
use std::{fmt, path::Path, time::Duration};

pub const URLS_ENV: &str = "SAGA_WEBHOOK_URLS";
pub const SECRET_ENV: &str = "SAGA_WEBHOOK_SECRET";
pub const CONFIG_ENV: &str = "SAGA_WEBHOOK_CONFIG";
pub const TIMEOUT_ENV: &str = "SAGA_WEBHOOK_TIMEOUT";
pub const RETRY_INITIAL_ENV: &str = "SAGA_WEBHOOK_RETRY_INITIAL";
pub const RETRY_MAX_ENV: &str = "SAGA_WEBHOOK_RETRY_MAX";
pub const MAX_ATTEMPTS_ENV: &str = "SAGA_WEBHOOK_MAX_ATTEMPTS";
pub const LEASE_ENV: &str = "SAGA_WEBHOOK_LEASE";
pub const POLL_ENV: &str = "SAGA_WEBHOOK_POLL";
pub const CONCURRENCY_ENV: &str = "SAGA_WEBHOOK_CONCURRENCY";

/// The notification statuses a subscriber may filter on.
pub const STATUSES: [&str; 2] = ["success", "failed"];

/// A signing secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One endpoint that receives notifications.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// Keys the subscriber's delivery rows; the URL unless the file names it.
    pub name: String,
    pub url: reqwest::Url,
    pub secret: Secret,
    /// The statuses it receives; empty for all.
    pub statuses: Vec<String>,
}

impl Subscriber {
    pub fn subscription(&self) -> Subscription {
        Subscription {
            name: self.name.clone(),
            statuses: self.statuses.clone(),
        }
    }
}

/// When a failed attempt is tried again: exponential backoff with jitter, then dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The wait after the first failed attempt.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Attempts in all; the delivery is dead when the last one fails.
    pub max_attempts: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            max_attempts: 30,
        }
    }
}

impl Schedule {
    /// The nominal wait after failed attempt `attempt` (1-based): `initial × 2^(attempt−1)`,
    /// at most `max`.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The wait actually taken: the nominal one ±25 % at random, so that the deliveries held up
    /// by one outage do not all come back at the same instant.
    pub fn wait(&self, attempt: u32) -> Duration {
        self.nominal(attempt).mul_f64(0.75 + 0.5 * fastrand::f64())
    }

    /// Whether a delivery whose attempt number `attempt` failed is dead.
    pub fn gives_up_after(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }

    /// From the first attempt to the last, nominally.
    pub fn span(&self) -> Duration {
        (1..self.max_attempts).map(|a| self.nominal(a)).sum()
    }
}

/// Webhook delivery, as the worker runs it.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub subscribers: Vec<Subscriber>,
    pub schedule: Schedule,
    pub timeout: Duration,
    pub lease: Duration,
    pub poll: Duration,
    pub concurrency: usize,
}

/// One `[[subscriber]]` of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSubscriber {
    url: String,
    name: Option<String>,
    secret: Option<String>,
    secret_env: Option<String>,
    #[serde(default)]
    statuses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    subscriber: Vec<FileSubscriber>,
}

impl DeliveryConfig {
    /// From the process environment; `None` when no subscriber is configured (delivery off).
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From settings looked up by `env` (the environment, or a test's map).
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let default_secret = env(SECRET_ENV).map(Secret::new);
        let mut subscribers = Vec::new();
        let urls: Vec<String> = env(URLS_ENV)
            .map(|urls| {
                urls.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if !urls.is_empty() {
            let secret = default_secret.clone().with_context(|| {
                format!(
                    "{URLS_ENV} is set but {SECRET_ENV} is not: every delivery is signed, so set \
                     {SECRET_ENV} to the secret the receivers verify with"
                )
            })?;
            for url in urls {
                subscribers.push(Subscriber {
                    url: parse_url(&url).with_context(|| format!("{URLS_ENV}: {url:?}"))?,
                    name: url,
                    secret: secret.clone(),
                    statuses: Vec::new(),
                });
            }
        }
        if let Some(path) = env(CONFIG_ENV) {
            let from_file = read_file(Path::new(&path), default_secret.as_ref(), &env)
                .with_context(|| format!("{CONFIG_ENV}={path}"))?;
            subscribers.extend(from_file);
        }
        if subscribers.is_empty() {
            return Ok(None);
        }
        for (i, s) in subscribers.iter().enumerate() {
            if subscribers[..i]
                .iter()
                .any(|earlier| earlier.name == s.name)
            {
                bail!(
                    "webhook subscriber {:?} is configured twice; give one a `name` in {CONFIG_ENV}",
                    s.name
                );
            }
        }

        let duration = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            match env(name) {
                None => Ok(default),
                Some(v) => humantime::parse_duration(v.trim()).map_err(|e| {
                    anyhow::anyhow!("{name}={v:?}: {e}; write a duration like 500ms, 30s, 5m or 1h")
                }),
            }
        };
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            match env(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number")),
            }
        };
        let defaults = Schedule::default();
        let schedule = Schedule {
            initial: duration(RETRY_INITIAL_ENV, defaults.initial)?,
            max: duration(RETRY_MAX_ENV, defaults.max)?,
            max_attempts: u32::try_from(number(MAX_ATTEMPTS_ENV, defaults.max_attempts.into())?)
                .with_context(|| format!("{MAX_ATTEMPTS_ENV} is too large"))?,
        };
        ensure!(
            schedule.max_attempts >= 1,
            "{MAX_ATTEMPTS_ENV} must be at least 1"
        );
        ensure!(
            !schedule.initial.is_zero() && schedule.max >= schedule.initial,
            "{RETRY_INITIAL_ENV} must be above zero and at most {RETRY_MAX_ENV}"
        );
        let timeout = duration(TIMEOUT_ENV, Duration::from_secs(10))?;
        ensure!(!timeout.is_zero(), "{TIMEOUT_ENV} must be above zero");
        let lease = duration(LEASE_ENV, Duration::from_secs(60).max(timeout * 2))?;
        ensure!(
            lease > timeout,
            "{LEASE_ENV} ({}) must be longer than {TIMEOUT_ENV} ({}): a lease that ends while its \
             attempt still runs lets a second relay send the same delivery at the same time",
            humantime::format_duration(lease),
            humantime::format_duration(timeout)
        );
        let poll = duration(POLL_ENV, Duration::from_secs(1))?;
        ensure!(!poll.is_zero(), "{POLL_ENV} must be above zero");
        let concurrency = number(CONCURRENCY_ENV, 16)?;
        ensure!(
            (1..=1024).contains(&concurrency),
            "{CONCURRENCY_ENV} must be between 1 and 1024"
        );
        Ok(Some(Self {
            subscribers,
            schedule,
            timeout,
            lease,
            poll,
            concurrency: concurrency as usize,
        }))
    }

    /// What `Notify` queues deliveries for.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.subscribers
            .iter()
            .map(Subscriber::subscription)
            .collect()
    }

    pub fn subscriber(&self, name: &str) -> Option<&Subscriber> {
        self.subscribers.iter().find(|s| s.name == name)
    }
}

fn parse_url(url: &str) -> anyhow::Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url).context("not a URL")?;
    ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "only http:// and https:// URLs can receive webhooks"
    );
    ensure!(parsed.host().is_some(), "the URL has no host");
    Ok(parsed)
}

fn read_file(
    path: &Path,
    default_secret: Option<&Secret>,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<Subscriber>> {
    let text = std::fs::read_to_string(path).context("cannot read the file")?;
    let file: File = toml::from_str(&text).context("not a valid subscriber file")?;
    let mut subscribers = Vec::new();
    for (i, s) in file.subscriber.into_iter().enumerate() {
        let which = format!(
            "subscriber {} ({})",
            i + 1,
            s.name.as_deref().unwrap_or(&s.url)
        );
        let url = parse_url(&s.url).with_context(|| format!("{which}: url {:?}", s.url))?;
        let secret = match (s.secret, s.secret_env) {
            (Some(_), Some(_)) => bail!("{which}: give `secret` or `secret_env`, not both"),
            (Some(secret), None) => Secret::new(secret),
            (None, Some(var)) => env(&var)
                .map(Secret::new)
                .with_context(|| format!("{which}: secret_env names {var}, which is not set"))?,
            (None, None) => default_secret.cloned().with_context(|| {
                format!("{which}: no secret; give `secret`, `secret_env`, or set {SECRET_ENV}")
            })?,
        };
        ensure!(
            !secret.as_bytes().is_empty(),
            "{which}: the secret is empty"
        );
        for status in &s.statuses {
            ensure!(
                STATUSES.contains(&status.as_str()),
                "{which}: statuses: unknown status {status:?} (use success or failed)"
            );
        }
        let name = s.name.unwrap_or_else(|| s.url.clone());
        ensure!(!name.trim().is_empty(), "{which}: the name is empty");
        subscribers.push(Subscriber {
            name,
            url,
            secret,
            statuses: s.statuses,
        });
    }
    Ok(subscribers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Option<DeliveryConfig>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DeliveryConfig::from_lookup(|k| vars.get(k).cloned())
    }

    fn error(vars: &[(&str, &str)]) -> String {
        format!("{:#}", config(vars).unwrap_err())
    }

    #[test]
    fn off_without_subscribers() {
        assert!(config(&[]).unwrap().is_none());
        assert!(config(&[(SECRET_ENV, "s")]).unwrap().is_none());
        assert!(config(&[(URLS_ENV, " , ")]).unwrap().is_none());
    }

    #[test]
    fn urls_share_the_secret() {
        let c = config(&[
            (
                URLS_ENV,
                "http://127.0.0.1:9000/hook, https://example.com/saga",
            ),
            (SECRET_ENV, "whsec"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.subscribers.len(), 2);
        assert_eq!(c.subscribers[0].name, "http://127.0.0.1:9000/hook");
        assert_eq!(c.subscribers[1].url.as_str(), "https://example.com/saga");
        assert!(
            c.subscribers
                .iter()
                .all(|s| s.secret.as_bytes() == b"whsec")
        );
        assert!(
            c.subscriptions()
                .iter()
                .all(|s| s.wants("success") && s.wants("failed"))
        );
        assert_eq!(c.schedule, Schedule::default());
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.lease, Duration::from_secs(60));
        assert!(
            !format!("{c:?}").contains("whsec"),
            "the secret is never printed"
        );
    }

    #[test]
    fn refuses_unsigned_and_bad_urls() {
        assert!(error(&[(URLS_ENV, "http://x/")]).contains(SECRET_ENV));
        let e = error(&[(URLS_ENV, "ftp://x/"), (SECRET_ENV, "s")]);
        assert!(e.contains("ftp://x/") && e.contains("http"), "{e}");
        let e = error(&[(URLS_ENV, "not a url"), (SECRET_ENV, "s")]);
        assert!(e.contains("not a URL"), "{e}");
        let e = error(&[(URLS_ENV, "http://x/,http://x/"), (SECRET_ENV, "s")]);
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn reads_timings_and_names_bad_ones() {
        let base = [(URLS_ENV, "http://x/"), (SECRET_ENV, "s")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            vars
        };
        let c = config(&with(&[
            (TIMEOUT_ENV, "500ms"),
            (RETRY_INITIAL_ENV, "100ms"),
            (RETRY_MAX_ENV, "2s"),
            (MAX_ATTEMPTS_ENV, "5"),
            (LEASE_ENV, "3s"),
            (POLL_ENV, "50ms"),
            (CONCURRENCY_ENV, "4"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.schedule.initial, Duration::from_millis(100));
        assert_eq!(c.schedule.max, Duration::from_secs(2));
        assert_eq!(c.schedule.max_attempts, 5);
        assert_eq!(c.lease, Duration::from_secs(3));
        assert_eq!(c.poll, Duration::from_millis(50));
        assert_eq!(c.concurrency, 4);
        // A long timeout stretches the default lease.
        let c = config(&with(&[(TIMEOUT_ENV, "45s")])).unwrap().unwrap();
        assert_eq!(c.lease, Duration::from_secs(90));

        let e = error(&with(&[(TIMEOUT_ENV, "10")]));
        assert!(e.contains(TIMEOUT_ENV) && e.contains("30s"), "{e}");
        let e = error(&with(&[(TIMEOUT_ENV, "10s"), (LEASE_ENV, "5s")]));
        assert!(e.contains(LEASE_ENV) && e.contains("longer"), "{e}");
        assert!(error(&with(&[(MAX_ATTEMPTS_ENV, "0")])).contains(MAX_ATTEMPTS_ENV));
        assert!(error(&with(&[(MAX_ATTEMPTS_ENV, "x")])).contains(MAX_ATTEMPTS_ENV));
        assert!(error(&with(&[(RETRY_INITIAL_ENV, "2h")])).contains(RETRY_MAX_ENV));
        assert!(error(&with(&[(CONCURRENCY_ENV, "0")])).contains(CONCURRENCY_ENV));
    }

    #[test]
    fn reads_subscribers_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhooks.toml");
        std::fs::write(
            &path,
            r#"
            [[subscriber]]
            name = "ops"
            url = "https://ops.example/hooks/saga"
            secret_env = "OPS_SECRET"
            statuses = ["failed"]

            [[subscriber]]
            url = "http://127.0.0.1:9000/"
            secret = "own"
            "#,
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let c = config(&[
            (CONFIG_ENV, path),
            ("OPS_SECRET", "ops-secret"),
            (URLS_ENV, "http://127.0.0.1:9001/"),
            (SECRET_ENV, "shared"),
        ])
        .unwrap()
        .unwrap();
        let names: Vec<&str> = c.subscribers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["http://127.0.0.1:9001/", "ops", "http://127.0.0.1:9000/"]
        );
        let ops = c.subscriber("ops").unwrap();
        assert_eq!(ops.secret.as_bytes(), b"ops-secret");
        assert!(ops.subscription().wants("failed") && !ops.subscription().wants("success"));
        assert_eq!(
            c.subscriber("http://127.0.0.1:9000/")
                .unwrap()
                .secret
                .as_bytes(),
            b"own"
        );

        // Without SAGA_WEBHOOK_SECRET, a file subscriber needs its own.
        let e = error(&[(CONFIG_ENV, path)]);
        assert!(e.contains("OPS_SECRET") && e.contains("not set"), "{e}");
    }

    #[test]
    fn names_what_is_wrong_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let path = dir.path().join(format!("{}.toml", fastrand::u32(..)));
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let check = |text: &str| error(&[(CONFIG_ENV, &write(text)), (SECRET_ENV, "s")]);
        let e = check("[[subscriber]]\nurl = \"http://x/\"\nstatuses = [\"sucess\"]\n");
        assert!(
            e.contains("subscriber 1") && e.contains("\"sucess\""),
            "{e}"
        );
        let e = check("[[subscriber]]\nurl = \"http://x/\"\nsecrte = \"s\"\n");
        assert!(e.contains("secrte"), "{e}");
        let e = check("[[subscriber]]\nurl = \"http://x/\"\nsecret = \"a\"\nsecret_env = \"B\"\n");
        assert!(e.contains("not both"), "{e}");
        let e = error(&[(CONFIG_ENV, "/nonexistent/webhooks.toml")]);
        assert!(
            e.contains("/nonexistent/webhooks.toml") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn the_default_schedule_spans_about_a_day() {
        let s = Schedule::default();
        let waits: Vec<u64> = (1..=9).map(|a| s.nominal(a).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let span = s.span().as_secs();
        assert!((23 * 3600..25 * 3600).contains(&span), "{span} s");
        assert!(!s.gives_up_after(29) && s.gives_up_after(30));
        for attempt in 1..40 {
            let wait = s.wait(attempt);
            let nominal = s.nominal(attempt);
            assert!(wait >= nominal.mul_f64(0.75) && wait <= nominal.mul_f64(1.25));
        }
        // Far past the cap, no overflow.
        assert_eq!(s.nominal(u32::MAX), s.max);
    }
}
