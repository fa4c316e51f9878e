//! The signature every delivery carries, modelled on Stripe's webhook signatures.
//!
//! `Saga-Signature: t=1717171717,v1=5257a869…` where `t` is the time of signing in Unix seconds
//! and `v1` is the lowercase hex HMAC-SHA256 of the string `"{t}.{body}"` keyed with the
//! subscriber's secret (its UTF-8 bytes, exactly as configured). The timestamp is inside the
//! signed string, so a receiver that rejects old timestamps (five minutes is usual) rejects
//! replays, and one that recomputes the HMAC over the raw body rejects forgeries. A header may
//! carry several `v1` entries (any one matching is enough), so a secret can be rolled over.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "Saga-Signature";
/// The stable event id (also in the body); receivers de-duplicate on it.
pub const EVENT_ID_HEADER: &str = "Saga-Event-Id";
/// 1 for the first attempt, 2 for the first retry, …
pub const ATTEMPT_HEADER: &str = "Saga-Delivery-Attempt";
/// How old a signature `saga webhook-receiver` accepts by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Saga-Signature` value for `body` signed at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Why a delivery was not accepted as genuine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no {SIGNATURE_HEADER} header")]
    Missing,
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    Malformed(String),
    #[error("signature does not match the body (wrong secret, or the body was altered)")]
    Mismatch,
    #[error("signed {age_secs} s ago, more than the {tolerance_secs} s allowed (a replay?)")]
    TooOld { age_secs: i64, tolerance_secs: u64 },
    #[error("signed {ahead_secs} s in the future (clocks apart?)")]
    InFuture { ahead_secs: i64 },
}

/// Checks `header` (the `Saga-Signature` value) against the raw `body` with `secret`, and that it
/// was signed within `tolerance` of `now` (Unix seconds). Returns the signing timestamp.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<i64, VerifyError> {
    let header = header.ok_or(VerifyError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| VerifyError::Malformed(format!("{part:?} is not key=value")))?;
        match key {
            "t" => {
                timestamp = Some(value.parse::<i64>().map_err(|_| {
                    VerifyError::Malformed(format!("t={value:?} is not a Unix time"))
                })?)
            }
            "v1" => signatures.push(
                hex::decode(value)
                    .map_err(|_| VerifyError::Malformed(format!("v1={value:?} is not hex")))?,
            ),
            // Other schemes (a future v2) are ignored, as Stripe's receivers do.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| VerifyError::Malformed("no t=".into()))?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed("no v1=".into()));
    }
    // The HMAC first, so a forgery is reported as such whatever its timestamp.
    let genuine = signatures
        .iter()
        .any(|sig| mac(secret, timestamp, body).verify_slice(sig).is_ok());
    if !genuine {
        return Err(VerifyError::Mismatch);
    }
    let age = now - timestamp;
    let tolerance_secs = tolerance.as_secs();
    if age > tolerance_secs as i64 {
        return Err(VerifyError::TooOld {
            age_secs: age,
            tolerance_secs,
        });
    }
    // A little clock skew between sender and receiver is normal; a signature from far ahead is
    // not.
    if -age > tolerance_secs as i64 {
        return Err(VerifyError::InFuture { ahead_secs: -age });
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"event_id":"e","order_id":"47","status":"success"}"#;
    const TOLERANCE: Duration = DEFAULT_TOLERANCE;

    #[test]
    fn matches_an_independent_computation() {
        // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign(b"whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn accepts_its_own_signature() {
        let header = sign(b"s3cret", 1_000, BODY);
        assert_eq!(
            verify(b"s3cret", Some(&header), BODY, 1_010, TOLERANCE),
            Ok(1_000)
        );
    }

    #[test]
    fn rejects_a_wrong_secret_and_an_altered_body() {
        let header = sign(b"s3cret", 1_000, BODY);
        assert_eq!(
            verify(b"other", Some(&header), BODY, 1_000, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        let altered = br#"{"event_id":"e","order_id":"47","status":"failed"}"#;
        assert_eq!(
            verify(b"s3cret", Some(&header), altered, 1_000, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        // The timestamp is signed too: moving it forward breaks the signature.
        let moved = header.replace("t=1000", "t=2000");
        assert_eq!(
            verify(b"s3cret", Some(&moved), BODY, 2_000, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn rejects_replays_and_the_far_future() {
        let header = sign(b"s3cret", 1_000, BODY);
        assert_eq!(
            verify(b"s3cret", Some(&header), BODY, 1_301, TOLERANCE),
            Err(VerifyError::TooOld {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            verify(b"s3cret", Some(&header), BODY, 600, TOLERANCE),
            Err(VerifyError::InFuture { ahead_secs: 400 })
        );
    }

    #[test]
    fn accepts_any_of_several_signatures() {
        let old = sign(b"old", 1_000, BODY);
        let new = sign(b"new", 1_000, BODY);
        let both = format!("{new},{}", old.trim_start_matches("t=1000,"));
        assert_eq!(
            verify(b"old", Some(&both), BODY, 1_000, TOLERANCE),
            Ok(1_000)
        );
        assert_eq!(
            verify(b"new", Some(&both), BODY, 1_000, TOLERANCE),
            Ok(1_000)
        );
    }

    #[test]
    fn names_what_is_malformed() {
        let check = |h: &str| verify(b"s", Some(h), BODY, 0, TOLERANCE).unwrap_err();
        assert_eq!(
            verify(b"s", None, BODY, 0, TOLERANCE),
            Err(VerifyError::Missing)
        );
        assert!(matches!(check("v1=00"), VerifyError::Malformed(m) if m.contains("no t=")));
        assert!(matches!(check("t=1"), VerifyError::Malformed(m) if m.contains("no v1=")));
        assert!(matches!(check("t=x,v1=00"), VerifyError::Malformed(m) if m.contains("Unix")));
        assert!(matches!(check("t=1,v1=zz"), VerifyError::Malformed(m) if m.contains("hex")));
        assert!(matches!(check("garbage"), VerifyError::Malformed(_)));
    }
}
