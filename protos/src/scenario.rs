//! The failure-injection table of the design: an order id's prefix decides which step fails.
//!
//! Activities consult [`injected_failure`] after their local transaction commits; the CLI and the
//! tests consult [`Scenario`] for the path a saga must take.

/// The activity type names, as they appear in the workflow history.
pub mod activity {
    pub const PROCESS_ORDER: &str = "ProcessOrder";
    pub const UPDATE_ORDER_STATUS: &str = "UpdateOrderStatus";
    pub const PROCESS_PAYMENT: &str = "ProcessPayment";
    pub const PROCESS_REFUND: &str = "ProcessRefund";
    pub const RESERVE_INVENTORY: &str = "ReserveInventory";
    pub const RELEASE_INVENTORY: &str = "ReleaseInventory";
    pub const NOTIFY: &str = "Notify";
}

/// The application failure type of a workflow that compensated (or tried to).
pub const SAGA_FAILED: &str = "SagaFailed";
/// The application failure type of a workflow whose input was not a valid order.
pub const INVALID_ORDER: &str = "InvalidOrder";
/// The failure type of a step run as a local activity by a workflow worker that does not run
/// that step's service (a split workflow role finishing a saga an all-in-one worker started):
/// the saga runs the step as a regular activity instead.
pub const LOCAL_DISPATCH_UNAVAILABLE: &str = "LocalDispatchUnavailable";

/// The business error an activity raises when the order id asks it to fail.
///
/// Returns the error type (`ErrProcessOrder`, …) when `activity_type` must fail for `order_id`.
pub fn injected_failure(activity_type: &str, order_id: &str) -> Option<&'static str> {
    use activity::*;
    let (prefix, error_type) = match activity_type {
        PROCESS_ORDER => ("1", "ErrProcessOrder"),
        UPDATE_ORDER_STATUS => ("11", "ErrUpdateOrderStatus"),
        PROCESS_PAYMENT => ("2", "ErrProcessPayment"),
        PROCESS_REFUND => ("22", "ErrProcessRefund"),
        RESERVE_INVENTORY => ("3", "ErrReserveInventory"),
        RELEASE_INVENTORY => ("33", "ErrReleaseInventory"),
        _ => return None,
    };
    order_id.starts_with(prefix).then_some(error_type)
}

/// One row of the design's scenario table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// A short name for tables and test names.
    pub name: &'static str,
    /// The order id prefix that selects this scenario.
    pub prefix: &'static str,
    /// A reference order id of this scenario.
    pub sample_order_id: &'static str,
    /// The activity types the history shows, in order.
    pub path: &'static [&'static str],
    /// Whether the workflow completes (true) or fails with `SagaFailed` (false).
    pub completes: bool,
    /// The outcome a reader cares about.
    pub outcome: Outcome,
}

/// How a saga ended, from the business's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every forward step succeeded.
    Completed,
    /// A step failed and every compensation ran.
    Compensated,
    /// A compensation itself failed; a failure notification was sent.
    CompensationFailed,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Compensated => "compensated",
            Self::CompensationFailed => "compensation-failed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

use activity::*;

