#![no_main]
//! Fuzz target `encodings_file`: see `targets::encodings_file`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::encodings_file(data));
