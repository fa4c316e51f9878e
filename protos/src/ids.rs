//! Deterministic transaction ids.
//!
//! Temporal delivers an activity at least once, so every write is keyed by an id that the same
//! order and the same kind of transaction always produce: a UUIDv5 of `order_id|type` in the
//! reference's namespace. A repeated write of the same id changes nothing.

use uuid::Uuid;

/// The UUIDv5 namespace of the reference implementation, so ids match it.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x8b03bc51_6db8_4d24_9e5b_0f8245f5f42e);

/// The kinds of transaction the stores record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionType {
    Debit,
    Credit,
    Reserve,
    Release,
}

impl TransactionType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debit => "Debit",
            Self::Credit => "Credit",
            Self::Reserve => "Reserve",
            Self::Release => "Release",
        }
    }
}

impl std::fmt::Display for TransactionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transaction id of `kind` for `order_id`.
pub fn transaction_id(order_id: &str, kind: TransactionType) -> String {
    Uuid::new_v5(&NAMESPACE, format!("{order_id}|{kind}").as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct_per_type() {
        let a = transaction_id(
            "47063fe3-56d9-4c51-b91f-71929834ce03",
            TransactionType::Debit,
        );
        let b = transaction_id(
            "47063fe3-56d9-4c51-b91f-71929834ce03",
            TransactionType::Debit,
        );
        let c = transaction_id(
            "47063fe3-56d9-4c51-b91f-71929834ce03",
            TransactionType::Credit,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Uuid::parse_str(&a).unwrap().get_version_num(), 5);
    }

    #[test]
    fn ids_match_the_reference_scheme() {
        // uuid.uuid5(uuid.UUID('8b03bc51-6db8-4d24-9e5b-0f8245f5f42e'), 'o-1|Debit') in Python.
        assert_eq!(
            transaction_id("o-1", TransactionType::Debit),
            "4c24c9bd-c461-5b4a-827f-815ed91b2f05"
        );
        assert_eq!(
            NAMESPACE.to_string(),
            "8b03bc51-6db8-4d24-9e5b-0f8245f5f42e"
        );
    }
}
