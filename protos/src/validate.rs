//! Parsing and validating an order from untrusted input.
//!
//! The workflow runs this on its raw input before any activity is scheduled, so a bad order fails
//! fast with a non-retryable error naming the field, and nothing is written anywhere. The
//! activities run [`validate_order`] again, so a caller that skips the workflow cannot write a bad
//! row either. Everything here is pure and deterministic: it is safe in workflow code.
//!
//! | field                       | rule                                                      |
//! |-----------------------------|-----------------------------------------------------------|
//! | `order_id`, `customer_id`   | 1–128 bytes of printable ASCII, no spaces                 |
//! | `order_date`                | an RFC 3339 date-time with offset; stored as [`canonical_order_date`] |
//! | `items`                     | 1–500 lines                                               |
//! | `items[i].item_id`          | as the ids above                                          |
//! | `items[i].description`      | at most 1024 bytes, no control characters                 |
//! | `items[i].qty`              | a whole number from 1 to 1,000,000                        |
//! | `items[i].unit_price`       | a number from 0 to 1,000,000                              |

use crate::{Item, Order};

/// Largest order document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Most items one order may carry.
pub const MAX_ITEMS: usize = 500;
/// Longest id (order, customer, item) accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest free text (description, date) accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest quantity of one item.
pub const MAX_QTY: f64 = 1_000_000.0;
/// Largest unit price, in currency units.
pub const MAX_UNIT_PRICE: f64 = 1_000_000.0;

/// Why an order was refused: the field (a JSON path such as `items[2].qty`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid order: {field}: {reason}")]
pub struct InvalidOrder {
    pub field: String,
    pub reason: String,
}

impl InvalidOrder {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Parses the JSON order document and validates it.
pub fn parse_order(bytes: &[u8]) -> Result<Order, InvalidOrder> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(InvalidOrder::new(
            "order",
            format!(
                "document is {} bytes, more than the {MAX_DOCUMENT_BYTES} allowed",
                bytes.len()
            ),
        ));
    }
    // serde would also read a struct from a JSON array (fields by position), which turns a
    // wrong document into a confusing error about `[0]`; the order is an object, say so.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        let what = match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) if v.is_array() => "a JSON array",
            Ok(_) => "a JSON scalar",
            Err(_) => "not JSON",
        };
        return Err(InvalidOrder::new(
            "order",
            format!("must be a JSON object (the order document), got {what}"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let order: Order = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde reports a missing or unknown field on its parent; name the field itself.
        let message = inner.to_string();
        let field = field_named_in(&message)
            .map(|name| join_path(&path, name))
            .unwrap_or_else(|| {
                if path == "." {
                    "order".to_owned()
                } else {
                    path
                }
            });
        InvalidOrder::new(field, strip_position(&message))
    })?;
    de.end()
        .map_err(|e| InvalidOrder::new("order", strip_position(&e.to_string())))?;
    validate_order(&order)?;
    Ok(order)
}

/// Checks the business rules of an order that is already well-formed JSON.
pub fn validate_order(order: &Order) -> Result<(), InvalidOrder> {
    check_id(&order.order_id).map_err(|why| InvalidOrder::new("order_id", why))?;
    check_text(&order.order_date, true).map_err(|why| InvalidOrder::new("order_date", why))?;
    order_date_in_utc(&order.order_date)?;
    check_id(&order.customer_id).map_err(|why| InvalidOrder::new("customer_id", why))?;
    if order.items.is_empty() {
        return Err(InvalidOrder::new(
            "items",
            "an order needs at least one item",
        ));
    }
    if order.items.len() > MAX_ITEMS {
        return Err(InvalidOrder::new(
            "items",
            format!(
                "{} items, more than the {MAX_ITEMS} allowed",
                order.items.len()
            ),
        ));
    }
    for (i, item) in order.items.iter().enumerate() {
        check_item(i, item)?;
    }
    Ok(())
}

fn check_item(i: usize, item: &Item) -> Result<(), InvalidOrder> {
    // Each step validates its order again, so the field's path is written only when refused.
    let field = |name: &str| format!("items[{i}].{name}");
    check_id(&item.item_id).map_err(|why| InvalidOrder::new(field("item_id"), why))?;
    check_text(&item.description, false)
        .map_err(|why| InvalidOrder::new(field("description"), why))?;
    let qty = item.qty;
    if !qty.is_finite() || qty <= 0.0 || qty.fract() != 0.0 || qty > MAX_QTY {
        return Err(InvalidOrder::new(
            field("qty"),
            format!("must be a whole number from 1 to {MAX_QTY}, got {qty}"),
        ));
    }
    let price = item.unit_price;
    if !price.is_finite() || !(0.0..=MAX_UNIT_PRICE).contains(&price) {
        return Err(InvalidOrder::new(
            field("unit_price"),
            format!("must be a number from 0 to {MAX_UNIT_PRICE}, got {price}"),
        ));
    }
    Ok(())
}