/// The seven scenarios, in the design's order.
pub const SCENARIOS: [Scenario; 7] = [
    Scenario {
        name: "order fails",
        prefix: "1",
        sample_order_id: "1ae4501d-ed92-4b27-bf0e-fd978ed45127",
        path: &[PROCESS_ORDER, UPDATE_ORDER_STATUS],
        completes: false,
        outcome: Outcome::Compensated,
    },
    Scenario {
        name: "order + its compensation fail",
        prefix: "11",
        sample_order_id: "11328abd-368d-43fd-bd4f-db15b5b63951",
        path: &[PROCESS_ORDER, UPDATE_ORDER_STATUS, NOTIFY],
        completes: false,
        outcome: Outcome::CompensationFailed,
    },
    Scenario {
        name: "payment fails",
        prefix: "2",
        sample_order_id: "20b0b599-441b-45c3-910e-ad63fe992c43",
        path: &[
            PROCESS_ORDER,
            PROCESS_PAYMENT,
            PROCESS_REFUND,
            UPDATE_ORDER_STATUS,
        ],
        completes: false,
        outcome: Outcome::Compensated,
    },
    Scenario {
        name: "payment + refund fail",
        prefix: "22",
        sample_order_id: "222f741b-0292-4f93-a2f7-503f92486955",
        path: &[PROCESS_ORDER, PROCESS_PAYMENT, PROCESS_REFUND, NOTIFY],
        completes: false,
        outcome: Outcome::CompensationFailed,
    },
    Scenario {
        name: "inventory fails",
        prefix: "3",
        sample_order_id: "3a7dc768-6f32-495d-a140-3d330c246f50",
        path: &[
            PROCESS_ORDER,
            PROCESS_PAYMENT,
            RESERVE_INVENTORY,
            RELEASE_INVENTORY,
            PROCESS_REFUND,
            UPDATE_ORDER_STATUS,
        ],
        completes: false,
        outcome: Outcome::Compensated,
    },
    Scenario {
        name: "inventory + release fail",
        prefix: "33",
        sample_order_id: "33a49007-a815-4079-9b9b-e30ae7eca11f",
        path: &[
            PROCESS_ORDER,
            PROCESS_PAYMENT,
            RESERVE_INVENTORY,
            RELEASE_INVENTORY,
            NOTIFY,
        ],
        completes: false,
        outcome: Outcome::CompensationFailed,
    },
    Scenario {
        name: "success",
        prefix: "",
        sample_order_id: "47063fe3-56d9-4c51-b91f-71929834ce03",
        path: &[PROCESS_ORDER, PROCESS_PAYMENT, RESERVE_INVENTORY, NOTIFY],
        completes: true,
        outcome: Outcome::Completed,
    },
];

impl Scenario {
    /// The scenario an order id selects: the longest matching prefix wins.
    pub fn for_order_id(order_id: &str) -> &'static Scenario {
        SCENARIOS
            .iter()
            .filter(|s| order_id.starts_with(s.prefix))
            .max_by_key(|s| s.prefix.len())
            .expect("the success scenario's empty prefix matches every id")
    }

    /// A new order id that selects this scenario: its prefix, then the rest of a random UUID.
    pub fn fresh_order_id(&self) -> String {
        loop {
            let uuid = uuid::Uuid::new_v4().to_string();
            let id = format!("{}{}", self.prefix, &uuid[self.prefix.len()..]);
            // A random tail can extend the prefix into another row's ("1" + "1…" is "11…").
            if Scenario::for_order_id(&id) == self {
                return id;
            }
        }
    }

    /// The scenario selected by exactly this prefix.
    pub fn with_prefix(prefix: &str) -> Option<&'static Scenario> {
        SCENARIOS.iter().find(|s| s.prefix == prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_id_selects_its_own_row() {
        for s in &SCENARIOS {
            assert_eq!(Scenario::for_order_id(s.sample_order_id), s);
        }
    }

    #[test]
    fn fresh_ids_select_their_scenario() {
        for s in &SCENARIOS {
            for _ in 0..50 {
                assert_eq!(Scenario::for_order_id(&s.fresh_order_id()), s);
            }
        }
    }

    #[test]
    fn injection_follows_the_prefixes() {
        assert_eq!(
            injected_failure(PROCESS_ORDER, "1a"),
            Some("ErrProcessOrder")
        );
        assert_eq!(injected_failure(UPDATE_ORDER_STATUS, "1a"), None);
        assert_eq!(
            injected_failure(UPDATE_ORDER_STATUS, "11a"),
            Some("ErrUpdateOrderStatus")
        );
        assert_eq!(injected_failure(PROCESS_PAYMENT, "1a"), None);
        assert_eq!(
            injected_failure(RESERVE_INVENTORY, "33"),
            Some("ErrReserveInventory")
        );
        assert_eq!(injected_failure(NOTIFY, "1"), None);
        assert_eq!(injected_failure(PROCESS_ORDER, "47"), None);
    }
}
