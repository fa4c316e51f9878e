//! What a delivery says: the JSON body every subscriber receives.
//!
//! ```json
//! {
//!   "event_id": "0b5c5f9e-8a8f-5e0b-9a57-1c1a5e0f5d2e",
//!   "order_id": "47063fe3-56d9-4c51-b91f-71929834ce03",
//!   "status": "success",
//!   "error": null,
//!   "order": {"customer_id": "8d04…", "order_date": "2018-10-19T02:50:16Z",
//!             "order_status": "New", "total": 19.99, "items": [{"item_id": "123", "qty": 1.0}]},
//!   "time": "2024-05-31T12:00:00.123Z"
//! }
//! ```
//!
//! The body is built from the outbox row alone, so every attempt (and every relay process) sends
//! the same bytes.

use saga_protos::{Order, ids::NAMESPACE};
use serde::{Deserialize, Serialize};

/// The event id of the notification of `order_id` with `status`: a UUIDv5 in the design's
/// namespace of `order_id|notification|status`. The same on every attempt and for every
/// subscriber, so receivers can de-duplicate on it.
pub fn event_id(order_id: &str, status: &str) -> String {
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{order_id}|notification|{status}").as_bytes(),
    )
    .to_string()
}

/// One notification as it is POSTed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub order_id: String,
    /// `success` or `failed` (a compensation failed: someone must look at the order).
    pub status: String,
    /// What went wrong, for `failed`; `null` otherwise.
    pub error: Option<String>,
    /// The order as the saga left it; `null` for notifications written before summaries were
    /// kept.
    pub order: Option<OrderSummary>,
    /// When the saga published the notification (RFC 3339, UTC).
    pub time: String,
}

impl Event {
    /// The exact bytes that are signed and sent.
    pub fn body(&self) -> Vec<u8> {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec(self).expect("an event serialises")
    }
}

/// The order in a few fields: who, when, how much, what, and where the saga left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub customer_id: String,
    pub order_date: String,
    /// The order's status as the saga last saw it: `New` once `ProcessOrder` has returned;
    /// absent when `ProcessOrder` itself failed (its compensation then failed too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    /// Sum of qty × unit_price, in currency units.
    pub total: f64,
    pub items: Vec<ItemSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemSummary {
    pub item_id: String,
    pub qty: f64,
}

impl OrderSummary {
    /// The summary of a validated order.
    pub fn of(order: &Order) -> Self {
        Self {
            customer_id: order.customer_id.clone(),
            // The date as the orders service stores it (UTC), whether or not ProcessOrder ran,
            // so that a subscriber sees one form; a validated order's date always converts.
            order_date: saga_protos::canonical_order_date(&order.order_date)
                .unwrap_or_else(|_| order.order_date.clone()),
            order_status: order.order_status.clone(),
            total: saga_protos::amount(order.total_cents()),
            items: order
                .items
                .iter()
                .map(|i| ItemSummary {
                    item_id: i.item_id.clone(),
                    qty: i.qty,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_and_distinct_per_status() {
        let a = event_id("47063fe3-56d9-4c51-b91f-71929834ce03", "success");
        assert_eq!(
            a,
            event_id("47063fe3-56d9-4c51-b91f-71929834ce03", "success")
        );
        assert_ne!(
            a,
            event_id("47063fe3-56d9-4c51-b91f-71929834ce03", "failed")
        );
        assert_ne!(
            a,
            event_id("47063fe3-56d9-4c51-b91f-71929834ce04", "success")
        );
        // Never the id of one of the order's transactions.
        assert_ne!(
            a,
            saga_protos::ids::transaction_id(
                "47063fe3-56d9-4c51-b91f-71929834ce03",
                saga_protos::ids::TransactionType::Debit
            )
        );
    }

    #[test]
    fn the_body_has_the_documented_shape() {
        let order =
            saga_protos::parse_order(include_bytes!("../../../testdata/scenario-7.json")).unwrap();
        let event = Event {
            event_id: event_id(&order.order_id, "failed"),
            order_id: order.order_id.clone(),
            status: "failed".into(),
            error: Some("ErrReleaseInventory: x".into()),
            order: Some(OrderSummary::of(&order)),
            time: "2024-05-31T12:00:00.123Z".into(),
        };
        let body: serde_json::Value = serde_json::from_slice(&event.body()).unwrap();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in ["event_id", "order_id", "status", "error", "order", "time"] {
            assert!(keys.contains(&key), "{key} in {body}");
        }
        assert_eq!(body["order"]["customer_id"], order.customer_id.as_str());
        assert_eq!(
            body["order"]["total"],
            saga_protos::amount(order.total_cents())
        );
        assert_eq!(
            body["order"]["items"].as_array().unwrap().len(),
            order.items.len()
        );
        let none = Event {
            error: None,
            order: None,
            ..event
        };
        let body: serde_json::Value = serde_json::from_slice(&none.body()).unwrap();
        assert!(body["error"].is_null() && body["order"].is_null(), "{body}");
    }
}
