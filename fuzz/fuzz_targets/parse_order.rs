//! Arbitrary bytes as a workflow input: `parse_order` must keep its contract
//! (`saga_protos::invariants::check_parse_order`) on every one of them.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    saga_protos::invariants::check_parse_order(data);
});
