//! [`Json`]: a value that crosses Temporal as JSON, read and written straight.
//!
//! The SDK's JSON converter reads every payload into a `serde_json::Value` first, a tree of
//! maps and strings, then reads the wanted type out of the tree, after a copy of the payload
//! for each converter it tries; it writes through `erased_serde`, a dynamic call per field.
//! For a kilobyte record that is tens of thousands of instructions per crossing, and a saga's
//! value crosses twice per step: into the activity and back. Declare a saga's value, or an
//! activity's input and output, as `Json<T>` and it goes through the SDK's converter by its
//! wrapper path, which the converter tries first: read from the payload's bytes with `T`'s own
//! visitor, written with `serde_json::to_vec`.
//!
//! ```
//! use temporal_saga::Json;
//! use temporalio_common::ActivityDefinition;
//!
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! pub struct Trip {
//!     pub trip_id: String,
//! }
//!
//! pub struct BookFlight;
//! impl ActivityDefinition for BookFlight {
//!     type Input = Json<Trip>;
//!     type Output = Json<Trip>;
//!     fn name(&self) -> &str {
//!         "BookFlight"
//!     }
//! }
//!
//! // A `Saga<Json<Trip>>` reads its value's fields through `Deref`:
//! let trip = Json(Trip { trip_id: "t-1".into() });
//! assert_eq!(trip.trip_id, "t-1");
//! ```
//!
//! The payloads are the SDK's, byte for byte: `json/plain` with serde_json's encoding of `T`,
//! `binary/null` for a JSON `null`. So a saga or an activity can switch to `Json<T>` with
//! histories in flight, and a worker of any SDK reads what it writes. A payload that is
//! neither is left to the converter's next way, which refuses it as before; bytes that are not
//! a `T` are the same kind of error as before, an encoding error, its message now with the line
//! and column: an activity's attempt fails with it, and a step result the saga cannot read is
//! that step's failure ([`RoundError`](crate::RoundError)), as it was. One difference: an object
//! that repeats a key is refused here (serde's "duplicate field"), where the tree kept the last
//! value; no SDK writes one.

use serde::{Serialize, de::DeserializeOwned};
use temporalio_common::{
    data_converters::{
        PayloadConversionError, SerializationContext, TemporalDeserializable, TemporalSerializable,
    },
    protos::temporal::api::common::v1::Payload,
};

const ENCODING: &str = "encoding";
const JSON_PLAIN: &[u8] = b"json/plain";
const BINARY_NULL: &[u8] = b"binary/null";

/// A value that crosses Temporal as JSON, read and written without the SDK's detour through
/// `serde_json::Value` (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The value inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Json(value)
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned> TemporalDeserializable for Json<T> {
    fn from_payload(
        _: &SerializationContext<'_>,
        payload: Payload,
    ) -> Result<Self, PayloadConversionError> {
        let data: &[u8] = match payload.metadata.get(ENCODING).map(Vec::as_slice) {
            Some(JSON_PLAIN) => &payload.data,
            Some(BINARY_NULL) => b"null",
            _ => return Err(PayloadConversionError::WrongEncoding),
        };
        serde_json::from_slice(data)
            .map(Json)
            .map_err(|e| PayloadConversionError::EncodingError(Box::new(e)))
    }
}

impl<T: Serialize> TemporalSerializable for Json<T> {
    fn to_payload(&self, _: &SerializationContext<'_>) -> Result<Payload, PayloadConversionError> {
        let data = serde_json::to_vec(&self.0)
            .map_err(|e| PayloadConversionError::EncodingError(Box::new(e)))?;
        let (encoding, data) = if data == b"null" {
            (BINARY_NULL, Vec::new())
        } else {
            (JSON_PLAIN, data)
        };
        Ok(Payload {
            metadata: [(ENCODING.to_owned(), encoding.to_vec())].into(),
            data,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use temporalio_common::data_converters::{
        GenericPayloadConverter, PayloadConverter, SerializationContextData,
    };

    /// A record shaped like a saga's value: nested objects, a list, optional fields, text that
    /// needs escaping, numbers.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Order {
        order_id: String,
        items: Vec<Item>,
        note: Option<String>,
        shipping: Option<Address>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Item {
        sku: String,
        quantity: u32,
        price: f64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Address {
        street: String,
        city: String,
    }

    fn order() -> Order {
        Order {
            order_id: "7-order".into(),
            items: vec![
                Item {
                    sku: "ABC-1".into(),
                    quantity: 2,
                    price: 19.99,
                },
                Item {
                    sku: "é\"\\ü\n".into(),
                    quantity: 1,
                    price: 0.5,
                },
            ],
            note: None,
            shipping: Some(Address {
                street: "1 Main St".into(),
                city: "Zürich".into(),
            }),
        }
    }

    fn converter() -> PayloadConverter {
        PayloadConverter::default()
    }

    #[test]
    fn writes_the_bytes_the_sdk_writes() {
        let (converter, data) = (converter(), SerializationContextData::None);
        let context = SerializationContext::new(&data, &converter);
        let order = order();
        let ours = converter
            .to_payload(&context, &Json(order.clone()))
            .unwrap();
        let sdks = converter.to_payload(&context, &order).unwrap();
        assert_eq!(ours, sdks);
        let unit_ours = converter.to_payload(&context, &Json(None::<u8>)).unwrap();
        let unit_sdks = converter.to_payload(&context, &None::<u8>).unwrap();
        assert_eq!(unit_ours, unit_sdks);
    }

    #[test]
    fn reads_what_the_sdk_reads_and_refuses_what_it_refuses() {
        let (converter, data) = (converter(), SerializationContextData::None);
        let context = SerializationContext::new(&data, &converter);
        let order = order();
        let payload = converter.to_payload(&context, &order).unwrap();
        let Json(read): Json<Order> = converter.from_payload(&context, payload).unwrap();
        assert_eq!(read, order);

        let null = converter.to_payload(&context, &None::<u8>).unwrap();
        let Json(none): Json<Option<u8>> = converter.from_payload(&context, null).unwrap();
        assert_eq!(none, None);

        let not_an_order = Payload {
            metadata: [(ENCODING.to_owned(), JSON_PLAIN.to_vec())].into(),
            data: br#"{"order_id": 7}"#.to_vec(),
            ..Default::default()
        };
        let theirs = converter.from_payload::<Order>(&context, not_an_order.clone());
        let ours = converter.from_payload::<Json<Order>>(&context, not_an_order);
        assert!(matches!(
            theirs,
            Err(PayloadConversionError::EncodingError(_))
        ));
        let Err(PayloadConversionError::EncodingError(e)) = ours else {
            panic!("not an encoding error: {ours:?}")
        };
        assert!(e.to_string().contains("invalid type: integer `7`"), "{e}");

        let trailing = Payload {
            metadata: [(ENCODING.to_owned(), JSON_PLAIN.to_vec())].into(),
            data: b"null x".to_vec(),
            ..Default::default()
        };
        assert!(
            converter
                .from_payload::<Json<Option<u8>>>(&context, trailing)
                .is_err()
        );

        let protobuf = Payload {
            metadata: [(ENCODING.to_owned(), b"binary/protobuf".to_vec())].into(),
            data: vec![1, 2, 3],
            ..Default::default()
        };
        assert!(matches!(
            converter.from_payload::<Json<Order>>(&context, protobuf),
            Err(PayloadConversionError::WrongEncoding)
        ));
    }
}
