//! The contract of [`parse_order`] on arbitrary bytes, as one checkable property.
//!
//! The fuzz target (`fuzz/fuzz_targets/parse_order.rs`) and the property test below run the same
//! check, so a finding of the fuzzer becomes a regression case of the always-run test.

use crate::{Order, canonical_order_date, cents, parse_order, validate_order};

/// Panics when `bytes` break the parser's contract:
///
/// - `parse_order` returns (never panics) on any input;
/// - an order it accepts passes [`validate_order`];
/// - its total in cents is exact, without overflow at any step;
/// - it survives a serde JSON round trip unchanged (the workflow hands it to every activity as
///   JSON, so any drift would make activities see another order than the one validated);
/// - its `order_date` has a canonical (stored) form, which is itself accepted and is its own
///   canonical form, so a stored order re-reads as the same instant.
pub fn check_parse_order(bytes: &[u8]) {
    let Ok(order) = parse_order(bytes) else {
        return;
    };
    if let Err(e) = validate_order(&order) {
        panic!("parse_order accepted an order that does not validate: {e}");
    }
    assert_eq!(order.total_cents(), checked_total(&order), "total in cents");
    let json = serde_json::to_vec(&order).expect("an accepted order serialises");
    let back = parse_order(&json)
        .unwrap_or_else(|e| panic!("the serialised order is refused: {e}: {json:?}"));
    assert_eq!(back, order, "JSON round trip");
    let stored = canonical_order_date(&order.order_date)
        .unwrap_or_else(|e| panic!("an accepted order has no canonical date: {e}"));
    assert_eq!(
        canonical_order_date(&stored).as_deref(),
        Ok(stored.as_str()),
        "the canonical date of {:?} is not a fixed point",
        order.order_date
    );
    let as_stored = Order {
        order_date: stored,
        ..order
    };
    if let Err(e) = validate_order(&as_stored) {
        panic!("the order as stored does not validate: {e}");
    }
}

fn checked_total(order: &Order) -> i64 {
    order.items.iter().fold(0i64, |total, item| {
        let scaled = (item.unit_price * 100.0).round();
        // `as i64` saturates; a price this large would hide an overflow behind i64::MAX.
        assert!(
            scaled.abs() < 2f64.powi(53),
            "unit price {}",
            item.unit_price
        );
        let line = cents(item.unit_price)
            .checked_mul(item.units())
            .unwrap_or_else(|| panic!("line total overflows: {item:?}"));
        total
            .checked_add(line)
            .unwrap_or_else(|| panic!("order total overflows at {item:?}"))
    })
}

#[cfg(test)]
mod tests {
    //! Mutations of the sample orders, byte-wise and JSON-aware, from a fixed seed: the fuzz
    //! target's property on every `cargo test`, without a nightly toolchain.

    use super::check_parse_order;
    use serde_json::{Value, json};

    const SAMPLES: [&[u8]; 7] = [
        include_bytes!("../../testdata/scenario-1.json"),
        include_bytes!("../../testdata/scenario-2.json"),
        include_bytes!("../../testdata/scenario-3.json"),
        include_bytes!("../../testdata/scenario-4.json"),
        include_bytes!("../../testdata/scenario-5.json"),
        include_bytes!("../../testdata/scenario-6.json"),
        include_bytes!("../../testdata/scenario-7.json"),
    ];

    /// Tokens that tend to break parsers and validators.
    const TOKENS: &[&str] = &[
        "1e999",
        "-1e999",
        "-0",
        "0",
        "1e6",
        "1000000.004",
        "999999.995",
        "0.005",
        "4.9e-324",
        "1.7976931348623157e308",
        "9007199254740993",
        "18446744073709551616",
        "-1",
        "null",
        "true",
        "[]",
        "{}",
        "\"\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"",
        "\\",
        ",",
        ":",
        "\u{ff}",
        "\"order_id\":\"x\",",
        "\"items\":[],",
    ];

    /// Dates at the edges of RFC 3339 and of the conversion to UTC.
    const DATES: &[&str] = &[
        "2018-10-19T10:50:16+08:00",
        "0000-01-01T00:00:00Z",
        "0000-01-01T00:59:59+01:00",
        "9999-12-31T23:59:59-00:01",
        "9999-12-31T23:59:59+23:59",
        "2016-12-31T23:59:60Z",
        "2017-01-01T08:59:60+09:00",
        "2000-02-29T12:00:00.123456789123Z",
        "2001-02-29T12:00:00Z",
        "2018-10-19 10:50:16z",
        "2018-10-19",
        "yesterday",
        "2018-10-19T10:50:16",
        "+2018-10-19T10:50:16Z",
    ];

