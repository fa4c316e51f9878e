//! The activity contracts: each activity's type name and its input and output types.
//!
//! The workflow schedules activities through these markers, so it needs neither the stores nor
//! their drivers; the `activities` crate implements activities with the same names, and a test
//! there holds the two sides together.

use crate::{Notification, Order, scenario::activity};
use temporalio_common::ActivityDefinition;

/// Every contract's value crosses as JSON read straight from the payload's bytes: the SDK's
/// payloads byte for byte, without its detour through `serde_json::Value`.
pub use temporal_saga::Json;

macro_rules! contract {
    ($(#[$doc:meta])* $marker:ident, $name:expr, $input:ty => $output:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $marker;

        impl ActivityDefinition for $marker {
            type Input = $input;
            type Output = $output;

            fn name(&self) -> &str {
                $name
            }
        }
    };
}

contract!(
    /// Saves the order with status `New`.
    ProcessOrder, activity::PROCESS_ORDER, Json<Order> => Json<Order>);
contract!(
    /// Compensates `ProcessOrder`: sets the order's status to `Pending`.
    UpdateOrderStatus, activity::UPDATE_ORDER_STATUS, Json<Order> => Json<Order>);
contract!(
    /// Records a Debit of the order total.
    ProcessPayment, activity::PROCESS_PAYMENT, Json<Order> => Json<Order>);
contract!(
    /// Compensates `ProcessPayment`: records a Credit of the negated debit.
    ProcessRefund, activity::PROCESS_REFUND, Json<Order> => Json<Order>);
contract!(
    /// Reserves every item of the order.
    ReserveInventory, activity::RESERVE_INVENTORY, Json<Order> => Json<Order>);
contract!(
    /// Compensates `ReserveInventory`: gives back exactly what was reserved.
    ReleaseInventory, activity::RELEASE_INVENTORY, Json<Order> => Json<Order>);
contract!(
    /// Publishes the saga's outcome to the notifications outbox.
    Notify, activity::NOTIFY, Json<Notification> => ());

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::data_converters::{
        GenericPayloadConverter, PayloadConverter, SerializationContext, SerializationContextData,
    };

    /// What the SDK's converter writes for `value`, and what it writes for `Json(value)`, must
    /// be the same bytes, and those bytes must read back as `value` through `Json`.
    fn assert_crosses_as_before<T>(value: T)
    where
        T: serde::Serialize
            + serde::de::DeserializeOwned
            + Clone
            + PartialEq
            + std::fmt::Debug
            + 'static,
    {
        let (converter, data) = (PayloadConverter::default(), SerializationContextData::None);
        let context = SerializationContext::new(&data, &converter);
        let plain = converter.to_payload(&context, &value).unwrap();
        let wrapped = converter
            .to_payload(&context, &Json(value.clone()))
            .unwrap();
        assert_eq!(wrapped, plain);
        let Json(read): Json<T> = converter.from_payload(&context, plain).unwrap();
        assert_eq!(read, value);
    }

    /// The contracts changed from `Order` to `Json<Order>` with histories recorded and sagas in
    /// flight: what either side writes must be what the SDK's converter wrote for the plain
    /// types, and what it wrote must read back the same.
    #[test]
    fn json_values_cross_as_the_sdks_plain_values_did() {
        let order = crate::parse_order(include_bytes!("../../testdata/scenario-7.json")).unwrap();
        assert_crosses_as_before(order.clone());
        assert_crosses_as_before(Notification {
            order_id: order.order_id.clone(),
            status: "failed".into(),
            error: Some("ReleaseInventory: \"stock\" locked".into()),
            order: Some(order),
        });
    }
}
