//! Generates the order types from `proto/saga/v1/order.proto` with prost and gives them the
//! serde derives that make their JSON exactly the design's order document.

fn main() -> std::io::Result<()> {
    let proto = "proto/saga/v1/order.proto";
    println!("cargo:rerun-if-changed={proto}");

    let mut config = prost_build::Config::new();
    config
        .type_attribute(
            ".saga.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        // An unknown field is far more often a typo than an extension; say so instead of
        // silently dropping data.
        .type_attribute(".saga.v1", "#[serde(deny_unknown_fields)]")
        // Enrichment fields are absent until the step that sets them has run.
        .field_attribute(
            ".saga.v1.Order.order_status",
            "#[serde(default, skip_serializing_if = \"Option::is_none\")]",
        )
        .field_attribute(
            ".saga.v1.Order.payment",
            "#[serde(default, skip_serializing_if = \"Option::is_none\")]",
        )
        .field_attribute(
            ".saga.v1.Order.inventory",
            "#[serde(default, skip_serializing_if = \"Option::is_none\")]",
        )
        .field_attribute(
            ".saga.v1.Notification.error",
            "#[serde(default, skip_serializing_if = \"Option::is_none\")]",
        )
        .field_attribute(
            ".saga.v1.Notification.order",
            "#[serde(default, skip_serializing_if = \"Option::is_none\")]",
        )
        .field_attribute(".saga.v1.Item.description", "#[serde(default)]");
    config.compile_protos(&[proto], &["proto"])
}