    fn interesting(rng: &mut fastrand::Rng) -> Value {
        match rng.usize(0..18) {
            16 | 17 => json!(DATES[rng.usize(0..DATES.len())]),
            0 => json!(rng.f64() * 2e6 - 1e6),
            1 => json!(rng.i64(..)),
            2 => json!(rng.u64(..)),
            3 => json!(f64::MAX),
            4 => json!(f64::MIN_POSITIVE),
            5 => json!(rng.u32(0..2_000_000) as f64 / 100.0),
            6 => json!(999_999.995),
            7 => json!(1_000_000),
            8 => json!(""),
            9 => json!("x".repeat(rng.usize(100..2000))),
            10 => json!("é\u{7}\u{1F600}"),
            11 => Value::Null,
            12 => json!(true),
            13 => json!([]),
            14 => json!({"unknown": 1}),
            _ => Value::Array(vec![
                json!({"item_id": "1", "qty": 1e6, "description": "", "unit_price": 1e6});
                rng.usize(1..600)
            ]),
        }
    }

    /// Some node of `doc`, reached by a random walk from the root.
    fn random_node<'a>(doc: &'a mut Value, rng: &mut fastrand::Rng) -> &'a mut Value {
        let depth = rng.usize(0..4);
        let mut node = doc;
        for _ in 0..depth {
            let len = match &*node {
                Value::Object(map) => map.len(),
                Value::Array(list) => list.len(),
                _ => 0,
            };
            if len == 0 {
                break;
            }
            let pick = rng.usize(0..len);
            node = match node {
                Value::Object(map) => map.values_mut().nth(pick).unwrap(),
                Value::Array(list) => &mut list[pick],
                _ => unreachable!(),
            };
        }
        node
    }

    fn mutate_json(sample: &[u8], rng: &mut fastrand::Rng) -> Vec<u8> {
        let mut doc: Value = serde_json::from_slice(sample).unwrap();
        if rng.usize(0..4) == 0 {
            doc["order_date"] = json!(DATES[rng.usize(0..DATES.len())]);
        }
        for _ in 0..rng.usize(1..4) {
            let node = random_node(&mut doc, rng);
            match (rng.usize(0..3), node) {
                (0, Value::Object(map)) if !map.is_empty() => {
                    let key = map.keys().nth(rng.usize(0..map.len())).unwrap().clone();
                    map.remove(&key);
                }
                (1, Value::Object(map)) => {
                    map.insert("extra".into(), json!(1));
                }
                (_, node) => *node = interesting(rng),
            }
        }
        serde_json::to_vec(&doc).unwrap()
    }

    fn mutate_bytes(sample: &[u8], rng: &mut fastrand::Rng) -> Vec<u8> {
        let mut bytes = sample.to_vec();
        for _ in 0..rng.usize(1..4) {
            let at = rng.usize(0..=bytes.len());
            match rng.usize(0..4) {
                0 if at < bytes.len() => bytes[at] = rng.u8(..),
                1 => {
                    let end = (at + rng.usize(0..8)).min(bytes.len());
                    bytes.drain(at..end);
                }
                2 => {
                    let token = TOKENS[rng.usize(0..TOKENS.len())];
                    bytes.splice(at..at, token.bytes());
                }
                _ => bytes.insert(at, rng.u8(..)),
            }
        }
        bytes
    }

    #[test]
    fn parse_order_keeps_its_contract_on_mutated_orders() {
        let mut rng = fastrand::Rng::with_seed(0x5a6a);
        let mut accepted = 0;
        for round in 0..6_000 {
            let sample = SAMPLES[round % SAMPLES.len()];
            let input = if round % 2 == 0 {
                mutate_json(sample, &mut rng)
            } else {
                mutate_bytes(sample, &mut rng)
            };
            check_parse_order(&input);
            accepted += usize::from(crate::parse_order(&input).is_ok());
        }
        // The mutations must reach the accepting paths too, not only the parser's errors.
        assert!(
            accepted > 100,
            "only {accepted} mutated orders were accepted"
        );
    }

    #[test]
    fn the_samples_keep_the_contract() {
        for sample in SAMPLES {
            crate::parse_order(sample).unwrap();
            check_parse_order(sample);
        }
    }
}
