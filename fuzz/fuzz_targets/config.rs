//! libFuzzer entry point; the input handling is in `fuzz/bodies/config.rs`.
#![no_main]

#[path = "../bodies/config.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
