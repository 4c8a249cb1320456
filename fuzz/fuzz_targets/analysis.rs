//! libFuzzer entry point; the input handling is in `fuzz/bodies/analysis.rs`.
#![no_main]

#[path = "../bodies/analysis.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
