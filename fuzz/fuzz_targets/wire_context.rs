//! libFuzzer entry point; the input handling is in `fuzz/bodies/wire_context.rs`.
#![no_main]

#[path = "../bodies/wire_context.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
