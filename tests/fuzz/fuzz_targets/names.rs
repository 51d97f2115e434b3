#![no_main]
//! Fuzz target `names`: see `targets::names`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::names(data));
