//! The notifications outbox: one row per notification and subscriber, written in `Notify`'s own
//! transaction, so a notification and its deliveries commit or fail together. The relay that
//! reads the rows and sends them is the `saga-delivery` crate.
//!
//! | part | what it holds |
//! |---|---|
//! | [`table`] | `webhook_deliveries`: queueing (in `Notify`'s transaction), claims with a lease, results, resends, listings |
//! | [`event`] | the event id (stable across attempts and subscribers) and the order summary a delivery carries; the JSON body |
//! | [`Subscription`] | what `Notify` knows of a subscriber: its name and the statuses it wants |

pub mod event;
pub mod table;

pub use event::{Event, OrderSummary, event_id};
pub use table::{Delivery, Outbox, Selector};

/// What `Notify` needs to know of a subscriber to queue a delivery for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub name: String,
    /// Empty for all statuses.
    pub statuses: Vec<String>,
}

impl Subscription {
    pub fn wants(&self, status: &str) -> bool {
        self.statuses.is_empty() || self.statuses.iter().any(|s| s == status)
    }
}
