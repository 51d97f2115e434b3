#![no_main]
//! Fuzz target `dates`: see `targets::dates`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::dates(data));
