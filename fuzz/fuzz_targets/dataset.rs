//! CSV, NDJSON and JSON-records parsing, schema inference and pipeline fit.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| myelin::fuzz::dataset(bytes));
