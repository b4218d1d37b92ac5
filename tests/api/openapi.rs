//! The committed OpenAPI document matches the one the code generates.

use serde_json::Value;

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("cannot read {path} ({e}); run `cargo run -- openapi > openapi/openapi.json`")
    });
    let committed: Value = serde_json::from_str(&committed).unwrap_or_else(|e| {
        panic!("{path} is not JSON ({e}); run `cargo run -- openapi > openapi/openapi.json`")
    });
    let generated: Value = serde_json::from_str(&myelin::api::openapi_json())
        .expect("the generated OpenAPI document is not JSON");
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the code; run `cargo run -- openapi > openapi/openapi.json` and commit the result"
    );
}
