//! `/predict` body decoding and prediction on a small trained model.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| myelin::fuzz::predict_request(bytes));
