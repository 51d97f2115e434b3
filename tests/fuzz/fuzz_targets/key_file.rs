#![no_main]
//! Fuzz target `key_file`: see `targets::key_file`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::key_file(data));
