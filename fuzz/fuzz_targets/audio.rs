//! WAV decoding, resampling and log-mel features of arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| myelin::fuzz::audio(bytes));
