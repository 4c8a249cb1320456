//! libFuzzer entry point; the input handling is in `fuzz/bodies/flagd.rs`.
#![no_main]

#[path = "../bodies/flagd.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