/// Ids become database keys, workflow ids and log fields: keep them short and printable.
/// Refused, it says why; the caller names the field.
fn check_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!(
            "is {} bytes, more than the {MAX_ID_LEN} allowed",
            value.len()
        ));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "must be printable ASCII without spaces (letters, digits, - _ . : and the like)".into(),
        );
    }
    Ok(())
}

/// The one form the orders service stores an `order_date` in: the same instant in UTC, written
/// `YYYY-MM-DDTHH:MM:SSZ`, with a fraction of a second only when it has one (3, 6 or 9 digits).
/// `2018-10-19T10:50:16+08:00` is stored as `2018-10-19T02:50:16Z`.
///
/// The input must be an RFC 3339 date-time with its offset (`Z` or `±HH:MM`): a date alone, a
/// time without an offset, or words such as `yesterday` are refused naming `order_date`. Pure
/// (no clock, no time zone database), so the workflow may run it.
pub fn canonical_order_date(value: &str) -> Result<String, InvalidOrder> {
    let utc = order_date_in_utc(value)?;
    Ok(utc.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The instant an `order_date` names, or why it names none.
fn order_date_in_utc(value: &str) -> Result<chrono::DateTime<chrono::Utc>, InvalidOrder> {
    use chrono::{DateTime, Datelike as _, Utc};
    const FIELD: &str = "order_date";
    let refuse = |why: &str| {
        // Quote a short value so the user sees what was read; a long one is only measured.
        let got = if value.chars().count() <= 40 {
            format!("{value:?}")
        } else {
            format!("{} bytes", value.len())
        };
        InvalidOrder::new(
            FIELD,
            format!(
                "must be an RFC 3339 date-time with an offset, e.g. 2018-10-19T10:50:16+08:00 \
                 ({why}), got {got}"
            ),
        )
    };
    let parsed = DateTime::parse_from_rfc3339(value).map_err(|e| refuse(&e.to_string()))?;
    let utc = parsed.with_timezone(&Utc);
    // RFC 3339 has four-digit years; an offset can push year 0000 or 9999 past them.
    if !(0..=9999).contains(&utc.year()) {
        return Err(refuse("its UTC year is outside 0000-9999"));
    }
    Ok(utc)
}

/// Text (a description, or a date before it is parsed): at most [`MAX_TEXT_LEN`] bytes, no
/// control characters. Refused, it says why; the caller names the field.
fn check_text(value: &str, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(format!(
            "is {} bytes, more than the {MAX_TEXT_LEN} allowed",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// The field a serde "missing field `x`" or "unknown field `x`" message names.
fn field_named_in(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

fn join_path(parent: &str, name: &str) -> String {
    // Depending on how serde's features are unified in a build, an unknown field's path ends
    // with the field itself already.
    let last = parent.rsplit('.').next().unwrap_or(parent);
    if parent == "." {
        name.to_owned()
    } else if parent == name || last == name {
        parent.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// serde_json appends " at line L column C": useful for files, noise in a one-line error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"order_id":"47063fe3-56d9-4c51-b91f-71929834ce03",
        "order_date":"2018-10-19T10:50:16+08:00","customer_id":"c-1",
        "items":[{"item_id":"123","qty":1.0,"description":"Cart item 1","unit_price":19.99}]}"#;

    fn refused(json: &str) -> InvalidOrder {
        parse_order(json.as_bytes()).expect_err(json)
    }

    fn with(pointer: &str, value: serde_json::Value) -> String {
        let mut doc: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        *doc.pointer_mut(pointer).unwrap() = value;
        doc.to_string()
    }

    #[test]
    fn accepts_the_reference_orders() {
        for file in [
            include_str!("../../testdata/scenario-1.json"),
            include_str!("../../testdata/scenario-7.json"),
        ] {
            parse_order(file.as_bytes()).unwrap();
        }
        parse_order(GOOD.as_bytes()).unwrap();
    }

    #[test]
    fn names_the_field_at_fault() {
        use serde_json::json;
        let cases = [
            ("not json", "order".to_owned()),
            ("[]", "order".to_owned()),
            (&with("/order_id", json!(42)), "order_id".to_owned()),
            (&with("/order_id", json!("")), "order_id".to_owned()),
            (&with("/order_id", json!("a b")), "order_id".to_owned()),
            (
                &with("/order_id", json!("x".repeat(500))),
                "order_id".to_owned(),
            ),
            (&with("/customer_id", json!("")), "customer_id".to_owned()),
            (&with("/order_date", json!(" ")), "order_date".to_owned()),
            (&with("/items", json!([])), "items".to_owned()),
            (
                &with("/items/0/item_id", json!("a b")),
                "items[0].item_id".to_owned(),
            ),
            (&with("/items/0/qty", json!(0)), "items[0].qty".to_owned()),
            (&with("/items/0/qty", json!(-1)), "items[0].qty".to_owned()),
            (&with("/items/0/qty", json!(1.5)), "items[0].qty".to_owned()),
            (&with("/items/0/qty", json!("1")), "items[0].qty".to_owned()),
            (
                &with("/items/0/unit_price", json!(-0.01)),
                "items[0].unit_price".to_owned(),
            ),
            (
                &with("/items/0/unit_price", json!(1e300)),
                "items[0].unit_price".to_owned(),
            ),
            (
                &with("/items/0/description", json!("a\u{0}b")),
                "items[0].description".to_owned(),
            ),
        ];
        for (json, field) in cases {
            assert_eq!(refused(json).field, field, "{json}");
        }
    }

    #[test]
    fn order_date_must_be_an_rfc3339_date_time() {
        use serde_json::json;
        for bad in [
            "yesterday",
            "2018-10-19",
            "2018-10-19T10:50:16",
            "2018-10-19 10:50",
            "10/19/2018 10:50:16 +08:00",
            "2018-10-19T10:50:16+8:00",
            "2018-02-30T10:50:16Z",
            "2018-10-19T24:00:00Z",
            "2018-10-19T10:50:16+24:00",
            " 2018-10-19T10:50:16Z",
            "2018-10-19T10:50:16Z trailing",
            "0000-01-01T00:30:00+01:00",
            "",
        ] {
            let e = refused(&with("/order_date", json!(bad)));
            assert_eq!(e.field, "order_date", "{bad:?}: {e}");
        }
        let e = refused(&with("/order_date", json!("yesterday")));
        assert!(
            e.to_string().starts_with(
                "invalid order: order_date: must be an RFC 3339 date-time with an offset"
            ) && e.reason.ends_with(r#"got "yesterday""#),
            "{e}"
        );
        let e = refused(&with("/order_date", json!(20181019)));
        assert_eq!(e.field, "order_date");
    }

    #[test]
    fn order_date_is_stored_as_utc() {
        for (given, stored) in [
            ("2018-10-19T10:50:16+08:00", "2018-10-19T02:50:16Z"),
            ("2018-10-19T02:50:16Z", "2018-10-19T02:50:16Z"),
            ("2018-10-19t02:50:16z", "2018-10-19T02:50:16Z"),
            ("2018-10-19 02:50:16-00:00", "2018-10-19T02:50:16Z"),
            // Across a day, a month and a year.
            ("2019-01-01T01:00:00+02:00", "2018-12-31T23:00:00Z"),
            ("2018-12-31T20:00:00-05:30", "2019-01-01T01:30:00Z"),
            // A fraction is kept, in milli-, micro- or nanoseconds; beyond 9 digits it is cut.
            ("2018-10-19T10:50:16.5+08:00", "2018-10-19T02:50:16.500Z"),
            ("2018-10-19T02:50:16.000Z", "2018-10-19T02:50:16Z"),
            (
                "2018-10-19T02:50:16.1234567891Z",
                "2018-10-19T02:50:16.123456789Z",
            ),
            // Leap seconds are RFC 3339 date-times too.
            ("2017-01-01T08:59:60+09:00", "2016-12-31T23:59:60Z"),
            ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ] {
            let canonical = canonical_order_date(given).unwrap();
            assert_eq!(canonical, stored, "{given}");
            assert_eq!(
                canonical_order_date(&canonical).unwrap(),
                canonical,
                "{given}"
            );
        }
    }

    #[test]
    fn names_missing_and_unknown_fields() {
        let e = refused(r#"{"order_date":"d","customer_id":"c","items":[]}"#);
        assert_eq!(e.field, "order_id");
        assert!(e.reason.contains("missing"), "{e}");
        let e = refused(&GOOD.replace(r#""qty""#, r#""quantity""#));
        assert_eq!(e.field, "items[0].quantity");
        let e = refused(&GOOD.replace(r#""customer_id""#, r#""coupon":1,"customer_id""#));
        assert_eq!(e.field, "coupon");
    }

    #[test]
    fn refuses_trailing_data_and_huge_documents() {
        assert_eq!(refused(&format!("{GOOD} {{}}")).field, "order");
        let huge = with(
            "/items/0/description",
            serde_json::json!("x".repeat(MAX_DOCUMENT_BYTES)),
        );
        assert!(refused(&huge).reason.contains("bytes"));
    }

    #[test]
    fn refuses_invalid_utf8_naming_the_field() {
        let mut bytes = GOOD.as_bytes().to_vec();
        let at = GOOD.find("c-1").unwrap();
        bytes[at] = 0xff;
        assert_eq!(parse_order(&bytes).unwrap_err().field, "customer_id");
    }

    #[test]
    fn refuses_numbers_beyond_f64() {
        // serde_json refuses 1e999 rather than reading it as infinity.
        let e = refused(&GOOD.replace("19.99", "1e999"));
        assert_eq!(e.field, "items[0].unit_price");
        let e = refused(&GOOD.replace("\"qty\":1.0", "\"qty\":-1e999"));
        assert_eq!(e.field, "items[0].qty");
    }

    #[test]
    fn error_reads_as_one_line() {
        let e = refused(&with("/items/0/qty", serde_json::json!(0)));
        assert_eq!(
            e.to_string(),
            "invalid order: items[0].qty: must be a whole number from 1 to 1000000, got 0"
        );
    }
}
