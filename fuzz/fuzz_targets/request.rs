//! libFuzzer entry point; the input handling is in `fuzz/bodies/request.rs`.
#![no_main]

#[path = "../bodies/request.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
