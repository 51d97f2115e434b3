#![no_main]
//! Fuzz target `registry_files`: see `targets::registry_files`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::registry_files(data));
